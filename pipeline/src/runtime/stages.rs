//! The body of each operator task of a running job, one function a stage:
//! read from the queue before it, do the stage's work off the async
//! threads, time it, and hand the result to the queue after it. A closed
//! queue downstream is a failure ([`OperatorError::Disconnected`]); a closed
//! queue upstream is the end of the stream, and the stage returns.

use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, gauge, histogram};
use scorestream_operators::batch::LatencyFeedback;
use scorestream_operators::decode::Decoder;
use scorestream_operators::features::FeatureJoin;
use scorestream_operators::queue::{QueueDepth, RowReceiver, RowSender};
use scorestream_operators::scorer::Scorer;
use scorestream_operators::sink::dead_letter_topic::DeadLetterProducer;
use scorestream_operators::sink::{Committed, Sink};
use scorestream_operators::source::kafka::{RawChunk, SourceReport};
use scorestream_operators::{Coverage, Envelope, OperatorError, cpu_bound};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::JobStats;
use super::dead_letter_guard::RateGuard;
use super::drift_tee::DriftTee;
use super::models::ModelSwap;

/// What an operator task ends with: the source reports what it read.
pub(super) type TaskResult = Result<Option<SourceReport>, OperatorError>;

pub(super) async fn decode(
    decoder: Box<dyn Decoder>,
    mut rx: RowReceiver<RawChunk>,
    tx: RowSender<Envelope>,
    s: Arc<JobStats>,
) -> TaskResult {
    while let Some(chunk) = rx.recv().await {
        s.events_arrived(chunk.len() as u64);
        counter!("scorestream_events_total").increment(chunk.len() as u64);
        let started = Instant::now();
        let env = cpu_bound(|| decoder.decode_keeping(chunk))?;
        stage_seconds(&s, "decode", started);
        forward(&tx, env, "decode").await?;
    }
    Ok(None)
}

pub(super) async fn feature_join(
    join: FeatureJoin,
    mut rx: RowReceiver<Envelope>,
    tx: RowSender<Envelope>,
    s: Arc<JobStats>,
) -> TaskResult {
    while let Some(env) = rx.recv().await {
        let started = Instant::now();
        let env = join.process(env).await?;
        stage_seconds(&s, "feature_join", started);
        forward(&tx, env, "feature_join").await?;
    }
    Ok(None)
}

/// Scores each batch; a new model version is swapped in as soon as it
/// arrives, even when no batch does, so whoever asked hears back. Drift
/// gets a copy of each scored batch, never waited for.
pub(super) async fn score(
    mut scorer: Scorer,
    mut swaps: mpsc::Receiver<ModelSwap>,
    mut rx: RowReceiver<Envelope>,
    tx: RowSender<Envelope>,
    drift: Option<DriftTee>,
    s: Arc<JobStats>,
) -> TaskResult {
    loop {
        let env = tokio::select! {
            biased;
            Some(swap) = swaps.recv() => {
                swap_model(&mut scorer, swap, &s);
                continue;
            }
            env = rx.recv() => env,
        };
        let Some(env) = env else { break };
        let rows = env.rows();
        let started = Instant::now();
        let mut env = cpu_bound(|| scorer.process(env))?;
        env.busy += started.elapsed();
        if let (Some(tee), Some(batch)) = (&drift, &env.batch) {
            tee.offer(batch);
        }
        if rows > 0 {
            stage_seconds(&s, "score", started);
            histogram!("scorestream_batch_rows").record(rows as f64);
            JobStats::add(&s.batches_scored, 1);
        }
        forward(&tx, env, "scorer").await?;
    }
    Ok(None)
}

/// Where the sink stage sends what it learns: offsets to the source, and
/// how long batches took to the adaptive batcher.
pub(super) struct SinkFeedback {
    pub(super) acks: mpsc::UnboundedSender<Coverage>,
    pub(super) latency: Arc<LatencyFeedback>,
    /// `[dead_letters] max_rate`, judged after each commit.
    pub(super) guard: Option<RateGuard>,
}

impl SinkFeedback {
    /// Counts a commit, hands its offsets to the source for the Kafka
    /// commit, then lets the dead-letter guard judge it (so a failing job
    /// has committed what tripped it).
    fn acknowledge(&mut self, stats: &JobStats, c: Committed) -> Result<(), OperatorError> {
        let judged = match &mut self.guard {
            Some(g) => g.check(&c, stats),
            None => Ok(()),
        };
        if !c.is_empty() {
            account(stats, &c);
            // The source may already be gone after a failure elsewhere;
            // then these offsets are simply re-read on restart.
            let _ = self.acks.send(c.coverage);
        }
        judged
    }

    fn deadline(&self) -> Option<Instant> {
        self.guard.as_ref().and_then(RateGuard::deadline)
    }
}

