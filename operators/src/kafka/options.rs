//! Which librdkafka settings a job may pass through `source.options`.
//!
//! librdkafka's configuration is also a way to run code: setting
//! `plugin.library.paths` `dlopen`s a file the moment it is set,
//! `sasl.kerberos.kinit.cmd` is a shell command, `ssl.engine.location` and
//! `ssl.providers` load native code into OpenSSL, and the `*.location` keys
//! make the client read files. A shell user owns their machine and may set
//! anything; a job submitted to `scorestream serve` may set only what data
//! teams need to reach and tune a cluster, listed here, unless the operator
//! widens the list (`serve --allow-kafka-option`).

use scorestream_schemas::redact;

use crate::config::ConfigError;

/// Settings scorestream sets itself; a job setting them would break
/// exactly-once delivery or the dead-letter guarantees.
const MANAGED: [&str; 9] = [
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
    "metadata.broker.list",
    "auto.offset.reset",
    "enable.idempotence",
    "acks",
    "transactional.id",
];

/// Keys whose value is a file the client reads: confined to the roots the
/// operator allows, like every other path in a hosted job.
pub const PATH_OPTIONS: [&str; 6] = [
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
    "ssl.keystore.location",
    "https.ca.location",
];

/// What a hosted job may set: security, identity, and fetch/queue/session
/// tuning of the consumer and of the dead-letter and alert producers.
const ALLOWED: &[&str] = &[
    // Identity.
    "client.id",
    "client.rack",
    "group.instance.id",
    // Authentication and TLS.
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.token.endpoint.url",
    // The files of PATH_OPTIONS are allowed too (confined to input roots).
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "https.ca.pem",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    // Consumer group and fetching.
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
    "group.remote.assignor",
    "coordinator.query.interval.ms",
    "isolation.level",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.error.backoff.ms",
    "fetch.queue.backoff.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "check.crcs",
    // Connections and metadata.
    "socket.timeout.ms",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.connection.setup.timeout.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.interval.ms",
    "topic.metadata.refresh.fast.interval.ms",
    "topic.metadata.refresh.sparse",
    "broker.address.family",
    "client.dns.lookup",
    "api.version.request",
    "api.version.request.timeout.ms",
    "broker.version.fallback",
    "message.max.bytes",
    "receive.message.max.bytes",
    "statistics.interval.ms",
    // The dead-letter and alert producers.
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "batch.num.messages",
    "batch.size",
    "compression.type",
    "compression.codec",
    "compression.level",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "request.timeout.ms",
    "message.send.max.retries",
    "retries",
];

/// Why a key that is not allowed is dangerous, for the error a user sees.
fn danger(key: &str) -> &'static str {
    match key {
        "plugin.library.paths" => "it loads a shared library into the service process",
        "sasl.kerberos.kinit.cmd" => "it runs a shell command on the service's host",
        k if k.starts_with("sasl.kerberos.") => {
            "Kerberos makes the client run `kinit` on the service's host"
        }
        "ssl.engine.location" | "ssl.engine.id" | "ssl.providers" => {
            "it loads native code into OpenSSL in the service process"
        }
        "debug" | "log_level" | "log.queue" | "log.thread.name" | "log.connection.close" => {
            "it changes how the service logs (and can flood its logs)"
        }
        _ => "it is not one of the settings a hosted job may set",
    }
}

/// Keys whose setting has effects beyond storing a value (a plugin is
/// loaded the moment it is set), so validation never hands them to
/// librdkafka.
fn acts_when_set(key: &str) -> bool {
    key == "plugin.library.paths"
}

/// The operator's choice of which options hosted jobs may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OptionPolicy {
    /// A shell user's own job: any setting librdkafka knows.
    #[default]
    Unrestricted,
    /// A hosted job: the allow-list, plus these keys (exact names, or a
    /// prefix ending in `*`) the operator added.
    Hosted { also: Vec<String> },
}

impl OptionPolicy {
    /// Whether a job under this policy may set `key`.
    pub fn allows(&self, key: &str) -> bool {
        match self {
            OptionPolicy::Unrestricted => true,
            OptionPolicy::Hosted { also } => {
                ALLOWED.contains(&key)
                    || PATH_OPTIONS.contains(&key)
                    || also.iter().any(|a| match a.strip_suffix('*') {
                        Some(prefix) => key.starts_with(prefix),
                        None => a == key,
                    })
            }
        }
    }

