//! Dead letters against a real Kafka-protocol broker (tansu; the mock cluster
//! only to inject a fault tansu cannot produce): the dead-letter
//! topic carries what the Parquet dead letters hold, and `scorestream replay`
//! after a fix gets the rejected events scored, once.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use common::process::*;
use common::tansu::{Tansu, produce_events};
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::{EventKind, GenOptions};

const TOPIC: &str = "transactions";
const DEAD: &str = "transactions-dead";

/// (topic, partition, offset) of the message a dead letter came from.
type Provenance = (String, i32, i64);

/// A Parquet dead letter, as `scorestream query` would show it.
#[derive(Debug, Clone, PartialEq)]
struct Letter {
    raw: Vec<u8>,
    key: Option<Vec<u8>>,
    stage: String,
    reason: String,
}

fn parquet_dead_letters(out: &Path) -> BTreeMap<Provenance, Letter> {
    let mut all = BTreeMap::new();
    for b in read_dir(&out.join("dead_letters")) {
        let col = |n: &str| b.column_by_name(n).expect(n).clone();
        let (raw, key, topic, partition, offset, stage, reason) = (
            col("raw"),
            col("key"),
            col("source_topic"),
            col("source_partition"),
            col("source_offset"),
            col("stage"),
            col("reason"),
        );
        for i in 0..b.num_rows() {
            let at = (
                topic.as_string::<i32>().value(i).to_owned(),
                partition.as_primitive::<Int32Type>().value(i),
                offset.as_primitive::<Int64Type>().value(i),
            );
            let letter = Letter {
                raw: raw.as_binary::<i32>().value(i).to_vec(),
                key: (!key.is_null(i)).then(|| key.as_binary::<i32>().value(i).to_vec()),
                stage: stage.as_string::<i32>().value(i).to_owned(),
                reason: reason.as_string::<i32>().value(i).to_owned(),
            };
            assert!(
                all.insert(at.clone(), letter).is_none(),
                "{at:?} dead-lettered twice"
            );
        }
    }
    all
}

fn header(m: &OwnedMessage, name: &str) -> String {
    let h = m.headers().expect("the dead letter has headers");
    let v = h
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .unwrap_or_else(|| panic!("no header {name}"));
    String::from_utf8(v.to_vec()).expect("utf8 header")
}

/// `n` messages from partition 0 of `topic` (tansu's high watermark is not
/// reliable, so the caller says how many to expect), then checks no more come.
fn read_topic(brokers: &str, topic: &str, n: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dead-letter-check")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic}: {} of {n} messages",
            out.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.expect("message").detach());
        }
    }
    let quiet = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            panic!(
                "{topic} has more than the {n} expected messages: {:?}",
                m.map(|m| m.offset())
            );
        }
    }
    out
}

/// The demo job with unknown accounts dead-lettered, its own copy of the
/// feature file (so the test can fix it) and a dead-letter topic.
fn dead_letter_job(
    dir: &Path,
    brokers: &str,
    out: &Path,
    session: SessionTimeout,
) -> std::path::PathBuf {
    let job = job_file(dir, brokers, out, "dead-letters", session);
    let features = dir.join("features.csv");
    std::fs::copy(repo().join("jobs/demo/features.csv"), &features).expect("copy features");
    let demo_features = format!("{:?}", repo().join("jobs/demo/features.csv"));
    let toml = std::fs::read_to_string(&job)
        .expect("job")
        .replace("on_missing = \"null\"", "on_missing = \"dead_letter\"")
        .replace(&demo_features, &format!("{features:?}"))
        + &format!("\n[dead_letters]\ntopic = \"{DEAD}\"\n");
    assert!(toml.contains(&format!("{features:?}")), "job uses the copy");
    std::fs::write(&job, toml).expect("write job");
    job
}

/// Adds a feature row for each account (a copy of the first row's values):
/// the backfill that makes their events scoreable.
fn backfill(features: &Path, accounts: &[String]) {
    let text = std::fs::read_to_string(features).expect("features");
    let first = text.lines().nth(1).expect("a feature row");
    let values = &first[first.find(',').expect("csv")..];
    let mut text = text.clone();
    for a in accounts {
        text.push_str(&format!("{a}{values}\n"));
    }
    std::fs::write(features, text).expect("write features");
}

