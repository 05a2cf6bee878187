use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch};
use scorestream_operators::drift::{ColumnProfile, NumericProfile, ReferenceProfile, Window};

use super::*;

fn batch(x: f64, n: usize) -> RecordBatch {
    RecordBatch::try_from_iter([
        ("x", Arc::new(Float64Array::from(vec![x; n])) as ArrayRef),
        ("other", Arc::new(Int32Array::from(vec![7; n])) as ArrayRef),
    ])
    .expect("batch")
}

fn tee(batches: usize, sample: usize) -> (DriftTee, mpsc::Receiver<DriftBatch>) {
    DriftTee::new(batches, sample, vec!["x".into()])
}

#[tokio::test]
async fn a_full_queue_never_waits_and_what_waits_arrives_even_at_shutdown() {
    let (tee, mut rx) = tee(2, 100);
    // Nobody receives: the first two fit, the rest wait as a sample.
    for n in [10, 20, 30, 40, 0] {
        tee.offer(&batch(1.0, n));
    }
    assert_eq!(rx.recv().await.map(|b| b.batch.num_rows()), Some(10));
    assert_eq!(rx.recv().await.map(|b| b.batch.num_rows()), Some(20));
    // Room again: what waited goes first (70 rows, under the cap: all of
    // them, of the watched column only), then the new batch.
    tee.offer(&batch(1.0, 5));
    let waited = rx.recv().await.expect("overflow");
    assert_eq!((waited.batch.num_rows(), waited.weight_log2), (70, 0));
    assert_eq!(waited.batch.num_columns(), 1, "only the watched column");
    assert_eq!(rx.recv().await.map(|b| b.batch.num_rows()), Some(5));
    // Full again when the scorer stops: what waits still arrives.
    tee.offer(&batch(1.0, 6));
    tee.offer(&batch(1.0, 7));
    tee.offer(&batch(1.0, 8));
    drop(tee);
    let rows: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|b| b.batch.num_rows())
        .collect();
    assert_eq!(rows, [6, 7], "the queue was full at shutdown");
    assert_eq!(rx.recv().await.map(|b| b.batch.num_rows()), Some(8));
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_closed_queue_is_ignored() {
    let (tee, rx) = tee(1, 100);
    drop(rx);
    tee.offer(&batch(1.0, 5));
    tee.offer(&batch(1.0, 5));
}

/// The operator is behind while a burst of 50,000 rows arrives: the burst
/// is in the window as about 50,000 rows (a sample of at most 1,000 rows
/// standing for them), beside the 2,000 rows seen one by one.
#[tokio::test]
async fn a_burst_while_drift_is_behind_is_in_the_window_in_proportion() {
    let (tee, mut rx) = tee(1, 1_000);
    tee.offer(&batch(0.5, 1_000));
    for _ in 0..50 {
        tee.offer(&batch(2.5, 1_000));
    }
    let mut got = vec![rx.recv().await.expect("first")];
    tee.offer(&batch(3.5, 1_000));
    got.push(rx.recv().await.expect("the burst's sample"));
    drop(tee);
    got.push(rx.recv().await.expect("the last batch"));
    assert!(rx.recv().await.is_none());

    let burst = &got[1];
    assert!(burst.weight_log2 > 0 && burst.batch.num_rows() <= 1_000);
    let profile = ReferenceProfile {
        source: "test".into(),
        rows: 4,
        columns: BTreeMap::from([(
            "x".into(),
            ColumnProfile::Numeric(NumericProfile {
                edges: vec![1.0, 2.0, 3.0],
                counts: vec![1, 1, 1, 1],
                sample: vec![0.5, 1.5, 2.5, 3.5],
                missing: 0,
                total: 4,
            }),
        )]),
    };
    let mut w = Window::new(&profile, &["x".into()], 500, 1);
    for b in &got {
        w.add(&b.batch, 0, b.batch.num_rows(), b.weight_log2);
    }
    let sampled = w.sampled;
    let stats = w.close().remove(0);
    let counts = &stats.counts;
    assert_eq!((counts[0], counts[1], counts[3]), (1_000, 0, 1_000));
    let burst_rows = counts[2] as f64;
    assert!(
        (burst_rows - 50_000.0).abs() < 5_000.0,
        "the burst counts for {burst_rows} rows: {counts:?}"
    );
    assert_eq!(sampled, counts[2], "the sampled rows are marked as such");
    assert_eq!(stats.rows, counts.iter().sum::<u64>());
}
