//! Running a built job: open its outputs, join its operators with
//! row-bounded queues, run each as its own task, and drain them in order
//! when it stops.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use scorestream_operators::OperatorError;
use scorestream_operators::batch::{Coalescer, LatencyFeedback, run_batcher};
use scorestream_operators::decode::Decoder;
use scorestream_operators::features::FeatureJoin;
use scorestream_operators::scorer::{ModelRole, ModelSource, RegistryWatcher};
use scorestream_operators::sink::Sink;
use scorestream_operators::sink::dead_letter_topic::DeadLetterProducer;
use scorestream_operators::sink::parquet::{ParquetSink, PartitionSpec, Store};
use scorestream_operators::source::kafka::{KafkaSource, SourceGauges, SourceReport};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

use super::build_model::Challengers;
use super::dead_letter_guard::RateGuard;
use super::drift_setup::DriftSetup;
use super::drift_tee::DriftTee;
use super::models::{ModelLoader, ModelSwap, RegistryWatch};
use super::queues::{IngestQueues, queues};
use super::stages::{self, SinkFeedback, TaskResult};
use super::{Job, JobStats, StatsSnapshot};
use crate::PipelineError;
use crate::config::JobConfig;

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub stats: StatsSnapshot,
    pub source: SourceReport,
}

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
            scorer,
            model_source,
            challengers,
            partitions,
            drift,
            swaps: (swap_tx, swap_rx),
            pinned,
        } = self;
        let job = config.job.name.to_string();
        let outputs = Outputs::open(&config, partitions)?;
        let gauges = SourceGauges {
            assigned: stats.partitions_assigned.clone(),
            lag: stats.consumer_lag.clone(),
            hold: Arc::default(),
        };
        let guard = RateGuard::new(&config.dead_letters, gauges.hold.clone());
        let source = KafkaSource::build(&config.source, gauges, outputs.sink.resume_positions())?;
        info!(job, output = %config.sink.path, "job starting");

        let (ingest, q, depths) = queues(config.queues.capacity_rows);
        let cancel = stop.child_token();
        let mut tasks = Tasks::default();
        let s = &stats;
        tasks.spawn(
            "queues",
            stages::sample_queues(depths, s.clone(), cancel.clone()),
        );
        let reading = Reading {
            source,
            decoder,
            join: join.with_cancel(cancel.clone()),
        };
        let latency = reading.spawn(&mut tasks, &config, ingest, s, &cancel)?;
        let models = Models {
            loader,
            champion: model_source,
            pinned,
            challengers,
        };
        spawn_registries(&mut tasks, models, &config, &swap_tx, &cancel);
        let tee = spawn_drift(&mut tasks, drift, &config, &outputs.store, &job, s)?;
        tasks.spawn(
            "scorer",
            stages::score(scorer, swap_rx, q.batch_rx, q.score_tx, tee, s.clone()),
        );
        let feedback = SinkFeedback {
            acks: q.ack_tx,
            latency,
            guard,
        };
        let Outputs {
            sink,
            dead_letter_topic,
            ..
        } = outputs;
        tasks.spawn(
            "sink",
            stages::sink(sink, dead_letter_topic, q.score_rx, feedback, s.clone()),
        );

        let source_report = tasks.join(&cancel).await?;
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

/// The stages that read rows and make batches of them, ahead of the scorer.
struct Reading {
    source: KafkaSource,
    decoder: Box<dyn Decoder>,
    join: FeatureJoin,
}

impl Reading {
    /// Starts source, decode, feature join and batcher, each as its own
    /// task; returns where the sink reports how long batches took, which
    /// adaptive batch sizing reads.
    fn spawn(
        self,
        tasks: &mut Tasks,
        config: &JobConfig,
        q: IngestQueues,
        s: &Arc<JobStats>,
        cancel: &CancellationToken,
    ) -> Result<Arc<LatencyFeedback>, PipelineError> {
        let coalescer = Coalescer::new(
            self.join.output_schema().clone(),
            config.batch.max_rows,
            config.batch.effective_max_wait(),
        )?;
        let latency = Arc::new(LatencyFeedback::default());
        let adaptive = config.batch.adaptive().map(|size| (size, latency.clone()));
        let (source, raw_tx, acks, stop_reading) =
            (self.source, q.raw_tx, q.ack_rx, cancel.clone());
        tasks.spawn("source", async move {
            source.run(raw_tx, acks, stop_reading).await.map(Some)
        });
        tasks.spawn(
            "decode",
            stages::decode(self.decoder, q.raw_rx, q.dec_tx, s.clone()),
        );
        tasks.spawn(
            "feature_join",
            stages::feature_join(self.join, q.dec_rx, q.join_tx, s.clone()),
        );
        let batcher = run_batcher(coalescer, q.join_rx, q.batch_tx, adaptive);
        tasks.spawn("batcher", async move { batcher.await.map(|()| None) });
        Ok(latency)
    }
}