fn replay_cmd(job: &Path, args: &[&str]) -> String {
    let o = run(bin().arg("replay").arg(job).args(args));
    assert!(
        o.status.success(),
        "replay failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[test]
fn dead_letters_reach_the_topic_and_replay_after_a_fix_scores_them_once() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 3);
    broker.create_topic(DEAD, 1);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = dead_letter_job(dir.path(), &broker.brokers, &out, TANSU_SESSION);

    let opts = GenOptions {
        malformed_rate: 0.02,
        unknown_account_rate: 0.02,
        ..generator_options(53)
    };
    let produced = produce_events(&broker.brokers, TOPIC, opts, 10_000);
    let kind_of: HashMap<&str, &EventKind> =
        produced.iter().map(|(id, k)| (id.as_str(), k)).collect();
    let mut first = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut first, &log, Duration::from_secs(120));

    // 1. The Parquet dead letters: every malformed and every unknown-account
    //    event, nothing else.
    let letters = parquet_dead_letters(&out);
    let mut by_stage: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unknown_accounts = Vec::new();
    for l in letters.values() {
        *by_stage.entry(l.stage.as_str()).or_default() += 1;
        let raw = String::from_utf8_lossy(&l.raw);
        let at = raw.find("evt-").expect("event id in raw bytes");
        let kind = kind_of[&raw[at..at + 16]];
        if l.stage == "features" {
            assert_eq!(kind, &EventKind::UnknownAccount, "{raw}");
            let event: serde_json::Value = serde_json::from_str(&raw).expect("json");
            unknown_accounts.push(event["account_id"].as_str().expect("account").to_owned());
        } else {
            assert_eq!(kind, &EventKind::Malformed, "{raw}");
        }
    }
    let unknown = produced
        .iter()
        .filter(|(_, k)| *k == EventKind::UnknownAccount)
        .count();
    assert!(unknown > 50, "the test needs unknown accounts: {unknown}");
    assert_eq!(by_stage.get("features").copied(), Some(unknown));

    // 2. The dead-letter topic holds the same dead letters: bytes, key and
    //    provenance, stage and reason in headers.
    let messages = read_topic(&broker.brokers, DEAD, letters.len());
    let mut on_topic = BTreeMap::new();
    for m in &messages {
        let at = (
            header(m, "scorestream.source.topic"),
            header(m, "scorestream.source.partition")
                .parse()
                .expect("partition"),
            header(m, "scorestream.source.offset")
                .parse()
                .expect("offset"),
        );
        let letter = Letter {
            raw: m.payload().expect("payload").to_vec(),
            key: m.key().map(<[u8]>::to_vec),
            stage: header(m, "scorestream.stage"),
            reason: header(m, "scorestream.reason"),
        };
        let rejected_at: i64 = header(m, "scorestream.rejected_at")
            .parse()
            .expect("rejected_at");
        assert!(rejected_at > 0);
        on_topic.insert(at, letter);
    }
    assert_eq!(on_topic, letters, "the topic and the Parquet files agree");

    // 3. The feature store is backfilled; replay re-submits the feature-stage
    //    dead letters and the next run scores them.
    backfill(&dir.path().join("features.csv"), &unknown_accounts);
    let dry = replay_cmd(&job, &["--stage", "features", "--dry-run"]);
    assert!(
        dry.contains(&format!("{unknown} would re-submit")),
        "dry run: {dry}"
    );
    let sent = replay_cmd(&job, &["--stage", "features"]);
    assert!(
        sent.contains(&format!("{unknown} re-submitted")),
        "replay: {sent}"
    );
    let again = replay_cmd(&job, &["--stage", "features"]);
    assert!(
        again.contains(&format!(
            "{unknown} skipped as already replayed, 0 re-submitted"
        )),
        "second replay: {again}"
    );

    let mut second = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut second, &log, Duration::from_secs(120));

    let scored = scored_ids(&out);
    for (id, kind) in &produced {
        let expected = match kind {
            EventKind::Malformed => 0,
            _ => 1,
        };
        assert_eq!(
            scored.get(id).copied().unwrap_or(0),
            expected,
            "{id} ({kind:?})"
        );
    }
    assert_eq!(
        scored.len(),
        produced.len()
            - by_stage.get("parse").copied().unwrap_or(0)
            - by_stage.get("schema").copied().unwrap_or(0)
            - by_stage.get("oversized").copied().unwrap_or(0),
        "only produced events are scored"
    );
    // scored with the backfilled features, not imputed ones
    let mut with_features = 0;
    for b in read_dir(&out.join("scores")) {
        let ids = b.column_by_name("event_id").expect("event_id");
        let missing = b
            .column_by_name("features_missing")
            .expect("features_missing");
        for i in 0..b.num_rows() {
            assert!(
                !missing.as_boolean().value(i),
                "every scored row has features"
            );
            let id = ids.as_string::<i32>().value(i);
            with_features += usize::from(kind_of[id] == &EventKind::UnknownAccount);
        }
    }
    assert_eq!(with_features, unknown);
    // the replayed events were not dead-lettered again
    assert_eq!(parquet_dead_letters(&out), letters);
}

