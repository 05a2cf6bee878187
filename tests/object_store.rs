//! The output on object storage: a job writes to `s3://bucket/prefix` on a
//! real S3-compatible server (moto, on loopback) with the same commit
//! protocol as a local directory. It is killed mid-stream with files open,
//! resumes, and pyarrow (with its own S3 client) and `scorestream query`
//! read exactly the committed rows, each event once, partitions pruned.
//! DuckDB is not among the readers here: its S3 support is the httpfs
//! extension, which DuckDB downloads at run time (no network in CI).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::hours::{hour_options, produce_live, scored_by_hour};
use common::process::*;
use common::s3_server::{ACCESS_KEY, Bucket, S3Server, SECRET_KEY};
use common::tansu::Tansu;
use common::{DEMO_ASSETS, files_under, replay};
use scorestream_tools::demo::demo_world;
use scorestream_tools::synth::GenOptions;

const BUCKET: &str = "analytics";
const PREFIX: &str = "jobs/fraud";
const HOURS: [i64; 3] = [8, 9, 10];
const PER_HOUR: u64 = 4_000;

fn options(i: usize) -> GenOptions {
    hour_options(HOURS[i], i, PER_HOUR, 90 + i as u64)
}

fn read_s3(s3: &S3Server, hour: i64) -> serde_json::Value {
    let o = run(Command::new("python3")
        .arg(repo().join("tests/readers/read_s3.py"))
        .args([
            &s3.endpoint,
            &format!("{BUCKET}/{PREFIX}"),
            &hour.to_string(),
        ])
        .envs(s3.env()));
    assert!(
        o.status.success(),
        "read_s3.py failed (CI installs pyarrow with pip):\n{}",
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json from read_s3.py")
}

/// Spool files holding at least one written row group: the job's open files.
fn open_spool_files(spool: &Path) -> usize {
    files_under(spool)
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .count()
}

/// The data files the commit log names, as `bucket/key`s, with their rows.
fn committed_files(bucket: &Bucket) -> BTreeMap<String, u64> {
    bucket
        .commit_entries(PREFIX)
        .iter()
        .flat_map(|e| e["files"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| {
            let path = f["path"].as_str()?;
            path.starts_with("scores/").then(|| {
                (
                    format!("{BUCKET}/{PREFIX}/{path}"),
                    f["rows"].as_u64().unwrap_or(0),
                )
            })
        })
        .collect()
}

#[test]
fn a_job_on_s3_commits_exactly_once_and_readers_never_see_uncommitted_rows() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let bucket = s3.bucket(BUCKET);
    let broker = Tansu::start();
    broker.create_topic("transactions", 3);
    let dir = tempfile::tempdir().expect("tmp");
    let unused = dir.path().join("unused");
    let spool = dir.path().join("spool");
    let job = job_file(dir.path(), &broker.brokers, &unused, "s3", TANSU_SESSION);
    let toml = std::fs::read_to_string(&job)
        .expect("job")
        .replace(
            &format!("path = {unused:?}"),
            &format!(
                "path = \"s3://{BUCKET}/{PREFIX}\"\nspool_dir = {spool:?}\n\
                 s3 = {{ endpoint = \"{}\", region = \"us-east-1\", allow_http = true }}",
                s3.endpoint
            ),
        )
        .replace(
            "roll = { interval = \"1s\", inactivity = \"300ms\", max_rows = 2000 }",
            "roll = { interval = \"3s\", inactivity = \"2s\" }\nrow_group = { rows = 100 }",
        );
    assert!(
        toml.contains("s3://") && toml.contains("rows = 100"),
        "{toml}"
    );
    std::fs::write(&job, toml).expect("job");
    // The job gets credentials the standard way; the endpoint is in its file.
    let creds = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
    ];

    let valid = run(bin().arg("validate").arg(&job).envs(creds.clone()));
    assert!(valid.status.success(), "{}", text(&valid.stderr));
    assert!(
        text(&valid.stdout).contains(&format!("s3://{BUCKET}/{PREFIX}")),
        "{}",
        text(&valid.stdout)
    );

    // The first hour arrives live, paced; the job is killed (SIGKILL) while
    // it has files open.
    let world = demo_world(&DEMO_ASSETS).expect("world");
    let producer = produce_live(&broker.brokers, &world, options(0), PER_HOUR, 300);
    let log = dir.path().join("run.log");
    kill_with_files_open(
        &job,
        &log,
        &creds,
        || bucket.commit_entries(PREFIX).len() >= 4,
        || open_spool_files(&spool),
    );

    let committed = committed_files(&bucket);
    let seen = read_s3(&s3, 9);
    let read: BTreeSet<String> = serde_json::from_value(seen["files"].clone()).expect("files");
    assert_eq!(
        read,
        committed.keys().cloned().collect::<BTreeSet<_>>(),
        "pyarrow reads exactly the files the commit log names"
    );
    let rows: u64 = committed.values().sum();
    assert_eq!(seen["pyarrow_rows"], rows);
    assert_eq!(seen["distinct_event_ids"], rows);

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
    let mut child = spawn_run_with(&job, &["--exit-on-idle", "4s"], &log, &creds);
    wait_success(&mut child, &log, Duration::from_secs(180));

    let want = scored_by_hour(&produced, &HOURS, PER_HOUR);
    let total: u64 = want.values().sum();
    let malformed = produced.len() as u64 - total;
    let seen = read_s3(&s3, 9);
    let by_hour: BTreeMap<String, u64> =
        serde_json::from_value(seen["by_partition"].clone()).expect("by partition");
    assert_eq!(by_hour, want, "rows per event_date/event_hour");
    assert_eq!(seen["pyarrow_rows"], total, "every event scored once");
    assert_eq!(seen["distinct_event_ids"], total, "no event twice");
    assert_eq!(seen["dead_letter_rows"], malformed);
    let read: BTreeSet<String> = serde_json::from_value(seen["files"].clone()).expect("files");
    assert_eq!(
        read,
        committed_files(&bucket)
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    for column in [
        "event_id",
        "score",
        "model_version",
        "trace_id",
        "event_date",
        "event_hour",
    ] {
        assert!(
            seen["schema"].get(column).is_some(),
            "{column} in {}",
            seen["schema"]
        );
    }

    // Pruning: a filter on event_hour reads only that hour's objects.
    let keys = bucket.keys(&format!("{PREFIX}/scores"));
    let data = |k: &&String| k.ends_with(".parquet") && !k.contains("/.");
    let hour9 = keys
        .iter()
        .filter(data)
        .filter(|k| k.contains("/event_date=2026-12-01/event_hour=9/"))
        .count();
    let all = keys.iter().filter(data).count();
    assert!(hour9 > 0 && hour9 < all, "{hour9} of {all}");
    assert_eq!(seen["fragments_for_hour"], hour9 as u64);

    // A stopped job leaves nothing half-done: no temporary object, no spool file.
    let everything = bucket.keys(PREFIX);
    assert!(
        everything.iter().all(|k| !k.ends_with(".tmp")),
        "{everything:?}"
    );
    assert_eq!(files_under(&spool), Vec::<std::path::PathBuf>::new());

    // `scorestream query` reads the same output through DataFusion: from
    // the job file, and from the URL with the endpoint in the environment.
    let sql =
        "SELECT CAST(event_hour AS BIGINT) AS h, count(*) AS n FROM scores GROUP BY 1 ORDER BY 1";
    let from_job = run(bin()
        .args(["query", "--format", "json", "--job"])
        .arg(&job)
        .arg(sql)
        .envs(creds.clone()));
    assert!(from_job.status.success(), "{}", text(&from_job.stderr));
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&from_job.stdout).expect("query json");
    let by_hour: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                format!("2026-12-01/{:02}", r["h"].as_i64().expect("h")),
                r["n"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(by_hour, want);
    let from_url = run(bin()
        .args([
            "query",
            "--format",
            "csv",
            "--path",
            &format!("s3://{BUCKET}/{PREFIX}"),
            "SELECT count(*) AS n FROM dead_letters",
        ])
        .envs(s3.env()));
    assert!(from_url.status.success(), "{}", text(&from_url.stderr));
    assert_eq!(text(&from_url.stdout), format!("n\n{malformed}\n"));

    // Credentials reach S3 but never the job's log.
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("job starting"), "{logged}");
    assert!(!logged.contains(SECRET_KEY), "the secret key was logged");
}

