use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, gauge, histogram};
use scorestream_operators::batch::{Coalescer, LatencyFeedback, run_batcher};
use scorestream_operators::drift::{AlertProducer, DriftOperator, DriftTable};
use scorestream_operators::queue::{QueueDepth, RowSender, channel};
use scorestream_operators::scorer::{ModelSource, RegistryWatcher, Scorer};
use scorestream_operators::sink::dead_letter_topic::DeadLetterProducer;
use scorestream_operators::sink::parquet::{Committed, ParquetSink};
use scorestream_operators::source::kafka::{KafkaSource, RawChunk, SourceGauges, SourceReport};
use scorestream_operators::{Coverage, Envelope, OperatorError, cpu_bound};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

use super::drift_tee::DriftTee;
use super::models::{ModelSwap, RegistryWatch};
use super::{Job, JobStats, StatsSnapshot};
use crate::PipelineError;

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub stats: StatsSnapshot,
    pub source: SourceReport,
}

type TaskResult = Result<Option<SourceReport>, OperatorError>;

impl Job {
    /// Runs until `stop` fires, then drains: the source stops reading, every
    /// operator flushes what it holds, the sink commits, and the source
    /// commits the acknowledged offsets. An operator failure stops the others
    /// the same way and is returned.
    pub async fn run(
        self,
        stop: CancellationToken,
        stats: Arc<JobStats>,
    ) -> Result<JobReport, PipelineError> {
        let span = info_span!("job", job = %self.config.job.name);
        self.run_in_span(stop, stats).instrument(span).await
    }

