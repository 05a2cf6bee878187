//! `scorestream bench` against a real broker (tansu): it must account for
//! every event it produced, write real output, and report figures that fit
//! what happened. How fast it was is for BENCHMARKS.md, not for a test.

mod common;

use common::process::*;
use common::tansu::Tansu;
use common::*;
use scorestream_tools::demo::{EMBEDDED, demo_world, generator_options};

const EVENTS: u64 = 20_000;

/// Runs `scorestream bench` on [`EVENTS`] events over three partitions with
/// `extra` arguments; returns its output directory, stdout and JSON report.
fn bench_with(
    tansu: &Tansu,
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> (std::path::PathBuf, String, serde_json::Value) {
    let out = dir.join(name);
    let json = dir.join(format!("{name}.json"));
    let events = EVENTS.to_string();
    let mut args = vec![
        "bench",
        "--brokers",
        tansu.brokers.as_str(),
        "--events",
        events.as_str(),
        "--partitions",
        "3",
        "--out",
        out.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let o = run(bin().args(args));
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    let report = serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("json");
    (out, stdout, report)
}

/// events/s is the events over the seconds the report gives.
fn assert_rate_fits(r: &serde_json::Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(
        (f("events_per_second") - EVENTS as f64 / f("seconds")).abs() / f("events_per_second")
            < 0.01,
        "{r}"
    );
}

fn bench(tansu: &Tansu, dir: &std::path::Path, model: &str) -> serde_json::Value {
    let (out, stdout, report) = bench_with(tansu, dir, model, &["--model", model]);
    assert!(
        stdout.contains("events/s (first fetch to last commit)"),
        "{stdout}"
    );
    // Every event, exactly once, in the Parquet it wrote.
    let world = demo_world(&EMBEDDED).expect("world");
    assert_exactly_once(&out, &replay(&world, generator_options(7), EVENTS));
    report
}

#[test]
fn bench_accounts_for_every_event_and_reports_what_it_measured() {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().expect("tmp");
    for model in ["small", "large"] {
        let r = bench(&tansu, dir.path(), model);
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        assert_eq!(r["model"], model);
        assert_eq!(f("accounted") as u64, EVENTS, "{r}");
        assert_eq!(f("rows_scored") + f("dead_letters"), EVENTS as f64, "{r}");
        assert!(f("dead_letters") > 0.0, "the demo's malformed events: {r}");
        let rows: usize = read_dir(&dir.path().join(model).join("scores"))
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(
            rows as f64,
            f("rows_scored"),
            "the report counts what was written"
        );
        assert_rate_fits(&r);
        assert!(f("batches") >= 1.0, "{r}");
        assert!(
            f("batch_latency_p50_ms") > 0.0
                && f("batch_latency_p99_ms") >= f("batch_latency_p50_ms"),
            "{r}"
        );
        assert!(f("cpu_seconds") > 0.0, "{r}");
        assert!(f("peak_rss_bytes") > 1e6, "{r}");
        let stages = r["stages"].as_array().expect("stages");
        let names: Vec<&str> = stages.iter().filter_map(|s| s["stage"].as_str()).collect();
        assert_eq!(names, ["decode", "feature_join", "score", "sink_write"]);
        let shares: f64 = stages.iter().filter_map(|s| s["share"].as_f64()).sum();
        assert!((shares - 1.0).abs() < 1e-6, "{r}");
        assert!(
            stages.iter().all(|s| s["seconds"].as_f64() > Some(0.0)),
            "{r}"
        );
    }
}

#[test]
fn source_only_reads_every_event_and_writes_nothing() {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().expect("tmp");
    let (out, stdout, r) = bench_with(&tansu, dir.path(), "source", &["--source-only"]);
    assert!(stdout.contains("--source-only"), "{stdout}");
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(r["source_only"], true);
    assert_eq!(f("accounted") as u64, EVENTS, "every event read: {r}");
    assert_eq!(f("rows_scored"), 0.0, "{r}");
    assert!(
        f("cpu_seconds") > 0.0 && f("events_per_second") > 0.0,
        "{r}"
    );
    assert_rate_fits(&r);
    assert!(
        !out.join("scores").exists() || read_dir(&out.join("scores")).is_empty(),
        "nothing is scored or written"
    );

    // It measures the source: options that make no sense there are refused.
    let o = run(bin().args([
        "bench",
        "--brokers",
        &tansu.brokers,
        "--source-only",
        "--rate",
        "1000",
    ]));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--rate"), "{}", text(&o.stderr));
}
