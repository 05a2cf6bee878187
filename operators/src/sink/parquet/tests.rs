use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    AsArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use scorestream_schemas::{DeadLetter, DeadLetterStage, columns};

use super::*;
use crate::config::{ByteSize, HumanDuration};
use crate::source::kafka::ResumePositions;
use crate::{Coverage, Envelope, OperatorError};

/// 2026-12-01T09:00:00Z
pub(super) const NINE: i64 = 1_796_115_600_000;
pub(super) const HOUR: i64 = 3_600_000;

pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("country", DataType::Utf8, true),
        Field::new(columns::SOURCE_TOPIC, DataType::Utf8, false),
        Field::new(columns::SOURCE_PARTITION, DataType::Int32, false),
        Field::new(columns::SOURCE_OFFSET, DataType::Int64, false),
        Field::new(
            columns::INGEST_TIME,
            DataType::Timestamp(TimeUnit::Millisecond, Some(scorestream_schemas::UTC.into())),
            false,
        ),
    ]))
}

/// Rows `(partition, offset, ingest ms)`, value = offset, country "SE".
pub(super) fn rows_at(msgs: &[(i32, i64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(msgs.iter().map(|m| m.1))),
            Arc::new(StringArray::from_iter_values(msgs.iter().map(|_| "SE"))),
            Arc::new(StringArray::from_iter_values(msgs.iter().map(|_| "t"))),
            Arc::new(Int32Array::from_iter_values(msgs.iter().map(|m| m.0))),
            Arc::new(Int64Array::from_iter_values(msgs.iter().map(|m| m.1))),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(msgs.iter().map(|m| m.2))
                    .with_timezone(scorestream_schemas::UTC),
            ),
        ],
    )
    .expect("batch")
}

/// Rows `(partition, offset)` at 09:30.
pub(super) fn rows(msgs: &[(i32, i64)]) -> RecordBatch {
    let at: Vec<_> = msgs.iter().map(|&(p, o)| (p, o, NINE + HOUR / 2)).collect();
    rows_at(&at)
}

pub(super) fn dead(partition: i32, offset: i64) -> DeadLetter {
    DeadLetter {
        raw: b"oops".to_vec(),
        key: Some(b"k".to_vec()),
        topic: "t".into(),
        partition,
        offset,
        stage: DeadLetterStage::Parse,
        reason: "bad".into(),
        rejected_at_ms: 0,
        headers: Vec::new(),
        source_timestamp_ms: None,
        reason_code: scorestream_schemas::ReasonCode::InvalidJson,
    }
}

fn coverage(ranges: &[(i32, std::ops::Range<i64>)]) -> Coverage {
    let t: Arc<str> = "t".into();
    let mut c = Coverage::default();
    for (p, r) in ranges {
        c.extend(&t, *p, r.clone()).expect("cover");
    }
    c
}

pub(super) fn env(batch: RecordBatch, ranges: &[(i32, std::ops::Range<i64>)]) -> Envelope {
    Envelope {
        batch: Some(batch),
        coverage: coverage(ranges),
        ..Default::default()
    }
}

pub(super) fn config(dir: &Path) -> ParquetSinkConfig {
    ParquetSinkConfig::at(dir)
}

pub(super) fn open_with(config: &ParquetSinkConfig) -> ParquetSink {
    let spec =
        PartitionSpec::new(&config.partition_by, &config.partition_time, &schema()).expect("spec");
    ParquetSink::open(config, spec).expect("open")
}

fn open(dir: &Path) -> ParquetSink {
    open_with(&config(dir))
}

