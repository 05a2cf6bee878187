use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, ClientContext, Offset, Timestamp, TopicPartitionList};
use scorestream_schemas::{DeadLetter, DeadLetterStage, KafkaHeader, ReasonCode};

use super::*;
use crate::config::Validate;
use crate::kafka::ClientRole;
use crate::kafka::client::is_consumer_only;
use crate::source::kafka::KafkaSourceConfig;
use crate::{ErrorKind, OperatorError};

fn source(brokers: &str, options: &[(&str, &str)]) -> KafkaSourceConfig {
    let mut cfg: KafkaSourceConfig = toml::from_str(&format!(
        "brokers = \"{brokers}\"\ntopics = [\"tx\"]\ngroup_id = \"g\""
    ))
    .expect("config");
    cfg.options = options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    cfg
}

fn letter(offset: i64, raw: &[u8], key: Option<&[u8]>, stage: DeadLetterStage) -> DeadLetter {
    DeadLetter {
        raw: raw.to_vec(),
        key: key.map(<[u8]>::to_vec),
        topic: "tx".into(),
        partition: 2,
        offset,
        stage,
        reason: format!("reason {offset}"),
        rejected_at_ms: 1_700_000_000_000 + offset,
        headers: vec![
            KafkaHeader {
                key: "traceparent".into(),
                value: Some(format!("tp-{offset}").into_bytes()),
            },
            KafkaHeader {
                key: "flag".into(),
                value: None,
            },
        ],
        source_timestamp_ms: Some(1_600_000_000_000),
        reason_code: match stage {
            DeadLetterStage::Parse => ReasonCode::InvalidJson,
            _ => ReasonCode::WrongType,
        },
    }
}

/// Reads `n` messages of partition 0 of `topic` from the start.
fn consume(brokers: &str, topic: &str, n: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "check")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} messages",
            out.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.expect("message").detach());
        }
    }
    out
}

fn header<'a>(m: &'a OwnedMessage, key: &str) -> &'a str {
    let h = m.headers().expect("headers");
    let found = h
        .iter()
        .find(|h| h.key == key)
        .unwrap_or_else(|| panic!("no header {key}"));
    std::str::from_utf8(found.value.expect("value")).expect("utf8")
}

#[tokio::test]
async fn dead_letters_arrive_whole_with_their_provenance_headers() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("dlq", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    // consumer settings in the source options must not stop the producer
    let cfg = source(
        &brokers,
        &[
            ("client.id", "scorer-1"),
            ("session.timeout.ms", "30000"),
            ("fetch.min.bytes", "1"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    let producer = DeadLetterProducer::build(&cfg, "dlq").expect("producer");
    assert_eq!(producer.topic(), "dlq");
    let letters = vec![
        letter(7, b"{not json", Some(b"acct-1"), DeadLetterStage::Parse),
        letter(8, &[0xff, 0x00, 0xfe], None, DeadLetterStage::Oversized),
        letter(9, b"{\"amount\":null}", Some(b""), DeadLetterStage::Schema),
    ];
    assert_eq!(producer.send(&letters).await.expect("send"), 3);
    assert_eq!(producer.send(&[]).await.expect("nothing"), 0);

    let got = consume(&brokers, "dlq", 3);
    for (m, d) in got.iter().zip(&letters) {
        assert_eq!(m.payload(), Some(d.raw.as_slice()));
        match &d.key {
            Some(k) => assert_eq!(m.key(), Some(k.as_slice())),
            None => assert_eq!(m.key(), None),
        }
        assert_eq!(m.timestamp(), Timestamp::CreateTime(d.rejected_at_ms));
        let all = m.headers().expect("headers");
        assert_eq!(all.count(), 9);
        // The message's own headers first, as they arrived (a header
        // without a value stays without one), then scorestream's.
        let original: Vec<_> = all
            .iter()
            .take(2)
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect();
        let expected: Vec<_> = d
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        assert_eq!(original, expected);
        assert_eq!(header(m, headers::REASON_CODE), d.reason_code.as_str());
        assert_eq!(header(m, headers::STAGE), d.stage.as_str());
        assert_eq!(header(m, headers::REASON), d.reason);
        assert_eq!(header(m, headers::SOURCE_TOPIC), "tx");
        assert_eq!(header(m, headers::SOURCE_PARTITION), "2");
        assert_eq!(header(m, headers::SOURCE_OFFSET), d.offset.to_string());
        assert_eq!(
            header(m, headers::REJECTED_AT),
            d.rejected_at_ms.to_string()
        );
    }
}

/// A topic the broker refuses: the call fails, naming the topic and the
/// offset of a dead letter it could not deliver, instead of hanging.
#[tokio::test]
async fn a_refused_topic_is_an_error_naming_it() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster
        .topic_error(
            "forbidden",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .expect("topic error");
    let cfg = source(&cluster.bootstrap_servers(), &[]);
    let producer = DeadLetterProducer::build(&cfg, "forbidden").expect("producer");
    let letters = [letter(41, b"x", None, DeadLetterStage::Parse)];
    let err = tokio::time::timeout(Duration::from_secs(30), producer.send(&letters))
        .await
        .expect("an answer, not a hang")
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::External);
    let msg = err.to_string();
    assert!(
        msg.contains("`forbidden`") && msg.contains("offset 41") && msg.contains("1 of 1"),
        "{msg}"
    );
}

/// The broker rejects the produce request itself with a non-retriable error.
#[tokio::test]
async fn a_rejected_produce_request_is_an_error() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("dlq", 1, 1).expect("topic");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
    );
    let cfg = source(&cluster.bootstrap_servers(), &[]);
    let producer = DeadLetterProducer::build(&cfg, "dlq").expect("producer");
    let letters = [
        letter(5, b"a", None, DeadLetterStage::Parse),
        letter(6, b"b", None, DeadLetterStage::Parse),
    ];
    let err = tokio::time::timeout(Duration::from_secs(30), producer.send(&letters))
        .await
        .expect("an answer, not a hang")
        .expect_err("rejected");
    let OperatorError::Delivery {
        topic, from_offset, ..
    } = &err
    else {
        panic!("not a delivery error: {err}");
    };
    assert_eq!(topic, "dlq");
    assert_eq!(*from_offset, 5, "{err}");
}

