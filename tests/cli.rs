//! The real `scorestream` binary, run as a user would.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use common::process::*;
use common::*;
use rdkafka::mocking::MockCluster;
use scorestream_tools::demo::{demo_world, generator_options};
use scorestream_tools::synth::{EventGen, Pace, produce};

#[test]
fn validate_accepts_the_demo_job() {
    let o = run(bin()
        .args(["validate", "jobs/demo/job.toml"])
        .current_dir(repo()));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("valid") && out.contains("fraud-mlp v1") && out.contains("on cpu in f32"),
        "{out}"
    );
}

#[test]
fn validate_reports_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = std::fs::read_to_string(repo().join("jobs/demo/job.toml"))
        .expect("demo")
        .replace("max_wait = \"250ms\"", "max_wait = \"eventually\"")
        .replace("device = \"auto\"", "device = \"tpu\"")
        .replace("path = \"model\"", "path = \"no-such-model\"")
        .replace("topics = [\"transactions\"]", "topics = []");
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, bad).expect("write");
    let o = run(bin().arg("validate").arg(&p));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    for key in ["batch.max_wait", "model.device", "source.topics"] {
        assert!(err.contains(key), "`{key}` missing from:\n{err}");
    }

    // Once the syntax is right, the semantic checks name the missing model.
    let p2 = dir.path().join("bad2.toml");
    let only_model = std::fs::read_to_string(repo().join("jobs/demo/job.toml"))
        .expect("demo")
        .replace("path = \"model\"", "path = \"no-such-model\"")
        .replace(
            "path = \"features.csv\"",
            &format!("path = {:?}", repo().join("jobs/demo/features.csv")),
        );
    std::fs::write(&p2, only_model).expect("write");
    let o = run(bin().arg("validate").arg(&p2));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("model.path") && err.contains("no-such-model"),
        "{err}"
    );
}

/// A job whose model cannot run is refused by `validate`, before any event
/// is read: an ONNX operator candle lacks is named, as is a precision the
/// model's manifest does not allow.
#[test]
fn validate_names_an_unsupported_onnx_operator_and_a_disallowed_precision() {
    let dir = tempfile::tempdir().expect("tmp");
    let job = |model: &Path, precision: &str| {
        let config = std::fs::read_to_string(repo().join("jobs/demo/job.toml"))
            .expect("demo")
            .replace("path = \"model\"", &format!("path = {model:?}"))
            .replace(
                "device = \"auto\"",
                &format!("device = \"auto\"\nprecision = \"{precision}\""),
            )
            .replace(
                "path = \"features.csv\"",
                &format!("path = {:?}", repo().join("jobs/demo/features.csv")),
            );
        let p = dir.path().join("job.toml");
        std::fs::write(&p, config).expect("write");
        let o = run(bin().arg("validate").arg(&p));
        assert!(!o.status.success());
        text(&o.stderr)
    };
    let onnx = repo().join("tests/fixtures/models/onnx_layernorm");
    let err = job(&onnx, "auto");
    assert!(err.contains("model.path"), "{err}");
    if cfg!(feature = "onnx") {
        assert!(
            err.contains("`LayerNormalization` (node `node_layer_norm`)"),
            "{err}"
        );
    } else {
        assert!(err.contains("`onnx` feature"), "{err}");
    }
    let err = job(&repo().join("jobs/demo/model"), "bf16");
    assert!(
        err.contains("model.precision = \"bf16\"") && err.contains("fraud-mlp"),
        "{err}"
    );
}

