use std::fs::File;
use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorestream_schemas::{DeadLetter, DeadLetterStage};

use super::*;
use crate::{Acks, Envelope};

fn rows(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).expect("batch")
}

fn read(path: &std::path::Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
        .expect("pq")
        .build()
        .expect("r");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("read");
    arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

#[test]
fn rows_and_dead_letters_land_in_committed_files_and_acks_pass_through() {
    let dir = tempfile::tempdir().expect("tmp");
    // a leftover from a crashed run
    std::fs::create_dir_all(dir.path().join(SCORES_DIR)).expect("mkdir");
    let stale = dir
        .path()
        .join(SCORES_DIR)
        .join(".part-x-000001.parquet.tmp");
    std::fs::write(&stale, b"half a file").expect("write");

    let mut sink = ParquetSink::open(&ParquetSinkConfig {
        path: dir.path().to_owned(),
        compression: Compression::Zstd,
    })
    .expect("open");
    assert!(
        !stale.exists(),
        "uncommitted leftovers are removed at start"
    );

    let mut acks = Acks::default();
    acks.record(&"t".into(), 0, 41);
    let dl = DeadLetter {
        raw: b"oops".to_vec(),
        key: Some(b"k".to_vec()),
        topic: "t".into(),
        partition: 0,
        offset: 40,
        stage: DeadLetterStage::Parse,
        reason: "bad".into(),
        rejected_at_ms: 0,
    };
    let c = sink
        .write(Envelope {
            batch: Some(rows(1000)),
            dead_letters: vec![dl],
            acks: acks.clone(),
        })
        .expect("write");
    assert_eq!((c.rows, c.dead_letters, c.files.len()), (1000, 1, 2));
    assert_eq!(c.acks, acks);
    let scores = read(&c.files[0]);
    assert_eq!(
        scores
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        (0..1000).collect::<Vec<_>>()
    );
    let dead = read(&c.files[1]);
    assert_eq!(
        dead.column_by_name("raw")
            .expect("raw")
            .as_binary::<i32>()
            .value(0),
        b"oops"
    );
    assert!(
        c.files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "parquet"))
    );

    let names: Vec<_> = std::fs::read_dir(dir.path().join(SCORES_DIR))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "no temporary file is left behind: {names:?}"
    );
}

#[test]
fn an_envelope_without_rows_writes_no_empty_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut sink = ParquetSink::open(&ParquetSinkConfig {
        path: dir.path().to_owned(),
        compression: Compression::None,
    })
    .expect("open");
    let c = sink.write(Envelope::default()).expect("write");
    assert!(c.files.is_empty());
}

#[test]
fn a_failed_write_leaves_no_visible_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let props = parquet::file::properties::WriterProperties::builder().build();
    let missing = dir.path().join("gone");
    let e =
        write_atomically(&missing, "part-1.parquet", &rows(3), &props).expect_err("no such dir");
    assert!(e.to_string().contains("creating"), "{e}");
    assert!(!missing.join("part-1.parquet").exists());
}
