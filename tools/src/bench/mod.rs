//! `scorestream bench`: the reference workload end to end against a real
//! broker, measured the way a user would measure a deployment.
//!
//! The demo's events (about 200 bytes of JSON, 16 online features per
//! account from the file store) go to a fresh topic first; then the demo
//! job, with the small (20-64-32-1) or large (64-256-256-1) MLP, consumes
//! them into Parquet. Throughput counts from the first fetch to the commit
//! of the last file, so the broker's and the producer's work is outside
//! it. `--rate` instead produces while the job consumes, for a sustained
//! run whose memory is sampled every second.

mod model;
mod process;
mod source_only;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::ToolError;
use crate::demo::{DemoAssets, demo_world, generator_options, prepare};
use crate::synth::{EventGen, Pace, produce};
use scorestream_pipeline::runtime::{Job, JobStats};

pub use model::write_large_model;
pub use process::{cpu_time, peak_rss_bytes, reset_peak_rss, rss_bytes};

/// Which network scores the events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchModel {
    /// The demo's trained 20-64-32-1 MLP.
    #[default]
    Small,
    /// A 64-256-256-1 MLP with seeded random weights over the same columns.
    Large,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub brokers: String,
    pub events: u64,
    pub partitions: i32,
    pub model: BenchModel,
    /// Working directory: the job's files and its Parquet output.
    pub out: PathBuf,
    pub seed: u64,
    /// Produce at this rate while the job consumes (sustained mode),
    /// instead of producing everything first.
    pub rate: Option<u64>,
    /// `batch.target_latency` for the job (adaptive batch sizes).
    pub target_latency: Option<Duration>,
    /// Give up when nothing is acknowledged for this long.
    pub stall_timeout: Duration,
    /// Run the job's Kafka source alone, dropping what it reads: the floor
    /// under the job's cost on this machine and broker.
    pub source_only: bool,
}

/// What one run measured. Times are wall-clock; CPU is the whole process
/// (every thread) from the job's start to its last commit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// Only the Kafka source ran (`--source-only`): no scoring, no output.
    pub source_only: bool,
    pub model: BenchModel,
    pub events: u64,
    pub partitions: i32,
    pub sustained_rate: Option<u64>,
    pub target_latency_ms: Option<f64>,
    pub produce_seconds: f64,
    /// Rows scored plus dead letters: every event accounted for.
    pub accounted: u64,
    pub rows_scored: u64,
    pub dead_letters: u64,
    pub files: u64,
    pub output_bytes: u64,
    /// From the first fetch to the commit of the last file.
    pub seconds: f64,
    pub events_per_second: f64,
    pub batches: u64,
    pub batch_latency_p50_ms: f64,
    pub batch_latency_p99_ms: f64,
    pub cpu_seconds: f64,
    pub cpu_seconds_per_million_events: f64,
    pub peak_rss_bytes: u64,
    /// `(seconds since the job started, RSS bytes)`, once a second.
    pub rss_samples: Vec<(u64, u64)>,
    /// Per stage: seconds in the stage over the run, and the share of the
    /// summed stage time.
    pub stages: Vec<StageTime>,
    /// Mean rows waiting in each queue between operators (sampled once a
    /// second): a full queue sits in front of the bottleneck, empty ones
    /// everywhere mean the source is.
    pub queue_rows_mean: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    pub seconds: f64,
    pub microseconds_per_event: f64,
    pub share: f64,
}