#[test]
fn demo_then_query_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("demo");
    let o = run(bin()
        .args(["demo", "--events", "5000", "--partitions", "3", "--out"])
        .arg(&out));
    assert!(o.status.success(), "demo failed:\n{}", text(&o.stderr));
    let summary = text(&o.stdout);
    assert!(summary.contains("events produced: 5,000"), "{summary}");
    for line in [
        "rows scored:",
        "dead letters:",
        "files written:",
        "throughput:",
        "p50",
        "p99",
    ] {
        assert!(summary.contains(line), "summary lacks `{line}`:\n{summary}");
    }
    let rows_scored = summary_number(&summary, "rows scored:");

    let q = run(bin()
        .args(["query", "--path"])
        .arg(&out)
        .arg("SELECT count(*) AS n FROM scores"));
    assert!(q.status.success(), "{}", text(&q.stderr));
    assert!(
        text(&q.stdout).contains(&format!("| {rows_scored} ")),
        "{}",
        text(&q.stdout)
    );

    // Analysts' tools read the same files: pyarrow and DuckDB.
    let py = run(Command::new("python3")
        .arg(repo().join("tests/readers/read_output.py"))
        .arg(&out));
    assert!(
        py.status.success(),
        "pyarrow/DuckDB could not read the output (CI installs them with pip):\n{}",
        text(&py.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&py.stdout).expect("json from the reader script");
    let dead = summary_number(&summary, "dead letters:");
    assert_eq!(seen["pyarrow_rows"], rows_scored);
    assert_eq!(seen["duckdb_rows"], rows_scored);
    assert_eq!(
        seen["duckdb_distinct_event_ids"], rows_scored,
        "no event is scored twice"
    );
    assert_eq!(seen["pyarrow_dead_letters"], dead);
    assert_eq!(seen["duckdb_dead_letters"], dead);
    assert_eq!(seen["pyarrow_score_type"], "float");
    assert!(seen["duckdb_score_min"].as_f64().expect("min") >= 0.0);
    assert!(seen["duckdb_score_max"].as_f64().expect("max") <= 1.0);
    let columns: Vec<&str> = seen["pyarrow_columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for c in [
        "event_id",
        "amount",
        "avg_amount_30d",
        "features_missing",
        "score",
        "model_version",
        "source_offset",
    ] {
        assert!(columns.contains(&c), "column {c} missing from {columns:?}");
    }

    let q = run(bin()
        .args(["query", "--path"])
        .arg(&out)
        .arg("SELECT count(*) AS n FROM no_such_table"));
    assert!(!q.status.success());
    assert!(
        text(&q.stderr).contains("no_such_table"),
        "{}",
        text(&q.stderr)
    );

    // A second demo into the same directory replaces its own earlier output...
    let o = run(bin().args(["demo", "--events", "1000", "--out"]).arg(&out));
    assert!(o.status.success(), "{}", text(&o.stderr));
    // ...but never a directory it did not create.
    let foreign = dir.path().join("mine");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("notes.txt"), "mine").expect("write");
    let o = run(bin()
        .args(["demo", "--events", "10", "--out"])
        .arg(&foreign));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("not demo output"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).expect("left alone"),
        "mine"
    );
}

/// A directory made with `mkdir` for the demo is empty, so nothing of the
/// user's can be lost: the demo writes into it.
#[test]
fn demo_writes_into_an_existing_empty_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("empty");
    std::fs::create_dir_all(&out).expect("mkdir");
    let o = run(bin()
        .args(["demo", "--events", "500", "--partitions", "1", "--out"])
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let summary = text(&o.stdout);
    let scored = summary_number(&summary, "rows scored:");
    assert!(scored > 0, "{summary}");
    assert_eq!(scored_ids(&out).len() as u64, scored);

    // The query the demo suggests at the end runs, and counts those rows.
    let hint = summary
        .lines()
        .skip_while(|l| !l.starts_with("Query it:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no query suggested:\n{summary}"));
    let sql = hint
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no quoted SQL in `{hint}`"));
    assert!(
        hint.contains(&format!("--path {}", out.display())),
        "{hint}"
    );
    let q = run(bin()
        .args(["query", "--format", "csv", "--path"])
        .arg(&out)
        .arg(format!("SELECT sum(n) AS n FROM ({sql})")));
    assert!(q.status.success(), "{}", text(&q.stderr));
    assert_eq!(
        text(&q.stdout).lines().nth(1),
        Some(scored.to_string().as_str()),
        "{}",
        text(&q.stdout)
    );
}