/// Writes each scored envelope, and commits files that reach their age
/// limit even when no batch arrives. Dead letters reach the topic before
/// the batch commits: a crash in between re-reads the batch and re-sends
/// them (at-least-once on the topic, deduplicated by provenance headers),
/// but never loses one.
pub(super) async fn sink(
    mut sink: Box<dyn Sink>,
    dead_letter_topic: Option<DeadLetterProducer>,
    mut rx: RowReceiver<Envelope>,
    mut feedback: SinkFeedback,
    s: Arc<JobStats>,
) -> TaskResult {
    loop {
        let deadline = match (sink.next_deadline(), feedback.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let next = tokio::select! {
            env = rx.recv() => env,
            () = sleep_until(deadline) => {
                let committed = cpu_bound(|| sink.tick(Instant::now()))?;
                feedback.acknowledge(&s, committed)?;
                continue;
            }
        };
        let Some(env) = next else { break };
        if let Some(producer) = &dead_letter_topic {
            producer.send(&env.dead_letters).await?;
        }
        let started = Instant::now();
        let fetched_at = env.fetched_at.filter(|_| env.rows() > 0);
        let busy = env.busy;
        let committed = cpu_bound(|| sink.write(env))?;
        stage_seconds(&s, "sink_write", started);
        if let Some(fetched) = fetched_at {
            let latency = fetched.elapsed();
            histogram!("scorestream_batch_latency_seconds").record(latency.as_secs_f64());
            s.record_batch_latency(latency);
            feedback.latency.record(busy + started.elapsed());
        }
        feedback.acknowledge(&s, committed)?;
        gauge!("scorestream_sink_open_files").set(sink.open_files() as f64);
        gauge!("scorestream_sink_buffered_bytes").set(sink.buffered_bytes() as f64);
    }
    let committed = cpu_bound(|| sink.close())?;
    feedback.acknowledge(&s, committed)?;
    Ok(None)
}

/// Samples every queue's fill level once a second into gauges and the
/// job's status, until the job stops.
pub(super) async fn sample_queues(
    depths: [(&'static str, QueueDepth); 5],
    stats: Arc<JobStats>,
    cancel: CancellationToken,
) -> TaskResult {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(None),
            _ = tick.tick() => {}
        }
        let rows: Vec<(&'static str, u64)> = depths
            .iter()
            .map(|(name, d)| (*name, d.rows() as u64))
            .collect();
        for &(queue, n) in &rows {
            gauge!("scorestream_queue_rows", "queue" => queue).set(n as f64);
        }
        stats.set_queues(rows);
    }
}

/// Records how long one batch took in one stage.
fn stage_seconds(stats: &JobStats, stage: &'static str, started: Instant) {
    let took = started.elapsed();
    histogram!("scorestream_stage_duration_seconds", "stage" => stage).record(took.as_secs_f64());
    stats.add_stage_time(stage, took);
}

/// Makes `swap`'s model the champion, between two batches, and tells
/// whoever asked how it went.
fn swap_model(scorer: &mut Scorer, swap: ModelSwap, stats: &JobStats) {
    let (role, name, version) = (
        swap.role,
        swap.package.manifest.name.clone(),
        swap.package.manifest.version.clone(),
    );
    let outcome = match scorer.replace(role, swap.package) {
        Ok(()) => {
            counter!("scorestream_model_reloads_total", "role" => role.as_str()).increment(1);
            info!(role = %role, model = %name, version = %version, "now scoring with the new model version");
            stats.set_models(scorer.models());
            Ok(())
        }
        Err(errors) => {
            counter!("scorestream_model_reload_failures_total", "role" => role.as_str())
                .increment(1);
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            error!(
                role = %role, model = %name, version = %version, errors = ?errors,
                "new model version rejected; the current one keeps scoring"
            );
            Err(errors.join("; "))
        }
    };
    if let Some(done) = swap.done {
        let _ = done.send(outcome);
    }
}

async fn forward(
    tx: &RowSender<Envelope>,
    env: Envelope,
    from: &'static str,
) -> Result<(), OperatorError> {
    tx.send(env)
        .await
        .map_err(|_| OperatorError::Disconnected(from))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Counts a commit and the Kafka-to-readable latency (freshness) of its rows.
fn account(stats: &JobStats, c: &Committed) {
    JobStats::add(&stats.rows_scored, c.rows as u64);
    JobStats::add(&stats.dead_letters, c.dead_letters as u64);
    JobStats::add(&stats.files_written, c.files.len() as u64);
    JobStats::add(&stats.bytes_written, c.bytes);
    JobStats::add(&stats.messages_acked, c.messages());
    counter!("scorestream_rows_scored_total").increment(c.rows as u64);
    crate::telemetry::count_dead_letters(&c.dead_letter_stages);
    counter!("scorestream_files_written_total").increment(c.files.len() as u64);
    let freshness = histogram!("scorestream_output_freshness_seconds");
    for &(ms, n) in &c.latencies_ms {
        freshness.record_many(ms as f64 / 1000.0, n as usize);
    }
    stats.record_latencies(&c.latencies_ms);
}
