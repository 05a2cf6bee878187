use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Int32Type, Int64Type, SchemaRef};
use scorestream_schemas::{DeadLetter, columns};
use tokio::time::Instant;

use crate::{Coverage, Envelope, OperatorError, Result};

/// One input envelope (or the unsent rest of one) waiting in the coalescer.
struct Pending {
    rows: usize,
    batch: Option<RecordBatch>,
    dead_letters: Vec<DeadLetter>,
    coverage: Coverage,
    arrived: Instant,
    fetched_at: Option<std::time::Instant>,
}

/// The coalescer's state machine, free of I/O so it can be tested
/// exhaustively; [`super::run_batcher`] drives it. Time comes in as `now`;
/// the one clock read stamps each output with how long it waited for rows
/// ([`Envelope::busy`]), which only adaptive sizing reads.
///
/// Output batches hold exactly `max_rows` rows, so an input may be split
/// between two outputs. Its offset coverage is split with it, partition by
/// partition, at the first offset that went to the later output; dead letters
/// follow the range their offset falls in. Each output therefore covers
/// exactly the messages it holds, which is what lets the sink commit it
/// exactly once.
pub struct Coalescer {
    schema: SchemaRef,
    max_rows: usize,
    max_wait: std::time::Duration,
    pending: VecDeque<Pending>,
    pending_rows: usize,
    topic_col: usize,
    partition_col: usize,
    offset_col: usize,
}

impl Coalescer {
    /// `schema` must carry the provenance columns (`source_topic`,
    /// `source_partition`, `source_offset`): they say where to split coverage.
    pub fn new(schema: SchemaRef, max_rows: usize, max_wait: std::time::Duration) -> Result<Self> {
        let col = |name: &str| {
            schema.index_of(name).map_err(|_| {
                OperatorError::Internal(format!("coalescer input has no `{name}` column"))
            })
        };
        Ok(Self {
            topic_col: col(columns::SOURCE_TOPIC)?,
            partition_col: col(columns::SOURCE_PARTITION)?,
            offset_col: col(columns::SOURCE_OFFSET)?,
            schema,
            max_rows: max_rows.max(1),
            max_wait,
            pending: VecDeque::new(),
            pending_rows: 0,
        })
    }

    /// Changes the batch size from the next input on; rows already
    /// pending go out at the new size.
    pub fn set_max_rows(&mut self, max_rows: usize) {
        self.max_rows = max_rows.max(1);
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
        let rows = env.rows();
        self.pending_rows += rows;
        self.pending.push_back(Pending {
            rows,
            batch: env.batch,
            dead_letters: env.dead_letters,
            coverage: env.coverage,
            arrived: now,
            fetched_at: env.fetched_at,
        });
        if self.pending_rows < self.max_rows {
            return Ok(Vec::new());
        }
        let full = self.pending_rows / self.max_rows * self.max_rows;
        self.take(full)
    }