/// SIGTERM mid-stream: the job drains, commits what it wrote and exits 0; a
/// restart picks up exactly where it stopped. Together the two runs hold
/// every event exactly once.
#[test]
fn sigterm_drains_and_commits_then_a_restart_resumes_without_loss_or_duplicates() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("transactions", 4, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &brokers, &out, "cli-sigterm", MOCK_SESSION);

    let world = demo_world(&DEMO_ASSETS).expect("world");
    let opts = generator_options(99);
    let n = 30_000;
    let producer = {
        let (brokers, world, opts) = (brokers.clone(), world.clone(), opts.clone());
        std::thread::spawn(move || {
            let mut g = EventGen::new(&world, opts);
            let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
            // Ten seconds of events: the first run must be signalled while
            // they still arrive, however slowly it starts on a busy machine.
            let pace = Pace {
                rate: Some(3_000),
                progress: &progress,
                stop: &stop,
                ahead_of: None,
            };
            produce(&brokers, "transactions", &mut g, n, &pace)
        })
    };

    let first = signal_mid_stream(bin().arg("run").arg(&job), &out, "TERM");
    assert!(
        text(&first.stdout).contains("stopped cleanly"),
        "{}",
        text(&first.stdout)
    );
    let in_output = (scored_ids(&out).len() + dead_letter_ids(&out).len()) as i64;
    assert!(in_output > 0);
    assert_eq!(
        committed_total(&brokers, "cli-sigterm", "transactions", 4),
        in_output,
        "committed offsets must cover exactly what the first run wrote"
    );

    let report = producer.join().expect("producer thread").expect("produce");
    assert_eq!(report.delivered, n);
    assert!(
        in_output < n as i64,
        "SIGTERM should have landed mid-stream ({in_output} of {n} done)"
    );

    let second = run(bin().arg("run").arg(&job).args(["--exit-on-idle", "3s"]));
    assert!(second.status.success(), "{}", text(&second.stderr));
    let produced = replay(&world, opts, n);
    assert_exactly_once(&out, &produced);
    assert_eq!(
        committed_total(&brokers, "cli-sigterm", "transactions", 4),
        n as i64
    );
}

/// Starts `cmd`, sends it `signal` once its first scored file is committed
/// under `out`, and checks it then exits 0.
fn signal_mid_stream(cmd: &mut Command, out: &Path, signal: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for("the first scored file", Duration::from_secs(60), || {
        !read_dir(&out.join("scores")).is_empty()
    });
    let kill = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(kill.success());
    let o = child.wait_with_output().expect("wait");
    assert!(
        o.status.success(),
        "must exit 0 after SIG{signal}:\n{}",
        text(&o.stderr)
    );
    o
}

fn summary_number(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.split_whitespace().next())
        .map(|v| v.replace(',', "").parse().expect("number"))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{summary}"))
}

/// Ctrl-C during the demo: the generator stops, the job drains and commits
/// everything it read, the summary says so, and the exit code is 0.
#[test]
fn ctrl_c_during_the_demo_drains_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("demo");
    let o = signal_mid_stream(
        bin()
            .args(["demo", "--events", "5000000", "--rate", "20000", "--out"])
            .arg(&out),
        &out,
        "INT",
    );
    let summary = text(&o.stdout);
    assert!(summary.contains("interrupted"), "{summary}");
    let events_in = summary_number(&summary, "events in:");
    let scored = summary_number(&summary, "rows scored:");
    let dead = summary_number(&summary, "dead letters:");
    assert!(events_in > 0 && events_in < 5_000_000);
    assert_eq!(
        scored + dead,
        events_in,
        "everything read was drained:\n{summary}"
    );
    assert_eq!(scored_ids(&out).len() as u64, scored);
    assert_eq!(dead_letter_ids(&out).len() as u64, dead);
}

/// A backfill: events whose Kafka timestamps are three days old. The run
/// summary reports their real age at commit, apart from the processing
/// latency, instead of the one-hour bound its histogram used to clamp to.
#[test]
fn the_summary_reports_the_real_age_of_events_produced_days_ago() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("transactions", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let three_days_ago = scorestream_operators::now_ms() - 3 * 86_400_000;
    let world = demo_world(&DEMO_ASSETS).expect("world");
    let mut g = EventGen::new(
        &world,
        scorestream_tools::synth::GenOptions {
            start_ms: three_days_ago,
            ..generator_options(5)
        },
    );
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let (mut value, mut key) = (String::new(), String::new());
    for i in 0..500 {
        g.next_into(&mut value, &mut key);
        let record = BaseRecord::to("transactions")
            .payload(value.as_str())
            .key(key.as_str())
            .timestamp(three_days_ago + i);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = job_file(dir.path(), &brokers, &out, "backfill", MOCK_SESSION);
    let o = run(bin().arg("run").arg(&job).args(["--exit-on-idle", "2s"]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let summary = text(&o.stdout);
    let age = summary
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("event age at commit (Kafka timestamp to committed file): ")
        })
        .unwrap_or_else(|| panic!("no event-age line:\n{summary}"));
    for part in ["p50 3.0 d", "p99 3.0 d", "max 3.0 d"] {
        assert!(age.contains(part), "`{part}` not in `{age}`");
    }
    let processing = summary
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("processing latency (batch fetched to written): ")
        })
        .unwrap_or_else(|| panic!("no processing-latency line:\n{summary}"));
    assert!(
        processing.contains(" ms") || processing.contains(" s,"),
        "processing takes milliseconds or seconds, not days: {processing}"
    );
}
