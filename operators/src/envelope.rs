use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use scorestream_schemas::DeadLetter;

use crate::source::kafka::RawChunk;
use crate::{OperatorError, Result};

/// A Kafka topic-partition.
pub type TopicPartition = (Arc<str>, i32);

/// The Kafka offsets a piece of data accounts for: per topic-partition, one
/// contiguous half-open range `[start, end)`. Every message in the range is in
/// the data, as a row or as a dead letter, and no other message of that
/// partition is.
///
/// This is what makes exactly-once output possible: the sink commits each
/// file together with its range, ranges of one partition chain end to start,
/// and a restart resumes at the end of the chain. Offsets that hold no
/// message (compaction, transaction markers) belong to a range too, so the
/// chain has no holes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    ranges: BTreeMap<TopicPartition, Range<i64>>,
}

impl Coverage {
    /// Adds `range` for a partition. Ranges of one partition must arrive in
    /// order and touch: anything else means offsets were skipped or repeated.
    pub fn extend(&mut self, topic: &Arc<str>, partition: i32, range: Range<i64>) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        match self.ranges.get_mut(&(topic.clone(), partition)) {
            Some(have) if have.end == range.start => {
                have.end = range.end;
                Ok(())
            }
            Some(have) => Err(OperatorError::Internal(format!(
                "offsets of {topic}/{partition} out of order: {have:?} then {range:?}"
            ))),
            None => {
                self.ranges.insert((topic.clone(), partition), range);
                Ok(())
            }
        }
    }

    /// Appends everything `other` covers; `other` must come after `self`.
    pub fn merge(&mut self, other: Coverage) -> Result<()> {
        for ((t, p), r) in other.ranges {
            self.extend(&t, p, r)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<&Range<i64>> {
        self.ranges
            .iter()
            .find(|((t, p), _)| t.as_ref() == topic && *p == partition)
            .map(|(_, r)| r)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, i32, &Range<i64>)> {
        self.ranges.iter().map(|((t, p), r)| (t, *p, r))
    }
}

/// The unit that flows between operators.
#[derive(Debug, Default)]
pub struct Envelope {
    /// Good rows; `None` when every message of the chunk became a dead letter.
    pub batch: Option<RecordBatch>,
    pub dead_letters: Vec<DeadLetter>,
    pub coverage: Coverage,
    /// Emit everything held so far once this envelope is in: the source asks
    /// for it when partitions are revoked, so what it read from them gets
    /// committed before another member takes them over. It travels in the
    /// data queue so it cannot overtake the data it is about.
    pub flush: bool,
    /// When the oldest message in here was fetched from Kafka: the start
    /// of the batch latency the sink reports and adaptive batching steers.
    pub fetched_at: Option<std::time::Instant>,
    /// Time a coalesced batch has spent waiting for rows (from its oldest
    /// row reaching the batcher) and being scored and written, without the
    /// time it sat in queues: the latency its size decides, which
    /// `batch.target_latency` steers. Queueing while a job works off a
    /// backlog is a throughput matter smaller batches would only worsen.
    pub busy: std::time::Duration,
    /// The chunk the rows were decoded from, from the decoder to the
    /// feature join (which drops it): a row the join dead-letters then
    /// keeps its message's original bytes, key, headers and timestamp. It
    /// is the chunk itself, moved, not a copy, and rows keep the chunk's
    /// message order, so a row finds its message by walking both.
    pub origin: Option<Arc<RawChunk>>,
}

impl Envelope {
    pub fn rows(&self) -> usize {
        self.batch.as_ref().map_or(0, |b| b.num_rows())
    }

    /// Keeps the older of two fetch times, for data merged from both.
    pub fn oldest(
        a: Option<std::time::Instant>,
        b: Option<std::time::Instant>,
    ) -> Option<std::time::Instant> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Rows plus dead letters: what a queue slot holds.
    pub fn weight(&self) -> usize {
        self.rows() + self.dead_letters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_chains_ranges_per_partition() {
        let t: Arc<str> = "tx".into();
        let mut a = Coverage::default();
        a.extend(&t, 0, 0..5).expect("in order");
        a.extend(&t, 1, 10..12).expect("in order");
        let mut b = Coverage::default();
        b.extend(&t, 0, 5..9).expect("in order");
        b.extend(&t, 2, 3..4).expect("in order");
        a.merge(b).expect("in order");
        let got: Vec<_> = a
            .iter()
            .map(|(t, p, r)| (t.to_string(), p, r.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("tx".into(), 0, 0..9),
                ("tx".into(), 1, 10..12),
                ("tx".into(), 2, 3..4)
            ]
        );
    }

    #[test]
    fn coverage_refuses_gaps_and_overlaps() {
        let t: Arc<str> = "tx".into();
        let mut a = Coverage::default();
        a.extend(&t, 0, 0..5).expect("in order");
        assert!(a.extend(&t, 0, 6..8).is_err(), "gap");
        assert!(a.extend(&t, 0, 4..8).is_err(), "overlap");
        a.extend(&t, 0, 5..5).expect("in order");
        assert_eq!(a.get("tx", 0), Some(&(0..5)));
    }
}
