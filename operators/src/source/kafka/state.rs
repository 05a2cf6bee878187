//! What the source's thread and the consumer's callbacks (rebalances,
//! statistics) share: the partitions this member owns, the chunk being
//! filled, the queues to the pipeline, and the offsets handed and
//! acknowledged, all under one lock.

use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::warn;

use super::auth::AuthWatch;
use super::fetch_queue::FetchQueue;
use super::{KafkaSourceConfig, RawChunk};
use crate::queue::RowSender;
use crate::{Coverage, OperatorError, Result};

/// Where the source resumes each partition it is assigned: the output's
/// commit log, so a restart or a new owner continues exactly where the
/// committed output ends, whatever the group's committed offsets say.
pub trait ResumePositions: Send + Sync {
    /// For each partition, the first offset not yet committed to the output,
    /// or `None` when the output has nothing from it (then the group's
    /// committed offset, or `start_from`, decides).
    fn resume_positions(&self, partitions: &[(String, i32)]) -> Result<Vec<Option<i64>>>;
}

/// What the source did over its life.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceReport {
    pub messages_read: u64,
    pub consume_errors: u64,
    /// Times the source paused its partitions because the pipeline was full.
    pub pauses: u64,
    pub rebalances: u64,
    /// Offsets a resumed partition skipped because the broker no longer had
    /// them (retention): data lost before scorestream could read it.
    pub offsets_skipped: u64,
}

/// The consumer's context: serves rebalances (resume from the commit log on
/// assignment, flush and commit on revocation) and redacts secrets from
/// librdkafka's logs.
pub(super) struct SourceContext {
    pub(super) shared: Arc<Shared>,
}

/// A partition this member owns.
pub(super) struct Part {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    /// Next offset expected; `None` until the first message when the output
    /// had nothing to resume from.
    pub(super) next: Option<i64>,
    /// Whether `next` came from the commit log and the first message is
    /// still to be checked against it.
    pub(super) resumed: bool,
    /// Where checking a gap after the resume point stands.
    pub(super) gap_check: GapCheck,
    /// End of what was handed to the pipeline / committed by the sink.
    pub(super) handed: i64,
    pub(super) acked: i64,
}

/// A gap right after the resume point may be a stale message (see
/// `KafkaSource::refetch_once`), so the partition is fetched again from the
/// resume point once before a gap is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapCheck {
    Unchecked,
    /// Fetching again; what the current batch still holds of the partition
    /// was fetched before the seek and is dropped.
    Refetching,
    /// Fetched again: a gap now is real.
    Checked,
}

pub(super) struct State {
    pub(super) out: Option<RowSender<RawChunk>>,
    pub(super) acks: Option<mpsc::UnboundedReceiver<Coverage>>,
    pub(super) chunk: RawChunk,
    /// A chunk the pipeline had no room for; partitions stay paused until it
    /// is taken.
    pub(super) stalled: Option<RawChunk>,
    pub(super) paused: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) parts: Vec<Part>,
    pub(super) last_part: usize,
    pub(super) fatal: Option<OperatorError>,
    pub(super) report: SourceReport,
}

impl State {
    /// Called after each batch (or polled message): partitions being
    /// fetched again have had the rest of what was fetched before the seek
    /// dropped, and what comes next is the new fetch.
    pub(super) fn refetches_started(&mut self) {
        for p in &mut self.parts {
            if p.gap_check == GapCheck::Refetching {
                p.gap_check = GapCheck::Checked;
            }
        }
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) assigned: Arc<AtomicI64>,
    /// The lag the gauge shows, also for the job's status; -1 until known.
    pub(super) lag: Arc<AtomicI64>,
    /// See [`super::SourceGauges::hold`].
    pub(super) hold: Arc<AtomicBool>,
    pub(super) resume: Arc<dyn ResumePositions>,
    pub(super) config: KafkaSourceConfig,
    pub(super) runtime: tokio::runtime::Handle,
    /// Where assigned partitions' messages go. Weak: the source owns the
    /// queue and destroys it before the consumer, so a rebalance served
    /// while the consumer closes finds it gone instead of dangling.
    pub(super) fetch: OnceLock<Weak<FetchQueue>>,
    pub(super) auth: AuthWatch,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes these partitions' messages to the fetch queue.
    pub(super) fn attach(&self, parts: &[(String, i32)]) {
        let Some(fetch) = self.fetch.get().and_then(Weak::upgrade) else {
            return;
        };
        for (topic, partition) in parts {
            if !fetch.attach(topic, *partition) {
                warn!(
                    topic,
                    partition, "cannot route the partition's messages to the source"
                );
            }
        }
    }

    /// Routes every owned partition again (see `REATTACH_EVERY` in consumer.rs).
    pub(super) fn reattach_owned(&self) {
        let parts: Vec<(String, i32)> = self
            .lock()
            .parts
            .iter()
            .map(|p| (p.topic.to_string(), p.partition))
            .collect();
        self.attach(&parts);
    }

    /// Sends a chunk, waiting for room: only for rebalances and shutdown,
    /// where the source must hand over everything it read.
    pub(super) fn send_blocking(&self, st: &mut State, chunk: RawChunk) -> Result<()> {
        let Some(out) = st.out.clone() else {
            return Ok(());
        };
        self.mark_handed(st, &chunk);
        self.runtime
            .block_on(out.send(chunk))
            .map_err(|_| OperatorError::Disconnected("kafka source"))
    }

    pub(super) fn mark_handed(&self, st: &mut State, chunk: &RawChunk) {
        for (t, q, r) in chunk.coverage.iter() {
            if let Some(p) = st
                .parts
                .iter_mut()
                .find(|p| p.partition == q && p.topic == *t)
            {
                p.handed = p.handed.max(r.end);
            }
        }
    }

    /// Applies every acknowledgement the sink has sent so far and commits
    /// the group offsets (asynchronously: the commit log is the source of
    /// truth, group offsets serve lag monitoring and tools).
    pub(super) fn take_acks(&self, st: &mut State, consumer: &BaseConsumer<SourceContext>) {
        let mut changed = false;
        while let Some(rx) = st.acks.as_mut() {
            match rx.try_recv() {
                Ok(cov) => {
                    for (t, q, r) in cov.iter() {
                        if let Some(p) = st
                            .parts
                            .iter_mut()
                            .find(|p| p.partition == q && p.topic == *t)
                        {
                            p.acked = p.acked.max(r.end);
                            changed = true;
                        }
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    st.acks = None;
                    break;
                }
            }
        }
        if changed {
            self.commit_offsets(st, consumer, CommitMode::Async, |_| true);
        }
    }

    pub(super) fn commit_offsets(
        &self,
        st: &State,
        consumer: &BaseConsumer<SourceContext>,
        mode: CommitMode,
        which: impl Fn(&Part) -> bool,
    ) {
        let mut tpl = TopicPartitionList::new();
        for p in st.parts.iter().filter(|p| which(p) && p.acked >= 0) {
            if let Err(e) = tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.acked))
            {
                warn!(error = %e, "bad offset for commit");
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&tpl, mode) {
            // The output is committed already; group offsets only lag.
            warn!(error = %e, "committing group offsets failed; the commit log still has them");
        }
    }
}
