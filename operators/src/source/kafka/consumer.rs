use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::counter;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::auth::AuthWatch;
use super::fetch_queue::{Batch, FetchQueue};
use super::incoming::Incoming;

use super::state::{ResumePositions, Shared, SourceContext, SourceReport, State};
use super::{KafkaSourceConfig, RawChunk};
use crate::queue::{RowSender, TrySend};
use crate::{Coverage, OperatorError, Result};

/// How often every owned partition is routed to the fetch queue again.
/// librdkafka drops a partition's route when it stops fetching it, and a
/// stop left over from an earlier rebalance can land after the new
/// assignment was routed; the partition's messages would then wait where
/// nobody reads them. Re-routing is idempotent and costs a lookup per
/// partition, so at worst such a partition waits this long.
const REATTACH_EVERY: Duration = Duration::from_secs(1);

/// The longest the source waits for messages before serving the consumer's
/// events again (rebalances, statistics, commit results).
const MAX_WAIT: Duration = Duration::from_millis(100);

/// Numbers the source keeps current for whoever watches the job.
#[derive(Debug, Clone)]
pub struct SourceGauges {
    /// Partitions this member owns.
    pub assigned: Arc<AtomicI64>,
    /// Messages in the owned partitions not yet committed to the output
    /// (see `Shared::consumer_lag`); -1 until librdkafka has reported.
    pub lag: Arc<AtomicI64>,
    /// Set by the job to stop reading (partitions paused; what was already
    /// read still flows and commits, rebalances are still served) until
    /// cleared: `[dead_letters] on_max_rate = "pause"`.
    pub hold: Arc<AtomicBool>,
}

impl Default for SourceGauges {
    fn default() -> Self {
        Self {
            assigned: Arc::new(AtomicI64::new(0)),
            lag: Arc::new(AtomicI64::new(-1)),
            hold: Arc::new(AtomicBool::new(false)),
        }
    }
}

pub struct KafkaSource {
    /// Declared before `consumer`: the queue must be destroyed while the
    /// consumer's client is still alive.
    pub(super) fetch: Arc<FetchQueue>,
    pub(super) consumer: BaseConsumer<SourceContext>,
    pub(super) shared: Arc<Shared>,
}