#[tokio::test]
async fn an_unreachable_broker_is_reported_quickly() {
    // nothing listens on port 1
    let raw = RawProducer::build(&source("127.0.0.1:1", &[])).expect("producer");
    let err = raw
        .check_brokers(Duration::from_secs(2))
        .await
        .expect_err("unreachable");
    assert!(
        matches!(err, OperatorError::BrokersUnreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn producer_settings_keep_client_options_and_force_durability() {
    // The client's own settings, which every client of the cluster keeps.
    let client = [
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.username", "alice"),
        ("sasl.password", "hunter2"),
        ("ssl.ca.location", "/etc/ca.pem"),
        ("client.id", "scorer-1"),
    ];
    let consumer_only = [
        ("group.instance.id", "i-1"),
        ("session.timeout.ms", "30000"),
        ("heartbeat.interval.ms", "3000"),
        ("max.poll.interval.ms", "300000"),
        ("auto.offset.reset", "latest"),
        ("isolation.level", "read_committed"),
        ("fetch.min.bytes", "1"),
        ("fetch.wait.max.ms", "100"),
    ];
    let options: Vec<(&str, &str)> = client
        .into_iter()
        .chain([("acks", "1")])
        .chain(consumer_only)
        .collect();
    let cc = source("b:9092", &options).client_config(ClientRole::Producer);
    let forced = [
        ("bootstrap.servers", "b:9092"),
        ("enable.idempotence", "true"),
        ("acks", "all"),
    ];
    for (k, v) in client.into_iter().chain(forced) {
        assert_eq!(cc.get(k), Some(v), "{k}");
    }
    for (k, _) in consumer_only {
        assert_eq!(cc.get(k), None, "{k} is consumer-only");
    }
}

/// Collects librdkafka's log lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    /// What was logged once `line` shows up, or after two seconds (logs
    /// arrive through the producer's polling thread).
    fn wait_for(&self, line: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let seen = self.0.lock().map(|l| l.join("\n")).unwrap_or_default();
            if seen.contains(line) || std::time::Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl ClientContext for Logs {
    fn log(&self, _level: RDKafkaLogLevel, fac: &str, message: &str) {
        if let Ok(mut l) = self.0.lock() {
            l.push(format!("{fac}: {message}"));
        }
    }
}

/// Guards the list against librdkafka upgrades: each key it drops really is
/// one librdkafka calls a consumer property, and nothing the producer keeps
/// draws the warning.
#[test]
fn the_consumer_only_list_matches_librdkafka() {
    let consumer_settings = [
        ("auto.commit.enable", "true"),
        ("auto.commit.interval.ms", "5000"),
        ("auto.offset.reset", "earliest"),
        ("check.crcs", "true"),
        ("consume.callback.max.messages", "10"),
        ("coordinator.query.interval.ms", "60000"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "true"),
        ("group.id", "g"),
        ("group.instance.id", "i-1"),
        ("group.protocol", "classic"),
        ("group.protocol.type", "consumer"),
        ("heartbeat.interval.ms", "3000"),
        ("isolation.level", "read_uncommitted"),
        // an alias: librdkafka warns under its other name
        ("max.partition.fetch.bytes", "2097152"),
        ("max.poll.interval.ms", "600000"),
        ("offset.store.method", "broker"),
        ("offset.store.path", "."),
        ("offset.store.sync.interval.ms", "1000"),
        ("partition.assignment.strategy", "roundrobin"),
        ("queued.max.messages.kbytes", "1024"),
        ("queued.min.messages", "1000"),
        ("session.timeout.ms", "30000"),
        ("fetch.min.bytes", "2"),
        ("fetch.wait.max.ms", "100"),
        ("fetch.max.bytes", "1000000"),
        ("fetch.error.backoff.ms", "100"),
    ];
    for (k, v) in consumer_settings {
        assert!(is_consumer_only(k), "{k}");
        let logs = Logs::default();
        let _p: FutureProducer<Logs> = ClientConfig::new()
            .set(k, v)
            .set_log_level(RDKafkaLogLevel::Warning)
            .create_with_context(logs.clone())
            .unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        let name = match k {
            "max.partition.fetch.bytes" => "fetch.message.max.bytes",
            k => k,
        };
        let warning = format!("{name} is a consumer property");
        let seen = logs.wait_for(&warning);
        assert!(seen.contains(&warning), "{k}: {seen}");
    }

    let options: Vec<_> = [
        ("client.id", "c"),
        ("security.protocol", "plaintext"),
        ("socket.timeout.ms", "30000"),
        ("statistics.interval.ms", "0"),
    ]
    .into_iter()
    .collect();
    let logs = Logs::default();
    let _p: FutureProducer<Logs> = source("127.0.0.1:1", &options)
        .client_config(ClientRole::Producer)
        .set_log_level(RDKafkaLogLevel::Warning)
        .create_with_context(logs.clone())
        .expect("producer");
    let seen = logs.wait_for("CONFWARN");
    assert!(!seen.contains("CONFWARN"), "{seen}");
}

#[test]
fn build_errors_never_show_secret_values() {
    // a secret that also appears where librdkafka quotes a rejected value
    let cfg = source(
        "b:9092",
        &[
            ("sasl.password", "hunter2"),
            ("security.protocol", "hunter2"),
        ],
    );
    let err = DeadLetterProducer::build(&cfg, "dlq")
        .err()
        .expect("invalid security.protocol");
    let msg = err.to_string();
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(
        msg.contains("security.protocol") && msg.contains("<redacted>"),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::User);
}

#[test]
fn the_section_defaults_to_parquet_only() {
    let c: DeadLettersConfig = toml::from_str("").expect("empty");
    assert_eq!(c, DeadLettersConfig::default());
    assert!(c.parquet && c.topic.is_none());
    let c: DeadLettersConfig =
        toml::from_str("parquet = false\ntopic = \"fraud.dead-letters\"").expect("topic only");
    assert!(c.validate().is_ok() && c.loops_back(&["tx".into()]).is_none());
    assert!(toml::from_str::<DeadLettersConfig>("topik = \"x\"").is_err());
}

#[test]
fn dead_letters_must_go_somewhere_and_not_back_into_the_source() {
    let keys = |c: &DeadLettersConfig| -> BTreeMap<String, String> {
        crate::config::problems_in(c, "")
            .into_iter()
            .chain(c.loops_back(&["tx".into()]).map(|e| (e.key, e.message)))
            .collect()
    };
    let nowhere = DeadLettersConfig {
        parquet: false,
        topic: None,
        ..DeadLettersConfig::default()
    };
    let p = keys(&nowhere);
    assert_eq!(p.len(), 1);
    assert!(p["parquet"].contains("dead_letters.topic"), "{p:?}");

    let looped = DeadLettersConfig {
        parquet: true,
        topic: Some("tx".into()),
        ..DeadLettersConfig::default()
    };
    assert!(keys(&looped)["topic"].contains("source topic"));

    for bad in ["", "has space", "a/b", ".."] {
        let c = DeadLettersConfig {
            parquet: true,
            topic: Some(bad.into()),
            ..DeadLettersConfig::default()
        };
        assert!(keys(&c).contains_key("topic"), "{bad:?}");
    }
}
