use std::sync::Arc;

use crate::Coverage;
use crate::queue::Weighted;

/// Raw Kafka messages laid out column by column in a few growable buffers, so
/// reading a message copies its bytes once and allocates nothing per message.
#[derive(Debug, Default)]
pub struct RawChunk {
    topics: Vec<Arc<str>>,
    topic_idx: Vec<u16>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    timestamps_ms: Vec<i64>,
    payload: Vec<u8>,
    payload_ends: Vec<usize>,
    keys: Vec<u8>,
    /// End of each key in `keys`, or `None` for a message without a key.
    key_ends: Vec<Option<usize>>,
    /// The offsets this chunk accounts for, gaps included.
    pub coverage: Coverage,
    /// Ask downstream operators to emit what they hold (see [`crate::Envelope::flush`]).
    pub flush: bool,
}

impl RawChunk {
    pub fn with_capacity(messages: usize) -> Self {
        Self {
            topic_idx: Vec::with_capacity(messages),
            partitions: Vec::with_capacity(messages),
            offsets: Vec::with_capacity(messages),
            timestamps_ms: Vec::with_capacity(messages),
            payload: Vec::with_capacity(messages * 256),
            payload_ends: Vec::with_capacity(messages),
            key_ends: Vec::with_capacity(messages),
            ..Default::default()
        }
    }

    pub fn push(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> usize {
        let idx = match self.topics.iter().position(|t| t.as_ref() == topic) {
            Some(i) => i,
            None => {
                self.topics.push(topic.into());
                self.topics.len() - 1
            }
        };
        self.topic_idx.push(idx as u16);
        self.partitions.push(partition);
        self.offsets.push(offset);
        self.timestamps_ms.push(timestamp_ms);
        self.payload.extend_from_slice(payload);
        self.payload_ends.push(self.payload.len());
        self.key_ends.push(key.map(|k| {
            self.keys.extend_from_slice(k);
            self.keys.len()
        }));
        self.offsets.len() - 1
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.payload_ends[i - 1] };
        &self.payload[start..self.payload_ends[i]]
    }

    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let end = self.key_ends[i]?;
        let start = self.key_ends[..i]
            .iter()
            .rev()
            .find_map(|e| *e)
            .unwrap_or(0);
        Some(&self.keys[start..end])
    }

    pub fn topic(&self, i: usize) -> &Arc<str> {
        &self.topics[self.topic_idx[i] as usize]
    }

    pub fn partition(&self, i: usize) -> i32 {
        self.partitions[i]
    }

    pub fn offset(&self, i: usize) -> i64 {
        self.offsets[i]
    }

    pub fn timestamp_ms(&self, i: usize) -> i64 {
        self.timestamps_ms[i]
    }
}

impl Weighted for RawChunk {
    fn weight(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_the_columns() {
        let mut c = RawChunk::with_capacity(2);
        c.push("a", 1, 10, 100, Some(b"k1"), b"{\"x\":1}");
        c.push("b", 2, 20, 200, None, b"");
        c.push("a", 1, 11, 300, Some(b"k3"), b"zz");
        assert_eq!(c.len(), 3);
        assert_eq!(c.payload(0), b"{\"x\":1}");
        assert_eq!(c.payload(1), b"");
        assert_eq!(c.payload(2), b"zz");
        assert_eq!(c.key(0), Some(&b"k1"[..]));
        assert_eq!(c.key(1), None);
        assert_eq!(c.key(2), Some(&b"k3"[..]));
        assert_eq!(c.topic(1).as_ref(), "b");
        assert_eq!(c.topic(2).as_ref(), "a");
        assert_eq!(
            (c.partition(2), c.offset(2), c.timestamp_ms(2)),
            (1, 11, 300)
        );
    }
}
