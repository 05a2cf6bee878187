//! What the scorer keeps of the batches that arrive while the drift queue
//! is full: a uniform sample of their rows, so a burst is in the windows in
//! proportion to its size instead of missing from them.
//!
//! Each row is kept with probability `2^-level`, and stands for `2^level`
//! rows once sent. When the sample would exceed its cap the level goes up
//! by one and every kept row survives with probability one half, so the
//! sample stays uniform over everything that overflowed and its memory
//! stays bounded, however long the operator is behind.

use arrow::array::{BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;

use super::operator::DriftBatch;
use super::thinned::coin;

#[derive(Debug)]
pub struct Overflow {
    /// Columns the drift operator reads; the others are not copied.
    keep: Vec<String>,
    cap: usize,
    parts: Vec<RecordBatch>,
    rows: usize,
    level: u32,
    rng: ChaCha8Rng,
}

impl Overflow {
    /// At most `cap` rows of the columns in `keep`.
    pub fn new(keep: Vec<String>, cap: usize) -> Self {
        Self {
            keep,
            cap: cap.max(1),
            parts: Vec::new(),
            rows: 0,
            level: 0,
            rng: ChaCha8Rng::seed_from_u64(0x5eed),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Rows held (each standing for `2^level` scored rows).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Samples `batch` into the overflow.
    pub fn add(&mut self, batch: &RecordBatch) {
        let wanted: Vec<usize> = self
            .keep
            .iter()
            .filter_map(|c| batch.schema().index_of(c).ok())
            .collect();
        let Ok(batch) = batch.project(&wanted) else {
            return;
        };
        let picked: UInt32Array = (0..batch.num_rows() as u32)
            .filter(|_| coin(self.level, &mut self.rng))
            .collect();
        if picked.is_empty() {
            return;
        }
        let Ok(part) = take_record_batch(&batch, &picked) else {
            return;
        };
        self.rows += part.num_rows();
        self.parts.push(part);
        while self.rows > self.cap {
            self.level += 1;
            let rng = &mut self.rng;
            self.parts = std::mem::take(&mut self.parts)
                .into_iter()
                .filter_map(|p| {
                    let mask: BooleanArray =
                        (0..p.num_rows()).map(|_| Some(coin(1, rng))).collect();
                    filter_record_batch(&p, &mask)
                        .ok()
                        .filter(|p| p.num_rows() > 0)
                })
                .collect();
            self.rows = self.parts.iter().map(RecordBatch::num_rows).sum();
        }
    }

    /// Takes what is held, as batches to send.
    pub fn take(&mut self) -> Vec<DriftBatch> {
        let weight_log2 = self.level;
        (self.rows, self.level) = (0, 0);
        std::mem::take(&mut self.parts)
            .into_iter()
            .map(|batch| DriftBatch { batch, weight_log2 })
            .collect()
    }

    /// Sends what is held, as one batch when the parts share a schema, if
    /// the queue has room; `true` when nothing is left.
    pub fn send(&mut self, tx: &mpsc::Sender<DriftBatch>) -> bool {
        if self.parts.len() > 1
            && let Ok(one) = concat_batches(&self.parts[0].schema(), &self.parts)
        {
            self.parts = vec![one];
        }
        while let Some(part) = self.parts.first() {
            let b = DriftBatch {
                batch: part.clone(),
                weight_log2: self.level,
            };
            match tx.try_send(b) {
                Ok(()) => {
                    self.rows -= part.num_rows();
                    self.parts.remove(0);
                }
                Err(mpsc::error::TrySendError::Full(_)) => return false,
                // The operator is gone (and said why): nothing to keep.
                Err(mpsc::error::TrySendError::Closed(_)) => self.parts.clear(),
            }
        }
        self.rows = 0;
        self.level = 0;
        true
    }
}
