//! The consumer's context: rebalances (resume from the output's commit
//! log on assignment, hand over and commit on revocation), librdkafka's
//! logs with secrets redacted, and its statistics for the lag gauge.

use std::sync::TryLockError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use metrics::gauge;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::state::{GapCheck, Part, Shared, SourceContext};
use crate::OperatorError;

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let msg = self.shared.config.options.redact(log_message);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(target: "librdkafka", facility = fac, "{msg}"),
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", facility = fac, "{msg}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", facility = fac, "{msg}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", facility = fac, "{msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let reason = self.shared.config.options.redact(reason);
        warn!(target: "librdkafka", error = %error, "{reason}");
        self.shared.auth.record(&error, &reason);
    }

    /// librdkafka's statistics, every `statistics.interval.ms`: they carry
    /// each partition's high watermark as of its last fetch, so the lag
    /// gauge costs no broker round trip and no work per message. They are
    /// served by the source thread's `poll`, inside the operator's span, so
    /// the gauge gets the job's label.
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(lag) = self.shared.consumer_lag(&statistics) {
            self.shared.lag.store(lag, Ordering::Relaxed);
            gauge!("scorestream_consumer_lag_messages").set(lag as f64);
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.shared.auth.clear();
                self.shared.on_assign(consumer, tpl);
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if assigned.is_ok() {
                    let parts: Vec<(String, i32)> = tpl
                        .elements()
                        .iter()
                        .map(|e| (e.topic().to_owned(), e.partition()))
                        .collect();
                    self.shared.attach(&parts);
                }
                assigned
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.shared.on_revoke(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(error = ?other, "rebalance error; dropping the assignment");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            error!(error = %e, "applying the new assignment failed");
            self.shared
                .lock()
                .fatal
                .get_or_insert(OperatorError::Kafka(e));
        }
    }
}

impl Shared {
    /// Messages on the broker this member has not yet committed to the
    /// output, summed over its partitions: a partition's high watermark
    /// minus the end of what the sink acknowledged (or, before the first
    /// acknowledgement, the group's committed offset, then the read
    /// position). `None` when the numbers are not known yet or the state is
    /// busy (a rebalance holds it; the next statistics will do).
    pub(super) fn consumer_lag(&self, statistics: &rdkafka::Statistics) -> Option<i64> {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let mut lag = 0;
        let mut known = st.parts.is_empty();
        for p in &st.parts {
            let Some(ps) = statistics
                .topics
                .get(&*p.topic)
                .and_then(|t| t.partitions.get(&p.partition))
            else {
                continue;
            };
            let done = [p.acked, ps.committed_offset, ps.app_offset]
                .into_iter()
                .find(|&o| o >= 0);
            if let Some(done) = done
                && ps.hi_offset >= 0
            {
                lag += (ps.hi_offset - done).max(0);
                known = true;
            }
        }
        known.then_some(lag)
    }

    pub(super) fn on_assign(
        &self,
        consumer: &BaseConsumer<SourceContext>,
        tpl: &mut TopicPartitionList,
    ) {
        let keys: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let positions = match self.resume.resume_positions(&keys) {
            Ok(p) => p,
            Err(e) => {
                error!(error = %e, "cannot read where to resume; stopping");
                self.lock().fatal.get_or_insert(e);
                vec![None; keys.len()]
            }
        };
        let mut st = self.lock();
        st.report.rebalances += 1;
        for ((topic, partition), pos) in keys.iter().zip(&positions) {
            if let Some(o) = pos
                && let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(*o))
            {
                st.fatal.get_or_insert(OperatorError::Kafka(e));
            }
            st.parts
                .retain(|p| !(p.partition == *partition && *p.topic == **topic));
            st.parts.push(Part {
                topic: topic.as_str().into(),
                partition: *partition,
                next: *pos,
                resumed: pos.is_some(),
                gap_check: GapCheck::Unchecked,
                handed: pos.unwrap_or(-1),
                acked: pos.unwrap_or(-1),
            });
        }
        let paused = st.paused;
        drop(st);
        self.assigned
            .fetch_add(keys.len() as i64, Ordering::Relaxed);
        let shown: Vec<String> = keys
            .iter()
            .zip(&positions)
            .map(|((t, p), o)| match o {
                Some(o) => format!("{t}/{p}@{o}"),
                None => format!("{t}/{p}@group"),
            })
            .collect();
        info!(partitions = %shown.join(" "), "partitions assigned; resuming from the commit log");
        if paused && let Err(e) = consumer.pause(tpl) {
            warn!(error = %e, "pausing newly assigned partitions failed");
        }
    }

    /// Hands over what was read from the revoked partitions, asks the
    /// pipeline to flush, and waits until the sink has committed all of it,
    /// so the next owner resumes exactly where this member stopped.
    pub(super) fn on_revoke(
        &self,
        consumer: &BaseConsumer<SourceContext>,
        tpl: &TopicPartitionList,
    ) {
        let keys: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        info!(
            partitions = keys.len(),
            "partitions revoked; committing what was read from them"
        );
        let mut st = self.lock();
        st.report.rebalances += 1;
        if st.out.is_some() {
            let mut flush = std::mem::take(&mut st.chunk);
            flush.flush = true;
            st.deadline = None;
            let stalled = st.stalled.take();
            for c in stalled.into_iter().chain(Some(flush)) {
                if let Err(e) = self.send_blocking(&mut st, c) {
                    st.fatal.get_or_insert(e);
                }
            }
        }
        let revoked = |p: &Part| {
            keys.iter()
                .any(|(t, q)| *q == p.partition && **t == *p.topic)
        };
        let deadline = Instant::now() + self.config.revoke_timeout.0;
        loop {
            self.take_acks(&mut st, consumer);
            if st
                .parts
                .iter()
                .filter(|p| revoked(p))
                .all(|p| p.acked >= p.handed)
                || st.fatal.is_some()
                || st.acks.is_none()
            {
                break;
            }
            if Instant::now() > deadline {
                st.fatal
                    .get_or_insert(OperatorError::RevokeTimeout(self.config.revoke_timeout.0));
                break;
            }
            drop(st);
            std::thread::sleep(Duration::from_millis(2));
            st = self.lock();
        }
        self.commit_offsets(&st, consumer, CommitMode::Sync, |p| revoked(p));
        st.parts.retain(|p| !revoked(p));
        st.last_part = 0;
        drop(st);
        self.assigned
            .fetch_sub(keys.len() as i64, Ordering::Relaxed);
    }
}
