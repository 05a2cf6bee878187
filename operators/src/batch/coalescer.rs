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
    pub(crate) fn set_max_rows(&mut self, max_rows: usize) {
        self.max_rows = max_rows.max(1);
    }

    #[cfg(test)]
    pub(crate) fn pending_rows(&self) -> usize {
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
        let mut segs = Segments::new(rows, all.num_rows(), self.max_rows);
        let mut base = 0;
        for p in inputs {
            base = self.place(&mut segs, &all, p, base)?;
        }
        Ok(self.emit(segs, &all))
    }

    /// Hands the input `p`, whose rows start at `base` in `all`, to the
    /// segments its rows fall in: its times, its offset coverage cut where
    /// each segment starts, and its dead letters by offset. Returns where
    /// the next input starts.
    fn place(
        &self,
        segs: &mut Segments,
        all: &RecordBatch,
        p: Pending,
        base: usize,
    ) -> Result<usize> {
        let end = base + p.rows;
        let (first, last) = segs.span(base, end, p.rows);
        if last == segs.n_out {
            segs.leftover_arrived.get_or_insert(p.arrived);
        }
        for s in first..=last {
            segs.fetched[s] = Envelope::oldest(segs.fetched[s], p.fetched_at);
            segs.batched[s] = Some(segs.batched[s].map_or(p.arrived, |b| b.min(p.arrived)));
        }
        self.split_coverage(segs, all, &p.coverage, base..end, first, last)?;
        for d in p.dead_letters {
            let s = (first..=last)
                .find(|s| {
                    segs.coverage[*s]
                        .get(&d.topic, d.partition)
                        .is_some_and(|r| r.contains(&d.offset))
                })
                .ok_or_else(|| {
                    OperatorError::Internal(format!(
                        "dead letter {}/{}@{} outside its input's offsets",
                        d.topic, d.partition, d.offset
                    ))
                })?;
            segs.dead_letters[s].push(d);
        }
        Ok(end)
    }

    /// Cuts one input's `coverage` (its rows `span` of `all`, in segments
    /// `first..=last`) partition by partition: walking back from the last
    /// segment, a segment starts at its first row of that partition.
    fn split_coverage(
        &self,
        segs: &mut Segments,
        all: &RecordBatch,
        coverage: &Coverage,
        span: Range<usize>,
        first: usize,
        last: usize,
    ) -> Result<()> {
        let mut hi: Vec<(&Arc<str>, i32, i64)> =
            coverage.iter().map(|(t, q, r)| (t, q, r.end)).collect();
        let mut parts: Vec<Vec<(usize, Range<i64>)>> = vec![Vec::new(); hi.len()];
        for s in (first..=last).rev() {
            let firsts = if s == first {
                Vec::new()
            } else {
                let r = segs.rows_of(s);
                self.first_offsets(all, r.start.max(span.start)..r.end.min(span.end))
            };
            for (i, (t, q, h)) in hi.iter_mut().enumerate() {
                let lo = if s == first {
                    coverage.get(t, *q).map_or(*h, |r| r.start)
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
                segs.coverage[*s].extend(t, *q, r.clone())?;
            }
        }
        Ok(())
    }

    /// The output envelopes; the leftover segment goes back to pending.
    fn emit(&mut self, mut segs: Segments, all: &RecordBatch) -> Vec<Envelope> {
        let (rows, total) = (segs.rows, segs.total);
        let left_cov = segs.coverage.pop().unwrap_or_default();
        let left_dead = segs.dead_letters.pop().unwrap_or_default();
        let left_fetched = segs.fetched.pop().flatten();
        segs.batched.pop();
        let emitted = Instant::now();
        let coverage = std::mem::take(&mut segs.coverage);
        let dead_letters = std::mem::take(&mut segs.dead_letters);
        let outputs = (0..segs.n_out)
            .zip(coverage.into_iter().zip(dead_letters))
            .zip(segs.fetched.iter().zip(&segs.batched))
            .map(|((s, (coverage, dead_letters)), (fetched_at, batched))| {
                let r = segs.rows_of(s);
                Envelope {
                    batch: (!r.is_empty()).then(|| all.slice(r.start, r.len())),
                    dead_letters,
                    coverage,
                    flush: false,
                    fetched_at: *fetched_at,
                    busy: batched
                        .map_or_else(Default::default, |b| emitted.saturating_duration_since(b)),
                    origin: None,
                }
            })
            .collect();
        self.pending_rows = total - rows;
        if let Some(arrived) = segs.leftover_arrived {
            self.pending.push_back(Pending {
                rows: total - rows,
                batch: (total > rows).then(|| all.slice(rows, total - rows)),
                dead_letters: left_dead,
                coverage: left_cov,
                arrived,
                fetched_at: left_fetched,
            });
        }
        outputs
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

/// The segments of one `take`: its `n_out` outputs of `m` rows (the last
/// may be shorter), then the leftover that stays pending, each with what
/// it carries besides its rows.
struct Segments {
    /// Rows that go out; `total - rows` stay pending.
    rows: usize,
    total: usize,
    m: usize,
    n_out: usize,
    coverage: Vec<Coverage>,
    dead_letters: Vec<Vec<DeadLetter>>,
    fetched: Vec<Option<std::time::Instant>>,
    batched: Vec<Option<Instant>>,
    leftover_arrived: Option<Instant>,
}

impl Segments {
    fn new(rows: usize, total: usize, m: usize) -> Self {
        let n_out = rows.div_ceil(m).max(1);
        Self {
            rows,
            total,
            m,
            n_out,
            coverage: (0..=n_out).map(|_| Coverage::default()).collect(),
            dead_letters: (0..=n_out).map(|_| Vec::new()).collect(),
            fetched: vec![None; n_out + 1],
            batched: vec![None; n_out + 1],
            leftover_arrived: None,
        }
    }

    /// The rows of segment `s` in the concatenated batch.
    fn rows_of(&self, s: usize) -> Range<usize> {
        if s == self.n_out {
            self.rows..self.total
        } else {
            s * self.m..((s + 1) * self.m).min(self.rows)
        }
    }

    /// The first and last segment an input's rows `base..end` fall in; an
    /// empty input (dead letters only) belongs to the segment it ends in.
    fn span(&self, base: usize, end: usize, rows: usize) -> (usize, usize) {
        let last = if end > self.rows {
            self.n_out
        } else {
            end.saturating_sub(1) / self.m
        };
        let first = if rows == 0 {
            last
        } else if base >= self.rows {
            self.n_out
        } else {
            base / self.m
        };
        (first, last)
    }
}
