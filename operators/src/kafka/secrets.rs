//! Which librdkafka settings are credentials, and the options map that
//! never shows them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use scorestream_schemas::{REDACTED, redact};
use serde::{Deserialize, Serialize, Serializer};

/// SASL settings that name a mechanism, a user or an endpoint, not a
/// credential; every other `sasl.*` value is treated as secret.
const PUBLIC_SASL: [&str; 6] = [
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.token.endpoint.url",
];

/// Whether a librdkafka option's value is a credential. Jobs may set
/// options we do not know of, so besides the known ones any name that
/// suggests a credential counts; a `*.location` is a path, shown so users
/// can tell which file was meant.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with(".location") {
        return false;
    }
    if k.starts_with("sasl.") {
        return !PUBLIC_SASL.contains(&k.as_str());
    }
    [
        "password",
        "secret",
        "token",
        "key",
        "private",
        "credential",
        "pem",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A job's librdkafka settings (`source.options`). Reading them is as
/// for a map; `Debug` and `Serialize` show secret values as
/// [`REDACTED`], so a config printed or returned by the service cannot
/// leak them.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct KafkaOptions(BTreeMap<String, String>);

impl KafkaOptions {
    /// `text` with every secret option value replaced, for errors from
    /// librdkafka, which may quote the settings it rejects.
    pub fn redact(&self, text: &str) -> String {
        redact(text, self.secret_values())
    }

    /// The options as they may be shown to people: secret values replaced.
    pub fn redacted(&self) -> BTreeMap<&str, &str> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret(k) { REDACTED } else { v }))
            .collect()
    }

    fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(k, _)| is_secret(k))
            .map(|(_, v)| v.as_str())
    }
}

impl Deref for KafkaOptions {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for KafkaOptions {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a KafkaOptions {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<BTreeMap<String, String>> for KafkaOptions {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl FromIterator<(String, String)> for KafkaOptions {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

impl Serialize for KafkaOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.redacted().serialize(s)
    }
}

/// Options from `(key, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn options(pairs: &[(&str, &str)]) -> KafkaOptions {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_client_errors() {
        let options = options(&[("ssl.key.password", "s3cr3t"), ("client.id", "scorer-1")]);
        let msg = "Invalid value \"s3cr3t\" for ssl.key.password (client scorer-1)";
        assert_eq!(
            options.redact(msg),
            "Invalid value \"<redacted>\" for ssl.key.password (client scorer-1)"
        );
    }

    #[test]
    fn secret_values_never_show_in_debug_or_json() {
        let options = options(&[
            ("sasl.password", "hunter2"),
            ("sasl.username", "alice"),
            ("ssl.key.location", "/certs/key.pem"),
        ]);
        for shown in [
            format!("{options:?}"),
            serde_json::to_string(&options).expect("serialises"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("alice") && shown.contains(REDACTED),
                "{shown}"
            );
            assert!(shown.contains("/certs/key.pem"), "{shown}");
        }
        assert_eq!(options["sasl.password"], "hunter2", "reading is explicit");
    }
}
