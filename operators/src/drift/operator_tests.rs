//! The drift operator: how it cuts windows, what it reports for each, and
//! the gauges a Prometheus scrape sees.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

fn operator(cfg: DriftConfig, dir: &std::path::Path) -> (DriftOperator, Arc<AtomicU64>) {
    let skipped = Arc::new(AtomicU64::new(0));
    let op = DriftOperator::new(
        cfg,
        profile(),
        vec!["x".into()],
        "job-a".into(),
        DriftTable::open(dir).expect("table"),
        None,
        skipped.clone(),
    );
    (op, skipped)
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
    let (mut op, _) = operator(config("window = { rows = 1000 }"), dir.path());
    let mut closed = Vec::new();
    for i in 0..5 {
        let xs: Vec<f64> = (0..700).map(|j| ((i * 700 + j) % 4) as f64 + 0.5).collect();
        let ts: Vec<i64> = (0..700).map(|j| 1_000 + i * 700 + j).collect();
        closed.extend(op.add(&batch(&xs, &ts)).expect("add"));
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
    let (op, _) = operator(config("window = { rows = 1000 }"), dir.path());
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(op.run(rx));
    for i in 0..5 {
        tx.send(batch(&[0.5; 500], &[i; 500])).await.expect("send");
    }
    drop(tx);
    let reports = task.await.expect("task").expect("run");
    let sizes: Vec<u64> = reports.iter().map(|r| r.rows).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    assert_eq!(drift_files(dir.path()), 3, "every window is in the table");
    // All values in the first bin: far from the reference's quarters.
    assert!(
        reports
            .iter()
            .all(|r| r.breaches.iter().any(|b| b.1 == Statistic::Psi))
    );
}

#[test]
fn event_time_windows_are_aligned_buckets_and_late_rows_join_the_open_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut op, _) = operator(config("window = { event_time = \"1m\" }"), dir.path());
    let min = 60_000;
    let mut closed = op
        .add(&batch(&[0.5, 1.5, 2.5], &[10, 20_000, min + 5]))
        .expect("add");
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].start_ms, closed[0].end_ms, closed[0].rows),
        (0, min, 2)
    );
    // A late row (minute 0) counts in the open minute-1 window; minute 3
    // closes it.
    closed.extend(
        op.add(&batch(&[3.5, 0.5], &[30_000, 3 * min + 1]))
            .expect("add"),
    );
    assert_eq!(closed.len(), 2);
    assert_eq!(
        (closed[1].start_ms, closed[1].end_ms, closed[1].rows),
        (min, 2 * min, 2)
    );
}

#[test]
fn skipped_rows_are_reported_with_the_window_they_fell_in() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut op, skipped) = operator(config("window = { rows = 10 }"), dir.path());
    skipped.fetch_add(123, Ordering::Relaxed);
    let first = op.add(&batch(&[0.5; 10], &[1; 10])).expect("add");
    let second = op.add(&batch(&[0.5; 10], &[2; 10])).expect("add");
    assert_eq!((first[0].skipped, second[0].skipped), (123, 0));
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
    let (mut op, _) = operator(cfg, dir.path());
    // Half the values in the first quarter bin: a PSI of about 0.27.
    let xs: Vec<f64> = [0.5, 0.5, 0.5, 1.5, 2.5, 3.5].repeat(20_000);
    // The window is open (default 100,000 rows) until it fills.
    let r = op.add(&batch(&xs, &vec![1; xs.len()])).expect("add");
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
    let (op, _) = operator(config("window = { rows = 100 }"), dir.path());
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tx.send(batch(&[0.5; 100], &[1; 100])).await.expect("send");
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
