//! The scorer's side of the drift operator's queue: scored batches are
//! offered, never waited for, so a slow drift operator cannot slow scoring.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use metrics::counter;
use tokio::sync::mpsc;

pub(super) struct DriftTee {
    tx: mpsc::Sender<RecordBatch>,
    /// Rows of batches the queue had no room for; the operator takes them
    /// into the window open at the time.
    skipped: Arc<AtomicU64>,
}

impl DriftTee {
    /// A tee holding at most `batches` batches; returns the operator's
    /// receiving end and its skipped-rows counter.
    pub(super) fn new(batches: usize) -> (Self, mpsc::Receiver<RecordBatch>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(batches.max(1));
        let skipped = Arc::new(AtomicU64::new(0));
        (
            Self {
                tx,
                skipped: skipped.clone(),
            },
            rx,
            skipped,
        )
    }

    /// Offers a copy of `batch` (Arrow buffers are shared, not copied). A
    /// full queue means drift is behind: the rows are counted as skipped.
    /// A closed queue (the operator failed, and said so) is ignored here.
    pub(super) fn offer(&self, batch: &RecordBatch) {
        if batch.num_rows() == 0 {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(b)) = self.tx.try_send(batch.clone()) {
            let n = b.num_rows() as u64;
            self.skipped.fetch_add(n, Ordering::Relaxed);
            counter!("scorestream_drift_rows_skipped_total").increment(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int32Array, RecordBatch};

    use super::*;

    fn batch(n: i32) -> RecordBatch {
        RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int32Array::from_iter_values(0..n)) as ArrayRef,
        )])
        .expect("batch")
    }

    #[tokio::test]
    async fn a_full_queue_skips_and_counts_without_waiting() {
        let (tee, mut rx, skipped) = DriftTee::new(2);
        // Nobody receives: the first two fit, the rest are skipped at once.
        for n in [10, 20, 30, 40, 0] {
            tee.offer(&batch(n));
        }
        assert_eq!(skipped.load(Ordering::Relaxed), 70);
        assert_eq!(rx.recv().await.map(|b| b.num_rows()), Some(10));
        assert_eq!(rx.recv().await.map(|b| b.num_rows()), Some(20));
        // Room again: the next batch goes through.
        tee.offer(&batch(5));
        assert_eq!(rx.recv().await.map(|b| b.num_rows()), Some(5));
        drop(rx);
        tee.offer(&batch(5));
        assert_eq!(
            skipped.load(Ordering::Relaxed),
            70,
            "a closed queue is not drift falling behind"
        );
    }
}
