//! One `scorestream bench` run: set up the demo job against a fresh topic,
//! produce (before or while the job runs), watch the job until every event
//! is accounted for, and turn what was seen into a [`BenchReport`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scorestream_operators::config::HumanDuration;
use scorestream_pipeline::config::JobConfig;
use scorestream_pipeline::runtime::{Job, JobStats, StatsSnapshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    BenchModel, BenchOptions, BenchReport, StageTime, cpu_time, create_topic, delete_topic,
    peak_rss_bytes, reset_peak_rss, rss_bytes, source_only, write_large_model,
};
use crate::ToolError;
use crate::demo::{DemoAssets, demo_world, generator_options, prepare};
use crate::synth::{EventGen, Pace, ProduceReport, World, produce};

/// Runs one measurement. `progress` is called about once a second.
pub async fn run_bench(
    assets: &DemoAssets,
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, ToolError> {
    let (config, topic) = bench_config(assets, opts)?;
    create_topic(&opts.brokers, &topic, opts.partitions).await?;
    let producer = Producer {
        world: demo_world(assets)?,
        topic: topic.clone(),
        produced: Arc::default(),
        halt: Arc::default(),
    };

    let produce_started = Instant::now();
    let mut delivered = None;
    if opts.rate.is_none() {
        progress(&format!("producing {} events to `{topic}`", opts.events));
        let report = producer
            .spawn(opts, None)
            .await
            .map_err(join_err("producer"))??;
        delivered = Some(report.delivered);
    }
    let produce_seconds = produce_started.elapsed().as_secs_f64();

    reset_peak_rss();
    let cpu_before = cpu_time();
    let report = if opts.source_only {
        let expected = delivered.unwrap_or(opts.events);
        let run = source_only::read_all(&config, expected, opts.stall_timeout).await?;
        let cpu_seconds = (cpu_time() - cpu_before).as_secs_f64();
        BenchReport {
            source_only: true,
            accounted: run.events,
            seconds: run.seconds,
            events_per_second: run.events as f64 / run.seconds.max(f64::MIN_POSITIVE),
            cpu_seconds,
            cpu_seconds_per_million_events: cpu_seconds * 1e6 / run.events.max(1) as f64,
            peak_rss_bytes: peak_rss_bytes(),
            ..BenchReport::empty(opts)
        }
    } else {
        run_job(
            config,
            opts,
            &producer,
            delivered,
            cpu_before,
            &mut progress,
        )
        .await?
    };
    let _ = delete_topic(&opts.brokers, &topic).await;
    Ok(BenchReport {
        produce_seconds,
        ..report
    })
}

/// The demo job, pointed at a fresh topic and group on the bench's broker,
/// with the bench's model, latency target and roll settings.
fn bench_config(
    assets: &DemoAssets,
    opts: &BenchOptions,
) -> Result<(JobConfig, String), ToolError> {
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
        config.sink.roll.inactivity = HumanDuration(Duration::from_millis(200));
    }
    config.batch.target_latency = opts.target_latency.map(HumanDuration);
    if opts.model == BenchModel::Large {
        let dir = opts.out.join("job/model-large");
        write_large_model(&config.model.path, &dir, opts.seed)?;
        config.model.path = dir;
    }
    Ok((config, topic))
}

/// Produces the bench's events on a blocking thread.
struct Producer {
    world: World,
    topic: String,
    produced: Arc<AtomicU64>,
    halt: Arc<AtomicBool>,
}

