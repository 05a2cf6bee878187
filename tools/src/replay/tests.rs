use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;

use parquet::file::properties::WriterProperties;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::{Offset, TopicPartitionList};
use scorestream_operators::OperatorError;
use scorestream_operators::sink::parquet::write_synced;
use scorestream_schemas::{DeadLetterBuilder, KafkaHeader};

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
        headers: vec![
            KafkaHeader {
                key: "traceparent".into(),
                value: Some(format!("tp-{offset}").into_bytes()),
            },
            KafkaHeader {
                key: "empty".into(),
                value: None,
            },
        ],
        topic: "tx".into(),
        partition: 1,
        offset,
        source_timestamp_ms: Some(1_600_000_000_000 + offset),
        stage,
        reason_code: match stage {
            DeadLetterStage::Parse => ReasonCode::InvalidJson,
            _ => ReasonCode::MissingField,
        },
        reason: format!("{} problem at {offset}", stage.as_str()),
        rejected_at_ms: 1_700_000_000_000 + offset,
    }
}

/// Runs a replay, collecting what it selected.
async fn run(
    src: &KafkaSourceConfig,
    out: &Path,
    options: &ReplayOptions,
) -> Result<(ReplayReport, Vec<Resubmission>), ToolError> {
    let mut selected = Vec::new();
    let report = replay(src, out, options, &mut |p| {
        if let Progress::Selected(r) = p {
            selected.push(r.clone());
        }
    })
    .await?;
    Ok((report, selected))
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

    let (r, _) = run(&src, out.path(), &ReplayOptions::default())
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
    assert_eq!(r.logs.len(), 1, "one log for a small replay");
    let log_path = r.logs[0].clone();
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
        // The producer's headers first, as sent, then replay's own two.
        let hs = m.headers().expect("headers");
        let original: Vec<KafkaHeader> = hs
            .iter()
            .take(d.headers.len())
            .map(|h| KafkaHeader {
                key: h.key.to_owned(),
                value: h.value.map(<[u8]>::to_vec),
            })
            .collect();
        assert_eq!(original, d.headers, "{of}");
        assert_eq!(hs.count(), d.headers.len() + 2, "{of}");
        let ts = d.source_timestamp_ms.expect("a source timestamp");
        assert_eq!(m.timestamp(), rdkafka::Timestamp::CreateTime(ts), "{of}");
    }

    // a second replay finds everything in the log and sends nothing
    let (r, selected) = run(&src, out.path(), &ReplayOptions::default())
        .await
        .expect("second replay");
    assert_eq!((r.found, r.already_replayed, r.resubmitted), (3, 3, 0));
    assert!(r.logs.is_empty() && selected.is_empty());
    assert_eq!(read_topic(&brokers, "tx").len(), 3);

    // --again sends them all once more
    let again = ReplayOptions {
        again: true,
        ..Default::default()
    };
    let (r, _) = run(&src, out.path(), &again).await.expect("again");
    assert_eq!((r.found, r.already_replayed, r.resubmitted), (3, 0, 3));
    assert!(!r.logs.contains(&log_path));
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
    let (r, selected) = run(&src, out.path(), &parse_after_3).await.expect("replay");
    assert_eq!((r.found, r.resubmitted), (1, 1));
    assert_eq!(r.per_stage, BTreeMap::from([("parse", counts(1, 0, 1))]));
    assert_eq!(selected[0].of.offset, 9);
    assert_eq!(selected[0].to, "repaired");
    let got = read_topic(&brokers, "repaired");
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0], REPLAY_OF_HEADER), "tx/1/9");
    assert!(read_topic(&brokers, "tx").is_empty());

    // the stage filter alone: offset 9 is already replayed, offset 3 is not
    let parse = ReplayOptions {
        stage: Some(DeadLetterStage::Parse),
        ..Default::default()
    };
    let (r, selected) = run(&src, out.path(), &parse).await.expect("replay");
    assert_eq!((r.found, r.already_replayed, r.resubmitted), (2, 1, 1));
    assert_eq!(selected[0].of.offset, 3);
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
    let (r, selected) = run(&source("127.0.0.1:1"), out.path(), &dry)
        .await
        .expect("dry run");
    assert_eq!((r.found, r.selected, r.resubmitted), (3, 3, 0));
    let schema = selected
        .iter()
        .find(|s| s.stage == DeadLetterStage::Schema)
        .expect("the schema letter");
    assert_eq!((schema.to.as_str(), schema.bytes), ("tx", 15));
    assert_eq!(schema.code, Some(ReasonCode::MissingField));
    assert!(r.logs.is_empty());
    assert!(!out.path().join(REPLAYS_DIR).exists());
}

