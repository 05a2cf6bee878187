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
    /// Trace ids from the messages' `traceparent` headers, 0 where absent.
    trace_ids: Vec<u128>,
    /// Every header's name and value, back to back, so a dead letter can
    /// carry them whatever stage rejects it; nothing is allocated for a
    /// message without headers.
    header_bytes: Vec<u8>,
    header_spans: Vec<HeaderSpan>,
    /// Per message, the end of its headers in `header_spans`.
    header_ends: Vec<u32>,
    /// Messages (ascending) the broker gave no timestamp: theirs was
    /// stamped here on arrival, so a replay must not send it as the
    /// producer's.
    stamped_here: Vec<u32>,
    /// The offsets this chunk accounts for, gaps included.
    pub coverage: Coverage,
    /// Ask downstream operators to emit what they hold (see [`crate::Envelope::flush`]).
    pub flush: bool,
    /// When the first message went in (see [`crate::Envelope::fetched_at`]).
    pub fetched_at: Option<std::time::Instant>,
}

/// Where one header's name and value end in `header_bytes`; it starts where
/// the previous one ended.
#[derive(Debug, Clone, Copy)]
struct HeaderSpan {
    name_end: usize,
    value_end: usize,
    /// Kafka tells a header without a value from one with an empty value.
    has_value: bool,
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
            trace_ids: Vec::with_capacity(messages),
            header_ends: Vec::with_capacity(messages),
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
        if self.offsets.is_empty() {
            self.fetched_at = Some(std::time::Instant::now());
        }
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
        self.trace_ids.push(0);
        self.header_ends.push(self.header_spans.len() as u32);
        self.offsets.len() - 1
    }

    /// Adds a header to the message pushed last.
    pub(crate) fn push_header(&mut self, name: &str, value: Option<&[u8]>) {
        self.header_bytes.extend_from_slice(name.as_bytes());
        let name_end = self.header_bytes.len();
        if let Some(v) = value {
            self.header_bytes.extend_from_slice(v);
        }
        self.header_spans.push(HeaderSpan {
            name_end,
            value_end: self.header_bytes.len(),
            has_value: value.is_some(),
        });
        if let Some(end) = self.header_ends.last_mut() {
            *end = self.header_spans.len() as u32;
        }
    }

    /// Notes that the message pushed last came without a broker timestamp.
    pub(crate) fn mark_stamped_here(&mut self) {
        if let Some(i) = self.offsets.len().checked_sub(1) {
            self.stamped_here.push(i as u32);
        }
    }

    /// Message `i`'s headers, in the order they arrived, as (name, value).
    pub fn headers(&self, i: usize) -> impl Iterator<Item = (&str, Option<&[u8]>)> + '_ {
        let first = if i == 0 {
            0
        } else {
            self.header_ends[i - 1] as usize
        };
        let spans = &self.header_spans[first..self.header_ends[i] as usize];
        let mut start = match first {
            0 => 0,
            _ => self.header_spans[first - 1].value_end,
        };
        spans.iter().map(move |h| {
            let name = &self.header_bytes[start..h.name_end];
            let value = &self.header_bytes[h.name_end..h.value_end];
            start = h.value_end;
            // Names went in as `&str`, so this cannot fail.
            let name = std::str::from_utf8(name).unwrap_or_default();
            (name, h.has_value.then_some(value))
        })
    }

    /// The message's Kafka timestamp as the broker gave it; `None` where
    /// the broker gave none.
    pub fn source_timestamp_ms(&self, i: usize) -> Option<i64> {
        match self.stamped_here.binary_search(&(i as u32)) {
            Ok(_) => None,
            Err(_) => Some(self.timestamps_ms[i]),
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// All payloads' bytes together.
    pub(crate) fn payload_bytes(&self) -> usize {
        self.payload.len()
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

    /// Keeps the trace id an upstream service sent in a W3C `traceparent`
    /// header (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`), so
    /// a score joins the producer's trace. Anything else is ignored.
    pub(crate) fn set_traceparent(&mut self, i: usize, header: &[u8]) {
        if let Some(id) = parse_traceparent(header) {
            self.trace_ids[i] = id;
        }
    }

    /// The message's trace id: the producer's, or one assigned here at
    /// ingress from where the message sits in Kafka, so that a replay after
    /// a crash assigns the same id again.
    pub fn trace_id(&self, i: usize) -> u128 {
        match self.trace_ids[i] {
            0 => ingress_trace_id(self.topic(i), self.partitions[i], self.offsets[i]),
            id => id,
        }
    }
}

fn parse_traceparent(h: &[u8]) -> Option<u128> {
    let s = std::str::from_utf8(h).ok()?;
    let mut parts = s.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |v: &str, n: usize| v.len() == n && v.bytes().all(|b| b.is_ascii_hexdigit());
    if version == "ff" || !hex(version, 2) || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    u128::from_str_radix(trace, 16).ok().filter(|&id| id != 0)
}

/// murmur3 x64-128 of the topic, partition and offset: stable, never 0 (the
/// invalid trace id), and without an allocation per message.
fn ingress_trace_id(topic: &str, partition: i32, offset: i64) -> u128 {
    // Kafka topic names are at most 249 bytes: hash one contiguous slice
    // (a chain of readers costs a third of the hash).
    let mut buf = [0u8; 256 + 12];
    let n = topic.len();
    let hash = match buf.get_mut(..n + 12) {
        Some(bytes) => {
            bytes[..n].copy_from_slice(topic.as_bytes());
            bytes[n..n + 4].copy_from_slice(&partition.to_le_bytes());
            bytes[n + 4..].copy_from_slice(&offset.to_le_bytes());
            murmur3::murmur3_x64_128(&mut &bytes[..], 0)
        }
        None => hash_chained(topic, partition, offset),
    };
    hash.unwrap_or(1).max(1)
}

/// The same hash over a chain of readers, for any topic length.
fn hash_chained(topic: &str, partition: i32, offset: i64) -> std::io::Result<u128> {
    use std::io::{Cursor, Read};
    let (p, o) = (partition.to_le_bytes(), offset.to_le_bytes());
    let mut bytes = Cursor::new(topic.as_bytes())
        .chain(Cursor::new(&p[..]))
        .chain(Cursor::new(&o[..]));
    murmur3::murmur3_x64_128(&mut bytes, 0)
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

    #[test]
    fn headers_and_timestamps_stay_with_their_message() {
        let mut c = RawChunk::with_capacity(4);
        c.push("a", 0, 0, 100, None, b"x");
        c.push_header("trace", Some(b"t1"));
        c.push_header("empty", Some(b""));
        c.push_header("none", None);
        c.push("a", 0, 1, 200, None, b"y");
        c.mark_stamped_here();
        c.push("a", 0, 2, 300, None, b"z");
        c.push_header("trace", Some(b"t3"));
        let all = |i| c.headers(i).collect::<Vec<_>>();
        assert_eq!(
            all(0),
            vec![
                ("trace", Some(&b"t1"[..])),
                ("empty", Some(&b""[..])),
                ("none", None)
            ]
        );
        assert_eq!(all(1), vec![]);
        assert_eq!(all(2), vec![("trace", Some(&b"t3"[..]))]);
        assert_eq!(c.payload(2), b"z", "headers do not disturb payloads");
        assert_eq!(
            (0..3).map(|i| c.source_timestamp_ms(i)).collect::<Vec<_>>(),
            vec![Some(100), None, Some(300)]
        );
    }

    /// Ids already written must come out the same after an upgrade: the
    /// one-slice hash equals the chained one it replaced, at every length
    /// murmur3's 16-byte blocks and tail care about.
    #[test]
    fn ingress_ids_match_the_chained_hash_they_replaced() {
        for len in [0, 1, 3, 4, 15, 16, 17, 31, 249, 300] {
            let topic = "t".repeat(len);
            for (p, o) in [(0, 0), (5, 123_456_789), (-1, i64::MAX)] {
                let chained = hash_chained(&topic, p, o).expect("hash").max(1);
                assert_eq!(ingress_trace_id(&topic, p, o), chained, "{len} {p} {o}");
            }
        }
    }

    #[test]
    fn trace_ids_come_from_traceparent_or_are_assigned_stably() {
        let mut c = RawChunk::with_capacity(3);
        c.push("a", 1, 10, 0, None, b"");
        c.push("a", 1, 11, 0, None, b"");
        c.push("a", 1, 12, 0, None, b"");
        c.set_traceparent(
            0,
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        c.set_traceparent(
            1,
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        );
        assert_eq!(c.trace_id(0), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_ne!(
            c.trace_id(1),
            0,
            "an all-zero trace id is invalid and replaced"
        );
        assert_ne!(c.trace_id(1), c.trace_id(2));
        let mut again = RawChunk::with_capacity(1);
        again.push("a", 1, 12, 5, Some(b"k"), b"other");
        assert_eq!(again.trace_id(0), c.trace_id(2), "same message, same id");
        for bad in [
            &b"garbage"[..],
            b"00-4bf92f35-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let mut x = RawChunk::with_capacity(1);
            x.push("a", 1, 12, 0, None, b"");
            x.set_traceparent(0, bad);
            assert_eq!(
                x.trace_id(0),
                c.trace_id(2),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
