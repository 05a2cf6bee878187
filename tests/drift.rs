//! Drift detection end to end against a real broker (tansu): a scored
//! reference is profiled with `scorestream profile`, then a job with
//! `[drift]` scores a stream whose `amount` is shifted mid-stream. The alert
//! must fire for `amount` and no other feature, within one window of the
//! shift, in the log, on the alerts topic and in the drift table that
//! `scorestream query`, pyarrow and DuckDB read.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::*;
use common::tansu::{Tansu, produce_events};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use scorestream_tools::demo::generator_options;
use scorestream_tools::synth::GenOptions;

const WINDOW: u64 = 5_000;
/// Events before the shift: the shift lands inside the second window.
const CLEAN: u64 = 7_500;
const SHIFTED: u64 = 12_500;
/// Input columns watched; `amount` is the only one the shift touches.
const FEATURES: [&str; 8] = [
    "amount",
    "channel",
    "merchant_category",
    "country",
    "avg_amount_30d",
    "account_age_days",
    "utilization",
    "txn_count_7d",
];

/// One row of the drift table, as the test reads it back.
#[derive(Debug, Clone)]
struct Row {
    start: i64,
    end: i64,
    rows: u64,
    skipped: u64,
    feature: String,
    psi: Option<f64>,
    breached: Vec<String>,
}

fn drift_rows(out: &Path) -> Vec<Row> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt64Type};
    let mut rows = Vec::new();
    for b in common::read_dir(&out.join("drift")) {
        let col = |n: &str| b.column_by_name(n).unwrap_or_else(|| panic!("column {n}"));
        let start = col("window_start").as_primitive::<TimestampMillisecondType>();
        let end = col("window_end").as_primitive::<TimestampMillisecondType>();
        let wrows = col("window_rows").as_primitive::<UInt64Type>();
        let skipped = col("skipped_rows").as_primitive::<UInt64Type>();
        let feature = col("feature").as_string::<i32>();
        let psi = col("psi").as_primitive::<Float64Type>();
        let breached = col("breached").as_list::<i32>();
        for i in 0..b.num_rows() {
            let list = breached.value(i);
            let list = list.as_string::<i32>();
            rows.push(Row {
                start: start.value(i),
                end: end.value(i),
                rows: wrows.value(i),
                skipped: skipped.value(i),
                feature: feature.value(i).to_owned(),
                psi: psi.is_valid(i).then(|| psi.value(i)),
                breached: (0..list.len()).map(|j| list.value(j).to_owned()).collect(),
            });
        }
    }
    rows.sort_by(|a, b| (a.start, a.end, &a.feature).cmp(&(b.start, b.end, &b.feature)));
    rows
}

/// The alerts on `topic`, read from the start.
fn alerts(brokers: &str, topic: &str, expect: usize) -> Vec<serde_json::Value> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "drift-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    c.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < expect && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("alert message");
            let v = serde_json::from_slice(m.payload().expect("payload")).expect("alert is JSON");
            got.push(v);
        }
    }
    // nothing beyond what the table recorded
    if let Some(Ok(m)) = c.poll(Duration::from_secs(1)) {
        panic!(
            "an alert the drift table does not record: {:?}",
            m.payload_view::<str>()
        );
    }
    got
}