pub(super) fn read(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
        .expect("pq")
        .build()
        .expect("r");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("read");
    arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

/// Every file under `dir`, as paths relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).expect("ls").flatten() {
            if e.file_type().expect("type").is_dir() {
                walk(base, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(base).expect("under").to_owned();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Committed (readable) files under `dir`.
fn visible(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|p| p.ends_with(".parquet") && !p.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect()
}

pub(super) fn values(b: &RecordBatch) -> Vec<i64> {
    b.column_by_name("v")
        .expect("v")
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

pub(super) const H09: &str = "event_date=2026-12-01/event_hour=9";
pub(super) const H10: &str = "event_date=2026-12-01/event_hour=10";

#[test]
fn rows_land_in_hive_partitions_by_hour_named_by_their_first_offset() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    // p0: 0 at 09:59, 1 at 10:01, 2 at 09:59; p1: 10, 12 at 10:30 and a dead letter at 11
    let batch = rows_at(&[
        (0, 0, NINE + HOUR - 60_000),
        (1, 10, NINE + HOUR + HOUR / 2),
        (0, 1, NINE + HOUR + 60_000),
        (1, 12, NINE + HOUR + HOUR / 2),
        (0, 2, NINE + HOUR - 60_000),
    ]);
    let mut e = env(batch, &[(0, 0..3), (1, 10..13)]);
    e.dead_letters = vec![dead(1, 11)];
    let c = sink.write(e).expect("write");
    assert!(c.is_empty(), "nothing rolls before a limit");
    assert!(
        visible(dir.path()).is_empty(),
        "open files are not readable"
    );
    let c = sink.flush().expect("flush");
    assert_eq!((c.rows, c.dead_letters, c.files.len()), (5, 1, 4));
    assert_eq!(c.coverage, coverage(&[(0, 0..3), (1, 10..13)]));
    assert_eq!(
        visible(dir.path()),
        vec![
            "dead_letters/t+1+00000000000000000011.parquet".to_owned(),
            format!("scores/{H10}/t+0+00000000000000000001.parquet"),
            format!("scores/{H10}/t+1+00000000000000000010.parquet"),
            format!("scores/{H09}/t+0+00000000000000000000.parquet"),
        ]
    );
    let p0_09 = read(
        &dir.path()
            .join(format!("scores/{H09}/t+0+00000000000000000000.parquet")),
    );
    assert_eq!(values(&p0_09), vec![0, 2]);
    assert_eq!(
        p0_09.schema(),
        schema(),
        "derived partition columns are not in the files"
    );

    let log = sink.commit_log();
    let e = log.entry("t", 0, 0).expect("read").expect("entry");
    assert_eq!((e.start, e.end, e.files.len()), (0, 3, 2));
    let e = log.entry("t", 1, 10).expect("read").expect("entry");
    assert_eq!((e.start, e.end), (10, 13));
    assert_eq!(e.files.iter().map(|f| f.rows).sum::<u64>(), 3);
    assert_eq!(
        log.resume_positions(&[("t".into(), 0), ("t".into(), 1), ("t".into(), 2)])
            .expect("resume"),
        vec![Some(3), Some(13), None]
    );
}

#[test]
fn a_file_stays_open_across_batches_and_rolls_at_max_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path());
    cfg.roll.max_rows = 5;
    let mut sink = open_with(&cfg);
    for o in 0..4 {
        let c = sink
            .write(env(rows(&[(0, o)]), &[(0, o..o + 1)]))
            .expect("write");
        assert!(c.is_empty(), "below max_rows after offset {o}");
    }
    let c = sink
        .write(env(rows(&[(0, 4), (0, 5)]), &[(0, 4..6)]))
        .expect("write");
    assert_eq!(
        (c.rows, c.files.len()),
        (6, 1),
        "the batch that crosses the limit rolls"
    );
    assert_eq!(c.coverage, coverage(&[(0, 0..6)]));
    let files = visible(dir.path());
    assert_eq!(
        files,
        vec![format!("scores/{H09}/t+0+00000000000000000000.parquet")]
    );
    assert_eq!(
        values(&read(&dir.path().join(&files[0]))),
        vec![0, 1, 2, 3, 4, 5]
    );
    // the next file starts at the next offset
    sink.write(env(rows(&[(0, 6)]), &[(0, 6..7)]))
        .expect("write");
    let c = sink.flush().expect("flush");
    assert_eq!(c.coverage, coverage(&[(0, 6..7)]));
    assert!(
        dir.path()
            .join(format!("scores/{H09}/t+0+00000000000000000006.parquet"))
            .exists()
    );
}

#[test]
fn files_roll_at_the_interval_and_after_inactivity_by_time_alone() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path());
    cfg.roll.interval = HumanDuration(Duration::from_secs(60));
    cfg.roll.inactivity = HumanDuration(Duration::from_secs(10));
    let mut sink = open_with(&cfg);
    assert_eq!(
        sink.next_deadline(),
        None,
        "nothing open, nothing to wait for"
    );
    let t0 = Instant::now();
    sink.write(env(rows(&[(0, 0)]), &[(0, 0..1)]))
        .expect("write");
    let deadline = sink.next_deadline().expect("open set");
    assert!(
        deadline >= t0 + Duration::from_secs(10)
            && deadline <= Instant::now() + Duration::from_secs(10)
    );
    assert!(
        sink.tick(t0 + Duration::from_secs(9))
            .expect("tick")
            .is_empty()
    );
    let c = sink.tick(deadline).expect("tick");
    assert_eq!(
        c.coverage,
        coverage(&[(0, 0..1)]),
        "an idle file closes after inactivity"
    );
    assert_eq!(sink.next_deadline(), None);

    // A partition written to steadily rolls at the interval instead.
    let start = Instant::now();
    sink.write(env(rows(&[(0, 1)]), &[(0, 1..2)]))
        .expect("write");
    let by_interval = sink.next_deadline().expect("open");
    assert!(by_interval <= start + Duration::from_secs(11));
    let c = sink.tick(start + Duration::from_secs(61)).expect("tick");
    assert_eq!(c.coverage, coverage(&[(0, 1..2)]));
    assert_eq!(visible(dir.path()).len(), 2);
}

