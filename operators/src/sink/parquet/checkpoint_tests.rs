//! Commit-log checkpoints: the log stays bounded, a compaction stopped at
//! any step (by an error, or by SIGKILL in a child process) leaves a log
//! that resumes where it would have, on a local directory and on an object
//! store, and a writer that stalled past a compaction is still fenced.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::AsArray;
use object_store::memory::InMemory;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::checkpoint::{CHECKPOINT_DIR, crash};
use super::commit_log::LOG_DIR;
use super::tests::{assert_fenced_at_start, config, env, rows, schema, values};
use super::*;
use crate::source::kafka::ResumePositions;

const PARTITIONS: i32 = 2;
/// Rows per partition per commit.
const PER: i64 = 3;

/// An output on local disk or in an in-memory object store.
struct Out {
    dir: tempfile::TempDir,
    mem: Option<Arc<InMemory>>,
}

impl Out {
    fn local() -> Self {
        Self {
            dir: tempfile::tempdir().expect("dir"),
            mem: None,
        }
    }

    fn object() -> Self {
        Self {
            dir: tempfile::tempdir().expect("spool"),
            mem: Some(Arc::new(InMemory::new())),
        }
    }

    fn store(&self) -> Store {
        match &self.mem {
            None => Store::local(self.dir.path()),
            Some(m) => {
                let url = ObjectUrl::parse("s3://bucket/jobs/fraud").expect("url");
                Store::object(m.clone(), url, self.dir.path()).expect("store")
            }
        }
    }

    fn sink(&self, every: u64) -> ParquetSink {
        let mut c = config(self.dir.path());
        c.commit_log.checkpoint_entries = every;
        let spec = PartitionSpec::new(&c.partition_by, &c.partition_time, &schema()).expect("spec");
        ParquetSink::open_in(self.store(), &c, spec).expect("open")
    }

    fn log(&self) -> CommitLog {
        CommitLog::at(self.store()).expect("log")
    }

    /// Where each partition resumes, as the source asks after a restart.
    fn resume(&self) -> Vec<Option<i64>> {
        let keys: Vec<(String, i32)> = (0..PARTITIONS).map(|p| ("t".into(), p)).collect();
        self.log().resume_positions(&keys).expect("resume")
    }

    fn count(&self, dir: &str) -> usize {
        let files = self.store().list_files(dir).expect("list");
        files.iter().filter(|n| !n.starts_with('.')).count()
    }

    /// Values of every committed row, by partition, sorted.
    fn committed_values(&self) -> BTreeMap<i32, Vec<i64>> {
        let store = self.store();
        let mut out: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (dir, name) in store.list_tree(SCORES_DIR).expect("tree") {
            if name.starts_with('.') || !name.ends_with(".parquet") {
                continue;
            }
            let bytes = store
                .read(&format!("{dir}/{name}"))
                .expect("read")
                .expect("file");
            let mut copy = tempfile::tempfile().expect("tmp");
            std::io::Write::write_all(&mut copy, &bytes).expect("copy");
            let reader = ParquetRecordBatchReaderBuilder::try_new(copy)
                .expect("parquet")
                .build()
                .expect("reader");
            for b in reader {
                let b = b.expect("batch");
                let parts = b
                    .column_by_name(scorestream_schemas::columns::SOURCE_PARTITION)
                    .expect("partition column")
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .clone();
                for (p, v) in parts.values().iter().zip(values(&b)) {
                    out.entry(*p).or_default().push(v);
                }
            }
        }
        out.values_mut().for_each(|v| v.sort_unstable());
        out
    }
}

/// Commits `n` times, each commit `PER` rows of every partition, starting
/// at commit `from`.
fn commit(sink: &mut ParquetSink, from: i64, n: i64) {
    for i in from..from + n {
        let start = i * PER;
        let mut msgs = Vec::new();
        let mut ranges = Vec::new();
        for p in 0..PARTITIONS {
            msgs.extend((start..start + PER).map(|o| (p, o)));
            ranges.push((p, start..start + PER));
        }
        sink.write(env(rows(&msgs), &ranges)).expect("write");
        sink.flush().expect("commit");
    }
}

/// Every partition holds offsets `0..commits * PER` exactly once.
fn assert_exactly_once(out: &Out, commits: i64) {
    let want: Vec<i64> = (0..commits * PER).collect();
    let got = out.committed_values();
    for p in 0..PARTITIONS {
        assert_eq!(got.get(&p), Some(&want), "partition {p}");
    }
}

