//! The demo: an in-process Kafka (librdkafka's mock cluster), the synthetic
//! transaction generator producing into it while the demo job consumes it,
//! and the job's real operators writing Parquet.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ToolError;
use crate::synth::{EventGen, GenOptions, Pace, ProduceReport, World, produce};
use scorestream_pipeline::config::{JobConfig, load_str};
use scorestream_pipeline::runtime::{Job, JobReport, JobStats, StatsSnapshot};
use scorestream_pipeline::{PipelineError, Problem};

/// The demo job and the files it refers to, as embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct DemoAssets {
    pub job_toml: &'static str,
    pub features_csv: &'static [u8],
    pub model_manifest: &'static [u8],
    pub model_weights: &'static [u8],
}

/// The demo job with its feature file and model, built in so the demo runs
/// from any directory. Regenerate the files with `scorestream train`.
pub const EMBEDDED: DemoAssets = DemoAssets {
    job_toml: include_str!("../../jobs/demo/job.toml"),
    features_csv: include_bytes!("../../jobs/demo/features.csv"),
    model_manifest: include_bytes!("../../jobs/demo/model/manifest.json"),
    model_weights: include_bytes!("../../jobs/demo/model/model.safetensors"),
};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub events: u64,
    pub partitions: i32,
    pub out: PathBuf,
    pub seed: u64,
    /// Events per second to produce; as fast as possible when `None`.
    pub rate: Option<u64>,
    /// Give up when no event has been acknowledged for this long.
    pub stall_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DemoReport {
    pub produced: ProduceReport,
    pub job: JobReport,
    pub out: PathBuf,
    pub model: String,
    pub device: String,
    /// Stopped early by `interrupt`: everything read was drained and
    /// committed, the rest of the generated events were not produced.
    pub interrupted: bool,
}

pub const DEMO_TOPIC: &str = "transactions";
/// How far the generator may run ahead of the job, per partition: well
/// inside what the mock cluster retains (~5 MiB, about 25,000 demo events).
const MAX_AHEAD_PER_PARTITION: u64 = 15_000;
/// Marks a directory as demo output, so a rerun may replace it.
pub const DEMO_MARKER: &str = ".scorestream-demo";

/// The generator settings the demo uses for a seed, so tests can replay the
/// exact events it produced.
pub fn generator_options(seed: u64) -> GenOptions {
    GenOptions {
        seed: seed + 1_000,
        start_ms: scorestream_operators::now_ms(),
        ..Default::default()
    }
}

/// The world the embedded feature file was generated from, as recorded by
/// `scorestream train` in the model manifest: events must come from the same
/// accounts the feature store describes, or the scores mean nothing.
pub fn demo_world(assets: &DemoAssets) -> Result<World, ToolError> {
    let manifest: serde_json::Value = serde_json::from_slice(assets.model_manifest)
        .map_err(|e| ToolError::Incomplete(format!("embedded model manifest: {e}")))?;
    let get = |k: &str| manifest["training"][k].as_u64();
    match (get("world_seed"), get("accounts")) {
        (Some(seed), Some(accounts)) => Ok(World::new(accounts as usize, seed)),
        _ => Err(ToolError::Incomplete(
            "the embedded model manifest does not record training.world_seed and training.accounts; rerun `scorestream train`".into(),
        )),
    }
}

/// Parses the embedded job config and writes its assets under `out/job`.
pub fn prepare(assets: &DemoAssets, out: &Path) -> Result<JobConfig, ToolError> {
    let invalid = |problems: Vec<Problem>| {
        ToolError::from(PipelineError::InvalidConfig {
            path: "embedded demo job".into(),
            problems,
        })
    };
    clear_for_demo(out)?;
    let job_dir = out.join("job");
    let write = |rel: &str, bytes: &[u8]| {
        let p = job_dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ToolError::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| ToolError::io(format!("writing {}", p.display()), e))
    };
    write("job.toml", assets.job_toml.as_bytes())?;
    write("features.csv", assets.features_csv)?;
    write("model/manifest.json", assets.model_manifest)?;
    write("model/model.safetensors", assets.model_weights)?;
    std::fs::write(out.join(DEMO_MARKER), b"")
        .map_err(|e| ToolError::io("writing demo marker", e))?;
    let mut config = load_str(assets.job_toml).map_err(invalid)?;
    config.resolve_paths(&job_dir);
    config.sink.path = out.into();
    Ok(config)
}