#[tokio::test]
async fn errors_say_what_is_wrong() {
    let out = tempfile::tempdir().expect("tmp");
    let src = source("127.0.0.1:1");

    let missing = out.path().join("never-ran");
    let e = run(&src, &missing, &ReplayOptions::default())
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
        let e = run(&src, out.path(), &opts)
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
    let e = run(&src, out.path(), &opts).await.expect_err("bad topic");
    assert!(e.to_string().starts_with("--to:"), "{e}");

    write_dead_letters(out.path(), &letters());
    let e = run(&src, out.path(), &ReplayOptions::default())
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
    let e = run(&src, out.path(), &ReplayOptions::default())
        .await
        .expect_err("corrupt log");
    assert!(
        matches!(e, ToolError::ReplayLog { .. }) && e.to_string().contains("1.json"),
        "{e}"
    );
}

#[test]
fn stages_parse_by_their_names() {
    for s in DeadLetterStage::ALL {
        assert_eq!(parse_stage(s.as_str()), Ok(s));
    }
    let e = parse_stage("decode").expect_err("unknown");
    assert!(e.contains("parse, schema, oversized, features"), "{e}");
}

/// Letters of several codes rejected over several days, written once.
fn spread_letters(out: &Path) -> Vec<DeadLetter> {
    let day = 86_400_000;
    let mut all = Vec::new();
    for (i, code) in [
        ReasonCode::InvalidJson,
        ReasonCode::WrongType,
        ReasonCode::InvalidJson,
        ReasonCode::FeatureMissing,
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = letter(i as i64, code.stage(), b"{}", None);
        d.reason_code = code;
        // 2023-11-14T22:13:20Z plus i days
        d.rejected_at_ms = 1_700_000_000_000 + i as i64 * day;
        all.push(d);
    }
    let dir = out.join(DEAD_LETTERS_DIR);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut b = DeadLetterBuilder::default();
    all.iter().for_each(|d| b.push(d));
    write_synced(
        &dir.join("tx+1+00000000000000000000.parquet"),
        &b.finish().expect("batch"),
        &WriterProperties::default(),
    )
    .expect("write");
    all
}

async fn offsets(out: &Path, options: ReplayOptions) -> Vec<i64> {
    let dry = ReplayOptions {
        dry_run: true,
        ..options
    };
    let (_, selected) = run(&source("127.0.0.1:1"), out, &dry)
        .await
        .expect("dry run");
    let mut got: Vec<i64> = selected.iter().map(|s| s.of.offset).collect();
    got.sort();
    got
}

#[tokio::test]
async fn reason_stage_and_time_filters_select_what_they_name() {
    let out = tempfile::tempdir().expect("tmp");
    spread_letters(out.path());
    let t = |s: &str| rfc3339_ms(s).expect("time");
    let o = |f: fn(&mut ReplayOptions)| {
        let mut opts = ReplayOptions::default();
        f(&mut opts);
        opts
    };
    let all = offsets(out.path(), ReplayOptions::default()).await;
    assert_eq!(all, vec![0, 1, 2, 3]);
    let by_reason = o(|o| o.reason = Some(ReasonCode::InvalidJson));
    assert_eq!(offsets(out.path(), by_reason).await, vec![0, 2]);
    let by_stage = o(|o| o.stage = Some(DeadLetterStage::Features));
    assert_eq!(offsets(out.path(), by_stage).await, vec![3]);
    let mut window = ReplayOptions {
        since_ms: Some(t("2023-11-15T22:13:20Z")),
        until_ms: Some(t("2023-11-17T22:13:20Z")),
        ..Default::default()
    };
    assert_eq!(
        offsets(out.path(), window.clone()).await,
        vec![1, 2],
        "since is inclusive, until exclusive"
    );
    window.reason = Some(ReasonCode::InvalidJson);
    assert_eq!(
        offsets(out.path(), window).await,
        vec![2],
        "filters combine"
    );
    let since = ReplayOptions {
        since_ms: Some(t("2023-11-17T00:00:00+01:00")),
        ..Default::default()
    };
    assert_eq!(
        offsets(out.path(), since).await,
        vec![3],
        "offsets in times count"
    );

    let e = rfc3339_ms("yesterday").expect_err("not a time");
    assert!(e.contains("yesterday") && e.contains("RFC 3339"), "{e}");
    let backwards = ReplayOptions {
        since_ms: Some(2),
        until_ms: Some(1),
        ..Default::default()
    };
    let e = run(&source("127.0.0.1:1"), out.path(), &backwards)
        .await
        .expect_err("since after until");
    assert!(e.to_string().starts_with("--since:"), "{e}");
}

