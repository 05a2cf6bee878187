//! The one place a librdkafka client config is assembled. Every client
//! scorestream makes (the source's consumer, the dead-letter and drift-alert
//! producers, replay, validate's metadata probe, the demo's and bench's
//! producers and admin clients) comes from [`client_config`], so defaults,
//! the job's options and the settings scorestream must own are merged the
//! same way everywhere. Which options a hosted job may set at all is
//! checked before, by [`super::OptionPolicy`].

use rdkafka::ClientConfig;

use super::KafkaOptions;

/// How often librdkafka reports statistics, from which the consumer lag
/// gauge is set, unless the job's `options` say otherwise.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// librdkafka stops fetching a partition while its prefetch queue is over
/// `queued.min.messages` and, by default, waits a whole second before
/// looking again. The source reads at the pipeline's pace, so the queue is
/// at that threshold most of the time: every second the fetcher slept
/// after the pipeline had drained the queue in a fraction of it, capping
/// the job near 160k events/s. Checking every 10 ms lets fetches keep up
/// (measured against tansu, librdkafka alone: 180k events/s at the
/// default, 1.78M at 10 ms); the queue's bounds are unchanged.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// What the client is for; each role has its own defaults and owned keys.
#[derive(Debug, Clone, Copy)]
pub enum ClientRole<'a> {
    /// The source's consumer-group member: offsets are stored and committed
    /// by scorestream only, after the sink made the data durable.
    Consumer {
        group_id: &'a str,
        /// librdkafka's `auto.offset.reset`: `earliest` or `latest`.
        offset_reset: &'a str,
    },
    /// A short-lived client that only reads metadata (validate's probe).
    Metadata { group_id: &'a str },
    /// Dead letters, drift alerts and replay: a dead letter is the only
    /// copy of an event the job could not score, so a broker failover must
    /// neither lose nor duplicate it (idempotence, `acks=all`).
    /// Consumer-only options are left out.
    Producer,
    /// Synthetic events for the demo and bench: throughput first.
    BulkProducer,
    /// Creating and deleting topics (bench).
    Admin,
}

/// The librdkafka settings for one client of a job's cluster: the job's
/// options (those the role understands), the role's defaults unless the
/// job set them, then what scorestream must always own.
pub fn client_config(brokers: &str, options: &KafkaOptions, role: ClientRole<'_>) -> ClientConfig {
    let mut cc = ClientConfig::new();
    let producing = matches!(role, ClientRole::Producer | ClientRole::BulkProducer);
    for (k, v) in options.iter() {
        if !(producing && is_consumer_only(k)) {
            cc.set(k, v);
        }
    }
    let mut default = |k: &str, v: &str| {
        if !options.contains_key(k) {
            cc.set(k, v);
        }
    };
    match role {
        ClientRole::Consumer { .. } => {
            // For the consumer lag gauge (see `SourceContext::stats`).
            default("statistics.interval.ms", STATISTICS_INTERVAL_MS);
            default("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
        }
        ClientRole::BulkProducer => {
            default("linger.ms", "5");
            default("batch.num.messages", "10000");
            default("queue.buffering.max.messages", "200000");
            default("compression.type", "lz4");
        }
        ClientRole::Metadata { .. } | ClientRole::Producer | ClientRole::Admin => {}
    }
    cc.set("bootstrap.servers", brokers);
    match role {
        ClientRole::Consumer {
            group_id,
            offset_reset,
        } => {
            cc.set("group.id", group_id)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", offset_reset);
        }
        ClientRole::Metadata { group_id } => {
            cc.set("group.id", group_id);
        }
        ClientRole::Producer => {
            cc.set("enable.idempotence", "true").set("acks", "all");
        }
        ClientRole::BulkProducer | ClientRole::Admin => {}
    }
    cc
}

/// librdkafka settings that only a consumer reads (scope `C` in librdkafka
/// 2.12's CONFIGURATION.md). Given to a producer they are ignored with a
/// `CONFWARN` warning at start, so they are left out rather than copied.
const CONSUMER_ONLY: &[&str] = &[
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "check.crcs",
    "consume.callback.max.messages",
    "coordinator.query.interval.ms",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "heartbeat.interval.ms",
    "isolation.level",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "partition.assignment.strategy",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "session.timeout.ms",
];

/// Whether a source option is meant for the consumer only (see
/// [`CONSUMER_ONLY`]); every `fetch.*` setting is.
pub(crate) fn is_consumer_only(key: &str) -> bool {
    key.starts_with("fetch.") || CONSUMER_ONLY.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::secrets::options;

    #[test]
    fn the_consumer_owns_offsets_and_keeps_the_jobs_tuning() {
        let role = ClientRole::Consumer {
            group_id: "g",
            offset_reset: "latest",
        };
        let cc = client_config("b:9092", &options(&[]), role);
        assert_eq!(cc.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(cc.get("statistics.interval.ms"), Some("5000"));
        let own = options(&[("fetch.queue.backoff.ms", "250"), ("client.id", "c")]);
        let cc = client_config("b:9092", &own, role);
        for (k, v) in [
            ("fetch.queue.backoff.ms", "250"),
            ("client.id", "c"),
            ("bootstrap.servers", "b:9092"),
            ("group.id", "g"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "latest"),
        ] {
            assert_eq!(cc.get(k), Some(v), "{k}");
        }
    }

    #[test]
    fn producers_drop_consumer_settings_and_bulk_defaults_yield() {
        let own = options(&[("session.timeout.ms", "30000"), ("linger.ms", "50")]);
        let cc = client_config("b", &own, ClientRole::Producer);
        assert_eq!(cc.get("session.timeout.ms"), None);
        assert_eq!(cc.get("enable.idempotence"), Some("true"));
        assert_eq!(cc.get("acks"), Some("all"));
        let cc = client_config("b", &own, ClientRole::BulkProducer);
        assert_eq!(cc.get("linger.ms"), Some("50"));
        assert_eq!(cc.get("compression.type"), Some("lz4"));
        assert_eq!(cc.get("acks"), None);
        let cc = client_config("b", &own, ClientRole::Metadata { group_id: "g" });
        assert_eq!(cc.get("session.timeout.ms"), Some("30000"));
        assert_eq!(cc.get("group.id"), Some("g"));
    }
}