#[test]
fn freshness_is_measured_from_the_kafka_timestamp_to_the_commit() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    let now = crate::now_ms();
    sink.write(env(
        rows_at(&[
            (0, 0, now - 5_000),
            (0, 1, now - 5_000),
            (0, 2, now - 1_000),
        ]),
        &[(0, 0..3)],
    ))
    .expect("write");
    let c = sink.flush().expect("flush");
    let total: u64 = c.latencies_ms.iter().map(|l| l.1).sum();
    assert_eq!(total, 3);
    let oldest = c.latencies_ms.iter().map(|l| l.0).max().expect("some");
    assert!((5_000..6_000).contains(&oldest), "{:?}", c.latencies_ms);
    let two = c
        .latencies_ms
        .iter()
        .find(|l| l.1 == 2)
        .expect("bucket of two");
    assert!(two.0 >= 5_000);
}

#[test]
fn a_flush_request_commits_everything_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    sink.write(env(rows(&[(0, 0), (1, 5)]), &[(0, 0..1), (1, 5..6)]))
        .expect("write");
    let mut e = env(rows(&[(0, 1)]), &[(0, 1..2)]);
    e.flush = true;
    let c = sink.write(e).expect("write");
    assert_eq!(c.coverage, coverage(&[(0, 0..2), (1, 5..6)]));
    assert_eq!(sink.open_files(), 0);
}

#[test]
fn opening_more_files_than_allowed_commits_the_least_recently_written_partition() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path());
    cfg.max_open_files = 2;
    let mut sink = open_with(&cfg);
    assert!(
        sink.write(env(rows(&[(0, 0)]), &[(0, 0..1)]))
            .expect("w")
            .is_empty()
    );
    assert!(
        sink.write(env(rows(&[(1, 0)]), &[(1, 0..1)]))
            .expect("w")
            .is_empty()
    );
    assert!(
        sink.write(env(rows(&[(0, 1)]), &[(0, 1..2)]))
            .expect("w")
            .is_empty()
    );
    let c = sink.write(env(rows(&[(2, 0)]), &[(2, 0..1)])).expect("w");
    assert_eq!(
        c.coverage,
        coverage(&[(1, 0..1)]),
        "partition 1 was written least recently"
    );
    assert_eq!(sink.open_files(), 2);
}

#[test]
fn buffered_rows_beyond_the_memory_limit_go_to_disk_as_row_groups() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path());
    cfg.max_buffered_bytes = ByteSize(1);
    let mut sink = open_with(&cfg);
    for o in 0..3 {
        sink.write(env(rows(&[(0, o)]), &[(0, o..o + 1)]))
            .expect("write");
    }
    let c = sink.flush().expect("flush");
    let reader = SerializedFileReader::new(File::open(&c.files[0]).expect("open")).expect("pq");
    assert_eq!(reader.metadata().num_row_groups(), 3);
    let meta = reader.metadata().row_group(0);
    assert!(
        meta.column(0).statistics().is_some(),
        "statistics are written for readers to skip row groups"
    );
}