#[test]
fn a_shift_in_amount_alerts_for_amount_only_within_one_window() {
    let broker = Tansu::start();
    broker.create_topic("reference", 1);
    broker.create_topic("transactions", 1);
    broker.create_topic("drift-alerts", 1);
    let dir = tempfile::tempdir().expect("tmp");

    // 1. A scored reference: the same generator, unshifted.
    let ref_out = dir.path().join("reference");
    let ref_dir = dir.path().join("ref");
    std::fs::create_dir_all(&ref_dir).expect("dir");
    let job = job_file(&ref_dir, &broker.brokers, &ref_out, "ref", TANSU_SESSION);
    let toml = std::fs::read_to_string(&job)
        .expect("job")
        .replace("topics = [\"transactions\"]", "topics = [\"reference\"]");
    std::fs::write(&job, toml).expect("job");
    produce_events(&broker.brokers, "reference", generator_options(61), 20_000);
    let log = dir.path().join("reference.log");
    let mut child = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut child, &log, Duration::from_secs(120));

    let profile = dir.path().join("profile.json");
    let columns = format!("{},score", FEATURES.join(","));
    let p = run(bin()
        .args(["profile", "--input"])
        .arg(ref_out.join("scores"))
        .arg("--out")
        .arg(&profile)
        .args(["--columns", &columns]));
    assert!(p.status.success(), "profile: {}", text(&p.stderr));

    // 2. The live job, watching every profiled column (the default).
    let out = dir.path().join("live");
    let job = job_file(dir.path(), &broker.brokers, &out, "live", TANSU_SESSION);
    let mut toml = std::fs::read_to_string(&job).expect("job");
    toml.push_str(&format!(
        "\n[drift]\nprofile = {profile:?}\nwindow = {{ rows = {WINDOW} }}\nqueue_batches = 64\n\
         thresholds = {{ psi = 0.2, ks = 0.15, missing_rate_change = 0.1 }}\n\
         alerts_topic = \"drift-alerts\"\n"
    ));
    std::fs::write(&job, toml).expect("job");
    let opts = generator_options(62);
    produce_events(&broker.brokers, "transactions", opts.clone(), CLEAN);
    let shifted = GenOptions {
        seed: 6_200,
        first_seq: 1_000_000,
        amount_factor: 3.0,
        ..opts
    };
    produce_events(&broker.brokers, "transactions", shifted, SHIFTED);
    let log = dir.path().join("live.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn_run(
        &job,
        &["--exit-on-idle", "3s", "--metrics-listen", &listen],
        &log,
    );
    // While it runs, Prometheus would see amount's PSI as a gauge.
    let mut amount_psi = None;
    while amount_psi.is_none_or(|v: f64| v <= 0.2) && child.try_wait().expect("wait").is_none() {
        amount_psi = scrape(&listen).and_then(|m| gauge(&m, "amount", "psi"));
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_success(&mut child, &log, Duration::from_secs(180));
    assert!(
        amount_psi.is_some_and(|v| v > 0.2),
        "scraped amount PSI: {amount_psi:?}"
    );

    // 3. The drift table: one row per watched column per window.
    let rows = drift_rows(&out);
    let mut windows: BTreeMap<(i64, i64), Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        windows.entry((r.start, r.end)).or_default().push(r);
    }
    let windows: Vec<Vec<&Row>> = windows.into_values().collect();
    let sizes: Vec<u64> = windows.iter().map(|w| w[0].rows).collect();
    let scored = CLEAN + SHIFTED;
    assert_eq!(
        sizes.iter().sum::<u64>() + windows.iter().map(|w| w[0].skipped).sum::<u64>(),
        scored - dead_letters(&out),
        "every scored row is in a window or counted as skipped"
    );
    assert!(rows.iter().all(|r| r.skipped == 0), "the operator kept up");
    assert_eq!(&sizes[..3], &[WINDOW; 3], "{sizes:?}");
    for w in &windows {
        let seen: BTreeSet<&str> = w.iter().map(|r| r.feature.as_str()).collect();
        let want: BTreeSet<&str> = FEATURES.iter().copied().chain(["score"]).collect();
        assert_eq!(seen, want, "every profiled column, score included");
    }

    let breached = |w: &[&Row], feature: &str| {
        w.iter()
            .find(|r| r.feature == feature)
            .is_some_and(|r| !r.breached.is_empty())
    };
    // Window 1 is entirely before the shift: nothing fires.
    for r in &windows[0] {
        assert!(r.breached.is_empty(), "false alert before the shift: {r:?}");
    }
    // The shift starts inside window 2; window 3 is the first entirely
    // after it. The alert fires by then, and in every later window.
    assert!(
        breached(&windows[1], "amount") || breached(&windows[2], "amount"),
        "amount's alert is late: {:?}",
        &windows[..3]
    );
    for w in &windows[2..] {
        assert!(breached(w, "amount"), "{w:?}");
        let psi = w.iter().find(|r| r.feature == "amount").and_then(|r| r.psi);
        assert!(psi.is_some_and(|p| p > 0.2), "{psi:?}");
    }
    // No other input feature fires, in any window.
    for w in &windows {
        for r in w {
            if r.feature != "amount" && r.feature != "score" {
                assert!(r.breached.is_empty(), "false alert: {r:?}");
            }
        }
    }

    // 4. Alerts: logged as JSON and produced to the alerts topic, one per breach.
    let expected: usize = rows.iter().map(|r| r.breached.len()).sum();
    let log_text = std::fs::read_to_string(&log).expect("log");
    let logged = log_text
        .lines()
        .filter(|l| l.contains("drift threshold breached"))
        .count();
    assert_eq!(logged, expected, "{log_text}");
    let produced = alerts(&broker.brokers, "drift-alerts", expected);
    assert_eq!(produced.len(), expected);
    for a in &produced {
        assert_eq!(a["job"], "fraud-demo");
        assert_eq!(a["model_version"], "1");
        assert!(a["model_name"].as_str().is_some_and(|n| !n.is_empty()));
        let feature = a["feature"].as_str().expect("feature");
        assert!(feature == "amount" || feature == "score", "{a}");
        let (value, threshold) = (a["value"].as_f64(), a["threshold"].as_f64());
        assert!(
            value.expect("value").abs() > threshold.expect("threshold"),
            "{a}"
        );
        assert!(a["window_start_ms"].as_i64() <= a["window_end_ms"].as_i64());
        assert!(a["window_rows"].as_u64().is_some_and(|n| n > 0));
        let row = rows
            .iter()
            .find(|r| {
                r.feature == feature && r.start == a["window_start_ms"].as_i64().unwrap_or(-1)
            })
            .unwrap_or_else(|| panic!("the alert's window is in the table: {a}"));
        let statistic = a["statistic"].as_str().expect("statistic");
        assert!(
            row.breached.iter().any(|s| s == statistic),
            "{a} vs {row:?}"
        );
    }
    assert!(log_text.contains("\"feature\":\"amount\""), "{log_text}");

    // 5. Analysts: `scorestream query`, pyarrow and DuckDB read the table.
    let q = run(bin().args(["query", "--path"]).arg(&out).arg(
        "SELECT count(*) AS n, count(DISTINCT window_start) AS w FROM drift \
         WHERE feature = 'amount' AND array_has(breached, 'psi')",
    ));
    assert!(q.status.success(), "{}", text(&q.stderr));
    let amount_psi_breaches = rows
        .iter()
        .filter(|r| r.feature == "amount" && r.breached.iter().any(|s| s == "psi"))
        .count();
    let table = text(&q.stdout);
    assert!(
        table.contains(&format!("| {amount_psi_breaches} ")),
        "{table}"
    );
    let py = run(Command::new("python3")
        .arg(repo().join("tests/readers/read_drift.py"))
        .arg(&out));
    assert!(py.status.success(), "{}", text(&py.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&py.stdout).expect("json");
    assert_eq!(seen["pyarrow_rows"], rows.len());
    assert_eq!(seen["duckdb_rows"], rows.len());
    assert_eq!(
        seen["duckdb_breached_features"],
        serde_json::json!(breached_features(&rows))
    );

    // 6. The report, rendered by headless Chromium: every watched column
    // has a drawn histogram (a reference and a latest-window bar per bin)
    // and charts over time, and each PSI chart marks its breaches.
    let report = dir.path().join("report.html");
    let r = run(bin()
        .args(["drift", "report", "--job"])
        .arg(&job)
        .arg("--out")
        .arg(&report));
    assert!(r.status.success(), "{}", text(&r.stderr));
    let said = text(&r.stdout);
    assert!(
        said.contains(&format!("{} window(s)", windows.len())),
        "{said}"
    );
    let charts = rendered_charts(&report);
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile).expect("profile")).expect("json");
    for feature in FEATURES.iter().copied().chain(["score"]) {
        let of = |kind: &str| {
            charts
                .iter()
                .filter(|c| c["feature"] == feature && c["kind"] == kind)
                .collect::<Vec<_>>()
        };
        let column = &profile["columns"][feature];
        let bins = column["counts"].as_array().expect("counts").len()
            + usize::from(column["kind"] == "categorical");
        let hist = of("histogram");
        assert_eq!(hist.len(), 1, "{feature}: {charts:?}");
        assert!(
            hist[0]["width"].as_f64() > Some(100.0),
            "{feature}: not laid out"
        );
        // The reference and the newest four windows, a bar each per bin.
        let series = 1 + windows.len().min(4);
        assert_eq!(hist[0]["bars"], series * bins, "{feature}: {:?}", hist[0]);
        assert!(
            hist[0]["tall_bars"].as_u64() > Some(1),
            "{feature}: no bar drawn"
        );
        let series = of("series");
        assert!(series.len() >= 4, "{feature}: {series:?}");
        for c in &series {
            assert_eq!(c["points"], windows.len(), "{feature}: {c}");
            assert!(c["height"].as_f64() > Some(50.0), "{feature}: not laid out");
        }
        let psi = series
            .iter()
            .find(|c| c["statistic"] == "psi")
            .expect("psi chart");
        let psi_breaches = rows
            .iter()
            .filter(|r| r.feature == feature && r.breached.iter().any(|s| s == "psi"))
            .count();
        assert_eq!(psi["breaches"], psi_breaches, "{feature}: {psi}");
        assert_eq!(psi["threshold"], true, "{feature}: the PSI threshold line");
    }
    if let Ok(keep) = std::env::var("SCORESTREAM_KEEP_REPORT") {
        std::fs::copy(&report, format!("{keep}.html")).expect("keep report");
        common::chromium::screenshot(&report, Path::new(&format!("{keep}.png")));
    }
}