    /// Every problem with `options` under this policy, by option key:
    /// managed keys, keys the policy refuses (saying why), and names or
    /// values librdkafka itself refuses.
    pub fn problems<'a>(
        &self,
        options: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Vec<ConfigError> {
        let mut p = Vec::new();
        for (k, v) in options {
            let key = format!("options.\"{k}\"");
            if MANAGED.contains(&k.as_str()) {
                p.push(ConfigError::new(
                    key,
                    "is managed by scorestream (offsets are committed only after output is durable)"
                        ));
            } else if !self.allows(k) {
                p.push(ConfigError::new(
                    key,
                    format!(
                        "is refused by this service: {}; the operator can allow it with `scorestream serve --allow-kafka-option {k}`",
                        danger(k)
                    )));
            } else if !acts_when_set(k)
                && let Err(reason) = check_value(k, v)
            {
                p.push(ConfigError::new(key, reason));
            }
        }
        p
    }
}

/// librdkafka's own verdict on one setting: an unknown name, a value of
/// the wrong type or out of range. Nothing is connected or loaded.
fn check_value(key: &str, value: &str) -> Result<(), String> {
    rdkafka::ClientConfig::new()
        .set(key, value)
        .create_native_config()
        .map(drop)
        .map_err(|e| {
            let secret = super::is_secret(key).then_some(value);
            let reason = redact(&e.to_string(), secret);
            format!("librdkafka refuses it: {reason}")
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn problems(policy: &OptionPolicy, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let options: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        policy
            .problems(&options)
            .into_iter()
            .map(|e| (e.key, e.message))
            .collect()
    }

    fn hosted() -> OptionPolicy {
        OptionPolicy::Hosted { also: Vec::new() }
    }

    #[test]
    fn code_loading_and_shell_options_are_refused_for_hosted_jobs_naming_why() {
        let found = problems(
            &hosted(),
            &[
                ("plugin.library.paths", "/tmp/x.so"),
                ("sasl.kerberos.kinit.cmd", "touch /tmp/pwned"),
                ("ssl.engine.location", "/tmp/engine.so"),
                ("ssl.providers", "legacy"),
            ],
        );
        let text = format!("{found:?}");
        assert_eq!(found.len(), 4, "{text}");
        assert!(text.contains("loads a shared library"), "{text}");
        assert!(text.contains("runs a shell command"), "{text}");
        assert!(text.contains("native code into OpenSSL"), "{text}");
        assert!(text.contains("--allow-kafka-option"), "{text}");
    }

    #[test]
    fn what_data_teams_need_is_allowed_and_values_are_checked_by_librdkafka() {
        let ok = problems(
            &hosted(),
            &[
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "alice"),
                ("sasl.password", "hunter2"),
                ("session.timeout.ms", "30000"),
                ("isolation.level", "read_committed"),
                ("client.id", "scorer"),
            ],
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = problems(
            &hosted(),
            &[
                ("session.timeout.ms", "soon"),
                ("security.protocol", "carrier_pigeon"),
            ],
        );
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad.iter().all(|(_, m)| m.contains("librdkafka refuses")));
    }

    #[test]
    fn shell_users_may_set_anything_librdkafka_knows_but_typos_are_named() {
        let ok = problems(
            &OptionPolicy::Unrestricted,
            &[("sasl.kerberos.service.name", "kafka"), ("debug", "broker")],
        );
        assert!(ok.is_empty(), "{ok:?}");
        let typo = problems(&OptionPolicy::Unrestricted, &[("sesion.timeout.ms", "1")]);
        assert_eq!(typo.len(), 1, "{typo:?}");
        assert!(typo[0].0.contains("sesion.timeout.ms"), "{typo:?}");
        let managed = problems(
            &OptionPolicy::Unrestricted,
            &[("enable.auto.commit", "true")],
        );
        assert!(
            managed[0].1.contains("managed by scorestream"),
            "{managed:?}"
        );
    }

    #[test]
    fn the_operator_widens_the_list_by_name_or_prefix() {
        let policy = OptionPolicy::Hosted {
            also: vec!["debug".into(), "sasl.kerberos.*".into()],
        };
        assert!(policy.allows("debug"));
        assert!(policy.allows("sasl.kerberos.service.name"));
        assert!(!policy.allows("plugin.library.paths"));
        assert!(!hosted().allows("debug"));
    }

    #[test]
    fn secret_values_librdkafka_quotes_are_redacted() {
        let bad = problems(&hosted(), &[("ssl.key.password", "")]);
        assert!(bad.is_empty(), "{bad:?}");
        let text = check_value("sasl.password", "hunter2").map_or_else(|e| e, |()| String::new());
        assert!(!text.contains("hunter2"), "{text}");
    }
}
