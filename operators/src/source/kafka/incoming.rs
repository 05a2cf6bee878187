//! A message as the source needs it, whether it came off the fetch queue
//! in a batch or off the consumer queue one at a time.

use rdkafka::message::Message;

use super::fetch_queue::Fetched;

/// A message as the source needs it, whichever way it was read.
pub(super) struct Incoming<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) timestamp_ms: Option<i64>,
    pub(super) key: Option<&'a [u8]>,
    pub(super) payload: &'a [u8],
    pub(super) traceparent: Option<&'a [u8]>,
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
            traceparent: m.headers().and_then(|h| {
                rdkafka::message::Headers::iter(h)
                    .filter(|h| h.key.as_bytes() == TRACEPARENT.to_bytes())
                    .last()
                    .and_then(|h| h.value)
            }),
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
            traceparent: m.header(TRACEPARENT),
        }
    }
}

/// The W3C trace context header (the last one counts if several are sent).
const TRACEPARENT: &std::ffi::CStr = c"traceparent";