/// Makes `out` ready for the demo: a missing or empty directory is used as
/// it is (a user may well `mkdir` it first), earlier demo output is
/// replaced, and anything else is refused, since it may be the user's.
fn clear_for_demo(out: &Path) -> Result<(), ToolError> {
    let io = |what: &str, e: std::io::Error| ToolError::io(format!("{what} {}", out.display()), e);
    let entries = std::fs::read_dir(out).map(|mut e| e.next());
    match entries {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(ToolError::Incomplete(format!(
                "{} is a file, not a directory; choose another directory with --out",
                out.display()
            )));
        }
        Err(e) => return Err(io("reading", e)),
        Ok(None) => return Ok(()),
        Ok(Some(_)) => {}
    }
    if !out.join(DEMO_MARKER).exists() {
        return Err(ToolError::Incomplete(format!(
            "{} exists, is not empty and is not demo output; choose another directory with --out",
            out.display()
        )));
    }
    std::fs::remove_dir_all(out).map_err(|e| io("clearing", e))
}

/// Runs the whole demo; `progress` is called about four times a second.
/// Cancelling `interrupt` (Ctrl-C) stops the generator and drains the job.
pub async fn run_demo(
    assets: &DemoAssets,
    opts: &DemoOptions,
    interrupt: CancellationToken,
    mut progress: impl FnMut(&StatsSnapshot, u64),
) -> Result<DemoReport, ToolError> {
    let mut config = prepare(assets, &opts.out)?;
    let cluster = MockCluster::new(3)?;
    cluster.create_topic(DEMO_TOPIC, opts.partitions, 1)?;
    config.source.brokers = cluster.bootstrap_servers();
    config.source.topics = vec![DEMO_TOPIC.into()];

    let job = Job::build(config)?;
    let model = format!("{} v{}", job.model_name(), job.model_version());
    let device = job.device();
    let stats = Arc::new(JobStats::default());
    let stop = CancellationToken::new();
    let mut running = tokio::spawn(job.run(stop.clone(), stats.clone()));
    await_assignment(&mut running, &stats, &stop, opts.stall_timeout).await?;
    let mut generator = Generator::spawn(assets, opts, cluster.bootstrap_servers(), &stats)?;
    let outcome = watch(
        &running,
        &stats,
        &mut generator,
        &interrupt,
        opts.stall_timeout,
        &mut progress,
    )
    .await;
    generator.halt();
    stop.cancel();
    let job = join_job(&mut running).await?;
    outcome?;
    let interrupted = interrupt.is_cancelled();
    let produced = generator.finish(interrupted).await?;
    if !interrupted && job.stats.messages_acked != produced.delivered {
        return Err(ToolError::Incomplete(format!(
            "{} events were produced but {} were accounted for",
            produced.delivered, job.stats.messages_acked
        )));
    }
    drop(cluster);
    Ok(DemoReport {
        produced,
        job,
        out: opts.out.clone(),
        model,
        device,
        interrupted,
    })
}

type RunningJob = JoinHandle<Result<JobReport, PipelineError>>;
type RunningGenerator = JoinHandle<Result<ProduceReport, ToolError>>;

async fn join_job(running: &mut RunningJob) -> Result<JobReport, ToolError> {
    Ok(running
        .await
        .map_err(|e| ToolError::TaskFailed(format!("job: {e}")))??)
}