/// The drift table's directory turns into a file while the job runs (a
/// full or broken volume, as far as drift can tell): scoring goes on,
/// `scorestream_drift_healthy` drops to 0 with one error log, and once the
/// directory is back every window is in the table, none lost. Windows are
/// cut by the job's event time (`partition_time = "event_time"`), not the
/// Kafka timestamp.
#[test]
fn a_failing_drift_table_degrades_drift_while_scoring_goes_on() {
    const EVENTS: u64 = 3_000;
    let broker = Tansu::start();
    broker.create_topic("transactions", 1);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("live");
    let job = job_file(dir.path(), &broker.brokers, &out, "degrade", TANSU_SESSION);
    let profile = repo().join("jobs/demo/drift-profile.json");
    let mut toml = std::fs::read_to_string(&job).expect("job");
    assert!(toml.contains("partition_time = \"event_time\""), "{toml}");
    toml.push_str(&format!(
        "\n[drift]\nprofile = {profile:?}\nwindow = {{ rows = 1000 }}\nqueue_batches = 64\n"
    ));
    std::fs::write(&job, toml).expect("job");
    // Event times in November 2023, whatever the Kafka timestamps are.
    const FIRST_EVENT_MS: i64 = 1_700_000_000_000;
    let batch = |i: u64| GenOptions {
        seed: 700 + i,
        first_seq: i * 1_000_000,
        start_ms: FIRST_EVENT_MS,
        ..generator_options(70)
    };
    produce_events(&broker.brokers, "transactions", batch(0), EVENTS);
    let log = dir.path().join("live.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn_run(
        &job,
        &["--exit-on-idle", "10s", "--metrics-listen", &listen],
        &log,
    );
    let metric = |name: &str| {
        scrape(&listen).and_then(|m| {
            m.lines()
                .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        })
    };
    let drift = out.join("drift");
    let table_files = || common::files_under(&drift).len();
    wait_for("the first drift windows", Duration::from_secs(60), || {
        table_files() >= 2
    });
    assert_eq!(metric("scorestream_drift_healthy"), Some(1.0));

    // Break the table: its directory becomes a file.
    let aside = out.join("drift-aside");
    std::fs::rename(&drift, &aside).expect("move the table aside");
    std::fs::write(&drift, b"not a directory").expect("block the table");
    let scored_before = metric("scorestream_rows_scored_total").unwrap_or(0.0);
    produce_events(&broker.brokers, "transactions", batch(1), EVENTS);
    wait_for("drift degraded", Duration::from_secs(60), || {
        metric("scorestream_drift_healthy") == Some(0.0)
    });
    wait_for("scoring to go on", Duration::from_secs(60), || {
        metric("scorestream_rows_scored_total")
            .is_some_and(|n| n >= scored_before + EVENTS as f64 * 0.9)
    });
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the job is running"
    );
    assert!(metric("scorestream_drift_failures_total").is_some_and(|n| n >= 1.0));

    // Repair it: the waiting windows are written, and drift is healthy.
    std::fs::remove_file(&drift).expect("unblock");
    std::fs::rename(&aside, &drift).expect("the table back");
    wait_for("drift recovered", Duration::from_secs(60), || {
        metric("scorestream_drift_healthy") == Some(1.0)
    });
    produce_events(&broker.brokers, "transactions", batch(2), EVENTS);
    wait_success(&mut child, &log, Duration::from_secs(120));

    let rows = drift_rows(&out);
    let amount: Vec<&Row> = rows.iter().filter(|r| r.feature == "amount").collect();
    let scored = common::read_dir(&out.join("scores"))
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum::<u64>();
    assert_eq!(scored, 3 * EVENTS - dead_letters(&out));
    assert_eq!(
        amount.iter().map(|r| r.rows).sum::<u64>(),
        scored,
        "every scored row is in a window in the table: none lost while it failed"
    );
    assert!(amount.len() >= 9, "{} windows", amount.len());
    assert!(rows.iter().all(|r| r.skipped == 0), "the operator kept up");
    // Event time: the events' own clock (~1 ms apart from November 2023),
    // not the Kafka timestamps of this run.
    for r in &rows {
        assert!(
            r.start >= FIRST_EVENT_MS && r.end < FIRST_EVENT_MS + 3_600_000,
            "window [{}, {}] is not in the events' time",
            r.start,
            r.end
        );
    }
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        log_text.matches("drift degraded").count(),
        1,
        "one error log, not one per window: {log_text}"
    );
    assert!(log_text.contains("drift recovered"), "{log_text}");
}