#[test]
fn partitioning_by_a_column_moves_it_into_the_escaped_directory_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path());
    cfg.partition_by = vec!["country".into()];
    let mut sink = open_with(&cfg);
    let mut b = rows(&[(0, 0), (0, 1), (0, 2)]);
    let country = StringArray::from(vec![Some("../x"), None, Some("SE")]);
    let mut cols = b.columns().to_vec();
    cols[1] = Arc::new(country);
    b = RecordBatch::try_new(schema(), cols).expect("batch");
    sink.write(env(b, &[(0, 0..3)])).expect("write");
    sink.flush().expect("flush");
    assert_eq!(
        visible(dir.path()),
        vec![
            "scores/country=%2E%2E%2Fx/t+0+00000000000000000000.parquet",
            "scores/country=SE/t+0+00000000000000000002.parquet",
            "scores/country=__HIVE_DEFAULT_PARTITION__/t+0+00000000000000000001.parquet",
        ]
    );
    let se = read(
        &dir.path()
            .join("scores/country=SE/t+0+00000000000000000002.parquet"),
    );
    assert!(
        se.column_by_name("country").is_none(),
        "the value lives in the path"
    );
}

#[test]
fn bad_partition_settings_are_named() {
    let s = schema();
    let problems = |by: &[&str], time: &str| {
        let by: Vec<String> = by.iter().map(|s| s.to_string()).collect();
        PartitionSpec::new(&by, time, &s).expect_err("invalid")
    };
    let p = problems(&["event_date", "nope"], "ingest_time");
    assert_eq!(p[0].0, "sink.partition_by");
    assert!(p[0].1.contains("no output column `nope`"), "{p:?}");
    let p = problems(&["v", "v"], "ingest_time");
    assert!(p[0].1.contains("listed twice"), "{p:?}");
    let p = problems(&["event_hour"], "country");
    assert_eq!(p[0].0, "sink.partition_time");
    assert!(p[0].1.contains("not a timestamp"), "{p:?}");
    let mut cfg = ParquetSinkConfig::at("x");
    cfg.roll.max_rows = 0;
    assert_eq!(
        crate::config::problems_in(&cfg, "sink")[0].0,
        "sink.roll.max_rows"
    );
    let mut cfg = ParquetSinkConfig::at("x");
    cfg.encode_threads = Some(0);
    let p = crate::config::problems_in(&cfg, "sink");
    assert_eq!(p[0].0, "sink.encode_threads");
    assert!(p[0].1.contains("greater than zero"), "{p:?}");
}

/// Six partitions, rows in two hours each: twelve files from one envelope.
fn six_partitions_two_hours() -> Envelope {
    let msgs: Vec<(i32, i64, i64)> = (0..6)
        .flat_map(|p| (0..40).map(move |o| (p, i64::from(p) * 1000 + o, NINE + (o % 2) * HOUR + 1)))
        .collect();
    let ranges: Vec<(i32, std::ops::Range<i64>)> = (0..6)
        .map(|p| (p, i64::from(p) * 1000..i64::from(p) * 1000 + 40))
        .collect();
    env(rows_at(&msgs), &ranges)
}

/// Committed files and the values in each.
fn committed_values(dir: &Path) -> Vec<(String, Vec<i64>)> {
    visible(dir)
        .into_iter()
        .map(|f| {
            let v = values(&read(&dir.join(&f)));
            (f, v)
        })
        .collect()
}

#[test]
fn files_encoded_side_by_side_hold_what_one_thread_writes() {
    let mut outputs = Vec::new();
    for threads in [1, 4] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = config(dir.path());
        cfg.encode_threads = Some(threads);
        let mut sink = open_with(&cfg);
        sink.write(six_partitions_two_hours()).expect("write");
        let c = sink.flush().expect("flush");
        assert_eq!(c.rows, 240);
        assert_eq!(c.files.len(), 12, "{threads} threads");
        outputs.push(committed_values(&dir.path().join(SCORES_DIR)));
    }
    assert_eq!(outputs[0], outputs[1]);
    let p0_at_nine = outputs[0]
        .iter()
        .find(|(f, _)| *f == format!("{H09}/{}.parquet", commit_log::base_name("t", 0, 0)))
        .expect("partition 0's 09:00 file");
    assert_eq!(p0_at_nine.1, (0..40).step_by(2).collect::<Vec<i64>>());
}