fn bounded_log_resumes_identically(out: Out) {
    let twin = Out::local();
    let mut sink = out.sink(5);
    let mut plain = twin.sink(u64::MAX);
    commit(&mut sink, 0, 150);
    commit(&mut plain, 0, 150);
    sink.close().expect("close");
    plain.close().expect("close");
    assert_eq!(
        twin.count(LOG_DIR),
        300,
        "without checkpoints the log grows"
    );
    let (entries, checkpoints) = (out.count(LOG_DIR), out.count(CHECKPOINT_DIR));
    // At most 5 new entries, plus the tail each partition keeps.
    assert!(entries <= 5 + PARTITIONS as usize, "{entries} entries");
    assert!((1..=2).contains(&checkpoints), "{checkpoints} checkpoints");
    let want = vec![Some(150 * PER); PARTITIONS as usize];
    assert_eq!(out.resume(), want);
    assert_eq!(twin.resume(), want);
    assert!(out.log().backlog().expect("backlog") <= 5 + PARTITIONS as u64);
    assert_exactly_once(&out, 150);
    // A restart reads the bounded log and carries on from the same place.
    let mut sink = out.sink(5);
    commit(&mut sink, 150, 10);
    sink.close().expect("close");
    assert_exactly_once(&out, 160);
}

#[test]
fn the_local_log_stays_bounded_and_resumes_where_it_would_have() {
    bounded_log_resumes_identically(Out::local());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_store_log_stays_bounded_and_resumes_where_it_would_have() {
    bounded_log_resumes_identically(Out::object());
}

const STEPS: [&str; 3] = ["checkpoint-written", "entry-removed", "entries-removed"];

/// After a compaction stopped at some step: the log resumes where it
/// should, the job carries on, and every offset is in the output once.
fn resumes_after_a_stopped_compaction(out: &Out, step: &str) {
    assert_eq!(
        out.resume(),
        vec![Some(12 * PER); PARTITIONS as usize],
        "{step}"
    );
    let mut sink = out.sink(4);
    commit(&mut sink, 12, 12);
    sink.close().expect("close");
    assert_eq!(out.resume(), vec![Some(24 * PER); PARTITIONS as usize]);
    assert_exactly_once(out, 24);
    assert!(out.count(LOG_DIR) <= 4 + PARTITIONS as usize, "{step}");
}

fn stopped_at_each_step(make: fn() -> Out) {
    for step in STEPS {
        let out = make();
        let mut sink = out.sink(u64::MAX);
        commit(&mut sink, 0, 12);
        drop(sink);
        crash::set(step, false);
        let stopped = out.log().compact("w1-1");
        crash::set("", false);
        assert!(stopped.is_err(), "{step} was never reached");
        resumes_after_a_stopped_compaction(&out, step);
    }
}

#[test]
fn a_local_compaction_stopped_at_any_step_leaves_a_log_that_resumes() {
    stopped_at_each_step(Out::local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_store_compaction_stopped_at_any_step_leaves_a_log_that_resumes() {
    stopped_at_each_step(Out::object);
}

const CHILD: &str = "SCORESTREAM_TEST_COMPACT_CHILD";

/// Runs in a child process (this test binary again): commits, then
/// compacts with SIGKILL at the step the parent named.
fn child(spec: &str) {
    let (dir, step) = spec.split_once('|').expect("dir|step");
    let mut c = config(Path::new(dir));
    c.commit_log.checkpoint_entries = u64::MAX;
    let spec = PartitionSpec::new(&c.partition_by, &c.partition_time, &schema()).expect("spec");
    let mut sink = ParquetSink::open(&c, spec).expect("open");
    commit(&mut sink, 0, 12);
    crash::set(step, true);
    let _ = sink.commit_log().compact("w1-1");
    unreachable!("the compaction never reached {step}");
}

#[test]
fn a_compaction_killed_with_sigkill_at_any_step_leaves_a_log_that_resumes() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    for step in STEPS {
        let out = Out::local();
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "sink::parquet::checkpoint_tests::a_compaction_killed_with_sigkill_at_any_step_leaves_a_log_that_resumes",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{}|{step}", out.dir.path().display()))
            .output()
            .expect("child");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.status.signal(),
            Some(9),
            "{step}: the child was not killed there:\n{}",
            String::from_utf8_lossy(&status.stdout)
        );
        resumes_after_a_stopped_compaction(&out, step);
    }
}

/// A writer that stalled while another committed and compacted tries to
/// commit offsets whose entry the compaction deleted: the name is free
/// again, so only the check against the checkpoint can fence it.
fn stalled_writer_is_fenced(out: Out) {
    let mut stalled = out.sink(u64::MAX);
    let mut live = out.sink(1);
    commit(&mut live, 0, 3);
    drop(live);
    assert!(
        out.store()
            .read(&format!("{LOG_DIR}/t+0+00000000000000000000.json"))
            .expect("read")
            .is_none(),
        "the first entry was compacted away"
    );
    stalled
        .write(env(rows(&[(0, 0), (0, 1)]), &[(0, 0..2)]))
        .expect("write");
    let e = stalled.flush().expect_err("the stalled writer is fenced");
    assert_fenced_at_start(&e);
    assert!(e.to_string().contains("checkpoint"), "{e}");
    drop(stalled);
    assert_eq!(out.resume(), vec![Some(3 * PER); PARTITIONS as usize]);
    assert_exactly_once(&out, 3);
    let mut sink = out.sink(1);
    commit(&mut sink, 3, 2);
    sink.close().expect("close");
    assert_exactly_once(&out, 5);
}

#[test]
fn a_stalled_local_writer_is_fenced_after_its_entry_was_compacted_away() {
    stalled_writer_is_fenced(Out::local());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_object_store_writer_is_fenced_after_its_entry_was_compacted_away() {
    stalled_writer_is_fenced(Out::object());
}

#[test]
fn checkpoint_limits_must_be_positive() {
    let c: ParquetSinkConfig = toml::from_str(
        "path = \"out\"\ncommit_log = { checkpoint_entries = 0, checkpoint_bytes = \"0B\" }",
    )
    .expect("config");
    assert_eq!(
        crate::config::problems_in(&c, "sink")
            .into_iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        vec![
            "sink.commit_log.checkpoint_entries",
            "sink.commit_log.checkpoint_bytes"
        ]
    );
    let d: ParquetSinkConfig = toml::from_str("path = \"out\"").expect("config");
    assert_eq!(d.commit_log.checkpoint_entries, 1000);
}

/// `scorestream compact` on an object store stopped after its commit point
/// (the record) or after publishing the merged file: a reader may see rows
/// twice until the next run, which finishes the compaction; afterwards
/// every offset is in the output once, in fewer files, and the job resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_store_compaction_stopped_after_its_record_is_finished_by_the_next_run() {
    use super::compact::CompactOptions;
    use super::compact_object::compact_store;
    for step in ["compaction-recorded", "compaction-published"] {
        let out = Out::object();
        let mut sink = out.sink(u64::MAX);
        commit(&mut sink, 0, 6);
        drop(sink);
        let files = |out: &Out| {
            let tree = out.store().list_tree(SCORES_DIR).expect("tree");
            tree.iter().filter(|(_, n)| n.ends_with(".parquet")).count()
        };
        assert_eq!(files(&out), 12, "one file per partition per commit");
        let opts = CompactOptions {
            target_bytes: 1 << 30,
            older_than: std::time::Duration::ZERO,
            dry_run: false,
            props: writer_properties(&config(out.dir.path())),
        };
        let scratch = tempfile::tempdir().expect("scratch");
        crash::set(step, false);
        let stopped = compact_store(&out.store(), &opts, scratch.path());
        crash::set("", false);
        assert!(stopped.is_err(), "{step} was never reached");

        let report = compact_store(&out.store(), &opts, scratch.path()).expect("compact");
        assert_eq!(report.recovered, 1, "{step}");
        assert_exactly_once(&out, 6);
        assert_eq!(files(&out), 1, "{step}: merged into one file");
        assert!(
            out.store()
                .list_tree("")
                .expect("tree")
                .iter()
                .all(|(d, n)| !n.ends_with(".tmp") && !d.contains("compactions")),
            "{step}: nothing of the compaction is left"
        );
        assert_eq!(out.resume(), vec![Some(6 * PER); PARTITIONS as usize]);
        let mut sink = out.sink(u64::MAX);
        commit(&mut sink, 6, 2);
        sink.close().expect("close");
        assert_exactly_once(&out, 8);
    }
}