/// Mistakes in an S3 output are named before anything runs, and a bucket
/// that does not exist is reported with its URL.
#[test]
fn s3_output_mistakes_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let unused = dir.path().join("unused");
    let job = job_file(dir.path(), "127.0.0.1:1", &unused, "s3-bad", MOCK_SESSION);
    let base = std::fs::read_to_string(&job).expect("job");
    let with_path = |p: &str| base.replace(&format!("path = {unused:?}"), &format!("path = {p:?}"));

    std::fs::write(&job, with_path("gs://bucket/out")).expect("job");
    let o = run(bin().arg("validate").arg(&job));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("sink")
            && text(&o.stderr).contains("unsupported storage scheme `gs://`"),
        "{}",
        text(&o.stderr)
    );

    let s3 = S3Server::start();
    std::fs::write(
        &job,
        with_path("s3://no-such-bucket/out").replace(
            "[sink]",
            &format!(
                "[sink]\ns3 = {{ endpoint = \"{}\", region = \"us-east-1\", allow_http = true }}",
                s3.endpoint
            ),
        ),
    )
    .expect("job");
    let o = run(bin()
        .args(["query", "--job"])
        .arg(&job)
        .arg("SELECT 1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("s3://no-such-bucket/out"), "{err}");
    assert!(!err.contains(SECRET_KEY), "{err}");

    let compact = run(bin()
        .args(["compact", "--older-than", "0s", "--job"])
        .arg(&job)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY));
    assert!(!compact.status.success());
    let err = text(&compact.stderr);
    assert!(err.contains("s3://no-such-bucket/out"), "{err}");
    assert!(!err.contains(SECRET_KEY), "{err}");
}