    /// Emits everything pending as one envelope (for the deadline, for a
    /// flush request and for shutdown).
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
    /// may be shorter when flushing); the rest stays pending.
    fn take(&mut self, rows: usize) -> Result<Vec<Envelope>> {
        let inputs: Vec<Pending> = self.pending.drain(..).collect();
        let batches: Vec<&RecordBatch> = inputs.iter().filter_map(|p| p.batch.as_ref()).collect();
        let all = concat_batches(&self.schema, batches)?;
        let total = all.num_rows();
        let m = self.max_rows;

        // Segments: the outputs, then the leftover that stays pending.
        let n_out = rows.div_ceil(m).max(1);
        let mut segs: Vec<(Coverage, Vec<DeadLetter>)> =
            (0..=n_out).map(|_| Default::default()).collect();
        let mut fetched: Vec<Option<std::time::Instant>> = vec![None; n_out + 1];
        let mut batched: Vec<Option<Instant>> = vec![None; n_out + 1];
        let seg_rows = |s: usize| -> Range<usize> {
            if s == n_out {
                rows..total
            } else {
                s * m..((s + 1) * m).min(rows)
            }
        };
        let seg_of = |row: usize| if row >= rows { n_out } else { row / m };
        let mut leftover_arrived = None;

        let mut base = 0;
        for p in inputs {
            let end = base + p.rows;
            let last = if end > rows {
                n_out
            } else {
                end.saturating_sub(1) / m
            };
            let first = if p.rows == 0 { last } else { seg_of(base) };
            if last == n_out {
                leftover_arrived.get_or_insert(p.arrived);
            }
            for s in first..=last {
                fetched[s] = Envelope::oldest(fetched[s], p.fetched_at);
                batched[s] = Some(batched[s].map_or(p.arrived, |b| b.min(p.arrived)));
            }
            // Where each partition's range is cut: walking back from the last
            // segment, a segment starts at its first row of that partition.
            let mut hi: Vec<(&Arc<str>, i32, i64)> =
                p.coverage.iter().map(|(t, q, r)| (t, q, r.end)).collect();
            let mut parts: Vec<Vec<(usize, Range<i64>)>> = vec![Vec::new(); hi.len()];
            for s in (first..=last).rev() {
                let firsts = if s == first {
                    Vec::new()
                } else {
                    let r = seg_rows(s);
                    self.first_offsets(&all, r.start.max(base)..r.end.min(end))
                };
                for (i, (t, q, h)) in hi.iter_mut().enumerate() {
                    let lo = if s == first {
                        p.coverage.get(t, *q).map_or(*h, |r| r.start)
                    } else {
                        firsts
                            .iter()
                            .find(|(ft, fq, _)| *ft == t.as_ref() && fq == q)
                            .map_or(*h, |f| f.2)
                    };
                    if lo < *h {
                        parts[i].push((s, lo..*h));
                    }
                    *h = lo;
                }
            }
            for (i, (t, q, _)) in hi.iter().enumerate() {
                for (s, r) in parts[i].iter().rev() {
                    segs[*s].0.extend(t, *q, r.clone())?;
                }
            }
            for d in p.dead_letters {
                let s = (first..=last)
                    .find(|s| {
                        segs[*s]
                            .0
                            .get(&d.topic, d.partition)
                            .is_some_and(|r| r.contains(&d.offset))
                    })
                    .ok_or_else(|| {
                        OperatorError::Internal(format!(
                            "dead letter {}/{}@{} outside its input's offsets",
                            d.topic, d.partition, d.offset
                        ))
                    })?;
                segs[s].1.push(d);
            }
            base = end;
        }

        let (left_cov, left_dead) = segs.pop().unwrap_or_default();
        let left_fetched = fetched.pop().flatten();
        let emitted = Instant::now();
        batched.pop();
        let outputs = segs
            .into_iter()
            .zip(fetched.into_iter().zip(batched))
            .enumerate()
            .map(|(s, ((coverage, dead_letters), (fetched_at, batched)))| {
                let r = seg_rows(s);
                Envelope {
                    batch: (!r.is_empty()).then(|| all.slice(r.start, r.len())),
                    dead_letters,
                    coverage,
                    flush: false,
                    fetched_at,
                    busy: batched
                        .map_or_else(Default::default, |b| emitted.saturating_duration_since(b)),
                }
            })
            .collect();
        self.pending_rows = total - rows;
        if let Some(arrived) = leftover_arrived {
            self.pending.push_back(Pending {
                rows: total - rows,
                batch: (total > rows).then(|| all.slice(rows, total - rows)),
                dead_letters: left_dead,
                coverage: left_cov,
                arrived,
                fetched_at: left_fetched,
            });
        }
        Ok(outputs)
    }

    /// The first offset of each partition among `rows` of `batch`.
    fn first_offsets<'a>(
        &self,
        batch: &'a RecordBatch,
        rows: Range<usize>,
    ) -> Vec<(&'a str, i32, i64)> {
        let topics = batch.column(self.topic_col).as_string::<i32>();
        let parts = batch.column(self.partition_col).as_primitive::<Int32Type>();
        let offsets = batch.column(self.offset_col).as_primitive::<Int64Type>();
        let mut out: Vec<(&str, i32, i64)> = Vec::new();
        for i in rows {
            if topics.is_null(i) {
                continue;
            }
            let (t, q) = (topics.value(i), parts.value(i));
            if !out.iter().any(|(ot, oq, _)| *ot == t && *oq == q) {
                out.push((t, q, offsets.value(i)));
            }
        }
        out
    }
}