/// A dead-letter topic the job may not write to (a fault injected in the
/// librdkafka mock cluster, which tansu cannot produce): the job stops with an
/// error naming it and commits no dead letter it could not deliver; once the
/// topic accepts writes a restart delivers them, and nothing was lost.
#[test]
fn an_undeliverable_dead_letter_stops_the_job_without_losing_anything() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic(TOPIC, 3, 1).expect("topic");
    cluster.create_topic(DEAD, 1, 1).expect("topic");
    cluster
        .topic_error(
            DEAD,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .expect("inject");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = dead_letter_job(dir.path(), &brokers, &out, MOCK_SESSION);

    let opts = GenOptions {
        malformed_rate: 0.01,
        ..generator_options(59)
    };
    let produced = produce_events(&brokers, TOPIC, opts, 5_000);
    let failed = run(bin()
        .arg("run")
        .arg(&job)
        .args(["--exit-on-idle", "3s"])
        .env("RUST_LOG", "warn"));
    let stderr = text(&failed.stderr);
    assert!(!failed.status.success(), "the job must stop: {stderr}");
    assert!(
        stderr.contains(&format!("kafka topic `{DEAD}`")) && stderr.contains("not delivered"),
        "the error names the topic: {stderr}"
    );
    assert!(
        parquet_dead_letters(&out).is_empty(),
        "no dead letter is committed before it reached the topic"
    );

    cluster
        .topic_error(DEAD, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .expect("clear");
    let mut retry = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut retry, &log, Duration::from_secs(120));
    let letters = parquet_dead_letters(&out);
    assert!(letters.len() > 20, "{} dead letters", letters.len());
    // each reached the topic once: none was delivered while it was refused
    read_topic(&brokers, DEAD, letters.len());
    // the unknown accounts are dead letters here too, so exactly once holds
    // across scores and dead letters
    let expected: Vec<_> = produced
        .iter()
        .map(|(id, k)| {
            let k = match k {
                EventKind::UnknownAccount => EventKind::Malformed,
                k => *k,
            };
            (id.clone(), k)
        })
        .collect();
    assert_exactly_once(&out, &expected);
}

/// (name, value) pairs, as a consumer reads a message's headers.
type HeaderList = Vec<(String, Option<Vec<u8>>)>;

fn headers_of(m: &OwnedMessage) -> HeaderList {
    m.headers().map_or_else(Vec::new, |h| {
        h.iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    })
}

/// One message as its producer sent it.
struct Sent {
    value: Vec<u8>,
    key: Vec<u8>,
    headers: HeaderList,
    timestamp_ms: i64,
}