/// What Chromium laid out for each chart of the report: a probe script
/// (the report itself has none) measures every `svg.chart` after layout.
fn rendered_charts(report: &Path) -> Vec<serde_json::Value> {
    const PROBE: &str = r#"
const charts = [...document.querySelectorAll('svg.chart')].map(s => {
  const box = s.getBoundingClientRect();
  const drawn = sel => [...s.querySelectorAll(sel)].filter(e => e.getBBox().width > 0);
  return {
    feature: s.dataset.feature,
    statistic: s.dataset.statistic || null,
    kind: s.classList.contains('histogram') ? 'histogram' : 'series',
    width: box.width, height: box.height,
    bars: drawn('rect.bar').length,
    tall_bars: drawn('rect.bar').filter(e => e.getBBox().height > 0.5).length,
    points: drawn('circle.point').length,
    breaches: drawn('circle.breach').length,
    threshold: s.querySelector('line.threshold') !== null,
  };
});
const result = charts;"#;
    let charts: Vec<serde_json::Value> =
        serde_json::from_value(run_probe(report, PROBE)).expect("a list of charts");
    assert!(!charts.is_empty(), "no chart rendered");
    charts
}

/// The probe's output is base64 so no HTML escaping can touch it.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let sextets: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
    sextets
        .chunks(4)
        .flat_map(|q| {
            let n = q.iter().fold(0u32, |n, &v| (n << 6) | u32::from(v)) << (6 * (4 - q.len()));
            n.to_be_bytes()[1..q.len()].to_vec()
        })
        .collect()
}

