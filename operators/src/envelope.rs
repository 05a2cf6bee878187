use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use scorestream_schemas::DeadLetter;

/// The Kafka offsets a piece of data covers: per topic-partition, the highest
/// offset seen. Offsets become committable only once the sink has durably
/// written every row and dead letter that came from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acks {
    highest: BTreeMap<(Arc<str>, i32), i64>,
    messages: u64,
}

impl Acks {
    pub fn record(&mut self, topic: &Arc<str>, partition: i32, offset: i64) {
        self.messages += 1;
        self.highest
            .entry((topic.clone(), partition))
            .and_modify(|o| *o = (*o).max(offset))
            .or_insert(offset);
    }

    pub fn merge(&mut self, other: Acks) {
        self.messages += other.messages;
        for (k, off) in other.highest {
            self.highest
                .entry(k)
                .and_modify(|o| *o = (*o).max(off))
                .or_insert(off);
        }
    }

    /// Number of Kafka messages covered (good rows plus dead letters).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// `(topic, partition, next offset to consume)`: what Kafka expects in a commit.
    pub fn commit_positions(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.highest
            .iter()
            .map(|((t, p), o)| (t.as_ref(), *p, o + 1))
    }
}

/// The unit that flows between operators.
#[derive(Debug, Default)]
pub struct Envelope {
    /// Good rows; `None` when every message of the chunk became a dead letter.
    pub batch: Option<RecordBatch>,
    pub dead_letters: Vec<DeadLetter>,
    pub acks: Acks,
}

impl Envelope {
    pub fn rows(&self) -> usize {
        self.batch.as_ref().map_or(0, |b| b.num_rows())
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
    fn acks_keep_the_highest_offset_per_partition() {
        let t: Arc<str> = "tx".into();
        let mut a = Acks::default();
        a.record(&t, 0, 5);
        a.record(&t, 0, 3);
        let mut b = Acks::default();
        b.record(&t, 1, 9);
        b.record(&t, 0, 7);
        a.merge(b);
        let pos: Vec<_> = a.commit_positions().collect();
        assert_eq!(pos, vec![("tx", 0, 8), ("tx", 1, 10)]);
        assert_eq!(a.messages(), 4);
    }
}
