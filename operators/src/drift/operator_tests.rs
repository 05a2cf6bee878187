//! The drift operator: how it cuts windows, what it reports for each, and
//! the gauges a Prometheus scrape sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use scorestream_schemas::columns;

use super::*;

fn profile() -> ReferenceProfile {
    ReferenceProfile {
        source: "test".into(),
        rows: 400,
        columns: BTreeMap::from([(
            "x".into(),
            ColumnProfile::Numeric(NumericProfile {
                edges: vec![1.0, 2.0, 3.0],
                counts: vec![100, 100, 100, 100],
                sample: vec![0.5, 1.5, 2.5, 3.5],
                missing: 0,
                total: 400,
            }),
        )]),
    }
}

fn config(toml_text: &str) -> DriftConfig {
    toml::from_str(&format!("profile = \"p.json\"\n{toml_text}")).expect("drift config")
}

/// `x` values and Kafka timestamps, as the scorer's output carries them.
fn batch(xs: &[f64], times: &[i64]) -> RecordBatch {
    let n = xs.len();
    RecordBatch::try_from_iter([
        ("x", Arc::new(Float64Array::from(xs.to_vec())) as ArrayRef),
        (
            columns::INGEST_TIME,
            Arc::new(TimestampMillisecondArray::from(times.to_vec()).with_timezone("UTC")),
        ),
        (
            columns::MODEL_NAME,
            Arc::new(StringArray::from(vec!["fraud"; n])),
        ),
        (
            columns::MODEL_VERSION,
            Arc::new(StringArray::from(vec!["7"; n])),
        ),
    ])
    .expect("batch")
}

fn operator(cfg: DriftConfig, dir: &std::path::Path) -> DriftOperator {
    DriftOperator::new(
        cfg,
        profile(),
        vec!["x".into()],
        "job-a".into(),
        DriftTable::open(dir).expect("table"),
        None,
    )
}

fn whole(batch: RecordBatch) -> DriftBatch {
    DriftBatch {
        batch,
        weight_log2: 0,
    }
}

/// `(window_rows, skipped_rows)` of each window in the drift table, oldest
/// first.
fn table_windows(dir: &std::path::Path) -> Vec<(u64, u64)> {
    use arrow::array::AsArray;
    use arrow::datatypes::UInt64Type;
    let mut files: Vec<_> = std::fs::read_dir(dir.join(DRIFT_DIR))
        .expect("drift dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).expect("file");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024)
            .expect("parquet");
        for b in reader {
            let b = b.expect("batch");
            let rows = b.column_by_name("window_rows").expect("rows");
            let skipped = b.column_by_name("skipped_rows").expect("skipped");
            out.push((
                rows.as_primitive::<UInt64Type>().value(0),
                skipped.as_primitive::<UInt64Type>().value(0),
            ));
        }
    }
    out
}

fn drift_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join(DRIFT_DIR))
        .expect("drift dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count()
}

#[test]
fn row_windows_hold_exactly_their_size_across_batches() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut op = operator(config("window = { rows = 1000 }"), dir.path());
    let mut closed = Vec::new();
    for i in 0..5 {
        let xs: Vec<f64> = (0..700).map(|j| ((i * 700 + j) % 4) as f64 + 0.5).collect();
        let ts: Vec<i64> = (0..700).map(|j| 1_000 + i * 700 + j).collect();
        closed.extend(op.add(&batch(&xs, &ts)));
    }
    let sizes: Vec<u64> = closed.iter().map(|r| r.rows).collect();
    assert_eq!(sizes, [1000, 1000, 1000]);
    // Each window spans the event times of its own rows.
    assert_eq!((closed[0].start_ms, closed[0].end_ms), (1_000, 1_999));
    assert_eq!((closed[2].start_ms, closed[2].end_ms), (3_000, 3_999));
    assert_eq!(
        (
            closed[0].model_name.as_str(),
            closed[0].model_version.as_str()
        ),
        ("fraud", "7")
    );
    // Same distribution as the reference: no drift.
    let psi = closed[0].columns[0].stats.psi.expect("psi");
    assert!(psi < 1e-6, "{psi}");
    assert!(closed.iter().all(|r| r.breaches.is_empty()));
}