#[tokio::test]
async fn the_rate_must_be_positive_and_spaces_the_sends() {
    let out = tempfile::tempdir().expect("tmp");
    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        let opts = ReplayOptions {
            rate: Some(bad),
            ..Default::default()
        };
        let e = run(&source("127.0.0.1:1"), out.path(), &opts)
            .await
            .expect_err("bad rate");
        assert!(
            matches!(
                e,
                ToolError::BadOption {
                    option: "--rate",
                    ..
                }
            ) && e.to_string().contains("positive"),
            "{bad}: {e}"
        );
    }

    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("tx", 1, 1).expect("topic");
    let dir = out.path().join(DEAD_LETTERS_DIR);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut b = DeadLetterBuilder::default();
    (0..30).for_each(|i| b.push(&letter(i, DeadLetterStage::Parse, b"x", None)));
    write_synced(
        &dir.join("tx+1+00000000000000000000.parquet"),
        &b.finish().expect("batch"),
        &WriterProperties::default(),
    )
    .expect("write");
    let paced = ReplayOptions {
        rate: Some(100.0),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (r, _) = run(&source(&cluster.bootstrap_servers()), out.path(), &paced)
        .await
        .expect("replay");
    assert_eq!(r.resubmitted, 30);
    // 30 messages at 100/s: the last tenth-second batch leaves after 0.2 s
    // at the earliest, however fast the broker.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

/// A dead-letter file as versions before headers and reason codes wrote it.
fn write_old_format(out: &Path) {
    use arrow::array::{
        BinaryArray, Int32Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("raw", DataType::Binary, false),
        Field::new("key", DataType::Binary, true),
        Field::new("source_topic", DataType::Utf8, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("rejected_at", ts, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(BinaryArray::from_vec(vec![b"{old"])),
            Arc::new(BinaryArray::from_opt_vec(vec![Some(b"k-old")])),
            Arc::new(StringArray::from(vec!["tx"])),
            Arc::new(Int32Array::from(vec![1])),
            Arc::new(Int64Array::from(vec![100])),
            Arc::new(StringArray::from(vec!["parse"])),
            Arc::new(StringArray::from(vec!["not valid JSON"])),
            Arc::new(TimestampMillisecondArray::from(vec![1]).with_timezone("+00:00")),
        ],
    )
    .expect("batch");
    write_synced(
        &out.join(DEAD_LETTERS_DIR)
            .join("tx+1+00000000000000000100.parquet"),
        &batch,
        &WriterProperties::default(),
    )
    .expect("write");
}

#[tokio::test]
async fn files_from_before_headers_and_reason_codes_still_replay() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("tx", 1, 1).expect("topic");
    let out = tempfile::tempdir().expect("tmp");
    let new = letter(3, DeadLetterStage::Parse, b"{new", Some(b"k-new"));
    write_dead_letters(out.path(), &[new.clone(), new.clone(), new]);
    write_old_format(out.path());

    let only_codes = ReplayOptions {
        reason: Some(ReasonCode::InvalidJson),
        ..Default::default()
    };
    assert_eq!(
        offsets(out.path(), only_codes).await,
        vec![3],
        "old files have no code"
    );
    let (r, selected) = run(
        &source(&cluster.bootstrap_servers()),
        out.path(),
        &ReplayOptions::default(),
    )
    .await
    .expect("replay");
    assert_eq!((r.found, r.resubmitted), (2, 2));
    let old = selected
        .iter()
        .find(|s| s.of.offset == 100)
        .expect("old letter");
    assert_eq!((old.stage, old.code), (DeadLetterStage::Parse, None));
    let got = read_topic(&cluster.bootstrap_servers(), "tx");
    let m = got
        .iter()
        .find(|m| header(m, REPLAY_OF_HEADER) == "tx/1/100")
        .expect("the old letter replayed");
    assert_eq!(
        (m.payload(), m.key()),
        (Some(&b"{old"[..]), Some(&b"k-old"[..]))
    );
    assert_eq!(
        m.headers().expect("headers").count(),
        2,
        "only replay's own"
    );
}
