//! A message as the source needs it, whether it came off the fetch queue
//! in a batch or off the consumer queue one at a time.

use rdkafka::bindings as rd;
use rdkafka::message::{BorrowedHeaders, Headers as _, Message};

use super::RawChunk;
use super::fetch_queue::{Fetched, each_header};

/// A message as the source needs it, whichever way it was read.
pub(super) struct Incoming<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) timestamp_ms: Option<i64>,
    pub(super) key: Option<&'a [u8]>,
    pub(super) payload: &'a [u8],
    headers: Headers<'a>,
}

/// A message's headers, as whichever client read it holds them.
enum Headers<'a> {
    None,
    Borrowed(&'a BorrowedHeaders),
    Native(&'a rd::rd_kafka_headers_t),
}

impl<'a> Incoming<'a> {
    pub(super) fn from_borrowed(m: &'a rdkafka::message::BorrowedMessage<'_>) -> Self {
        Self {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key(),
            payload: m.payload().unwrap_or_default(),
            headers: m.headers().map_or(Headers::None, Headers::Borrowed),
        }
    }

    pub(super) fn from_fetched(m: &Fetched<'a>) -> Self {
        Self {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp_ms(),
            key: m.key(),
            payload: m.payload(),
            headers: m.headers().map_or(Headers::None, Headers::Native),
        }
    }

    /// A message with no key, headers or timestamp, as a test makes up one.
    #[cfg(test)]
    pub(super) fn made_up(topic: &'a str, partition: i32, offset: i64, payload: &'a [u8]) -> Self {
        Self {
            topic,
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            payload,
            headers: Headers::None,
        }
    }

    /// Records in `chunk`, for the message it holds last (this one), what
    /// `RawChunk::push` does not take: every header, the trace id of the
    /// last `traceparent` one, and whether the broker sent no timestamp.
    /// Costs nothing for a message without headers.
    pub(super) fn keep_rest(&self, chunk: &mut RawChunk, i: usize) {
        if self.timestamp_ms.is_none() {
            chunk.mark_stamped_here();
        }
        let mut traceparent = None;
        let mut keep = |name: &str, value: Option<&'a [u8]>| {
            if name == TRACEPARENT {
                traceparent = value.or(traceparent);
            }
            chunk.push_header(name, value);
        };
        match self.headers {
            Headers::None => {}
            Headers::Borrowed(h) => h.iter().for_each(|h| keep(h.key, h.value)),
            Headers::Native(h) => each_header(h, &mut keep),
        }
        if let Some(v) = traceparent {
            chunk.set_traceparent(i, v);
        }
    }
}

/// The W3C trace context header (the last one counts if several are sent).
const TRACEPARENT: &str = "traceparent";
