//! The scored output as analysts meet it, read by clients no one here wrote
//! (DuckDB and pyarrow from PyPI) against a real broker (tansu): Hive
//! partitions by event date and hour, row counts per partition, the
//! documented schema, partition pruning, and no uncommitted file ever read,
//! not even after the writer is killed with files open.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::hours::{hour_options, produce_live, scored_by_hour};
use common::process::*;
use common::tansu::Tansu;
use common::{DEMO_ASSETS, assert_exactly_once, files_under, replay};
use scorestream_tools::demo::demo_world;
use scorestream_tools::synth::GenOptions;

/// Each generator's events start 5 minutes into its hour and advance ~1 ms
/// per event, so they all stay within it.
const HOURS: [i64; 3] = [8, 9, 10];
const PER_HOUR: u64 = 6_000;

fn options(i: usize) -> GenOptions {
    hour_options(HOURS[i], i, PER_HOUR, 80 + i as u64)
}

fn python(script: &str, args: &[&str]) -> serde_json::Value {
    let o = run(Command::new("python3")
        .arg(repo().join("tests/readers").join(script))
        .args(args));
    assert!(
        o.status.success(),
        "{script} failed (CI installs pyarrow and duckdb with pip):\n{}",
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json from the reader script")
}

fn temporary_files(out: &Path) -> Vec<std::path::PathBuf> {
    files_under(&out.join("scores"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

/// Open files with at least one row group written (a file's first rows stay
/// in memory until a row group fills).
fn open_files_with_rows(out: &Path) -> usize {
    temporary_files(out)
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .count()
}

/// Rows the commit log says are committed under `scores/`.
fn committed_rows(out: &Path) -> u64 {
    commit_entries(out)
        .iter()
        .flat_map(|e| e["files"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["path"].as_str().is_some_and(|p| p.starts_with("scores/")))
        .map(|f| f["rows"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn analysts_read_partitioned_output_and_never_an_uncommitted_file() {
    let broker = Tansu::start();
    broker.create_topic("transactions", 3);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &broker.brokers, &out, "analysts", TANSU_SESSION);
    // Files stay open for seconds while events keep coming, and row groups
    // are small enough that each file has several.
    let toml = std::fs::read_to_string(&job).expect("job").replace(
        "roll = { interval = \"1s\", inactivity = \"300ms\", max_rows = 2000 }",
        "roll = { interval = \"3s\", inactivity = \"2s\" }\nrow_group = { rows = 100 }",
    );
    std::fs::write(&job, toml).expect("job");

    // The first hour arrives live, paced, while the job runs; the job is
    // killed (SIGKILL) while it has files open.
    let world = demo_world(&DEMO_ASSETS).expect("world");
    let producer = produce_live(&broker.brokers, &world, options(0), PER_HOUR, 400);
    let log = dir.path().join("run.log");
    // Two rounds of commits first, so freshness can be measured on rows
    // that arrived while the job was running.
    kill_with_files_open(
        &job,
        &log,
        &[],
        || commit_entries(&out).len() >= 6,
        || open_files_with_rows(&out),
    );
    let open = temporary_files(&out);
    assert!(
        open.iter()
            .any(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 0),
        "the open files hold written rows: {open:?}"
    );
    let committed = committed_rows(&out);
    let seen = python("read_partitions.py", &[&out.to_string_lossy(), "9"]);
    assert_eq!(
        seen["duckdb_rows"],
        committed,
        "DuckDB reads exactly the committed rows, none of the {} open files",
        open.len()
    );
    assert_eq!(seen["pyarrow_rows"], committed);
    assert_eq!(seen["duckdb_distinct_event_ids"], committed);
    let freshness = freshness_ms(&out);

    // The other hours are already in Kafka when the job comes back.
    let live = producer.join().expect("producer").expect("produce");
    assert_eq!(live.delivered, PER_HOUR);
    let mut produced = replay(&world, options(0), PER_HOUR);
    for i in 1..HOURS.len() {
        produced.extend(common::tansu::produce_events(
            &broker.brokers,
            "transactions",
            options(i),
            PER_HOUR,
        ));
    }
    let mut child = spawn_run(&job, &["--exit-on-idle", "4s"], &log);
    wait_success(&mut child, &log, Duration::from_secs(180));
    assert_exactly_once(&out, &produced);
    assert!(temporary_files(&out).is_empty());

    let want = scored_by_hour(&produced, &HOURS, PER_HOUR);
    let total: u64 = want.values().sum();
    let seen = python("read_partitions.py", &[&out.to_string_lossy(), "9"]);
    for reader in ["duckdb", "pyarrow"] {
        let by_hour: BTreeMap<String, u64> =
            serde_json::from_value(seen[format!("{reader}_by_partition")].clone())
                .expect("counts by partition");
        assert_eq!(by_hour, want, "{reader}: rows per event_date/event_hour");
        assert_eq!(seen[format!("{reader}_rows")], total);
    }
    assert_eq!(seen["duckdb_distinct_event_ids"], total);
    assert_eq!(
        seen["duckdb_partition_types"],
        serde_json::json!(["DATE", "BIGINT"])
    );

    // Pruning: a filter on event_hour reads only that hour's files.
    let hour9 = files_under(&out.join("scores/event_date=2026-12-01/event_hour=9")).len();
    let all = files_under(&out.join("scores")).len();
    assert!(hour9 > 0 && hour9 < all, "{hour9} of {all}");
    assert_eq!(seen["duckdb_files_read_for_hour"], hour9 as u64);
    assert_eq!(seen["pyarrow_fragments_for_hour"], hour9 as u64);
    assert_eq!(seen["duckdb_rows_for_hour"], want["2026-12-01/09"]);

    // The documented schema, as pyarrow sees it.
    let schema: BTreeMap<String, String> =
        serde_json::from_value(seen["pyarrow_schema"].clone()).expect("schema");
    for (name, t) in [
        ("event_id", "string"),
        ("amount", "double"),
        ("event_time", "timestamp[ms, tz=+00:00]"),
        ("avg_amount_30d", "double"),
        ("features_missing", "bool"),
        ("missing_features", "list<item: string>"),
        ("stale_features", "list<item: string>"),
        ("features_unavailable", "bool"),
        ("score", "float"),
        ("model_name", "string"),
        ("model_version", "string"),
        ("scored_at", "timestamp[ms, tz=+00:00]"),
        ("source_topic", "string"),
        ("source_partition", "int32"),
        ("source_offset", "int64"),
        ("ingest_time", "timestamp[ms, tz=+00:00]"),
        ("trace_id", "string"),
        ("event_date", "string"),
        ("event_hour", "int32"),
    ] {
        assert_eq!(
            schema.get(name).map(String::as_str),
            Some(t),
            "column {name} in {schema:?}"
        );
    }
    // Files are zstd, carry statistics and have row groups of at most 1,000 rows.
    assert_eq!(seen["compression"], "ZSTD");
    assert_eq!(seen["statistics"], true);
    assert!(seen["max_row_group_rows"].as_u64().expect("rows") <= 100);
    assert!(seen["max_row_groups"].as_u64().expect("groups") > 1);

    // scorestream query sees the partition columns too, in every format.
    let q = |format: &str| {
        let o = run(bin()
            .args(["query", "--format", format, "--path"])
            .arg(&out)
            .arg(
                "SELECT CAST(event_date AS VARCHAR) AS d, event_hour AS h, count(*) AS n \
             FROM scores GROUP BY 1, 2 ORDER BY 1, 2",
            ));
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let json: Vec<serde_json::Value> = serde_json::from_str(&q("json")).expect("json array");
    let by_hour: BTreeMap<String, u64> = json
        .iter()
        .map(|r| {
            let d = r["d"].as_str().expect("d");
            let h = r["h"].as_i64().expect("h");
            (format!("{d}/{h:02}"), r["n"].as_u64().expect("n"))
        })
        .collect();
    assert_eq!(by_hour, want);
    let csv = q("csv");
    assert_eq!(csv.lines().next(), Some("d,h,n"));
    assert!(
        csv.contains(&format!("2026-12-01,9,{}", want["2026-12-01/09"])),
        "{csv}"
    );
    assert!(q("table").contains("| 2026-12-01 |"));

    // Compaction: while DuckDB and pyarrow count the rows over and over, the
    // small files of every (closed) partition are merged. Each count sees
    // every row exactly once: never both the old and the merged files, never
    // neither.
    let files_before = files_under(&out.join("scores")).len();
    let (stop, ready) = (dir.path().join("stop"), dir.path().join("ready"));
    let watcher = Command::new("python3")
        .arg(repo().join("tests/readers/watch_counts.py"))
        .args([&out, &stop, &ready])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the watcher");
    wait_for("the watcher's first read", Duration::from_secs(60), || {
        ready.exists()
    });
    let c = run(bin()
        .args(["compact", "--older-than", "0s", "--job"])
        .arg(&job));
    assert!(c.status.success(), "{}", text(&c.stderr));
    let report = text(&c.stdout);
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("merged scores/"))
            .count(),
        HOURS.len(),
        "{report}"
    );
    std::fs::write(&stop, b"").expect("stop the watcher");
    let w = watcher.wait_with_output().expect("watcher");
    assert!(w.status.success(), "{}", text(&w.stderr));
    let watched: serde_json::Value = serde_json::from_slice(&w.stdout).expect("json");
    for reader in ["duckdb", "pyarrow"] {
        let counts = watched["seen"][reader].as_object().expect("counts");
        assert_eq!(
            counts.keys().cloned().collect::<Vec<_>>(),
            vec![total.to_string()],
            "{reader} saw a count other than {total} during compaction: {watched}"
        );
    }
    eprintln!("readers during compaction: {watched}");
    let files_after = files_under(&out.join("scores")).len();
    assert_eq!(
        files_after,
        HOURS.len(),
        "one file per hour ({files_before} before)"
    );
    assert_exactly_once(&out, &produced);
    let seen = python("read_partitions.py", &[&out.to_string_lossy(), "9"]);
    assert_eq!(seen["duckdb_rows"], total);
    assert_eq!(seen["duckdb_files_read_for_hour"], 1);

    // Freshness of the live hour: Kafka timestamp to commit, for rows that
    // arrived once the job was consuming.
    eprintln!(
        "freshness with interval 3s, inactivity 2s: p50 {} ms, max {} ms over {} rows",
        freshness.0, freshness.1, freshness.2
    );
    assert!(
        freshness.1 <= 3_000 + 2_000,
        "a live row became readable {} ms after it reached Kafka",
        freshness.1
    );
}

/// (p50, max, rows) of commit time minus Kafka timestamp, for the rows that
/// arrived after the first commit (when the consumer was surely running).
fn freshness_ms(out: &Path) -> (i64, i64, usize) {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMillisecondType;
    let entries = commit_entries(out);
    let first_commit = entries
        .iter()
        .filter_map(|e| e["committed_at_ms"].as_i64())
        .min()
        .expect("a commit");
    let mut ages = Vec::new();
    for e in &entries {
        let at = e["committed_at_ms"].as_i64().expect("committed_at_ms");
        for f in e["files"].as_array().cloned().unwrap_or_default() {
            let path = f["path"].as_str().expect("path");
            if !path.starts_with("scores/") {
                continue;
            }
            for b in common::read_file(&out.join(path)) {
                let ingest = b
                    .column_by_name("ingest_time")
                    .expect("ingest_time")
                    .as_primitive::<TimestampMillisecondType>();
                ages.extend(
                    ingest
                        .values()
                        .iter()
                        .filter(|&&t| t > first_commit)
                        .map(|t| at - t),
                );
            }
        }
    }
    assert!(!ages.is_empty(), "rows arrived after the first commit");
    ages.sort_unstable();
    (ages[ages.len() / 2], ages[ages.len() - 1], ages.len())
}
