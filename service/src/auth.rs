//! Bearer tokens for the mutating endpoints. Tokens come from a file or
//! the environment, never from the command line (where `ps` shows them),
//! and are never printed: `Debug` shows only how many there are.

use std::path::Path;

use scorestream_schemas::Secret;
use subtle::ConstantTimeEq;

use crate::ServiceError;

/// The environment variable holding comma-separated API tokens.
pub const TOKENS_ENV: &str = "SCORESTREAM_API_TOKENS";

/// Tokens shorter than this are refused: they are guessable.
const MIN_TOKEN_LEN: usize = 16;

#[derive(Clone)]
pub struct Tokens(Vec<Secret<Vec<u8>>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    /// Reads tokens from `file` (one per line; blank lines and `#`
    /// comments ignored) or else from `$SCORESTREAM_API_TOKENS`
    /// (comma-separated). Having none is an error: a service that anyone
    /// on the network could submit jobs to is not a default we ship.
    pub fn load(file: Option<&Path>, env: Option<String>) -> Result<Self, ServiceError> {
        let (source, raw): (String, Vec<String>) = match (file, env) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ServiceError::io(format!("reading the token file {}", path.display()), e)
                })?;
                (
                    format!("token file {}", path.display()),
                    text.lines().map(str::to_owned).collect(),
                )
            }
            (None, Some(v)) => (
                format!("${TOKENS_ENV}"),
                v.split(',').map(str::to_owned).collect(),
            ),
            (None, None) => {
                return Err(ServiceError::Setup(format!(
                    "no API tokens: give --token-file FILE (one token per line) or set {TOKENS_ENV} (comma-separated)"
                )));
            }
        };
        let mut tokens = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let t = t.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if t.len() < MIN_TOKEN_LEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ServiceError::Setup(format!(
                    "{source}: token {} is shorter than {MIN_TOKEN_LEN} characters or contains whitespace",
                    i + 1
                )));
            }
            tokens.push(Secret::new(t.as_bytes().to_vec()));
        }
        if tokens.is_empty() {
            return Err(ServiceError::Setup(format!("{source} holds no token")));
        }
        Ok(Self(tokens))
    }

    /// Whether an `Authorization` header value carries a configured token.
    /// Every token is compared in full, in constant time, so timing does
    /// not reveal how much of a guess was right.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(bearer_token) else {
            return false;
        };
        self.0.iter().fold(false, |ok, t| {
            ok | bool::from(t.expose().as_slice().ct_eq(given))
        })
    }
}

/// The credentials of a `Bearer` authorization: the scheme is matched
/// without regard to case and may be followed by more than one space
/// (RFC 7235 section 2.1), so `bearer` from a client is as good as `Bearer`.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = header.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_a_file_skip_comments_and_are_never_shown() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            "# ops team\nalpha-0123456789abcdef\n\nbeta-0123456789abcdef\n",
        )
        .expect("write");
        let t = Tokens::load(Some(&file), Some("ignored-env-token-xxxx".into())).expect("load");
        assert!(t.allows(Some(b"Bearer alpha-0123456789abcdef")));
        assert!(t.allows(Some(b"Bearer beta-0123456789abcdef")));
        assert!(!t.allows(Some(b"Bearer ignored-env-token-xxxx")));
        assert!(!t.allows(Some(b"Bearer alpha-0123456789abcde")));
        assert!(!t.allows(Some(b"alpha-0123456789abcdef")));
        assert!(!t.allows(None));
        // The scheme is case-insensitive (RFC 7235); the token is not.
        assert!(t.allows(Some(b"bearer alpha-0123456789abcdef")));
        assert!(t.allows(Some(b"BEARER  alpha-0123456789abcdef")));
        assert!(!t.allows(Some(b"bearer ALPHA-0123456789abcdef")));
        assert!(!t.allows(Some(b"Bearer")));
        assert!(!t.allows(Some(b"Bearer ")));
        assert!(!t.allows(Some(b"Beareralpha-0123456789abcdef")));
        assert!(!t.allows(Some(b"Basic alpha-0123456789abcdef")));
        let shown = format!("{t:?}");
        assert_eq!(shown, "Tokens(2 configured)");
    }

    #[test]
    fn env_tokens_and_refusals_name_the_source() {
        let t = Tokens::load(
            None,
            Some("one-0123456789abcdef,two-0123456789abcdef".into()),
        )
        .expect("env");
        assert!(t.allows(Some(b"Bearer two-0123456789abcdef")));
        let none = Tokens::load(None, None).expect_err("none");
        assert!(none.to_string().contains("--token-file"), "{none}");
        let short = Tokens::load(None, Some("short".into())).expect_err("short");
        assert!(
            short.to_string().contains("$SCORESTREAM_API_TOKENS"),
            "{short}"
        );
        assert!(!short.to_string().contains("short\""), "{short}");
        let empty = Tokens::load(None, Some(" , ".into())).expect_err("empty");
        assert!(empty.to_string().contains("holds no token"), "{empty}");
    }
}
