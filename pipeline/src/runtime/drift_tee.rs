//! The scorer's side of the drift operator's queue: scored batches are
//! offered, never waited for, so a slow drift operator cannot slow scoring.
//! While the queue is full the rows are not dropped: a bounded uniform
//! sample of them ([`Overflow`]) waits and goes first once there is room,
//! each sampled row standing for the rows it replaced.

use std::sync::Mutex;

use arrow::array::RecordBatch;
use metrics::counter;
use scorestream_operators::drift::{DriftBatch, Overflow};
use tokio::sync::mpsc;
use tracing::debug;

pub(super) struct DriftTee {
    tx: mpsc::Sender<DriftBatch>,
    /// Only the scorer task offers; the lock is never contended.
    overflow: Mutex<Overflow>,
}

impl DriftTee {
    /// A tee holding at most `batches` batches, and beyond them a sample of
    /// at most `sample_rows` rows of the columns in `keep`; returns the
    /// operator's receiving end.
    pub(super) fn new(
        batches: usize,
        sample_rows: usize,
        keep: Vec<String>,
    ) -> (Self, mpsc::Receiver<DriftBatch>) {
        let (tx, rx) = mpsc::channel(batches.max(1));
        let overflow = Mutex::new(Overflow::new(keep, sample_rows));
        (Self { tx, overflow }, rx)
    }

    /// Offers a copy of `batch` (Arrow buffers are shared, not copied). A
    /// full queue means drift is behind: the batch's rows are sampled into
    /// the overflow and counted. A closed queue (the operator failed, and
    /// said so) is ignored here.
    pub(super) fn offer(&self, batch: &RecordBatch) {
        if batch.num_rows() == 0 {
            return;
        }
        let Ok(mut overflow) = self.overflow.lock() else {
            return;
        };
        // What waits is older: it goes first, and this batch after it.
        if overflow.is_empty() || overflow.send(&self.tx) {
            let whole = DriftBatch {
                batch: batch.clone(),
                weight_log2: 0,
            };
            match self.tx.try_send(whole) {
                Err(mpsc::error::TrySendError::Full(_)) => {}
                _ => return,
            }
        }
        overflow.add(batch);
        counter!("scorestream_drift_rows_skipped_total").increment(batch.num_rows() as u64);
    }
}

impl Drop for DriftTee {
    /// The scorer is done: what waits goes if there is room; the operator
    /// drains the queue before it closes its last window.
    fn drop(&mut self) {
        if let Ok(mut o) = self.overflow.lock()
            && !o.is_empty()
        {
            let rows = o.rows();
            if !o.send(&self.tx) {
                debug!(
                    rows,
                    "drift: the queue was full at shutdown; a sample is lost"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