impl Producer {
    /// `stats`, when given, is kept alive while producing (a sustained run).
    fn spawn(
        &self,
        opts: &BenchOptions,
        stats: Option<Arc<JobStats>>,
    ) -> JoinHandle<Result<ProduceReport, ToolError>> {
        let (brokers, topic, produced, halt, world) = (
            opts.brokers.clone(),
            self.topic.clone(),
            self.produced.clone(),
            self.halt.clone(),
            self.world.clone(),
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
    }
}

fn join_err(what: &'static str) -> impl Fn(tokio::task::JoinError) -> ToolError {
    move |e| ToolError::TaskFailed(format!("{what}: {e}"))
}

/// Runs the job until every delivered event is accounted for (or it stalls),
/// producing alongside in a sustained run.
async fn run_job(
    config: JobConfig,
    opts: &BenchOptions,
    producer: &Producer,
    delivered: Option<u64>,
    cpu_before: Duration,
    progress: &mut impl FnMut(&str),
) -> Result<BenchReport, ToolError> {
    let job = Job::build(config)?;
    let stats = Arc::new(JobStats::default());
    let stop = CancellationToken::new();
    let running = tokio::spawn(job.run(stop.clone(), stats.clone()));
    let sustained = opts
        .rate
        .is_some()
        .then(|| producer.spawn(opts, Some(stats.clone())));
    let mut watch = Watch::new(delivered, sustained);
    let outcome = watch
        .until_done(&stats, &running, opts, &producer.produced, progress)
        .await;
    let cpu_seconds = (cpu_time() - cpu_before).as_secs_f64();
    let peak_rss = peak_rss_bytes();
    producer.halt.store(true, Ordering::Relaxed);
    stop.cancel();
    running.await.map_err(join_err("job"))??;
    if let Some(p) = watch.producer.take() {
        p.await.map_err(join_err("producer"))??;
    }
    let snap = outcome?;
    let mut report = job_report(&snap, &stats, opts);
    report.cpu_seconds = cpu_seconds;
    report.cpu_seconds_per_million_events = cpu_seconds * 1e6 / snap.messages_acked.max(1) as f64;
    report.peak_rss_bytes = peak_rss;
    report.rss_samples = watch.rss_samples;
    report.queue_rows_mean = watch
        .queue_sums
        .into_iter()
        .map(|(name, sum)| (name.to_owned(), sum / watch.queue_samples.max(1)))
        .collect();
    Ok(report)
}

/// What the bench watches while the job runs: memory and queue depths once
/// a second, and whether the job is done, stopped or stalled.
struct Watch {
    delivered: Option<u64>,
    producer: Option<JoinHandle<Result<ProduceReport, ToolError>>>,
    rss_samples: Vec<(u64, u64)>,
    queue_sums: Vec<(&'static str, u64)>,
    queue_samples: u64,
}

impl Watch {
    fn new(
        delivered: Option<u64>,
        producer: Option<JoinHandle<Result<ProduceReport, ToolError>>>,
    ) -> Self {
        Self {
            delivered,
            producer,
            rss_samples: Vec::new(),
            queue_sums: Vec::new(),
            queue_samples: 0,
        }
    }

    async fn until_done(
        &mut self,
        stats: &JobStats,
        running: &JoinHandle<
            Result<scorestream_pipeline::runtime::JobReport, scorestream_pipeline::PipelineError>,
        >,
        opts: &BenchOptions,
        produced: &AtomicU64,
        progress: &mut impl FnMut(&str),
    ) -> Result<StatsSnapshot, ToolError> {
        let started = Instant::now();
        let (mut last_acked, mut last_change) = (0, Instant::now());
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut next_sample = Duration::ZERO;
        loop {
            tick.tick().await;
            let snap = stats.snapshot();
            if started.elapsed() >= next_sample {
                self.sample(next_sample, stats);
                next_sample += Duration::from_secs(1);
                progress(&format!(
                    "{:>4}s  {} of {} events accounted for, RSS {} MiB",
                    started.elapsed().as_secs(),
                    snap.messages_acked,
                    self.delivered.unwrap_or(opts.events),
                    rss_bytes() >> 20
                ));
            }
            self.collect_producer().await?;
            if self.delivered.is_some_and(|d| snap.messages_acked >= d) {
                return Ok(snap);
            }
            if running.is_finished() {
                return Err(ToolError::Incomplete(
                    "the job stopped before every event was accounted for".into(),
                ));
            }
            if snap.messages_acked != last_acked {
                (last_acked, last_change) = (snap.messages_acked, Instant::now());
            } else if last_change.elapsed() > opts.stall_timeout {
                return Err(ToolError::Incomplete(format!(
                    "no progress for {:?}: {} of {} events accounted for",
                    opts.stall_timeout,
                    snap.messages_acked,
                    produced.load(Ordering::Relaxed)
                )));
            }
        }
    }

    /// Memory and queue depths, once a second.
    fn sample(&mut self, at: Duration, stats: &JobStats) {
        self.rss_samples.push((at.as_secs(), rss_bytes()));
        let queues = stats.queues();
        if queues.is_empty() {
            return;
        }
        self.queue_samples += 1;
        for (name, rows) in queues {
            match self.queue_sums.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += rows,
                None => self.queue_sums.push((name, rows)),
            }
        }
    }

    /// Once a sustained run's producer is done, how many it delivered is
    /// the number to wait for.
    async fn collect_producer(&mut self) -> Result<(), ToolError> {
        if !self.producer.as_ref().is_some_and(|p| p.is_finished()) {
            return Ok(());
        }
        if let Some(handle) = self.producer.take() {
            let report = handle.await.map_err(join_err("producer"))??;
            self.delivered = Some(report.delivered);
        }
        Ok(())
    }
}

/// The job's figures from its final statistics.
fn job_report(snap: &StatsSnapshot, stats: &JobStats, opts: &BenchOptions) -> BenchReport {
    let events = snap.messages_acked;
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
    BenchReport {
        accounted: events,
        rows_scored: snap.rows_scored,
        dead_letters: snap.dead_letters,
        files: snap.files_written,
        output_bytes: snap.bytes_written,
        seconds: snap.active.as_secs_f64(),
        events_per_second: snap.throughput(),
        batches: snap.batches_scored,
        batch_latency_p50_ms: snap.batch_latency_p50.as_secs_f64() * 1e3,
        batch_latency_p99_ms: snap.batch_latency_p99.as_secs_f64() * 1e3,
        stages,
        ..BenchReport::empty(opts)
    }
}