/// The job's file names of one partition directory of `scores/`, readable ones only.
fn data_files(bucket: &Bucket, hour: i64) -> Vec<String> {
    bucket
        .keys(&format!(
            "{PREFIX}/scores/event_date=2026-12-01/event_hour={hour}"
        ))
        .into_iter()
        .filter(|k| k.ends_with(".parquet") && !k.contains("/."))
        .collect()
}

/// `scorestream compact` on an S3 output: the merged file is uploaded
/// hidden, committed by a compaction record, published, and only then are
/// the small files deleted. pyarrow reads the same rows from fewer files,
/// nothing of the compaction is left behind, and the job resumes after it
/// from its commit log, writing each event once.
#[test]
fn compacting_an_s3_output_keeps_every_row_once_in_fewer_files_and_the_job_resumes() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let bucket = s3.bucket(BUCKET);
    let broker = Tansu::start();
    broker.create_topic("transactions", 3);
    let dir = tempfile::tempdir().expect("tmp");
    let unused = dir.path().join("unused");
    let job = job_file(
        dir.path(),
        &broker.brokers,
        &unused,
        "s3-compact",
        TANSU_SESSION,
    );
    let toml = std::fs::read_to_string(&job).expect("job").replace(
        &format!("path = {unused:?}"),
        &format!(
            "path = \"s3://{BUCKET}/{PREFIX}\"\nspool_dir = {:?}\n\
             s3 = {{ endpoint = \"{}\", region = \"us-east-1\", allow_http = true }}",
            dir.path().join("spool"),
            s3.endpoint
        ),
    );
    // Checkpoint the commit log after almost every commit, so the resume
    // below reads a checkpointed log on S3.
    let roll = "roll = { interval = \"1s\", inactivity = \"300ms\", max_rows = 2000 }";
    assert!(toml.contains(roll), "job_file's roll changed");
    let toml = toml.replace(
        roll,
        &format!("{roll}\ncommit_log = {{ checkpoint_entries = 2 }}"),
    );
    std::fs::write(&job, toml).expect("job");
    let log = dir.path().join("run.log");
    let env = s3.env();

    let mut produced =
        common::tansu::produce_events(&broker.brokers, "transactions", options(1), PER_HOUR);
    let mut first = spawn_run_with(&job, &["--exit-on-idle", "3s"], &log, &env);
    wait_success(&mut first, &log, Duration::from_secs(180));
    let before = data_files(&bucket, 9);
    assert!(before.len() >= 3, "small files to merge: {before:?}");
    let want = scored_by_hour(&produced, &[9], PER_HOUR);
    let rows_before = read_s3(&s3, 9);
    assert_eq!(rows_before["pyarrow_rows"], want["2026-12-01/09"]);

    let compact = run(bin()
        .args([
            "compact",
            "--older-than",
            "0s",
            "--target-size",
            "1GiB",
            "--job",
        ])
        .arg(&job)
        .envs(env.clone()));
    assert!(compact.status.success(), "{}", text(&compact.stderr));
    assert!(
        text(&compact.stdout).contains(&format!("{} files -> 1", before.len())),
        "{}",
        text(&compact.stdout)
    );
    let after = data_files(&bucket, 9);
    assert_eq!(after.len(), 1, "{after:?}");
    let seen = read_s3(&s3, 9);
    assert_eq!(
        seen["pyarrow_rows"], rows_before["pyarrow_rows"],
        "same rows"
    );
    assert_eq!(
        seen["distinct_event_ids"], seen["pyarrow_rows"],
        "each once"
    );
    let by_hour: BTreeMap<String, u64> =
        serde_json::from_value(seen["by_partition"].clone()).expect("by partition");
    assert_eq!(by_hour, want);
    let leftovers: Vec<String> = bucket
        .keys(PREFIX)
        .into_iter()
        .filter(|k| k.ends_with(".tmp") || k.contains("_scorestream/compaction"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new(), "no temporary, no record");

    // The job comes back after the compaction: it resumes from its commit
    // log (the files the log names are gone; the offsets are not).
    produced.extend(common::tansu::produce_events(
        &broker.brokers,
        "transactions",
        options(2),
        PER_HOUR,
    ));
    let mut again = spawn_run_with(&job, &["--exit-on-idle", "3s"], &log, &env);
    wait_success(&mut again, &log, Duration::from_secs(180));
    let want = scored_by_hour(&produced, &[9, 10], PER_HOUR);
    let seen = read_s3(&s3, 9);
    let by_hour: BTreeMap<String, u64> =
        serde_json::from_value(seen["by_partition"].clone()).expect("by partition");
    assert_eq!(by_hour, want, "hour 9 not written again, hour 10 written");
    assert_eq!(seen["distinct_event_ids"], seen["pyarrow_rows"]);
    assert_eq!(data_files(&bucket, 9), after, "the merged file stays");
    let checkpoints = bucket.keys(&format!("{PREFIX}/_scorestream/checkpoints"));
    assert!(
        (1..=2).contains(&checkpoints.len()),
        "the log was checkpointed on S3: {checkpoints:?}"
    );
    let entries = bucket.commit_entries(PREFIX).len();
    assert!(entries <= 2 + 3 + 3, "{entries} entries left in the log");
}