fn breached_features(rows: &[Row]) -> Vec<String> {
    let set: BTreeSet<&str> = rows
        .iter()
        .filter(|r| !r.breached.is_empty())
        .map(|r| r.feature.as_str())
        .collect();
    set.into_iter().map(str::to_owned).collect()
}

fn dead_letters(out: &Path) -> u64 {
    common::read_dir(&out.join("dead_letters"))
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum()
}

/// `/metrics` from the running job, or None while it is not listening.
fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: scorestream\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    c.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.1 200").then_some(body)
}

/// The value of `scorestream_drift_statistic{feature,statistic}` in a scrape.
fn gauge(metrics: &str, feature: &str, statistic: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("scorestream_drift_statistic{"))
        .find(|l| {
            l.contains(&format!("feature=\"{feature}\""))
                && l.contains(&format!("statistic=\"{statistic}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The report as a person reads it, laid out by headless Chromium from a
/// real job's drift table (the job run by the binary against an in-process
/// Kafka): every chart titles both axes, each histogram draws the
/// reference and the newest windows in distinct colours named by a legend,
/// every bin label carries its full text, and the header lists the
/// per-column threshold overrides.
#[test]
fn the_report_titles_axes_draws_recent_windows_keeps_full_labels_and_lists_overrides() {
    const WINDOWS: u64 = 6;
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let job = drift_job_on_mock(dir.path(), &out, 1_000, WINDOWS * 1_000);
    let report = dir.path().join("report.html");
    let r = run(bin()
        .args(["drift", "report", "--job"])
        .arg(&job)
        .arg("--out")
        .arg(&report));
    assert!(r.status.success(), "{}", text(&r.stderr));
    let seen = rendered_report(&report);

    let overrides: Vec<&str> = seen["overrides"]
        .as_array()
        .expect("overrides")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(overrides, ["amount: ks 0.12", "score: psi 0.3"], "{seen}");

    let profile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("jobs/demo/drift-profile.json")).expect("profile"),
    )
    .expect("json");
    let charts = seen["charts"].as_array().expect("charts");
    let windows = drift_rows(&out)
        .iter()
        .map(|r| r.start)
        .collect::<BTreeSet<_>>()
        .len();
    assert!(windows >= WINDOWS as usize, "{windows} windows");
    let histograms: Vec<&serde_json::Value> =
        charts.iter().filter(|c| c["kind"] == "histogram").collect();
    assert_eq!(histograms.len(), FEATURES.len() + 1, "{seen}");
    for c in charts {
        for axis in ["x_title", "y_title"] {
            assert!(
                c[axis]["width"].as_f64() > Some(10.0)
                    && c[axis]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{axis} missing: {c}"
            );
        }
    }
    for h in histograms {
        let feature = h["feature"].as_str().expect("feature");
        // The reference and the newest four windows, each its own colour
        // and legend entry, the latest last.
        assert_eq!(h["series"], 5, "{h}");
        assert_eq!(h["colours"], 5, "{h}");
        let legend: Vec<&str> = h["legend"]
            .as_array()
            .expect("legend")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(legend.len(), 5, "{h}");
        assert_eq!(legend[0], "reference");
        assert!(legend[4].ends_with("(latest)"), "{legend:?}");
        assert!(
            legend[4].starts_with(&format!("window {windows} ")),
            "{legend:?}"
        );
        // Every bin label: drawn, and complete in its title.
        let column = &profile["columns"][feature];
        let labels = h["labels"].as_array().expect("labels");
        let bins = column["counts"].as_array().expect("counts").len()
            + usize::from(column["kind"] == "categorical");
        assert_eq!(labels.len(), bins, "{feature}: {h}");
        for l in labels {
            let (shown, full) = (
                l["shown"].as_str().expect("shown"),
                l["full"].as_str().expect("a <title> with the full label"),
            );
            assert!(l["width"].as_f64() > Some(1.0), "{feature}: {l}");
            match shown.strip_suffix('…') {
                Some(head) => assert!(
                    full.starts_with(head) && full.chars().count() > head.chars().count() + 1,
                    "{feature}: {l}"
                ),
                None => assert_eq!(shown, full),
            }
        }
        if column["kind"] == "categorical" {
            let mut want: Vec<String> = column["categories"]
                .as_array()
                .expect("categories")
                .iter()
                .map(|v| v.as_str().expect("name").to_owned())
                .collect();
            want.push("other".into());
            let full: Vec<&str> = labels.iter().filter_map(|l| l["full"].as_str()).collect();
            assert_eq!(full, want, "{feature}");
        }
    }
    if let Ok(keep) = std::env::var("SCORESTREAM_KEEP_REPORT") {
        std::fs::copy(&report, format!("{keep}.html")).expect("keep report");
        common::chromium::screenshot(&report, Path::new(&format!("{keep}.png")));
    }
}

/// A job with `[drift]` (windows of `window` rows, a per-column override
/// for `amount` and `score`) run to idle by the binary over `events` demo
/// events on an in-process Kafka, `amount` tripled for the second half.
fn drift_job_on_mock(dir: &Path, out: &Path, window: u64, events: u64) -> std::path::PathBuf {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("transactions", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let clean = generator_options(71);
    let shifted = GenOptions {
        seed: 7_100,
        first_seq: 1_000_000,
        amount_factor: 3.0,
        ..clean.clone()
    };
    let world = scorestream_tools::demo::demo_world(&common::DEMO_ASSETS).expect("world");
    for opts in [clean, shifted] {
        let (progress, stop) = Default::default();
        let pace = scorestream_tools::synth::Pace {
            rate: None,
            progress: &progress,
            stop: &stop,
            ahead_of: None,
        };
        let mut g = scorestream_tools::synth::EventGen::new(&world, opts);
        scorestream_tools::synth::produce(&brokers, "transactions", &mut g, events / 2, &pace)
            .expect("produce");
    }
    let job = job_file(dir, &brokers, out, "report", MOCK_SESSION);
    let mut toml = std::fs::read_to_string(&job).expect("job");
    toml.push_str(&format!(
        "\n[drift]\nprofile = {:?}\nwindow = {{ rows = {window} }}\nqueue_batches = 64\n\
         thresholds = {{ psi = 0.2, ks = 0.15 }}\n\
         column_thresholds = {{ score = {{ psi = 0.3 }}, amount = {{ ks = 0.12 }} }}\n",
        repo().join("jobs/demo/drift-profile.json")
    ));
    std::fs::write(&job, toml).expect("job");
    let log = dir.join("run.log");
    let mut child = spawn_run(&job, &["--exit-on-idle", "3s"], &log);
    wait_success(&mut child, &log, Duration::from_secs(180));
    job
}

/// What Chromium laid out: per chart its axis titles, series, colours,
/// legend and bin labels, and the header's overrides (a probe script
/// added to a copy of the page; the report itself has none).
fn rendered_report(report: &Path) -> serde_json::Value {
    const PROBE: &str = r#"
const box = e => e ? { text: e.textContent.trim(), width: e.getBBox().width } : null;
const charts = [...document.querySelectorAll('svg.chart')].map(s => {
  const bars = [...s.querySelectorAll('rect.bar')];
  return {
    feature: s.dataset.feature,
    kind: s.classList.contains('histogram') ? 'histogram' : 'series',
    x_title: box(s.querySelector('text.axis-title.x')),
    y_title: box(s.querySelector('text.axis-title.y')),
    series: new Set(bars.map(b => b.dataset.series)).size,
    colours: new Set(bars.map(b => b.getAttribute('fill'))).size,
    legend: [...s.querySelectorAll('.legend-item text')].map(t => t.textContent),
    labels: [...s.querySelectorAll('text.bin-label')].map(t => ({
      shown: [...t.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join(''),
      full: t.querySelector('title') ? t.querySelector('title').textContent : null,
      width: t.getBBox().width,
    })),
  };
});
const overrides = [...document.querySelectorAll('ul.overrides li')].map(li => li.textContent);
const result = { charts, overrides };"#;
    run_probe(report, PROBE)
}

/// Runs `script` (which sets `result`) on a copy of the report in headless
/// Chromium after layout, and returns `result`. The report itself must
/// hold no script.
fn run_probe(report: &Path, script: &str) -> serde_json::Value {
    let page = std::fs::read_to_string(report).expect("report");
    assert!(!page.contains("<script"), "the report is script-free");
    let probe = report.with_file_name("probe.html");
    let script = format!(
        "<script>{script}
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(result))));
document.body.appendChild(pre);
</script></body>"
    );
    std::fs::write(&probe, page.replace("</body>", &script)).expect("probe page");
    let dom = common::chromium::dump_dom(&probe);
    let b64 = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("the probe did not run: {dom}"));
    serde_json::from_slice(&base64_decode(b64.trim())).expect("probe JSON")
}
