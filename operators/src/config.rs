//! What every operator config shares: validated newtypes, and the one
//! shape of a config problem.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// One thing wrong with a config, named by its dotted key (`max_wait`,
/// `columns[2].view`); a section's keys are relative to it until the job
/// prefixes them ([`ConfigError::within`]). The CLI, a dry run and the
/// service all print this one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same problem, its key prefixed with the section it sits in.
    pub fn within(self, section: &str) -> Self {
        let key = match (section.is_empty(), self.key.is_empty()) {
            (true, _) => self.key,
            (false, true) => section.to_owned(),
            (false, false) => format!("{section}.{}", self.key),
        };
        Self { key, ..self }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// A config section that checks itself beyond its syntax (which serde,
/// with `deny_unknown_fields`, already did): every problem at once, each
/// with its key inside the section.
pub trait Validate {
    fn validate(&self) -> Result<(), Vec<ConfigError>>;
}

/// `Ok` when nothing was found.
pub fn found(problems: Vec<ConfigError>) -> Result<(), Vec<ConfigError>> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A section's problems as `(key, message)`, keys prefixed with `section`:
/// what the job's list would show, for tests.
#[cfg(test)]
pub(crate) fn problems_in(config: &impl Validate, section: &str) -> Vec<(String, String)> {
    config
        .validate()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.within(section))
        .map(|e| (e.key, e.message))
        .collect()
}

/// A duration written the way people write them: "50ms", "2s", "1m 30s".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(HumanDuration).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration \"{s}\" ({e}); write a number and a unit, such as \"50ms\", \"2s\" or \"5m\""
            ))
        })
    }
}

/// A size in bytes, written as a number or with a unit: 1048576, "512KiB", "1MiB".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid size \"{s}\": expected a number such as \"512KiB\" or \"1MiB\"")
        })?;
        let mult = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "invalid size unit \"{other}\" in \"{s}\"; use one of B, KiB, MiB, GiB, KB, MB, GB"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size \"{s}\" is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        d: HumanDuration,
        b: ByteSize,
    }

    #[test]
    fn parses_human_units() {
        let t: T = toml::from_str("d = \"50ms\"\nb = \"1MiB\"").expect("valid");
        assert_eq!(t.d.0, Duration::from_millis(50));
        assert_eq!(t.b.0, 1 << 20);
        let t: T = toml::from_str("d = \"2s\"\nb = 4096").expect("valid");
        assert_eq!(t.d.0, Duration::from_secs(2));
        assert_eq!(t.b.0, 4096);
    }

    #[test]
    fn bad_units_say_what_is_accepted() {
        let e = toml::from_str::<T>("d = \"fast\"\nb = 1")
            .err()
            .expect("invalid")
            .to_string();
        assert!(e.contains("\"fast\"") && e.contains("50ms"), "{e}");
        let e = toml::from_str::<T>("d = \"1s\"\nb = \"3 parsecs\"")
            .err()
            .expect("invalid")
            .to_string();
        assert!(e.contains("MiB"), "{e}");
    }
}
