use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorestream_schemas::{DeadLetter, DeadLetterStage, columns};

use super::*;
use crate::source::kafka::ResumePositions;
use crate::{Coverage, Envelope, OperatorError};

/// Rows `(partition, offset)` with provenance columns, value = offset.
fn rows(msgs: &[(i32, i64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new(columns::SOURCE_TOPIC, DataType::Utf8, false),
        Field::new(columns::SOURCE_PARTITION, DataType::Int32, false),
        Field::new(columns::SOURCE_OFFSET, DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(msgs.iter().map(|m| m.1))),
            Arc::new(StringArray::from_iter_values(msgs.iter().map(|_| "t"))),
            Arc::new(Int32Array::from_iter_values(msgs.iter().map(|m| m.0))),
            Arc::new(Int64Array::from_iter_values(msgs.iter().map(|m| m.1))),
        ],
    )
    .expect("batch")
}

fn dead(partition: i32, offset: i64) -> DeadLetter {
    DeadLetter {
        raw: b"oops".to_vec(),
        key: Some(b"k".to_vec()),
        topic: "t".into(),
        partition,
        offset,
        stage: DeadLetterStage::Parse,
        reason: "bad".into(),
        rejected_at_ms: 0,
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

fn open(dir: &Path) -> ParquetSink {
    ParquetSink::open(&ParquetSinkConfig {
        path: dir.to_owned(),
        compression: Compression::Zstd,
    })
    .expect("open")
}

fn read(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
        .expect("pq")
        .build()
        .expect("r");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("read");
    arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An envelope over two partitions: rows 0..3 of p0, rows 10, 12 and a dead
/// letter at 11 of p1.
fn two_partitions() -> Envelope {
    Envelope {
        batch: Some(rows(&[(0, 0), (1, 10), (0, 1), (1, 12), (0, 2)])),
        dead_letters: vec![dead(1, 11)],
        coverage: coverage(&[(0, 0..3), (1, 10..13)]),
        flush: false,
    }
}

#[test]
fn each_partition_gets_its_own_files_named_by_topic_partition_and_start_offset() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    let c = sink.write(two_partitions()).expect("write");
    assert_eq!((c.rows, c.dead_letters, c.files.len()), (5, 1, 3));
    assert_eq!(c.coverage, coverage(&[(0, 0..3), (1, 10..13)]));
    assert_eq!(
        listing(&dir.path().join(SCORES_DIR)),
        vec![
            "t+0+00000000000000000000.parquet",
            "t+1+00000000000000000010.parquet"
        ]
    );
    assert_eq!(
        listing(&dir.path().join(DEAD_LETTERS_DIR)),
        vec!["t+1+00000000000000000010.parquet"]
    );
    let p1 = read(
        &dir.path()
            .join(SCORES_DIR)
            .join("t+1+00000000000000000010.parquet"),
    );
    assert_eq!(
        p1.column(0).as_primitive::<Int64Type>().values().to_vec(),
        vec![10, 12]
    );
    let d = read(
        &dir.path()
            .join(DEAD_LETTERS_DIR)
            .join("t+1+00000000000000000010.parquet"),
    );
    assert_eq!(
        d.column_by_name("raw")
            .expect("raw")
            .as_binary::<i32>()
            .value(0),
        b"oops"
    );

    let log = sink.commit_log();
    let e = log.entry("t", 1, 10).expect("read").expect("entry");
    assert_eq!((e.start, e.end), (10, 13));
    assert_eq!(e.files.len(), 2);
    assert_eq!(e.files[0].rows + e.files[1].rows, 3);
    assert_eq!(
        log.resume_positions(&[("t".into(), 0), ("t".into(), 1), ("t".into(), 2)])
            .expect("resume"),
        vec![Some(3), Some(13), None]
    );
}

#[test]
fn an_envelope_that_does_not_account_for_its_rows_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    let mut env = two_partitions();
    env.coverage = coverage(&[(0, 0..3)]);
    let e = sink.write(env).expect_err("p1 rows are not covered");
    assert!(matches!(e, OperatorError::Internal(_)), "{e}");
    assert!(listing(&dir.path().join(SCORES_DIR)).is_empty());
}

#[test]
fn a_range_without_messages_still_advances_the_chain() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = open(dir.path());
    let c = sink
        .write(Envelope {
            coverage: coverage(&[(0, 5..9)]),
            ..Default::default()
        })
        .expect("write");
    assert!(c.files.is_empty());
    assert!(listing(&dir.path().join(SCORES_DIR)).is_empty());
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
    std::thread::sleep(std::time::Duration::from_millis(2)); // distinct writer ids
    let mut b = open(dir.path());
    a.write(Envelope {
        batch: Some(rows(&[(0, 0), (0, 1)])),
        coverage: coverage(&[(0, 0..2)]),
        ..Default::default()
    })
    .expect("a commits");
    let e = b
        .write(Envelope {
            batch: Some(rows(&[(0, 0)])),
            coverage: coverage(&[(0, 0..1)]),
            ..Default::default()
        })
        .expect_err("b is fenced");
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
    assert_eq!(
        listing(&dir.path().join(SCORES_DIR)),
        vec!["t+0+00000000000000000000.parquet"]
    );
    let kept = read(
        &dir.path()
            .join(SCORES_DIR)
            .join("t+0+00000000000000000000.parquet"),
    );
    assert_eq!(kept.num_rows(), 2, "the first writer's file is intact");
}

/// A crash after the commit point but before the rename: the next open
/// finishes the rename; temporary files that can never be committed are
/// removed; one past the end of the chain (maybe a live writer's) is kept.
#[test]
fn recovery_rolls_committed_files_forward_and_clears_dead_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let scores = dir.path().join(SCORES_DIR);
    let mut sink = open(dir.path());
    let c = sink
        .write(Envelope {
            batch: Some(rows(&[(0, 0), (0, 1)])),
            coverage: coverage(&[(0, 0..2)]),
            ..Default::default()
        })
        .expect("write");
    let writer = sink
        .commit_log()
        .entry("t", 0, 0)
        .expect("read")
        .expect("entry")
        .writer;
    let fin = c.files[0].clone();
    let name = fin
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // undo the rename, as if the process died right before it
    let pending = scores.join(commit_log::tmp_name(&name, &writer));
    std::fs::rename(&fin, &pending).expect("unrename");
    // a loser's file for the same offsets, and a file past the chain's end
    let loser = scores.join(commit_log::tmp_name(&name, "w1-1"));
    std::fs::write(&loser, b"never committed").expect("write");
    let ahead = scores.join(commit_log::tmp_name(
        "t+0+00000000000000000002.parquet",
        "w1-1",
    ));
    std::fs::write(&ahead, b"maybe in flight").expect("write");
    // an old-format leftover is not ours to judge
    drop(sink);

    let sink = open(dir.path());
    assert!(fin.exists(), "the committed file is rolled forward");
    assert_eq!(read(&fin).num_rows(), 2);
    assert!(!pending.exists() && !loser.exists());
    assert!(
        ahead.exists(),
        "a file past the chain's end may be a live writer's"
    );
    drop(sink);

    // once the chain moves past it, it goes
    let mut sink = open(dir.path());
    sink.write(Envelope {
        batch: Some(rows(&[(0, 2)])),
        coverage: coverage(&[(0, 2..3)]),
        ..Default::default()
    })
    .expect("write");
    sink.close().expect("close");
    assert!(!ahead.exists());
    assert!(
        listing(&scores).iter().all(|n| n.ends_with(".parquet")),
        "{:?}",
        listing(&scores)
    );
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