/// Produce only once the consumer owns partitions, so the job consumes
/// while the generator produces (the mock cluster keeps little per partition).
async fn await_assignment(
    running: &mut RunningJob,
    stats: &JobStats,
    stop: &CancellationToken,
    stall_timeout: Duration,
) -> Result<(), ToolError> {
    let joined = Instant::now();
    while stats.partitions_assigned.load(Ordering::Relaxed) <= 0 {
        if running.is_finished() || joined.elapsed() > stall_timeout {
            stop.cancel();
            join_job(running).await?;
            return Err(ToolError::Incomplete(
                "the demo job never joined its consumer group".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The synthetic producer on a blocking thread, with the counters the
/// watcher reads and the flag that stops it early.
struct Generator {
    produced: Arc<AtomicU64>,
    halt: Arc<AtomicBool>,
    /// Taken once the task has been joined.
    handle: Option<RunningGenerator>,
    /// What the generator delivered, once it has finished.
    delivered: Option<ProduceReport>,
}

impl Generator {
    fn spawn(
        assets: &DemoAssets,
        opts: &DemoOptions,
        brokers: String,
        stats: &Arc<JobStats>,
    ) -> Result<Self, ToolError> {
        let produced = Arc::new(AtomicU64::new(0));
        let halt = Arc::new(AtomicBool::new(false));
        let handle = {
            let (produced, halt) = (produced.clone(), halt.clone());
            let (n, rate, seed) = (opts.events, opts.rate, opts.seed);
            let window = MAX_AHEAD_PER_PARTITION * opts.partitions.max(1) as u64;
            let world = demo_world(assets)?;
            let stats = stats.clone();
            tokio::task::spawn_blocking(move || {
                let mut generator = EventGen::new(&world, generator_options(seed));
                let pace = Pace {
                    rate,
                    progress: &produced,
                    stop: &halt,
                    ahead_of: Some((&stats.events_in, window)),
                };
                produce(&brokers, DEMO_TOPIC, &mut generator, n, &pace)
            })
        };
        Ok(Self {
            produced,
            halt,
            handle: Some(handle),
            delivered: None,
        })
    }

    fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    /// Joins the task if it has finished, without waiting for it.
    async fn reap(&mut self) -> Result<(), ToolError> {
        if self.handle.as_ref().is_some_and(|p| p.is_finished())
            && let Some(handle) = self.handle.take()
        {
            match handle.await {
                Ok(Ok(r)) => self.delivered = Some(r),
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(ToolError::TaskFailed(format!("producer: {e}"))),
            }
        }
        Ok(())
    }

    fn halt(&self) {
        self.halt.store(true, Ordering::Relaxed);
    }

    /// What was delivered; after an interrupt the halted task is waited for,
    /// since it stops early rather than never.
    async fn finish(mut self, interrupted: bool) -> Result<ProduceReport, ToolError> {
        if interrupted && let Some(handle) = self.handle.take() {
            self.delivered = Some(
                handle
                    .await
                    .map_err(|e| ToolError::TaskFailed(format!("producer: {e}")))??,
            );
        }
        self.delivered.ok_or_else(|| {
            ToolError::Incomplete("the job stopped before the generator finished".into())
        })
    }
}

/// Watch until every delivered event is acknowledged (scored or
/// dead-lettered), the job stops, the user interrupts, or nothing moves for
/// `stall_timeout`.
async fn watch(
    running: &RunningJob,
    stats: &JobStats,
    generator: &mut Generator,
    interrupt: &CancellationToken,
    stall_timeout: Duration,
    progress: &mut impl FnMut(&StatsSnapshot, u64),
) -> Result<(), ToolError> {
    let mut last_acked = 0;
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            _ = interrupt.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let snap = stats.snapshot();
        progress(&snap, generator.produced());
        generator.reap().await?;
        if running.is_finished() {
            return Ok(());
        }
        if let Some(d) = &generator.delivered
            && snap.messages_acked >= d.delivered
        {
            return Ok(());
        }
        if snap.messages_acked != last_acked {
            last_acked = snap.messages_acked;
            last_change = Instant::now();
        } else if last_change.elapsed() > stall_timeout {
            return Err(ToolError::Incomplete(format!(
                "no progress for {stall_timeout:?}: {} of {} produced events accounted for",
                snap.messages_acked,
                generator.produced()
            )));
        }
    }
}