#[test]
fn one_envelope_over_more_partitions_than_open_files_loses_no_row() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path());
    cfg.max_open_files = 3;
    let mut sink = open_with(&cfg);
    // Twelve files do not fit in three: partitions written earlier in this
    // same envelope are committed to make room, with their rows in them.
    let early = sink.write(six_partitions_two_hours()).expect("write");
    assert!(!early.is_empty(), "some partitions had to commit early");
    assert!(sink.open_files() <= 3);
    let rest = sink.flush().expect("flush");
    assert_eq!(early.rows + rest.rows, 240);
    let mut all: Vec<i64> = committed_values(&dir.path().join(SCORES_DIR))
        .into_iter()
        .flat_map(|(_, v)| v)
        .collect();
    all.sort_unstable();
    let want: Vec<i64> = (0..6).flat_map(|p| p * 1000..p * 1000 + 40).collect();
    assert_eq!(all, want);
}

#[test]
fn an_envelope_that_does_not_account_for_its_rows_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    let mut e = env(rows(&[(0, 0), (0, 1)]), &[(0, 0..2)]);
    e.dead_letters = vec![dead(1, 11)];
    let e = sink.write(e).expect_err("p1's dead letter is not covered");
    assert!(matches!(e, OperatorError::Internal(_)), "{e}");
    assert!(tree(dir.path().join(SCORES_DIR).as_path()).is_empty());
}

#[test]
fn a_range_without_messages_still_advances_the_chain() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    sink.write(Envelope {
        coverage: coverage(&[(0, 5..9)]),
        ..Default::default()
    })
    .expect("write");
    let c = sink.flush().expect("flush");
    assert!(c.files.is_empty());
    assert_eq!(
        sink.commit_log()
            .resume_positions(&[("t".into(), 0)])
            .expect("resume"),
        vec![Some(9)]
    );
}

/// Two writers that both believe they own a partition: the second to commit
/// the same offsets is fenced and its files never become visible.
#[test]
fn a_second_writer_of_the_same_offsets_is_fenced() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = open(dir.path());
    std::thread::sleep(Duration::from_millis(2)); // distinct writer ids
    let mut b = open(dir.path());
    a.write(env(rows(&[(0, 0), (0, 1)]), &[(0, 0..2)]))
        .expect("a writes");
    b.write(env(rows(&[(0, 0)]), &[(0, 0..1)]))
        .expect("b writes");
    a.flush().expect("a commits");
    let e = b.flush().expect_err("b is fenced");
    assert_fenced_at_start(&e);
    let files = visible(dir.path());
    assert_eq!(
        files,
        vec![format!("scores/{H09}/t+0+00000000000000000000.parquet")]
    );
    assert_eq!(
        tree(dir.path().join(SCORES_DIR).as_path()),
        vec![format!("{H09}/t+0+00000000000000000000.parquet")],
        "the loser's file is gone"
    );
    assert_eq!(
        read(&dir.path().join(&files[0])).num_rows(),
        2,
        "the first writer's file is intact"
    );
}

/// The writer that committed offset 0 of partition 0.
fn writer_of(sink: &ParquetSink) -> String {
    sink.commit_log()
        .entry("t", 0, 0)
        .expect("read")
        .expect("entry")
        .writer
}

fn tmp_of(fin: &Path, writer: &str) -> PathBuf {
    let name = fin
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    fin.with_file_name(commit_log::tmp_name(&name, writer))
}