    async fn run_in_span(
        self,
        stop: CancellationToken,
        stats: Arc<JobStats>,
    ) -> Result<JobReport, PipelineError> {
        let loader = self.model_loader();
        stats.set_models(self.models());
        let Job {
            config,
            decoder,
            join,
            mut scorer,
            model_source,
            partitions,
            drift,
            swaps: (swap_tx, mut swap_rx),
            pinned,
        } = self;
        let cap = config.queues.capacity_rows;
        let job = config.job.name.to_string();
        let mut sink = ParquetSink::open(&config.sink, partitions)?;
        if !config.dead_letters.parquet {
            sink = sink.without_dead_letter_files();
        }
        let dead_letter_topic = config
            .dead_letters
            .topic
            .as_deref()
            .map(|topic| DeadLetterProducer::build(&config.source, topic))
            .transpose()?;
        let source = KafkaSource::build(
            &config.source,
            SourceGauges {
                assigned: stats.partitions_assigned.clone(),
                lag: stats.consumer_lag.clone(),
            },
            Arc::new(sink.commit_log().clone()),
        )?;
        info!(job, output = %config.sink.path, "job starting");

        let (raw_tx, mut raw_rx) = channel::<RawChunk>(cap);
        let (dec_tx, mut dec_rx) = channel::<Envelope>(cap);
        let (join_tx, join_rx) = channel::<Envelope>(cap);
        let (batch_tx, mut batch_rx) = channel::<Envelope>(cap);
        let (score_tx, mut score_rx) = channel::<Envelope>(cap);
        // Acks are control messages, one per commit: unbounded so the sink
        // never blocks on the source (which may itself wait on the queue).
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<Coverage>();

        let cancel = stop.child_token();
        let join = join.with_cancel(cancel.clone());
        let mut tasks: JoinSet<(&'static str, TaskResult)> = JoinSet::new();
        let mut spawn =
            |name: &'static str,
             fut: std::pin::Pin<Box<dyn Future<Output = TaskResult> + Send>>| {
                let span = info_span!("operator", operator = name);
                tasks.spawn(async move { (name, fut.await) }.instrument(span));
            };

        let depths = [
            ("raw", raw_tx.depth()),
            ("decoded", dec_tx.depth()),
            ("joined", join_tx.depth()),
            ("batched", batch_tx.depth()),
            ("scored", score_tx.depth()),
        ];
        spawn(
            "queues",
            Box::pin(sample_queues(depths, stats.clone(), cancel.clone())),
        );

        spawn(
            "source",
            Box::pin({
                let cancel = cancel.clone();
                async move { source.run(raw_tx, ack_rx, cancel).await.map(Some) }
            }),
        );

        let s = stats.clone();
        spawn(
            "decode",
            Box::pin(async move {
                while let Some(chunk) = raw_rx.recv().await {
                    s.events_arrived(chunk.len() as u64);
                    counter!("scorestream_events_total").increment(chunk.len() as u64);
                    let started = Instant::now();
                    let env = cpu_bound(|| decoder.decode(&chunk))?;
                    stage_seconds(&s, "decode", started);
                    forward(&dec_tx, env, "decode").await?;
                }
                Ok(None)
            }),
        );

        let coalescer = Coalescer::new(
            join.output_schema().clone(),
            config.batch.max_rows,
            config.batch.effective_max_wait(),
        )?;
        let latency_feedback = Arc::new(LatencyFeedback::default());
        let adaptive = config
            .batch
            .adaptive()
            .map(|size| (size, latency_feedback.clone()));
        let s = stats.clone();
        spawn(
            "feature_join",
            Box::pin(async move {
                while let Some(env) = dec_rx.recv().await {
                    let started = Instant::now();
                    let env = join.process(env).await?;
                    stage_seconds(&s, "feature_join", started);
                    forward(&join_tx, env, "feature_join").await?;
                }
                Ok(None)
            }),
        );

        spawn(
            "batcher",
            Box::pin(async move {
                run_batcher(coalescer, join_rx, batch_tx, adaptive)
                    .await
                    .map(|()| None)
            }),
        );

        // New model versions, loaded and checked off the scoring path, are
        // swapped in between two batches.
        if let ModelSource::Registry { dir, latest } = &model_source {
            let watch = RegistryWatch {
                watcher: RegistryWatcher::new(dir, latest),
                every: config.model.reload_interval.0,
                loader: loader.clone(),
                pinned,
            };
            let cancel = cancel.clone();
            spawn(
                "model_registry",
                Box::pin(async move { watch.run(swap_tx, cancel).await.map(|()| None) }),
            );
        } else {
            drop(swap_tx);
        }

        // Drift gets copies of the scored batches through its own queue; when
        // it is full the batch is skipped (and counted), never waited for.
        let drift_tee = match (drift, &config.drift) {
            (Some(setup), Some(d)) => {
                let (tee, rx, skipped) = DriftTee::new(d.queue_batches);
                let table = DriftTable::open_in(sink.store().clone())?;
                let alerts = d
                    .alerts_topic
                    .as_deref()
                    .map(|t| AlertProducer::build(&config.source, t))
                    .transpose()?;
                let op = DriftOperator::new(
                    d.clone(),
                    setup.profile,
                    setup.columns,
                    job.clone(),
                    table,
                    alerts,
                    skipped,
                )
                .with_recent_alerts(stats.recent_alerts.clone());
                spawn(
                    "drift",
                    Box::pin(async move { op.run(rx).await.map(|_| None) }),
                );
                Some(tee)
            }
            _ => None,
        };

        let s = stats.clone();
        spawn(
            "scorer",
            Box::pin(async move {
                loop {
                    // A new version is swapped in as soon as it arrives, even
                    // when no batch does, so whoever asked hears back.
                    let env = tokio::select! {
                        biased;
                        Some(swap) = swap_rx.recv() => {
                            swap_model(&mut scorer, swap, &s);
                            continue;
                        }
                        env = batch_rx.recv() => env,
                    };
                    let Some(env) = env else { break };
                    let rows = env.rows();
                    let started = Instant::now();
                    let mut env = cpu_bound(|| scorer.process(env))?;
                    env.busy += started.elapsed();
                    if let (Some(tee), Some(batch)) = (&drift_tee, &env.batch) {
                        tee.offer(batch);
                    }
                    if rows > 0 {
                        stage_seconds(&s, "score", started);
                        histogram!("scorestream_batch_rows").record(rows as f64);
                        JobStats::add(&s.batches_scored, 1);
                    }
                    forward(&score_tx, env, "scorer").await?;
                }
                Ok(None)
            }),
        );

        let s = stats.clone();
        spawn(
            "sink",
            Box::pin(async move {
                loop {
                    // Files roll by time as well as by size: wake for the
                    // earliest roll deadline even when no batch arrives.
                    let deadline = sink.next_deadline();
                    let next = tokio::select! {
                        env = score_rx.recv() => env,
                        () = sleep_until(deadline) => {
                            let committed =
                                cpu_bound(|| sink.tick(std::time::Instant::now()))?;
                            acknowledge(&s, &ack_tx, committed);
                            continue;
                        }
                    };
                    let Some(env) = next else { break };
                    // Dead letters reach the topic before the batch commits: a
                    // crash in between re-reads the batch and re-sends them
                    // (at-least-once on the topic, deduplicated by provenance
                    // headers), but never loses one.
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
                        histogram!("scorestream_batch_latency_seconds")
                            .record(latency.as_secs_f64());
                        s.record_batch_latency(latency);
                    }
                    if fetched_at.is_some() {
                        latency_feedback.record(busy + started.elapsed());
                    }
                    acknowledge(&s, &ack_tx, committed);
                    gauge!("scorestream_sink_open_files").set(sink.open_files() as f64);
                    gauge!("scorestream_sink_buffered_bytes").set(sink.buffered_bytes() as f64);
                }
                let committed = cpu_bound(|| sink.close())?;
                acknowledge(&s, &ack_tx, committed);
                Ok(None)
            }),
        );

        let mut first_error: Option<OperatorError> = None;
        let mut source_report = SourceReport::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(Some(report)))) => source_report = report,
                Ok((_, Ok(None))) => {}
                Ok((name, Err(e))) => {
                    error!(operator = name, error = %e, "operator failed; stopping the job");
                    cancel.cancel();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    cancel.cancel();
                    tasks.abort_all();
                    return Err(PipelineError::TaskFailed(e.to_string()));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        let snapshot = stats.snapshot();
        info!(
            job,
            rows = snapshot.rows_scored,
            dead_letters = snapshot.dead_letters,
            "job stopped"
        );
        Ok(JobReport {
            stats: snapshot,
            source: source_report,
        })
    }
}

/// Samples every queue's fill level once a second into gauges and the
/// job's status, until the job stops.
async fn sample_queues(
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
    let (name, version) = (
        swap.package.manifest.name.clone(),
        swap.package.manifest.version.clone(),
    );
    let outcome = match scorer.swap(swap.package) {
        Ok(()) => {
            counter!("scorestream_model_reloads_total").increment(1);
            info!(model = %name, version = %version, "now scoring with the new model version");
            stats.set_models(scorer.models());
            Ok(())
        }
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            error!(
                model = %name, version = %version, errors = ?errors,
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
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Counts a commit and hands its offsets to the source for the Kafka commit.
fn acknowledge(stats: &JobStats, ack: &mpsc::UnboundedSender<Coverage>, c: Committed) {
    if c.is_empty() {
        return;
    }
    account(stats, &c);
    // The source may already be gone after a failure elsewhere; then these
    // offsets are simply re-read on restart.
    let _ = ack.send(c.coverage);
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
