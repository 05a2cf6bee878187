use std::collections::VecDeque;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use scorestream_schemas::DeadLetter;
use tokio::time::Instant;

use crate::{Acks, Envelope, Result};

/// One input envelope waiting in the coalescer.
struct Pending {
    batch: Option<RecordBatch>,
    dead_letters: Vec<DeadLetter>,
    acks: Acks,
    arrived: Instant,
}

/// The coalescer's state machine, free of I/O and clocks so it can be tested
/// exhaustively; [`super::run_batcher`] drives it.
///
/// Offsets are released conservatively: an input's acks and dead letters ride
/// with the output batch that holds the input's *last* row, so no offset is
/// acknowledged before all of its rows are.
pub struct Coalescer {
    schema: SchemaRef,
    max_rows: usize,
    max_wait: std::time::Duration,
    pending: VecDeque<Pending>,
    pending_rows: usize,
}

impl Coalescer {
    pub fn new(schema: SchemaRef, max_rows: usize, max_wait: std::time::Duration) -> Self {
        Self {
            schema,
            max_rows: max_rows.max(1),
            max_wait,
            pending: VecDeque::new(),
            pending_rows: 0,
        }
    }

    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// When the oldest pending input must be flushed, if anything is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.front().map(|p| p.arrived + self.max_wait)
    }

    /// Adds an input; returns every batch that reached `max_rows`, each exactly
    /// `max_rows` long. The rest stays pending.
    pub fn push(&mut self, env: Envelope, now: Instant) -> Result<Vec<Envelope>> {
        self.pending_rows += env.rows();
        self.pending.push_back(Pending {
            batch: env.batch,
            dead_letters: env.dead_letters,
            acks: env.acks,
            arrived: now,
        });
        if self.pending_rows < self.max_rows {
            return Ok(Vec::new());
        }
        let full = self.pending_rows / self.max_rows * self.max_rows;
        self.take(full)
    }

    /// Emits everything pending as one envelope (for the deadline and for shutdown).
    pub fn flush(&mut self) -> Result<Option<Envelope>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        // `push` emits whenever `max_rows` is reached, so fewer than
        // `max_rows` rows are pending here and `take` yields one envelope.
        let rows = self.pending_rows;
        let mut out = self.take(rows)?;
        debug_assert_eq!(out.len(), 1);
        Ok(out.pop())
    }

    /// Emits the first `rows` pending rows, in `max_rows` pieces (the last one
    /// may be shorter when flushing).
    fn take(&mut self, rows: usize) -> Result<Vec<Envelope>> {
        let inputs: Vec<Pending> = self.pending.drain(..).collect();
        let batches: Vec<&RecordBatch> = inputs.iter().filter_map(|p| p.batch.as_ref()).collect();
        let all = concat_batches(&self.schema, batches)?;
        let total = all.num_rows();

        let mut outputs: Vec<Envelope> = Vec::new();
        let mut start = 0;
        while start < rows || (rows == 0 && outputs.is_empty()) {
            let len = (rows - start).min(self.max_rows);
            let batch = (len > 0).then(|| all.slice(start, len));
            outputs.push(Envelope {
                batch,
                ..Default::default()
            });
            start += len;
            if len == 0 {
                break;
            }
        }

        // Give each input's acks to the output holding its last row; inputs
        // whose last row is not emitted stay pending with the leftover rows.
        let mut end = 0;
        let mut leftover: Option<Pending> = None;
        for p in inputs {
            end += p.batch.as_ref().map_or(0, RecordBatch::num_rows);
            if end <= rows {
                let idx = if end == 0 {
                    0
                } else {
                    (end - 1) / self.max_rows
                };
                let out = &mut outputs[idx];
                out.dead_letters.extend(p.dead_letters);
                out.acks.merge(p.acks);
            } else {
                let l = leftover.get_or_insert_with(|| Pending {
                    batch: None,
                    dead_letters: Vec::new(),
                    acks: Acks::default(),
                    arrived: p.arrived,
                });
                l.dead_letters.extend(p.dead_letters);
                l.acks.merge(p.acks);
            }
        }
        self.pending_rows = total - rows;
        if let Some(mut l) = leftover {
            l.batch = Some(all.slice(rows, total - rows));
            self.pending.push_back(l);
        }
        Ok(outputs)
    }
}
