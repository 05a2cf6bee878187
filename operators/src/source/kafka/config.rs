use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::options::OptionPolicy;
use crate::config::{ByteSize, HumanDuration};

/// Where a consumer group with no committed offset starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    pub topics: Vec<String>,
    pub group_id: String,
    #[serde(default)]
    pub start_from: StartFrom,
    /// Messages per chunk handed to the decoder.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    /// How long a partly filled chunk may wait for more messages.
    #[serde(default = "default_linger")]
    pub linger: HumanDuration,
    /// Larger messages become dead letters instead of being decoded.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: ByteSize,
    /// On a rebalance, how long the pipeline may take to commit what it read
    /// from revoked partitions before the job gives up (and fails, to be
    /// restarted from the commit log).
    #[serde(default = "default_revoke_timeout")]
    pub revoke_timeout: HumanDuration,
    /// How long the cluster may keep refusing the job's credentials (SASL)
    /// or TLS handshake, with nothing fetched meanwhile, before the job
    /// fails saying so; librdkafka alone would retry forever.
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout: HumanDuration,
    /// Any librdkafka setting (`security.protocol`, `sasl.*`, `ssl.*`, ...),
    /// passed through as given. Values of secret keys are never printed.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_chunk_rows() -> usize {
    4096
}
fn default_linger() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(20))
}
fn default_revoke_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}
fn default_auth_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}
fn default_max_message_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

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

/// `text` with every secret option value replaced, for errors from
/// librdkafka, which may quote the settings it rejects.
pub fn redact_text(text: &str, options: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in options {
        if is_secret(k) && !v.is_empty() {
            out = out.replace(v.as_str(), "<redacted>");
        }
    }
    out
}

/// The options as they may be shown to people: secret values replaced.
pub fn redact_options(options: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    options
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                },
            )
        })
        .collect()
}

impl fmt::Debug for KafkaSourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSourceConfig")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .field("group_id", &self.group_id)
            .field("start_from", &self.start_from)
            .field("chunk_rows", &self.chunk_rows)
            .field("linger", &self.linger)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("revoke_timeout", &self.revoke_timeout)
            .field("auth_timeout", &self.auth_timeout)
            .field("options", &redact_options(&self.options))
            .finish()
    }
}

impl KafkaSourceConfig {
    /// Problems a config can have beyond its syntax, each with its key;
    /// `policy` says which librdkafka settings the job may pass through.
    pub fn problems(&self, policy: &OptionPolicy) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.brokers.trim().is_empty() {
            p.push(("brokers".into(), "must list at least one host:port".into()));
        }
        if self.topics.is_empty() {
            p.push(("topics".into(), "must name at least one topic".into()));
        }
        if self.topics.iter().any(|t| t.trim().is_empty()) {
            p.push(("topics".into(), "topic names must not be empty".into()));
        }
        if self.group_id.trim().is_empty() {
            p.push(("group_id".into(), "must not be empty".into()));
        }
        if self.chunk_rows == 0 {
            p.push(("chunk_rows".into(), "must be at least 1".into()));
        }
        p.extend(policy.problems(&self.options));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let cfg: KafkaSourceConfig = toml::from_str(
            r#"
brokers = "b:9092"
topics = ["t"]
group_id = "g"
[options]
"sasl.password" = "hunter2"
"sasl.username" = "alice"
"#,
        )
        .expect("valid");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn secrets_are_redacted_from_client_errors() {
        let mut options = BTreeMap::new();
        options.insert("ssl.key.password".to_owned(), "s3cr3t".to_owned());
        options.insert("client.id".to_owned(), "scorer-1".to_owned());
        let msg = "Invalid value \"s3cr3t\" for ssl.key.password (client scorer-1)";
        assert_eq!(
            redact_text(msg, &options),
            "Invalid value \"<redacted>\" for ssl.key.password (client scorer-1)"
        );
    }

    #[test]
    fn managed_options_are_refused() {
        let cfg: KafkaSourceConfig = toml::from_str(
            "brokers = \"b\"\ntopics = [\"t\"]\ngroup_id = \"g\"\n[options]\n\"enable.auto.commit\" = \"true\"",
        )
        .expect("valid");
        let p = cfg.problems(&OptionPolicy::Unrestricted);
        assert_eq!(p.len(), 1);
        assert!(p[0].0.contains("enable.auto.commit"));
    }
}