fn send(brokers: &str, topic: &str, messages: &[Sent]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for m in messages {
        let headers = m.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: v.as_deref(),
            })
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .payload(&m.value)
                    .key(&m.key)
                    .headers(headers)
                    .timestamp(m.timestamp_ms),
            )
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// A message rejected at the feature stage and one rejected at the parse
/// stage: each dead letter (Parquet, read by pyarrow and DuckDB; the
/// dead-letter topic) keeps the value, key, headers and timestamp the
/// producer sent, and `replay` re-produces them byte for byte.
#[test]
fn every_dead_letter_keeps_and_replays_the_message_the_producer_sent() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC, 1);
    broker.create_topic(DEAD, 1);
    broker.create_topic("replayed", 1);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let job = dead_letter_job(dir.path(), &broker.brokers, &out, TANSU_SESSION);

    // A valid event for an account the feature store does not know.
    let world = scorestream_tools::demo::demo_world(&common::DEMO_ASSETS).expect("world");
    let opts = GenOptions {
        malformed_rate: 0.0,
        unknown_account_rate: 1.0,
        ..generator_options(7)
    };
    let mut generator = scorestream_tools::synth::EventGen::new(&world, opts);
    let (mut event, mut key) = (String::new(), String::new());
    let kind = generator.next_into(&mut event, &mut key);
    assert_eq!(kind, EventKind::UnknownAccount);
    let sent = [
        Sent {
            value: event.into_bytes(),
            key: key.into_bytes(),
            headers: vec![
                (
                    "traceparent".into(),
                    Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()),
                ),
                ("binary".into(), Some(vec![0, 0xff, 0x10])),
                ("no-value".into(), None),
                ("twice".into(), Some(b"first".to_vec())),
                ("twice".into(), Some(b"second".to_vec())),
            ],
            timestamp_ms: 1_700_000_000_123,
        },
        Sent {
            value: b"{\"amount\": 12.5, oops".to_vec(),
            key: b"acct-parse".to_vec(),
            headers: vec![
                ("origin".into(), Some(b"svc-a".to_vec())),
                ("empty".into(), Some(Vec::new())),
            ],
            timestamp_ms: 1_700_000_000_456,
        },
    ];
    send(&broker.brokers, TOPIC, &sent);
    let mut run = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut run, &log, Duration::from_secs(120));

    // 1. Parquet, as pyarrow and DuckDB read it.
    let py = common::process::run(
        std::process::Command::new("python3")
            .arg(repo().join("tests/readers/read_dead_letters.py"))
            .arg(&out),
    );
    assert!(py.status.success(), "readers failed: {}", text(&py.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&py.stdout).expect("json");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (offset, (m, stage, code)) in sent
        .iter()
        .zip([("features", "feature_missing"), ("parse", "invalid_json")])
        .map(|(m, (s, c))| (m, s, c))
        .enumerate()
    {
        let headers: Vec<serde_json::Value> = m
            .headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, v.as_deref().map(hex)]))
            .collect();
        for reader in ["pyarrow", "duckdb"] {
            let row = &seen[reader][offset.to_string()];
            assert_eq!(row["raw"], hex(&m.value), "{reader} {offset}");
            assert_eq!(row["key"], hex(&m.key), "{reader} {offset}");
            assert_eq!(
                row["headers"],
                serde_json::json!(headers),
                "{reader} {offset}"
            );
            assert_eq!(row["reason_code"], code, "{reader} {offset}");
        }
        assert_eq!(seen["pyarrow"][offset.to_string()]["stage"], stage);
        assert_eq!(
            seen["pyarrow"][offset.to_string()]["source_timestamp_ms"],
            m.timestamp_ms
        );
    }

    // 2. The dead-letter topic: the original headers, then scorestream's.
    let on_topic = read_topic(&broker.brokers, DEAD, 2);
    for m in &on_topic {
        let original = &sent[usize::try_from(
            header(m, "scorestream.source.offset")
                .parse::<i64>()
                .expect("offset"),
        )
        .expect("offset")];
        assert_eq!(m.payload(), Some(original.value.as_slice()));
        assert_eq!(m.key(), Some(original.key.as_slice()));
        let headers = headers_of(m);
        assert_eq!(headers[..original.headers.len()], original.headers[..]);
        assert!(!header(m, "scorestream.reason_code").is_empty());
    }

    // 3. Replay, read back with a real consumer: byte-identical value, key
    //    and headers (replay's own come after), the producer's timestamp.
    replay_cmd(&job, &["--to", "replayed"]);
    let replayed = read_topic(&broker.brokers, "replayed", 2);
    for m in &replayed {
        let of = header(m, "scorestream.replay.of");
        let offset: usize = of
            .rsplit('/')
            .next()
            .and_then(|o| o.parse().ok())
            .expect("offset");
        let original = &sent[offset];
        assert_eq!(m.payload(), Some(original.value.as_slice()), "{of}");
        assert_eq!(m.key(), Some(original.key.as_slice()), "{of}");
        let headers: HeaderList = headers_of(m)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("scorestream.replay."))
            .collect();
        assert_eq!(headers, original.headers, "{of}");
        assert_eq!(
            m.timestamp(),
            rdkafka::Timestamp::CreateTime(original.timestamp_ms),
            "{of}"
        );
    }
}
