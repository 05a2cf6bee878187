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
    /// The scorer is done: what waits goes now if there is room, else as
    /// soon as there is (the operator drains its queue, and closes its last
    /// window only once every sender is gone), so no sampled row is lost.
    fn drop(&mut self) {
        let Ok(mut o) = self.overflow.lock() else {
            return;
        };
        if o.is_empty() || o.send(&self.tx) {
            return;
        }
        let rows = o.rows();
        let (tx, rest) = (self.tx.clone(), o.take());
        match tokio::runtime::Handle::try_current() {
            // Only a closed queue ends it early: the operator is gone.
            Ok(rt) => drop(rt.spawn(async move {
                for b in rest {
                    if tx.send(b).await.is_err() {
                        break;
                    }
                }
            })),
            Err(_) => debug!(rows, "drift: no runtime at shutdown; a sample is lost"),
        }
    }
}

#[cfg(test)]
mod tests;
