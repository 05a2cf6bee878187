use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use parquet::file::properties::WriterProperties;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::{Offset, TopicPartitionList};
use scorestream_operators::OperatorError;
use scorestream_operators::sink::parquet::write_synced;
use scorestream_schemas::DeadLetterBuilder;

use super::*;

fn source(brokers: &str) -> KafkaSourceConfig {
    toml::from_str(&format!(
        "brokers = \"{brokers}\"\ntopics = [\"tx\"]\ngroup_id = \"g\"\n[options]\n\"client.id\" = \"replay-test\"\n\"session.timeout.ms\" = \"30000\""
    ))
    .expect("config")
}

fn letter(offset: i64, stage: DeadLetterStage, raw: &[u8], key: Option<&[u8]>) -> DeadLetter {
    DeadLetter {
        raw: raw.to_vec(),
        key: key.map(<[u8]>::to_vec),
        topic: "tx".into(),
        partition: 1,
        offset,
        stage,
        reason: format!("{} problem at {offset}", stage.as_str()),
        rejected_at_ms: 1_700_000_000_000 + offset,
    }
}

fn letters() -> Vec<DeadLetter> {
    vec![
        letter(3, DeadLetterStage::Parse, b"{bad", Some(b"acct-1")),
        letter(4, DeadLetterStage::Schema, b"{\"amount\":null}", None),
        letter(9, DeadLetterStage::Parse, &[0xff, 0x00], Some(b"acct-2")),
    ]
}

/// Dead-letter files as the Parquet sink names them; the first letter is in
/// two files (output copied together from two runs, say) and must still be
/// replayed once.
fn write_dead_letters(out: &Path, letters: &[DeadLetter]) {
    let dir = out.join(DEAD_LETTERS_DIR);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let files: [&[DeadLetter]; 2] = [&letters[..2], &[letters[2].clone(), letters[0].clone()]];
    for (i, part) in files.into_iter().enumerate() {
        let mut b = DeadLetterBuilder::default();
        part.iter().for_each(|d| b.push(d));
        let batch = b.finish().expect("batch");
        write_synced(
            &dir.join(format!("tx+0+{i:020}.parquet")),
            &batch,
            &WriterProperties::default(),
        )
        .expect("write");
    }
}

/// Every message of partition 0 of `topic`.
fn read_topic(brokers: &str, topic: &str) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "check")
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while (out.len() as i64) < high - low {
        assert!(std::time::Instant::now() < deadline, "timed out reading");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.expect("message").detach());
        }
    }
    out
}

fn header(m: &OwnedMessage, key: &str) -> String {
    let h = m.headers().expect("headers");
    let v = h
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .unwrap_or_else(|| panic!("no header {key}"));
    String::from_utf8(v.to_vec()).expect("utf8")
}

fn counts(found: usize, already_replayed: usize, resubmitted: usize) -> StageCounts {
    StageCounts {
        found,
        already_replayed,
        resubmitted,
    }
}

#[tokio::test]
async fn dead_letters_are_resubmitted_once_with_their_provenance() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("tx", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let out = tempfile::tempdir().expect("tmp");
    let sent = letters();
    write_dead_letters(out.path(), &sent);
    let src = source(&brokers);

    let r = replay(&src, out.path(), &ReplayOptions::default())
        .await
        .expect("replay");
    assert_eq!(
        (r.found, r.already_replayed, r.resubmitted),
        (3, 0, 3),
        "the duplicate counts once"
    );
    assert_eq!(
        r.per_stage,
        BTreeMap::from([("parse", counts(2, 0, 2)), ("schema", counts(1, 0, 1))])
    );
    let log_path = r.log.expect("a replay log");
    assert!(log_path.starts_with(out.path().join(REPLAYS_DIR)));
    let log: ReplayLog =
        serde_json::from_slice(&std::fs::read(&log_path).expect("log")).expect("json");
    assert_eq!(log.dead_letters.len(), 3);
    assert!(log.dead_letters.contains(&Provenance {
        topic: "tx".into(),
        partition: 1,
        offset: 9
    }));

    let got = read_topic(&brokers, "tx");
    assert_eq!(got.len(), 3);
    for d in &sent {
        let of = format!("tx/1/{}", d.offset);
        let m = got
            .iter()
            .find(|m| header(m, REPLAY_OF_HEADER) == of)
            .unwrap_or_else(|| panic!("{of} not replayed"));
        assert_eq!(m.payload(), Some(d.raw.as_slice()), "{of}");
        assert_eq!(m.key(), d.key.as_deref(), "{of}");
        assert_eq!(header(m, REPLAY_REASON_HEADER), d.reason);
    }

    // a second replay finds everything in the log and sends nothing
    let r = replay(&src, out.path(), &ReplayOptions::default())
        .await
        .expect("second replay");
    assert_eq!((r.found, r.already_replayed, r.resubmitted), (3, 3, 0));
    assert!(r.log.is_none() && r.selected.is_empty());
    assert_eq!(read_topic(&brokers, "tx").len(), 3);

    // --again sends them all once more
    let again = ReplayOptions {
        again: true,
        ..Default::default()
    };
    let r = replay(&src, out.path(), &again).await.expect("again");
    assert_eq!((r.found, r.already_replayed, r.resubmitted), (3, 0, 3));
    assert_ne!(r.log.as_ref(), Some(&log_path));
    assert_eq!(read_topic(&brokers, "tx").len(), 6);
}