/// Runs one measurement. `progress` is called about once a second.
pub async fn run_bench(
    assets: &DemoAssets,
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, ToolError> {
    let mut config = prepare(assets, &opts.out)?;
    let run_id = scorestream_operators::now_ms().to_string();
    let topic = format!("scorestream-bench-{run_id}");
    config.source.brokers = opts.brokers.clone();
    config.source.topics = vec![topic.clone()];
    config.source.group_id = format!("scorestream-bench-{run_id}");
    // A new group's first join waits out part of the session timeout on
    // some brokers (tansu); the run does not need to tolerate long pauses.
    for (k, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ] {
        config
            .source
            .options
            .entry(k.into())
            .or_insert_with(|| v.into());
    }
    // Pre-produced: the last file is committed this long after the last
    // row; keep it short so the run's end is the pipeline's, not the roll
    // timer's. (Not while producing live: batches arrive with gaps then,
    // and a short inactivity would close a file after nearly every batch.)
    if opts.rate.is_none() {
        config.sink.roll.inactivity =
            scorestream_operators::config::HumanDuration(Duration::from_millis(200));
    }
    config.batch.target_latency = opts
        .target_latency
        .map(scorestream_operators::config::HumanDuration);
    if opts.model == BenchModel::Large {
        let dir = opts.out.join("job/model-large");
        write_large_model(&config.model.path, &dir, opts.seed)?;
        config.model.path = dir;
    }
    create_topic(&opts.brokers, &topic, opts.partitions).await?;

    let world = demo_world(assets)?;
    let produced = Arc::new(AtomicU64::new(0));
    let halt = Arc::new(AtomicBool::new(false));
    let spawn_producer = |stats: Option<Arc<JobStats>>| {
        let (brokers, topic, produced, halt, world) = (
            opts.brokers.clone(),
            topic.clone(),
            produced.clone(),
            halt.clone(),
            world.clone(),
        );
        let (n, rate, seed) = (opts.events, opts.rate, opts.seed);
        tokio::task::spawn_blocking(move || {
            let _keep = stats;
            let mut generator = EventGen::new(&world, generator_options(seed));
            let pace = Pace {
                rate,
                progress: &produced,
                stop: &halt,
                ahead_of: None,
            };
            produce(&brokers, &topic, &mut generator, n, &pace)
        })
    };
    let join_err =
        |what: &str, e: tokio::task::JoinError| ToolError::TaskFailed(format!("{what}: {e}"));

    let produce_started = Instant::now();
    let mut producer = None;
    let mut delivered = None;
    if opts.rate.is_none() {
        progress(&format!("producing {} events to `{topic}`", opts.events));
        let report = spawn_producer(None)
            .await
            .map_err(|e| join_err("producer", e))??;
        delivered = Some(report.delivered);
    }
    let produce_seconds = produce_started.elapsed().as_secs_f64();

    reset_peak_rss();
    let cpu_before = cpu_time();
    if opts.source_only {
        let expected = delivered.unwrap_or(opts.events);
        let run = source_only::read_all(&config, expected, opts.stall_timeout).await?;
        let cpu_seconds = (cpu_time() - cpu_before).as_secs_f64();
        let peak_rss_bytes = peak_rss_bytes();
        let _ = delete_topic(&opts.brokers, &topic).await;
        return Ok(BenchReport {
            source_only: true,
            produce_seconds,
            accounted: run.events,
            seconds: run.seconds,
            events_per_second: run.events as f64 / run.seconds.max(f64::MIN_POSITIVE),
            cpu_seconds,
            cpu_seconds_per_million_events: cpu_seconds * 1e6 / run.events.max(1) as f64,
            peak_rss_bytes,
            ..BenchReport::empty(opts)
        });
    }
    let job = Job::build(config)?;
    let stats = Arc::new(JobStats::default());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(job.run(stop.clone(), stats.clone()));
    if opts.rate.is_some() {
        producer = Some(spawn_producer(Some(stats.clone())));
    }

    let mut rss_samples = Vec::new();
    let mut queue_sums: Vec<(&'static str, u64)> = Vec::new();
    let mut queue_samples = 0u64;
    let mut last_acked = 0;
    let mut last_change = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut next_sample = Duration::ZERO;
    let outcome = loop {
        tick.tick().await;
        let snap = stats.snapshot();
        if started.elapsed() >= next_sample {
            rss_samples.push((next_sample.as_secs(), rss_bytes()));
            let queues = stats.queues();
            if !queues.is_empty() {
                queue_samples += 1;
                for (name, rows) in queues {
                    match queue_sums.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, sum)) => *sum += rows,
                        None => queue_sums.push((name, rows)),
                    }
                }
            }
            next_sample += Duration::from_secs(1);
            progress(&format!(
                "{:>4}s  {} of {} events accounted for, RSS {} MiB",
                started.elapsed().as_secs(),
                snap.messages_acked,
                delivered.unwrap_or(opts.events),
                rss_bytes() >> 20
            ));
        }
        if producer.as_ref().is_some_and(|p| p.is_finished())
            && let Some(handle) = producer.take()
        {
            match handle.await {
                Ok(Ok(r)) => delivered = Some(r.delivered),
                Ok(Err(e)) => break Err(e),
                Err(e) => break Err(join_err("producer", e)),
            }
        }
        if let Some(d) = delivered
            && snap.messages_acked >= d
        {
            break Ok(snap);
        }
        if running.is_finished() {
            break Err(ToolError::Incomplete(
                "the job stopped before every event was accounted for".into(),
            ));
        }
        if snap.messages_acked != last_acked {
            last_acked = snap.messages_acked;
            last_change = Instant::now();
        } else if last_change.elapsed() > opts.stall_timeout {
            break Err(ToolError::Incomplete(format!(
                "no progress for {:?}: {} of {} events accounted for",
                opts.stall_timeout,
                snap.messages_acked,
                produced.load(Ordering::Relaxed)
            )));
        }
    };
    let cpu_seconds = (cpu_time() - cpu_before).as_secs_f64();
    let peak_rss = peak_rss_bytes();
    halt.store(true, Ordering::Relaxed);
    stop.cancel();
    running.await.map_err(|e| join_err("job", e))??;
    if let Some(p) = producer {
        p.await.map_err(|e| join_err("producer", e))??;
    }
    let snap = outcome?;
    let _ = delete_topic(&opts.brokers, &topic).await;

    let events = snap.messages_acked;
    let seconds = snap.active.as_secs_f64();
    let stage_times = stats.stage_times();
    let total: f64 = stage_times.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let stages = stage_times
        .into_iter()
        .map(|(stage, d)| StageTime {
            stage,
            seconds: d.as_secs_f64(),
            microseconds_per_event: d.as_secs_f64() * 1e6 / events.max(1) as f64,
            share: if total > 0.0 {
                d.as_secs_f64() / total
            } else {
                0.0
            },
        })
        .collect();
    Ok(BenchReport {
        produce_seconds,
        accounted: events,
        rows_scored: snap.rows_scored,
        dead_letters: snap.dead_letters,
        files: snap.files_written,
        output_bytes: snap.bytes_written,
        seconds,
        events_per_second: snap.throughput(),
        batches: snap.batches_scored,
        batch_latency_p50_ms: snap.batch_latency_p50.as_secs_f64() * 1e3,
        batch_latency_p99_ms: snap.batch_latency_p99.as_secs_f64() * 1e3,
        cpu_seconds,
        cpu_seconds_per_million_events: cpu_seconds * 1e6 / events.max(1) as f64,
        peak_rss_bytes: peak_rss,
        rss_samples,
        stages,
        queue_rows_mean: queue_sums
            .into_iter()
            .map(|(name, sum)| (name.to_owned(), sum / queue_samples.max(1)))
            .collect(),
        ..BenchReport::empty(opts)
    })
}

impl BenchReport {
    /// The run's settings, with nothing measured yet.
    fn empty(opts: &BenchOptions) -> Self {
        Self {
            source_only: opts.source_only,
            model: opts.model,
            events: opts.events,
            partitions: opts.partitions,
            sustained_rate: opts.rate,
            target_latency_ms: opts.target_latency.map(|t| t.as_secs_f64() * 1e3),
            ..Self::default()
        }
    }
}

fn admin_config(brokers: &str) -> rdkafka::ClientConfig {
    use scorestream_operators::kafka::{ClientRole, KafkaOptions, client_config};
    client_config(brokers, &KafkaOptions::default(), ClientRole::Admin)
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), ToolError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = admin_config(brokers).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await?;
    for r in results {
        r.map_err(|(t, e)| {
            ToolError::Incomplete(format!("cannot create the bench topic `{t}`: {e}"))
        })?;
    }
    Ok(())
}

/// Frees the broker's copy of the events (tansu keeps them in memory).
async fn delete_topic(brokers: &str, topic: &str) -> Result<(), ToolError> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = admin_config(brokers).create()?;
    admin.delete_topics(&[topic], &AdminOptions::new()).await?;
    Ok(())
}