/// A crash after the commit point but before the renames: the next open
/// finishes them; temporary files that can never be committed are removed;
/// one past the end of the chain (maybe a live writer's) is kept.
#[test]
fn recovery_rolls_committed_files_forward_and_clears_dead_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    sink.write(env(
        rows_at(&[(0, 0, NINE), (0, 1, NINE + HOUR)]),
        &[(0, 0..2)],
    ))
    .expect("write");
    let c = sink.flush().expect("commit");
    let writer = writer_of(&sink);
    // undo both renames, as if the process died right before them
    let pending: Vec<PathBuf> = c.files.iter().map(|f| tmp_of(f, &writer)).collect();
    for (fin, tmp) in c.files.iter().zip(&pending) {
        std::fs::rename(fin, tmp).expect("unrename");
    }
    // a loser's file for a committed offset, and a file past the chain's end
    let loser = tmp_of(&c.files[0], "w1-1");
    std::fs::write(&loser, b"never committed").expect("write");
    let ahead = dir
        .path()
        .join(SCORES_DIR)
        .join(H10)
        .join(commit_log::tmp_name(
            "t+0+00000000000000000002.parquet",
            "w1-1",
        ));
    std::fs::write(&ahead, b"maybe in flight").expect("write");
    drop(sink);

    // resuming a partition finishes its renames without a full pass
    let log = CommitLog::open(dir.path()).expect("log");
    assert_eq!(
        log.resume_positions(&[("t".into(), 0)]).expect("resume"),
        vec![Some(2)]
    );
    assert!(
        c.files.iter().all(|f| f.exists()),
        "the committed files are rolled forward"
    );
    assert!(loser.exists(), "garbage waits for a full pass");

    let sink = open(dir.path());
    assert_eq!(read(&c.files[1]).num_rows(), 1);
    assert!(!loser.exists());
    assert!(
        ahead.exists(),
        "a file past the chain's end may be a live writer's"
    );
    drop(sink);

    // once the chain moves past it, it goes
    let mut sink = open(dir.path());
    sink.write(env(rows(&[(0, 2)]), &[(0, 2..3)]))
        .expect("write");
    sink.close().expect("close");
    assert!(!ahead.exists());
    assert!(
        tree(dir.path().join(SCORES_DIR).as_path())
            .iter()
            .all(|n| n.ends_with(".parquet") && !n.contains("/.")),
        "{:?}",
        tree(dir.path())
    );
}

/// A recovery pass of another process that meets a file whose commit was
/// just made finishes its rename, and the writer's own rename then succeeds.
#[test]
fn a_recovery_racing_a_commit_finishes_the_rename_instead_of_deleting() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    sink.write(env(rows(&[(0, 0)]), &[(0, 0..1)]))
        .expect("write");
    let c = sink.flush().expect("commit");
    let writer = writer_of(&sink);
    let tmp = tmp_of(&c.files[0], &writer);
    std::fs::rename(&c.files[0], &tmp).expect("unrename");
    let rec = sink.commit_log().recover(None).expect("recover");
    assert_eq!((rec.rolled_forward, rec.removed), (1, 0));
    assert!(c.files[0].exists());
}

#[test]
fn a_failed_write_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let props = parquet::file::properties::WriterProperties::builder().build();
    let missing = dir.path().join("gone").join("x.parquet");
    let e = write_synced(&missing, &rows(&[(0, 1)]), &props).expect_err("no such dir");
    assert!(e.to_string().contains("creating"), "{e}");
    assert!(!missing.exists());
}

mod compaction {
    use super::*;
    use crate::sink::parquet::compact::{CompactOptions, compact, recover};

    fn options(dry_run: bool) -> CompactOptions {
        CompactOptions {
            target_bytes: 1 << 20,
            older_than: Duration::ZERO,
            dry_run,
            props: writer_properties(&ParquetSinkConfig::at("x")),
        }
    }

    /// Ten one-row files in hour 9 and one in hour 10.
    fn small_files(dir: &Path) -> ParquetSink {
        let mut cfg = config(dir);
        cfg.roll.max_rows = 1;
        let mut sink = open_with(&cfg);
        for o in 0..10 {
            sink.write(env(rows(&[(0, o)]), &[(0, o..o + 1)]))
                .expect("write");
        }
        sink.write(env(rows_at(&[(0, 10, NINE + HOUR)]), &[(0, 10..11)]))
            .expect("write");
        sink
    }

