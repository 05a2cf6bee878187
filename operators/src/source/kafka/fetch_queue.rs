//! Reading fetched messages a batch at a time, through librdkafka's
//! `rd_kafka_consume_batch_queue`.
//!
//! rdkafka's safe `poll` hands out one message per call, and each call pays
//! for a queue lock, two clock reads, an event wrapper and an `Arc`. Against
//! tansu on the 2-core bench host a bare poll loop spent 1.7–2.2 CPU-µs per
//! message, a batch loop 0.8 (BENCHMARKS.md): the difference is most of the
//! source's cost. This is the workspace's one unsafe module in a library;
//! every `unsafe` block says what it relies on.
//!
//! Batch consume cannot read the consumer queue itself: rdkafka serves
//! rebalances as events on that queue, and librdkafka's batch call would
//! meet them with no rebalance callback and drop the assignment. So each
//! assigned partition's fetch queue is forwarded to a queue of its own
//! ([`FetchQueue::attach`]), which then carries messages and per-partition
//! consume errors only. The consumer queue keeps the events and is still
//! polled, so rebalances, statistics and commits are served as before.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::ptr::{self, NonNull};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

/// A queue the assigned partitions' messages are forwarded to.
pub(super) struct FetchQueue {
    queue: NonNull<rd::rd_kafka_queue_t>,
    /// The consumer's handle; only used to look up partition queues while
    /// the consumer is alive (the owner destroys this queue first).
    rk: NonNull<rd::rd_kafka_t>,
}

// SAFETY: librdkafka's queue and client handles are thread-safe; every call
// made through them here is documented as callable from any thread.
unsafe impl Send for FetchQueue {}
unsafe impl Sync for FetchQueue {}

impl FetchQueue {
    /// A new, empty queue on `consumer`'s client. `None` only if librdkafka
    /// cannot allocate one.
    pub(super) fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<Self> {
        let rk = NonNull::new(consumer.client().native_ptr())?;
        // SAFETY: `rk` is a live client; the queue is destroyed in `drop`,
        // which the owner runs before the consumer is dropped.
        let queue = NonNull::new(unsafe { rd::rd_kafka_queue_new(rk.as_ptr()) })?;
        Some(Self { queue, rk })
    }

    /// Routes `topic`/`partition`'s fetched messages here. librdkafka drops
    /// the route whenever it stops fetching the partition, so it must be set
    /// after each assignment (and may be set again at any time: it is
    /// idempotent, and messages already waiting move along with it).
    pub(super) fn attach(&self, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else {
            return false;
        };
        // SAFETY: the client is alive (see `new`); the partition queue handle
        // is released right after forwarding, the forward itself holds its
        // own reference to our queue.
        unsafe {
            let pq = rd::rd_kafka_queue_get_partition(self.rk.as_ptr(), topic.as_ptr(), partition);
            if pq.is_null() {
                return false;
            }
            rd::rd_kafka_queue_forward(pq, self.queue.as_ptr());
            rd::rd_kafka_queue_destroy(pq);
        }
        true
    }

    /// Waits up to `timeout` for messages and takes up to `max` of those
    /// waiting. Returns at once when some are already there.
    pub(super) fn fetch(&self, timeout: Duration, max: usize, into: &mut Batch) {
        into.clear();
        into.ptrs.resize(max.max(1), ptr::null_mut());
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `ptrs` has room for `ptrs.len()` pointers; librdkafka fills
        // the first `n` with messages the batch now owns.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                ms,
                into.ptrs.as_mut_ptr(),
                into.ptrs.len(),
            )
        };
        into.ptrs.truncate(n.max(0) as usize);
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: created by `rd_kafka_queue_new` and destroyed once. Partition
        // queues still forwarding here hold their own references, so nothing
        // dangles; what they still deliver is discarded.
        unsafe { rd::rd_kafka_queue_destroy(self.queue.as_ptr()) }
    }
}

/// Messages taken from a [`FetchQueue`], owned until cleared or dropped.
#[derive(Default)]
pub(super) struct Batch {
    ptrs: Vec<*mut rd::rd_kafka_message_t>,
}

// SAFETY: a fetched message is owned by whoever holds it and may be read and
// destroyed from any thread.
unsafe impl Send for Batch {}

impl Batch {
    pub(super) fn len(&self) -> usize {
        self.ptrs.len()
    }

    /// The messages, in the order librdkafka delivered them.
    pub(super) fn iter(&self) -> impl Iterator<Item = Fetched<'_>> {
        // SAFETY: every pointer is a live message owned by this batch until
        // `clear`, which needs `&mut self` and so cannot run while a
        // `Fetched` borrows it.
        self.ptrs.iter().map(|&m| Fetched { m: unsafe { &*m } })
    }

    /// Destroys the messages, releasing their memory to librdkafka.
    pub(super) fn clear(&mut self) {
        for m in self.ptrs.drain(..) {
            // SAFETY: each message was handed to this batch by librdkafka and
            // is destroyed exactly once, here.
            unsafe { rd::rd_kafka_message_destroy(m) }
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.clear();
    }
}

/// One fetched message, or a consume error for its partition.
pub(super) struct Fetched<'a> {
    m: &'a rd::rd_kafka_message_t,
}

