//! The roles a scorer's models play, for swaps and status pages.

/// A model a scorer runs, and in which role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelInUse {
    /// `champion`, `shadow` or `canary`.
    pub role: &'static str,
    pub name: String,
    pub version: String,
}

/// Which of a scorer's models a new version replaces: each one is
/// hot-reloaded on its own, from its own registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    Champion,
    /// The shadow at this position in `model.shadows`.
    Shadow(usize),
    Canary,
}

impl ModelRole {
    /// The role as metrics, logs and status pages name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Champion => "champion",
            Self::Shadow(_) => "shadow",
            Self::Canary => "canary",
        }
    }
}

impl std::fmt::Display for ModelRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shadow(i) => write!(f, "shadow[{i}]"),
            other => f.write_str(other.as_str()),
        }
    }
}