    fn all_values(dir: &Path) -> Vec<i64> {
        let mut v: Vec<i64> = visible(dir)
            .iter()
            .filter(|p| p.starts_with("scores/"))
            .flat_map(|p| values(&read(&dir.join(p))))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn small_files_of_a_closed_partition_become_one() {
        let dir = tempfile::tempdir().expect("tmp");
        drop(small_files(dir.path()));
        let before = all_values(dir.path());
        let dry = compact(dir.path(), &options(true)).expect("dry run");
        assert_eq!(dry.merged.len(), 1, "hour 10 has a single file");
        assert_eq!(visible(dir.path()).len(), 11, "a dry run changes nothing");

        let r = compact(dir.path(), &options(false)).expect("compact");
        assert_eq!(r.merged.len(), 1);
        let m = &r.merged[0];
        assert_eq!(
            (m.dir.as_str(), m.files_before, m.files_after, m.rows),
            (&*format!("scores/{H09}"), 10, 1, 10)
        );
        assert_eq!(all_values(dir.path()), before, "the same rows, once each");
        let files = visible(dir.path());
        assert_eq!(files.len(), 2);
        assert!(files.iter().any(|f| f.contains("/compacted+")), "{files:?}");
        assert!(
            !dir.path()
                .join("_scorestream/compact")
                .read_dir()
                .is_ok_and(|mut d| d.next().is_some()),
            "staging is cleaned up"
        );
        let again = compact(dir.path(), &options(false)).expect("again");
        assert!(again.merged.is_empty(), "nothing left to merge");
    }

    #[test]
    fn partitions_a_writer_has_open_or_wrote_to_recently_are_left_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut sink = small_files(dir.path());
        // An open file in hour 9 (max_rows 1 would roll a second row).
        let mut cfg = config(dir.path());
        cfg.roll.max_rows = 100;
        drop(sink);
        sink = open_with(&cfg);
        sink.write(env(rows(&[(0, 11)]), &[(0, 11..12)]))
            .expect("write");
        let r = compact(dir.path(), &options(false)).expect("compact");
        assert!(r.merged.is_empty(), "{:?}", r.merged);
        assert_eq!(r.busy, vec![format!("scores/{H09}")]);
        sink.flush().expect("commit");
        drop(sink);

        let mut recent = options(false);
        recent.older_than = Duration::from_secs(3600);
        let r = compact(dir.path(), &recent).expect("compact");
        assert!(r.merged.is_empty());
        assert_eq!(r.recent.len(), 2);
    }

    #[test]
    fn an_interrupted_compaction_leaves_the_partition_as_it_was() {
        let dir = tempfile::tempdir().expect("tmp");
        drop(small_files(dir.path()));
        let before = visible(dir.path());
        // A merge that died before its swap: a staging directory with a
        // half-written file and no record.
        let staging = dir.path().join("_scorestream/compact/c1-1-0");
        std::fs::create_dir_all(&staging).expect("mkdir");
        std::fs::write(staging.join("compacted+c1-1-0+0000.parquet"), b"PAR1 torn").expect("write");
        assert_eq!(recover(dir.path()).expect("recover"), 1);
        assert!(!staging.exists());
        assert_eq!(visible(dir.path()), before);
    }
}

/// Columns whose values are all distinct (here `v` and the offsets) are
/// written plain; a repeated one (`country`) keeps its dictionary; readers
/// see the same values either way.
#[test]
fn mostly_distinct_columns_are_written_without_a_dictionary() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    let msgs: Vec<(i32, i64)> = (0..3000).map(|o| (0, o)).collect();
    sink.write(env(rows(&msgs), &[(0, 0..3000)]))
        .expect("write");
    sink.flush().expect("flush");
    let files = visible(&dir.path().join(SCORES_DIR));
    assert_eq!(files.len(), 1);
    let path = dir.path().join(SCORES_DIR).join(&files[0]);
    let reader = SerializedFileReader::new(File::open(&path).expect("open")).expect("pq");
    let rg = reader.metadata().row_group(0);
    let has_dictionary = |name: &str| {
        rg.columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("column {name}"))
            .dictionary_page_offset()
            .is_some()
    };
    assert!(!has_dictionary("v"));
    assert!(!has_dictionary(columns::SOURCE_OFFSET));
    assert!(has_dictionary("country"));
    assert!(has_dictionary(columns::SOURCE_TOPIC));
    assert_eq!(values(&read(&path)), (0..3000).collect::<Vec<i64>>());
}

/// `e` fences a writer of partition 0 that claimed offsets from 0.
pub(super) fn assert_fenced_at_start(e: &OperatorError) {
    assert!(
        matches!(
            e,
            OperatorError::Fenced {
                partition: 0,
                offset: 0,
                ..
            }
        ),
        "{e}"
    );
}