impl<'a> Fetched<'a> {
    /// librdkafka's description of the error this entry carries instead of a
    /// message, if any.
    pub(super) fn error(&self) -> Option<String> {
        if self.m.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        // SAFETY: `rd_kafka_err2str` returns a static C string for any code.
        let text = unsafe { CStr::from_ptr(rd::rd_kafka_err2str(self.m.err)) };
        Some(text.to_string_lossy().into_owned())
    }

    pub(super) fn topic(&self) -> &'a str {
        if self.m.rkt.is_null() {
            return "";
        }
        // SAFETY: a message keeps its topic handle alive, and the name is a
        // NUL-terminated string owned by that handle.
        unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(self.m.rkt)) }
            .to_str()
            .unwrap_or("")
    }

    pub(super) fn partition(&self) -> i32 {
        self.m.partition
    }

    pub(super) fn offset(&self) -> i64 {
        self.m.offset
    }

    /// The message's timestamp in milliseconds, if the broker sent one.
    pub(super) fn timestamp_ms(&self) -> Option<i64> {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: reads the live message; `kind` is a valid out-pointer.
        let ts = unsafe { rd::rd_kafka_message_timestamp(self.m, &mut kind) };
        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0)
            .then_some(ts)
    }

    pub(super) fn key(&self) -> Option<&'a [u8]> {
        // SAFETY: key/key_len describe a buffer owned by the live message.
        (!self.m.key.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(self.m.key as *const u8, self.m.key_len) })
    }

    pub(super) fn payload(&self) -> &'a [u8] {
        if self.m.payload.is_null() {
            return &[];
        }
        // SAFETY: payload/len describe a buffer owned by the live message.
        unsafe { std::slice::from_raw_parts(self.m.payload as *const u8, self.m.len) }
    }

    /// The message's headers as librdkafka parsed them (kept with the
    /// message, so they live as long), or `None` when it has none.
    pub(super) fn headers(&self) -> Option<&'a rd::rd_kafka_headers_t> {
        let mut hdrs: *mut rd::rd_kafka_headers_t = ptr::null_mut();
        // SAFETY: the message is live; librdkafka parses its headers once and
        // keeps them with the message.
        let err = unsafe { rd::rd_kafka_message_headers(self.m, &mut hdrs) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
            return None;
        }
        // SAFETY: non-null and owned by the message, which outlives 'a.
        Some(unsafe { &*hdrs })
    }
}

/// Calls `f` with each header of a message's header list, in order.
pub(super) fn each_header<'a>(
    h: &'a rd::rd_kafka_headers_t,
    f: &mut impl FnMut(&str, Option<&'a [u8]>),
) {
    for idx in 0.. {
        let mut name: *const std::ffi::c_char = ptr::null();
        let mut value: *const std::ffi::c_void = ptr::null();
        let mut size = 0usize;
        // SAFETY: `h` is a live header list; the out-pointers are valid, and
        // what they receive is owned by the list, which outlives 'a.
        let err = unsafe { rd::rd_kafka_header_get_all(h, idx, &mut name, &mut value, &mut size) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return;
        }
        // SAFETY: a header name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(name) }.to_str().unwrap_or_default();
        // SAFETY: value/size describe a buffer owned by the list.
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value as *const u8, size) });
        f(name, value);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    use super::*;

    /// A routed partition's messages come off the fetch queue, in offset
    /// order and with their contents; an unrouted one's stay on the
    /// consumer queue, so nothing is read twice or lost between the two.
    #[test]
    fn routed_partitions_deliver_to_the_fetch_queue_only() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("q", 2, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("producer");
        for i in 0..20 {
            let payload = format!("m{i}");
            let record = BaseRecord::<str, str>::to("q")
                .payload(&payload)
                .key("k")
                .partition(i % 2);
            producer.send(record).map_err(|(e, _)| e).expect("send");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");

        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "fq")
            .create()
            .expect("consumer");
        let fetch = FetchQueue::new(&consumer).expect("queue");
        assert!(fetch.attach("q", 0));
        let mut tpl = TopicPartitionList::new();
        for p in 0..2 {
            tpl.add_partition_offset("q", p, Offset::Beginning)
                .expect("tpl");
        }
        consumer.assign(&tpl).expect("assign");

        let (mut routed, mut polled) = (Vec::new(), Vec::new());
        let mut batch = Batch::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while routed.len() + polled.len() < 20 {
            assert!(Instant::now() < deadline, "{routed:?} {polled:?}");
            fetch.fetch(Duration::from_millis(50), 64, &mut batch);
            for m in batch.iter() {
                assert_eq!(m.error(), None);
                assert_eq!((m.topic(), m.key()), ("q", Some(&b"k"[..])));
                assert!(m.timestamp_ms().is_some_and(|t| t > 0));
                let payload = String::from_utf8(m.payload().to_vec()).expect("utf8");
                routed.push((m.partition(), m.offset(), payload));
            }
            batch.clear();
            if let Some(m) = consumer.poll(Duration::from_millis(10)) {
                let m = m.expect("message");
                polled.push((m.partition(), m.offset()));
            }
        }
        let expected: Vec<(i32, i64, String)> =
            (0..10).map(|o| (0, o, format!("m{}", o * 2))).collect();
        assert_eq!(routed, expected);
        assert_eq!(polled, (0..10).map(|o| (1, o)).collect::<Vec<_>>());
    }
}