#[tokio::test]
async fn the_last_partial_window_is_reported_when_the_queue_closes() {
    let dir = tempfile::tempdir().expect("tmp");
    let op = operator(config("window = { rows = 1000 }"), dir.path());
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(op.run(rx));
    for i in 0..5 {
        tx.send(whole(batch(&[0.5; 500], &[i; 500])))
            .await
            .expect("send");
    }
    drop(tx);
    let closed = task.await.expect("task").expect("run");
    assert_eq!(closed, 3);
    assert_eq!(drift_files(dir.path()), 3, "every window is in the table");
    let sizes: Vec<u64> = table_windows(dir.path()).iter().map(|w| w.0).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
}

#[test]
fn event_time_windows_are_aligned_buckets_and_late_rows_join_the_open_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut op = operator(config("window = { event_time = \"1m\" }"), dir.path());
    let min = 60_000;
    let mut closed = op.add(&batch(&[0.5, 1.5, 2.5], &[10, 20_000, min + 5]));
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].start_ms, closed[0].end_ms, closed[0].rows),
        (0, min, 2)
    );
    // A late row (minute 0) counts in the open minute-1 window; minute 3
    // closes it.
    closed.extend(op.add(&batch(&[3.5, 0.5], &[30_000, 3 * min + 1])));
    assert_eq!(closed.len(), 2);
    assert_eq!(
        (closed[1].start_ms, closed[1].end_ms, closed[1].rows),
        (min, 2 * min, 2)
    );
}

/// Rows the tee sampled (each standing for 8) count for the rows they
/// replaced, and the window says how many of its rows are estimates.
#[test]
fn sampled_rows_count_for_the_rows_they_stand_for() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut op = operator(config("window = { rows = 100 }"), dir.path());
    let mut closed = op.add(&batch(&[0.5; 20], &[1; 20]));
    closed.extend(op.add_weighted(&batch(&[2.5; 20], &[2; 20]), 3));
    closed.extend(op.add(&batch(&[0.5; 100], &[3; 100])));
    assert_eq!(closed.len(), 2);
    // 20 rows, then 10 sampled rows standing for 80: the window is full.
    assert_eq!((closed[0].rows, closed[0].skipped), (100, 80));
    assert_eq!(closed[0].columns[0].counts, [20, 0, 80, 0]);
    // The other 10 sampled rows open the next window.
    assert_eq!((closed[1].rows, closed[1].skipped), (100, 80));
    assert_eq!(closed[1].columns[0].counts, [20, 0, 80, 0]);
}

#[test]
fn thresholds_per_column_override_the_job_wide_ones() {
    let cfg = config(
        "thresholds = { psi = 0.2, chi_square_p = 0.01 }\n\
         column_thresholds = { x = { psi = 5.0 } }",
    );
    assert_eq!(cfg.threshold("x", Statistic::Psi), Some(5.0));
    assert_eq!(cfg.threshold("y", Statistic::Psi), Some(0.2));
    assert_eq!(cfg.threshold("x", Statistic::Ks), None);
    assert!(breaches(Statistic::ChiSquareP, 0.001, 0.01));
    assert!(!breaches(Statistic::ChiSquareP, 0.5, 0.01));
    assert!(breaches(Statistic::MissingRateChange, -0.3, 0.1));

    let dir = tempfile::tempdir().expect("tmp");
    let mut op = operator(cfg, dir.path());
    // Half the values in the first quarter bin: a PSI of about 0.27.
    let xs: Vec<f64> = [0.5, 0.5, 0.5, 1.5, 2.5, 3.5].repeat(20_000);
    // The window is open (default 100,000 rows) until it fills.
    let r = op.add(&batch(&xs, &vec![1; xs.len()]));
    assert_eq!(r.len(), 1);
    let psi = r[0].columns[0].stats.psi.expect("psi");
    assert!(psi > 0.2 && psi < 5.0, "{psi}");
    assert!(r[0].breaches.is_empty(), "x's own PSI threshold is 5");
}

#[test]
fn a_config_with_bad_values_names_each_key() {
    let cfg = config(
        "window = { rows = 0 }\nqueue_batches = 0\nthresholds = { psi = -1.0 }\n\
         column_thresholds = { x = { chi_square_p = 2.0 } }",
    );
    let problems: Vec<String> = crate::config::problems_in(&cfg, "drift")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        problems,
        [
            "drift.window",
            "drift.queue_batches",
            "drift.thresholds.psi",
            "drift.column_thresholds.x.chi_square_p"
        ]
    );
    let unknown = toml::from_str::<DriftConfig>("profile = \"p\"\nwindow = { hours = 1 }");
    assert!(unknown.is_err());
}

