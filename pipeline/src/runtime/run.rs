use std::future::Future;
use std::sync::Arc;

use metrics::{counter, gauge, histogram};
use scorestream_operators::batch::{Coalescer, run_batcher};
use scorestream_operators::drift::{AlertProducer, DriftOperator, DriftTable};
use scorestream_operators::queue::{RowSender, channel};
use scorestream_operators::scorer::{InputMatrix, ModelPackage, ModelSource, RegistryWatcher};
use scorestream_operators::sink::dead_letter_topic::DeadLetterProducer;
use scorestream_operators::sink::parquet::{Committed, ParquetSink};
use scorestream_operators::source::kafka::{KafkaSource, RawChunk, SourceReport};
use scorestream_operators::{Coverage, Envelope, OperatorError, cpu_bound};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::drift_tee::DriftTee;
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
        let Job {
            config,
            decoder,
            join,
            mut scorer,
            model_source,
            partitions,
            drift,
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
            stats.partitions_assigned.clone(),
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
                let span = info_span!("operator", job = %job, operator = name);
                tasks.spawn(async move { (name, fut.await) }.instrument(span));
            };

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
                    let env = cpu_bound(|| decoder.decode(&chunk))?;
                    forward(&dec_tx, env, "decode").await?;
                }
                Ok(None)
            }),
        );

        let coalescer = Coalescer::new(
            join.output_schema().clone(),
            config.batch.max_rows,
            config.batch.max_wait.0,
        )?;
        spawn(
            "feature_join",
            Box::pin(async move {
                while let Some(env) = dec_rx.recv().await {
                    let env = join.process(env).await?;
                    forward(&join_tx, env, "feature_join").await?;
                }
                Ok(None)
            }),
        );

        spawn(
            "batcher",
            Box::pin(async move {
                run_batcher(coalescer, join_rx, batch_tx)
                    .await
                    .map(|()| None)
            }),
        );

        // New model versions, loaded and checked off the scoring path, are
        // swapped in between two batches.
        let (reload_tx, mut reload_rx) = mpsc::channel::<ModelPackage>(1);
        if let ModelSource::Registry { dir, latest } = model_source {
            let watch = RegistryWatch {
                watcher: RegistryWatcher::new(&dir, &latest),
                every: config.model.reload_interval.0,
                device: scorer.device().clone(),
                precision: config.model.precision,
                check: scorer.input_schema().clone(),
            };
            let cancel = cancel.clone();
            spawn(
                "model_registry",
                Box::pin(async move { watch.run(reload_tx, cancel).await.map(|()| None) }),
            );
        } else {
            drop(reload_tx);
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
                );
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
                while let Some(env) = batch_rx.recv().await {
                    if let Ok(package) = reload_rx.try_recv() {
                        let (name, version) = (
                            package.manifest.name.clone(),
                            package.manifest.version.clone(),
                        );
                        match scorer.swap(package) {
                            Ok(()) => {
                                counter!("scorestream_model_reloads_total").increment(1);
                                info!(model = %name, version = %version, "now scoring with the new model version");
                            }
                            Err(errors) => error!(
                                model = %name, version = %version,
                                errors = ?errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
                                "new model version rejected; the current one keeps scoring"
                            ),
                        }
                    }
                    let rows = env.rows();
                    let started = std::time::Instant::now();
                    let env = cpu_bound(|| scorer.process(env))?;
                    if let (Some(tee), Some(batch)) = (&drift_tee, &env.batch) {
                        tee.offer(batch);
                    }
                    if rows > 0 {
                        histogram!("scorestream_score_seconds")
                            .record(started.elapsed().as_secs_f64());
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
                    let committed = cpu_bound(|| sink.write(env))?;
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

/// Polls a model registry and hands each new, valid version to the scorer.
struct RegistryWatch {
    watcher: RegistryWatcher,
    every: std::time::Duration,
    device: candle_core::Device,
    precision: scorestream_operators::scorer::PrecisionChoice,
    /// The schema batches reach the scorer with: a version whose inputs do
    /// not bind to it is rejected before it gets near the scorer.
    check: arrow::datatypes::SchemaRef,
}

impl RegistryWatch {
    async fn run(
        mut self,
        to_scorer: mpsc::Sender<ModelPackage>,
        cancel: CancellationToken,
    ) -> Result<(), OperatorError> {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let version = match self.watcher.newer() {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "cannot read the model registry");
                    continue;
                }
            };
            let (device, check, precision) =
                (self.device.clone(), self.check.clone(), self.precision);
            let dir = version.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let package =
                    ModelPackage::load_as(&dir, &device, precision).map_err(|e| e.to_string())?;
                InputMatrix::bind(&package.manifest.inputs, &check).map_err(|errors| {
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                })?;
                Ok::<_, String>(package)
            })
            .await
            .map_err(|e| OperatorError::Internal(format!("model loading task: {e}")))?;
            match loaded {
                Ok(package) => {
                    info!(
                        path = %version.display(),
                        version = %package.manifest.version,
                        "new model version loaded; swapping it in at the next batch"
                    );
                    self.watcher.accepted(&version);
                    if to_scorer.send(package).await.is_err() {
                        return Ok(());
                    }
                }
                Err(reason) => {
                    counter!("scorestream_model_reload_failures_total").increment(1);
                    error!(
                        path = %version.display(),
                        reason = %reason,
                        "new model version rejected; the current one keeps scoring"
                    );
                    self.watcher.rejected(&version);
                }
            }
        }
    }
}
