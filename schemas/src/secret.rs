//! Secret values and the one way to take them out of text.
//!
//! A job carries credentials (SASL passwords, a Redis URL's password, API
//! tokens); status output, logs and errors must never show them. Holding
//! them as [`Secret`] makes `Debug`, `Display` and `Serialize` safe by
//! construction, and [`redact`] is the one function every layer uses for
//! text that may quote a secret (a client library's error message), so
//! every placeholder reads the same.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// What stands in for a secret value wherever one would be shown.
pub const REDACTED: &str = "<redacted>";

/// A value that is never shown: formatting and serialising it give
/// [`REDACTED`]. Reading it takes an explicit [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it (a client
    /// config, a constant-time compare).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// `text` with every occurrence of each non-empty secret replaced by
/// [`REDACTED`]. Longer secrets go first, so one that contains another is
/// replaced whole.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut secrets: Vec<&str> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_formatted_or_serialised() {
        let s: Secret<String> = serde_json::from_str("\"hunter2\"").expect("transparent");
        assert_eq!(s.expose(), "hunter2");
        for shown in [
            format!("{s}"),
            format!("{s:?}"),
            format!("{:?}", Some(&s)),
            serde_json::to_string(&s).expect("serialises"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
    }

    #[test]
    fn redact_replaces_the_longest_secret_first() {
        let text = "auth hunter2x failed; retry with hunter2";
        assert_eq!(
            redact(text, ["hunter2", "hunter2x", ""]),
            "auth <redacted> failed; retry with <redacted>"
        );
        assert_eq!(redact("nothing here", ["", "x9"]), "nothing here");
    }
}
