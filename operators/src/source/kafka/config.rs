use std::fmt;

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::config::{ByteSize, ConfigError, HumanDuration, Validate, found};
use crate::kafka::{ClientRole, KafkaOptions, client_config};

/// Where a consumer group with no committed offset starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

impl StartFrom {
    /// librdkafka's `auto.offset.reset` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        }
    }
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
    pub options: KafkaOptions,
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
            .field("options", &self.options)
            .finish()
    }
}

impl KafkaSourceConfig {
    /// The librdkafka settings for a client of this source's cluster.
    pub fn client_config(&self, role: ClientRole<'_>) -> ClientConfig {
        client_config(&self.brokers, &self.options, role)
    }

    /// The settings of the source's own consumer-group member.
    pub(crate) fn consumer_config(&self) -> ClientConfig {
        self.client_config(ClientRole::Consumer {
            group_id: &self.group_id,
            offset_reset: self.start_from.as_str(),
        })
    }
}

/// Problems beyond syntax, each with its key. The `options` are checked by
/// the job's [`OptionPolicy`](crate::kafka::OptionPolicy), which says which
/// librdkafka settings a job may pass through.
impl Validate for KafkaSourceConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut p = Vec::new();
        if self.brokers.trim().is_empty() {
            p.push(ConfigError::new(
                "brokers",
                "must list at least one host:port",
            ));
        }
        if self.topics.is_empty() {
            p.push(ConfigError::new("topics", "must name at least one topic"));
        }
        if self.topics.iter().any(|t| t.trim().is_empty()) {
            p.push(ConfigError::new("topics", "topic names must not be empty"));
        }
        if self.group_id.trim().is_empty() {
            p.push(ConfigError::new("group_id", "must not be empty"));
        }
        if self.chunk_rows == 0 {
            p.push(ConfigError::new("chunk_rows", "must be at least 1"));
        }
        found(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::OptionPolicy;

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
    fn managed_options_are_refused() {
        let cfg: KafkaSourceConfig = toml::from_str(
            "brokers = \"b\"\ntopics = [\"t\"]\ngroup_id = \"g\"\n[options]\n\"enable.auto.commit\" = \"true\"",
        )
        .expect("valid");
        assert!(cfg.validate().is_ok());
        let p = OptionPolicy::Unrestricted.problems(&cfg.options);
        assert_eq!(p.len(), 1);
        assert!(p[0].key.contains("enable.auto.commit"));
    }
}