#[tokio::test]
async fn stage_predicate_and_target_topic_select_and_redirect() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("tx", 1, 1).expect("topic");
    cluster.create_topic("repaired", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let out = tempfile::tempdir().expect("tmp");
    write_dead_letters(out.path(), &letters());
    let src = source(&brokers);

    let parse_after_3 = ReplayOptions {
        stage: Some(DeadLetterStage::Parse),
        predicate: Some("source_offset > 3 AND key IS NOT NULL".into()),
        to: Some("repaired".into()),
        ..Default::default()
    };
    let r = replay(&src, out.path(), &parse_after_3)
        .await
        .expect("replay");
    assert_eq!((r.found, r.resubmitted), (1, 1));
    assert_eq!(r.per_stage, BTreeMap::from([("parse", counts(1, 0, 1))]));
    assert_eq!(r.selected[0].of.offset, 9);
    assert_eq!(r.selected[0].to, "repaired");
    let got = read_topic(&brokers, "repaired");
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0], REPLAY_OF_HEADER), "tx/1/9");
    assert!(read_topic(&brokers, "tx").is_empty());

    // the stage filter alone: offset 9 is already replayed, offset 3 is not
    let parse = ReplayOptions {
        stage: Some(DeadLetterStage::Parse),
        ..Default::default()
    };
    let r = replay(&src, out.path(), &parse).await.expect("replay");
    assert_eq!((r.found, r.already_replayed, r.resubmitted), (2, 1, 1));
    assert_eq!(r.selected[0].of.offset, 3);
    assert_eq!(read_topic(&brokers, "tx").len(), 1);
}

#[tokio::test]
async fn a_dry_run_reports_and_sends_nothing() {
    let out = tempfile::tempdir().expect("tmp");
    write_dead_letters(out.path(), &letters());
    // no broker at all: a dry run never connects
    let dry = ReplayOptions {
        dry_run: true,
        ..Default::default()
    };
    let r = replay(&source("127.0.0.1:1"), out.path(), &dry)
        .await
        .expect("dry run");
    assert_eq!((r.found, r.resubmitted), (3, 0));
    assert_eq!(r.selected.len(), 3);
    assert_eq!(r.selected[1].to, "tx");
    assert_eq!(r.selected[1].bytes, 15);
    assert!(r.log.is_none());
    assert!(!out.path().join(REPLAYS_DIR).exists());
}

#[tokio::test]
async fn errors_say_what_is_wrong() {
    let out = tempfile::tempdir().expect("tmp");
    let src = source("127.0.0.1:1");

    let missing = out.path().join("never-ran");
    let e = replay(&src, &missing, &ReplayOptions::default())
        .await
        .expect_err("no output");
    assert!(matches!(e, ToolError::NoOutput(_)), "{e}");
    assert!(e.to_string().contains("never-ran"), "{e}");

    // predicates are checked even before there are dead letters
    for bad in ["no_such_column = 1", "source_offset", "stage = "] {
        let opts = ReplayOptions {
            predicate: Some(bad.into()),
            ..Default::default()
        };
        let e = replay(&src, out.path(), &opts)
            .await
            .expect_err("bad predicate");
        assert!(
            matches!(e, ToolError::BadPredicate { .. }) && e.to_string().contains(bad),
            "{bad}: {e}"
        );
    }

    let opts = ReplayOptions {
        to: Some("no spaces allowed".into()),
        ..Default::default()
    };
    let e = replay(&src, out.path(), &opts)
        .await
        .expect_err("bad topic");
    assert!(e.to_string().starts_with("--to:"), "{e}");

    write_dead_letters(out.path(), &letters());
    let e = replay(&src, out.path(), &ReplayOptions::default())
        .await
        .expect_err("unreachable");
    assert!(
        matches!(
            e,
            ToolError::Operator(OperatorError::BrokersUnreachable { .. })
        ),
        "{e}"
    );
    assert!(
        !out.path().join(REPLAYS_DIR).exists(),
        "nothing sent, nothing logged"
    );

    std::fs::create_dir_all(out.path().join(REPLAYS_DIR)).expect("mkdir");
    std::fs::write(out.path().join(REPLAYS_DIR).join("1.json"), b"{oops").expect("write");
    let e = replay(&src, out.path(), &ReplayOptions::default())
        .await
        .expect_err("corrupt log");
    assert!(
        matches!(e, ToolError::ReplayLog { .. }) && e.to_string().contains("1.json"),
        "{e}"
    );
}

#[test]
fn stages_parse_by_their_names() {
    for s in STAGES {
        assert_eq!(parse_stage(s.as_str()), Ok(s));
    }
    let e = parse_stage("decode").expect_err("unknown");
    assert!(e.contains("parse, schema, oversized, features"), "{e}");
}