/// One of the job's models, as [`spawn_registry`] needs it.
struct Watched<'a> {
    role: ModelRole,
    source: &'a ModelSource,
    loader: ModelLoader,
    pinned: Arc<AtomicBool>,
}

/// The job's models, as [`spawn_registries`] needs them.
struct Models {
    loader: ModelLoader,
    champion: ModelSource,
    /// Set while the job is pinned to a version asked for by name.
    pinned: Arc<AtomicBool>,
    challengers: Challengers,
}

/// Watches the registry of every model that has one: the champion (whose
/// swaps an operator can pin) and each challenger.
fn spawn_registries(
    tasks: &mut Tasks,
    models: Models,
    config: &JobConfig,
    swaps: &mpsc::Sender<ModelSwap>,
    cancel: &CancellationToken,
) {
    let Models {
        loader,
        champion,
        pinned,
        challengers,
    } = models;
    let watched = std::iter::once((ModelRole::Champion, champion, pinned)).chain(
        challengers
            .into_iter()
            .map(|(role, source)| (role, source, Arc::default())),
    );
    for (role, source, pinned) in watched {
        let watch = Watched {
            role,
            source: &source,
            loader: loader.clone(),
            pinned,
        };
        spawn_registry(tasks, watch, config, swaps.clone(), cancel);
    }
}

/// Polls the registry of a model whose path is one (champion, shadow or
/// canary): new versions, loaded and checked off the scoring path, are
/// swapped in between two batches.
fn spawn_registry(
    tasks: &mut Tasks,
    model: Watched<'_>,
    config: &JobConfig,
    swaps: mpsc::Sender<ModelSwap>,
    cancel: &CancellationToken,
) {
    let ModelSource::Registry { dir, latest } = model.source else {
        return;
    };
    let watch = RegistryWatch {
        role: model.role,
        watcher: RegistryWatcher::new(dir, latest),
        every: config.model.reload_interval.0,
        loader: model.loader,
        pinned: model.pinned,
    };
    let cancel = cancel.clone();
    let name = match model.role {
        ModelRole::Champion => "model_registry",
        ModelRole::Shadow(_) => "shadow_registry",
        ModelRole::Canary => "canary_registry",
    };
    tasks.spawn(name, async move {
        watch.run(swaps, cancel).await.map(|()| None)
    });
}

/// Where a running job writes: the sink, the store it writes to (the drift
/// table sits beside it), and the dead-letter topic when there is one.
struct Outputs {
    sink: Box<dyn Sink>,
    store: Store,
    dead_letter_topic: Option<DeadLetterProducer>,
}

impl Outputs {
    fn open(config: &JobConfig, partitions: PartitionSpec) -> Result<Self, OperatorError> {
        let mut parquet = ParquetSink::open(&config.sink, partitions)?;
        if !config.dead_letters.parquet {
            parquet = parquet.without_dead_letter_files();
        }
        let dead_letter_topic = config
            .dead_letters
            .topic
            .as_deref()
            .map(|topic| DeadLetterProducer::build(&config.source, topic))
            .transpose()?;
        Ok(Self {
            store: parquet.store().clone(),
            sink: Box::new(parquet),
            dead_letter_topic,
        })
    }
}

/// Starts the drift operator of a `[drift]` job. It gets copies of the
/// scored batches through its own queue; when that is full a sample of
/// the rows waits instead (see `drift_tee.rs`), never the scorer.
fn spawn_drift(
    tasks: &mut Tasks,
    setup: Option<DriftSetup>,
    config: &JobConfig,
    store: &Store,
    job: &str,
    stats: &Arc<JobStats>,
) -> Result<Option<DriftTee>, OperatorError> {
    let started = setup.map(|s| s.start(config, store, job, stats.recent_alerts.clone()));
    let Some((op, rx, tee)) = started.transpose()?.flatten() else {
        return Ok(None);
    };
    tasks.spawn("drift", async move { op.run(rx).await.map(|_| None) });
    Ok(Some(tee))
}

/// A job's operator tasks, each in a span naming it.
#[derive(Default)]
struct Tasks(JoinSet<(&'static str, TaskResult)>);

impl Tasks {
    fn spawn(
        &mut self,
        name: &'static str,
        fut: impl Future<Output = TaskResult> + Send + 'static,
    ) {
        let fut: Pin<Box<dyn Future<Output = TaskResult> + Send>> = Box::pin(fut);
        let span = info_span!("operator", operator = name);
        self.0
            .spawn(async move { (name, fut.await) }.instrument(span));
    }

    /// Waits for every task. The first failure stops the others (through
    /// `cancel`) and is returned once they have drained.
    async fn join(mut self, cancel: &CancellationToken) -> Result<SourceReport, PipelineError> {
        let mut first_error: Option<OperatorError> = None;
        let mut source_report = SourceReport::default();
        while let Some(joined) = self.0.join_next().await {
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
                    self.0.abort_all();
                    return Err(PipelineError::TaskFailed(e.to_string()));
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(source_report),
        }
    }
}
