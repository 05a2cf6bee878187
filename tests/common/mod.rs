//! Helpers shared by the integration tests: reading output back and
//! replaying what the generator produced.
#![allow(dead_code)]

pub(crate) mod chromium;
pub(crate) mod hours;
pub(crate) mod process;
pub(crate) mod redis_server;
pub(crate) mod s3_server;
pub(crate) mod tansu;

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorestream_tools::synth::{EventGen, EventKind, GenOptions, World};

pub(crate) const DEMO_ASSETS: scorestream_tools::demo::DemoAssets =
    scorestream_tools::demo::EMBEDDED;

/// Every file under `dir`, through its partition directories.
pub(crate) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Every committed Parquet file under `dir` (partition directories
/// included), read with the parquet crate (files being written are hidden
/// `.tmp` files and are skipped, as any reader globbing `*.parquet` skips
/// them).
pub(crate) fn read_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for path in files_under(dir) {
        if !path.to_string_lossy().ends_with(".parquet") {
            continue;
        }
        out.extend(read_file(&path));
    }
    out
}

/// One Parquet file's rows.
pub(crate) fn read_file(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
        .expect("valid parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

/// How often each event id appears in one output table, the id taken from
/// each row by `id_of`.
fn count_ids(dir: &Path, id_of: impl Fn(&RecordBatch, usize) -> String) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for b in read_dir(dir) {
        for i in 0..b.num_rows() {
            *ids.entry(id_of(&b, i)).or_insert(0) += 1;
        }
    }
    ids
}

/// `event_id`s of the scored rows, with how often each appears.
pub(crate) fn scored_ids(out: &Path) -> HashMap<String, usize> {
    count_ids(&out.join("scores"), |b, i| {
        let col = b.column_by_name("event_id").expect("event_id column");
        col.as_string::<i32>().value(i).to_owned()
    })
}

/// Event ids found in dead letters' raw bytes (every generated event, even a
/// broken one, carries `evt-` and 12 digits).
pub(crate) fn dead_letter_ids(out: &Path) -> HashMap<String, usize> {
    count_ids(&out.join("dead_letters"), |b, i| {
        let raw = b
            .column_by_name("raw")
            .expect("raw column")
            .as_binary::<i32>()
            .value(i);
        let text = String::from_utf8_lossy(raw);
        let at = text.find("evt-").expect("dead letter carries its event id");
        text[at..at + 16].to_owned()
    })
}

/// What the generator produced for these options: (id, kind) in order.
pub(crate) fn replay(world: &World, opts: GenOptions, n: u64) -> Vec<(String, EventKind)> {
    let first = opts.first_seq;
    let mut g = EventGen::new(world, opts);
    let (mut buf, mut key) = (String::new(), String::new());
    (0..n)
        .map(|seq| {
            let kind = g.next_into(&mut buf, &mut key);
            (EventGen::event_id(first + seq), kind)
        })
        .collect()
}

/// Asserts the exactly-once property: every produced event is in exactly one
/// of the outputs, exactly once, and nothing else is.
pub(crate) fn assert_exactly_once(out: &Path, produced: &[(String, EventKind)]) {
    for sub in ["scores", "dead_letters"] {
        for path in files_under(&out.join(sub)) {
            assert!(
                !path.to_string_lossy().ends_with(".tmp"),
                "a stopped job left an uncommitted file: {}",
                path.display()
            );
        }
    }
    let scored = scored_ids(out);
    let dead = dead_letter_ids(out);
    for (id, kind) in produced {
        let s = scored.get(id).copied().unwrap_or(0);
        let d = dead.get(id).copied().unwrap_or(0);
        assert_eq!(
            s + d,
            1,
            "event {id} ({kind:?}) appears {s} time(s) in scores and {d} in dead letters"
        );
        match kind {
            EventKind::Malformed => assert_eq!(d, 1, "malformed event {id} must be a dead letter"),
            _ => assert_eq!(s, 1, "event {id} ({kind:?}) must be scored"),
        }
    }
    assert_eq!(
        scored.len() + dead.len(),
        produced.len(),
        "the output holds events that were never produced"
    );
}

/// The model version that scored each event, by event id.
pub(crate) fn versions_by_event(out: &Path) -> HashMap<String, String> {
    let mut v = HashMap::new();
    for b in read_dir(&out.join("scores")) {
        let ids = b.column_by_name("event_id").expect("id").as_string::<i32>();
        let ver = b
            .column_by_name("model_version")
            .expect("model_version")
            .as_string::<i32>();
        for i in 0..b.num_rows() {
            v.insert(ids.value(i).to_owned(), ver.value(i).to_owned());
        }
    }
    v
}