/// Every statistic of every window is a gauge a Prometheus scrape reads.
#[test]
fn each_window_sets_prometheus_gauges() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().expect("tmp");
    let op = operator(config("window = { rows = 100 }"), dir.path());
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tx.send(whole(batch(&[0.5; 100], &[1; 100])))
                .await
                .expect("send");
            drop(tx);
            op.run(rx).await.expect("run");
        });
    });
    let text = handle.render();
    let psi_line = text
        .lines()
        .find(|l| l.starts_with("scorestream_drift_statistic{") && l.contains("statistic=\"psi\""))
        .unwrap_or_else(|| panic!("no psi gauge in:\n{text}"));
    assert!(psi_line.contains("feature=\"x\""), "{psi_line}");
    let value: f64 = psi_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("gauge value");
    assert!(value > 0.2, "{psi_line}");
    assert!(
        text.contains("# TYPE scorestream_drift_statistic gauge"),
        "{text}"
    );
    assert!(text.contains("scorestream_drift_windows_total 1"), "{text}");
    assert!(
        text.contains("scorestream_drift_alerts_total{feature=\"x\",statistic=\"psi\"} 1"),
        "{text}"
    );
}

/// Windows follow the column the job's event time is in when it has one
/// (`sink.partition_time`), the Kafka timestamp otherwise.
#[test]
fn event_time_windows_follow_the_jobs_event_time_column() {
    let min = 60_000;
    // Kafka timestamps all in minute 0; the events' own times in minutes
    // 5, 5 and 7.
    let mut b = batch(&[0.5, 1.5, 2.5], &[1, 2, 3]);
    let event_time: ArrayRef = Arc::new(
        TimestampMillisecondArray::from(vec![5 * min + 1, 5 * min + 2, 7 * min])
            .with_timezone("UTC"),
    );
    let mut fields: Vec<(String, ArrayRef)> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .zip(b.columns().iter().cloned())
        .collect();
    fields.push(("event_time".into(), event_time));
    b = RecordBatch::try_from_iter(fields).expect("batch");
    let cfg = config("window = { event_time = \"1m\" }");

    let dir = tempfile::tempdir().expect("tmp");
    let mut by_event = operator(cfg.clone(), dir.path()).with_time_column("event_time");
    let closed = by_event.add(&b);
    assert_eq!(closed.len(), 1, "minute 7 closes minute 5");
    assert_eq!(
        (closed[0].start_ms, closed[0].end_ms, closed[0].rows),
        (5 * min, 6 * min, 2)
    );

    let dir = tempfile::tempdir().expect("tmp");
    let mut by_kafka = operator(cfg, dir.path());
    assert!(by_kafka.add(&b).is_empty(), "all three in Kafka's minute 0");
    let next = by_kafka.add(&batch(&[0.5], &[min]));
    assert_eq!(
        (next[0].start_ms, next[0].end_ms, next[0].rows),
        (0, min, 3)
    );
}

/// The drift table's directory is replaced by a file while the job runs:
/// drift says it is degraded (and why) but keeps cutting windows; once the
/// file is gone again the waiting windows are written, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_write_failure_degrades_drift_until_it_recovers() {
    let dir = tempfile::tempdir().expect("tmp");
    let recent = RecentAlerts::default();
    let health = recent.health().clone();
    let op = operator(config("window = { rows = 10 }"), dir.path()).with_recent_alerts(recent);
    let drift = dir.path().join(DRIFT_DIR);
    std::fs::remove_dir(&drift).expect("rmdir");
    std::fs::write(&drift, b"not a directory").expect("block");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(op.run(rx));
    let wait_for = |what: &'static str, ok: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    for i in 0..2 {
        tx.send(whole(batch(&[0.5; 10], &[i; 10])))
            .await
            .expect("the operator keeps taking batches");
    }
    wait_for("degraded with both windows waiting", &|| {
        health.degraded().is_some_and(|d| d.pending_windows == 2)
    });
    let d = health.degraded().expect("degraded");
    assert_eq!(d.cause, DriftFailure::Table);
    assert!(d.reason.contains("drift"), "{}", d.reason);
    assert!(d.failures >= 1);

    std::fs::remove_file(&drift).expect("unblock");
    wait_for("recovered", &|| health.degraded().is_none());
    assert_eq!(drift_files(dir.path()), 2, "both waiting windows written");
    tx.send(whole(batch(&[0.5; 10], &[3; 10])))
        .await
        .expect("send");
    drop(tx);
    assert_eq!(task.await.expect("task").expect("run"), 3);
    assert_eq!(drift_files(dir.path()), 3);
    assert_eq!(table_windows(dir.path()), [(10, 0); 3]);
}