impl KafkaSource {
    /// Creates the consumer and subscribes. Fails on settings librdkafka
    /// refuses, naming them (secret values redacted). `gauges` follow how
    /// many partitions this member owns and its lag; `resume` says where each assigned
    /// partition continues. Must be called within a tokio runtime.
    pub fn build(
        config: &KafkaSourceConfig,
        gauges: SourceGauges,
        resume: Arc<dyn ResumePositions>,
    ) -> Result<Self> {
        let cc = config.consumer_config();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            OperatorError::Internal("the Kafka source must be built inside a tokio runtime".into())
        })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out: None,
                acks: None,
                chunk: RawChunk::default(),
                stalled: None,
                paused: false,
                deadline: None,
                parts: Vec::new(),
                last_part: 0,
                fatal: None,
                report: SourceReport::default(),
            }),
            assigned: gauges.assigned,
            lag: gauges.lag,
            hold: gauges.hold,
            resume,
            config: config.clone(),
            runtime,
            fetch: OnceLock::new(),
            auth: AuthWatch::default(),
        });
        let consumer: BaseConsumer<SourceContext> = cc
            .create_with_context(SourceContext {
                shared: shared.clone(),
            })
            .map_err(|e| OperatorError::KafkaSetup(config.options.redact(&e.to_string())))?;
        let fetch = FetchQueue::new(&consumer).map(Arc::new).ok_or_else(|| {
            OperatorError::Internal("librdkafka could not create the fetch queue".into())
        })?;
        let _ = shared.fetch.set(Arc::downgrade(&fetch));
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            fetch,
            consumer,
            shared,
        })
    }

    /// Reads until `cancel` fires, then hands over what it holds, waits for
    /// the sink to commit everything in flight and commits the group offsets.
    ///
    /// The consumer runs on its own thread: rebalance callbacks must block
    /// until the pipeline has committed what was read from revoked
    /// partitions, which an async task could not do on every runtime.
    pub async fn run(
        self,
        out: RowSender<RawChunk>,
        acks: mpsc::UnboundedReceiver<Coverage>,
        cancel: CancellationToken,
    ) -> Result<SourceReport> {
        {
            let mut st = self.shared.lock();
            st.out = Some(out);
            st.acks = Some(acks);
            st.chunk = RawChunk::with_capacity(self.shared.config.chunk_rows.max(1));
        }
        let (tx, rx) = oneshot::channel();
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("kafka-source".into())
            .spawn(move || {
                let _entered = span.enter();
                let _ = tx.send(self.run_blocking(&cancel));
            })
            .map_err(|e| OperatorError::io("starting the kafka source thread", e))?;
        rx.await
            .map_err(|_| OperatorError::Internal("the kafka source thread panicked".into()))?
    }

    fn run_blocking(self, cancel: &CancellationToken) -> Result<SourceReport> {
        let result = self.read_until(cancel);
        // Drain even after a failure, so whatever is in flight is committed.
        let drained = self.drain();
        let report = self.shared.lock().report.clone();
        info!(
            read = report.messages_read,
            pauses = report.pauses,
            rebalances = report.rebalances,
            "kafka source stopped"
        );
        result.and(drained).map(|()| report)
    }

    fn read_until(&self, cancel: &CancellationToken) -> Result<()> {
        let chunk_rows = self.shared.config.chunk_rows.max(1);
        let linger = self.shared.config.linger.0;
        let mut batch = Batch::default();
        let mut attached_at = Instant::now();
        while !cancel.is_cancelled() {
            let mut st = self.shared.lock();
            self.shared.take_acks(&mut st, &self.consumer);
            if let Some(e) = st.fatal.take() {
                return Err(e);
            }
            if let Some(e) = self.shared.auth.expired(self.shared.config.auth_timeout.0) {
                return Err(e);
            }
            if let Some(chunk) = st.stalled.take() {
                self.offer(&mut st, chunk)?;
            }
            let now = Instant::now();
            let due = st.deadline.is_some_and(|d| now >= d);
            if st.stalled.is_none() && (due || st.chunk.len() >= chunk_rows) {
                let full = std::mem::replace(&mut st.chunk, RawChunk::with_capacity(chunk_rows));
                st.deadline = None;
                self.offer(&mut st, full)?;
            }
            let timeout = if st.stalled.is_some() {
                Duration::from_millis(10)
            } else {
                st.deadline
                    .map_or(MAX_WAIT, |d| d.saturating_duration_since(now).min(MAX_WAIT))
            };
            let room = chunk_rows.saturating_sub(st.chunk.len()).max(1);
            let held = self.shared.hold.load(Ordering::Relaxed);
            if held != st.paused && (held || st.stalled.is_none()) {
                self.set_paused(&mut st, held);
            }
            drop(st);

            if now.duration_since(attached_at) >= REATTACH_EVERY {
                self.shared.reattach_owned();
                attached_at = now;
            }
            self.read_once(&mut batch, timeout, room, linger);
        }
        Ok(())
    }

    /// Serves the consumer queue once (its events, and any message fetched
    /// before its partition was routed) or, when that holds nothing, waits
    /// up to `timeout` for up to `room` messages off the fetch queue.
    pub(super) fn read_once(
        &self,
        batch: &mut Batch,
        timeout: Duration,
        room: usize,
        linger: Duration,
    ) {
        if let Some(polled) = self.consumer.poll(Duration::ZERO) {
            let mut st = self.shared.lock();
            match polled {
                Ok(m) => self.accept(&mut st, &Incoming::from_borrowed(&m), linger),
                Err(e) => self.consume_error(&mut st, &e.to_string()),
            }
            st.refetches_started();
            return;
        }
        self.fetch.fetch(timeout, room, batch);
        if batch.len() > 0 {
            self.shared.auth.clear();
            let mut st = self.shared.lock();
            for m in batch.iter() {
                match m.error() {
                    None => self.accept(&mut st, &Incoming::from_fetched(&m), linger),
                    Some(e) => self.consume_error(&mut st, &e),
                }
            }
            st.refetches_started();
            drop(st);
            batch.clear();
        }
    }

    fn consume_error(&self, st: &mut State, error: &str) {
        st.report.consume_errors += 1;
        let msg = self.shared.config.options.redact(error);
        warn!(error = %msg, "kafka consume error; the consumer keeps retrying");
    }

    /// Hands a chunk to the pipeline if it has room; otherwise keeps it and
    /// pauses every partition until it does, so a slow pipeline holds back
    /// the broker instead of growing memory.
    fn offer(&self, st: &mut State, chunk: RawChunk) -> Result<()> {
        if chunk.is_empty() && !chunk.flush {
            return Ok(());
        }
        let Some(out) = st.out.clone() else {
            return Ok(());
        };
        self.shared.mark_handed(st, &chunk);
        match out.try_send(chunk) {
            Ok(()) => {}
            Err(TrySend::Full(chunk)) => {
                st.stalled = Some(chunk);
                if !st.paused {
                    self.set_paused(st, true);
                }
                return Ok(());
            }
            Err(TrySend::Closed) => return Err(OperatorError::Disconnected("kafka source")),
        }
        if st.paused && !self.shared.hold.load(Ordering::Relaxed) {
            self.set_paused(st, false);
        }
        Ok(())
    }

    fn set_paused(&self, st: &mut State, paused: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "reading the assignment failed");
                return;
            }
        };
        let r = if paused {
            st.report.pauses += 1;
            counter!("scorestream_source_pauses_total").increment(1);
            debug!(
                partitions = assignment.count(),
                "pipeline full: pausing partitions"
            );
            self.consumer.pause(&assignment)
        } else {
            debug!(
                partitions = assignment.count(),
                "pipeline has room: resuming partitions"
            );
            self.consumer.resume(&assignment)
        };
        match r {
            Ok(()) => st.paused = paused,
            Err(e) => warn!(error = %e, paused, "pausing/resuming partitions failed"),
        }
    }

    /// Hands over everything held, closes the pipeline's input so every
    /// operator flushes, and commits group offsets for every acknowledgement
    /// until the sink is done.
    fn drain(&self) -> Result<()> {
        let mut st = self.shared.lock();
        let mut result = Ok(());
        let held: Vec<RawChunk> = st
            .stalled
            .take()
            .into_iter()
            .chain(Some(std::mem::take(&mut st.chunk)))
            .filter(|c| !c.is_empty())
            .collect();
        for c in held {
            if let Err(e) = self.shared.send_blocking(&mut st, c) {
                result = Err(e);
            }
        }
        st.out = None;
        while st.acks.is_some() {
            self.shared.take_acks(&mut st, &self.consumer);
            drop(st);
            std::thread::sleep(Duration::from_millis(5));
            st = self.shared.lock();
        }
        self.shared
            .commit_offsets(&st, &self.consumer, CommitMode::Sync, |_| true);
        if let Some(e) = st.fatal.take() {
            result = result.and(Err(e));
        }
        result
    }
}
