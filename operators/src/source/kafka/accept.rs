//! Taking one message into the chunk: finding its partition, telling a
//! retention gap from a stale message after a re-assignment, and extending
//! the partition's coverage.

use std::time::{Duration, Instant};

use metrics::counter;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use tracing::{debug, warn};

use super::KafkaSource;
use super::incoming::Incoming;
use super::state::{GapCheck, Part, State};

impl KafkaSource {
    /// Adds a message to the chunk, extending its partition's coverage from
    /// where the partition's last message (or its resume point) ended, and
    /// starts the chunk's linger clock with its first message.
    pub(super) fn accept(&self, st: &mut State, m: &Incoming<'_>, linger: Duration) {
        let (topic, partition, offset) = (m.topic, m.partition, m.offset);
        let Some(idx) = owned_index(st, topic, partition) else {
            debug!(
                topic,
                partition, offset, "message from a partition no longer owned; ignored"
            );
            return;
        };
        st.last_part = idx;
        let part = &mut st.parts[idx];
        let start = part.next.unwrap_or(offset);
        if offset < start {
            debug!(
                topic,
                partition, offset, start, "message before the resume point; ignored"
            );
            return;
        }
        if part.resumed && offset > start {
            if part.gap_check != GapCheck::Checked {
                self.refetch_once(part, topic, offset, start);
                return;
            }
            warn!(
                topic,
                partition,
                from = start,
                to = offset,
                "offsets after the committed output were not delivered: gone from the broker (retention) unless they are compaction gaps or transaction markers"
            );
            counter!("scorestream_offsets_skipped_total").increment((offset - start) as u64);
            st.report.offsets_skipped += (offset - start) as u64;
        }
        let part = &mut st.parts[idx];
        part.resumed = false;
        part.next = Some(offset + 1);
        let topic_arc = part.topic.clone();
        let ts = m.timestamp_ms.unwrap_or_else(crate::now_ms);
        let i = st
            .chunk
            .push(topic, partition, offset, ts, m.key, m.payload);
        m.keep_rest(&mut st.chunk, i);
        if st.deadline.is_none() {
            st.deadline = Some(Instant::now() + linger);
        }
        st.report.messages_read += 1;
        if let Err(e) = st
            .chunk
            .coverage
            .extend(&topic_arc, partition, start..offset + 1)
        {
            st.fatal.get_or_insert(e);
        }
    }

    /// The first message after an assignment can be a stale one: fetched
    /// for this partition before an earlier revocation and still queued,
    /// because librdkafka applies assignments on its own thread, after this
    /// one has moved on. Taken as a gap, it would skip the messages the new
    /// fetch starts with. A seek makes librdkafka drop everything fetched
    /// before it and fetch again from the resume point; a real gap shows up
    /// again, and is believed then.
    fn refetch_once(&self, part: &mut Part, topic: &str, offset: i64, start: i64) {
        if part.gap_check != GapCheck::Unchecked {
            return;
        }
        part.gap_check = GapCheck::Refetching;
        let partition = part.partition;
        debug!(
            topic,
            partition,
            offset,
            start,
            "a gap right after resuming; fetching again from the resume point"
        );
        let at = Offset::Offset(start);
        if let Err(e) = self.consumer.seek(topic, partition, at, Duration::ZERO) {
            debug!(topic, partition, error = %e, "seek not applied; the assignment's own fetch starts at the resume point");
        }
    }
}

/// The index of the message's partition among the owned ones; the last one
/// used is tried first, since messages come in runs from one partition.
fn owned_index(st: &State, topic: &str, partition: i32) -> Option<usize> {
    let same = |p: &Part| p.partition == partition && &*p.topic == topic;
    if st.parts.get(st.last_part).is_some_and(same) {
        return Some(st.last_part);
    }
    st.parts.iter().position(same)
}
