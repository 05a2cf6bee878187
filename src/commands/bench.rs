use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use scorestream_tools::bench::{BenchModel, BenchOptions, BenchReport, run_bench};

mod features;

use crate::commands::say;
use crate::progress::thousands;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Model {
    /// The demo's 20-64-32-1 MLP.
    Small,
    /// A 64-256-256-1 MLP over the same columns.
    Large,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A Kafka broker to produce the events to and consume them from
    /// (`scripts/bench.sh` starts a local tansu). Not used with `--features`.
    #[arg(
        long,
        env = "SCORESTREAM_BENCH_BROKERS",
        required_unless_present = "features"
    )]
    brokers: Option<String>,
    /// How many demo events to produce before the job starts.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Partitions of the bench topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    #[arg(long, value_enum, default_value = "small")]
    model: Model,
    /// Working directory for the job's files and output (replaced if it
    /// holds earlier bench or demo output).
    #[arg(long, default_value = "out/bench")]
    out: PathBuf,
    /// Produce at this many events per second while the job consumes
    /// (a sustained run; memory is sampled every second), instead of
    /// producing every event first.
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Run the job with `batch.target_latency` (adaptive batch sizes), e.g. "200ms".
    #[arg(long, value_parser = humantime::parse_duration)]
    target_latency: Option<Duration>,
    /// Run only the job's Kafka source, dropping what it reads: the cost
    /// of consuming alone, the floor under the whole job's on this machine
    /// and broker.
    #[arg(long, conflicts_with_all = ["rate", "target_latency", "model"])]
    source_only: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    features: features::FeatureArgs,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(layout) = args.features.features {
        return features::run(layout, args.events, args.seed, args.json, args.features).await;
    }
    let opts = BenchOptions {
        brokers: args.brokers.context("--brokers is required")?,
        events: args.events,
        partitions: args.partitions,
        model: match args.model {
            Model::Small => BenchModel::Small,
            Model::Large => BenchModel::Large,
        },
        out: args.out,
        seed: args.seed,
        rate: args.rate,
        target_latency: args.target_latency,
        stall_timeout: Duration::from_secs(60),
        source_only: args.source_only,
    };
    let report = run_bench(&scorestream_tools::demo::EMBEDDED, &opts, |line: &str| {
        say(line)
    })
    .await
    .context("bench run failed")?;
    println!("{}", render(&report));
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn render(r: &BenchReport) -> String {
    if r.source_only {
        return format!(
            "scorestream bench --source-only: {} events, {} partitions\n\
             events/s (first chunk to last)         {}\n\
             seconds                                {:.2}\n\
             read                                   {}\n\
             CPU seconds per million events         {:.2} ({:.2} s in all)\n\
             peak RSS                               {} MiB\n",
            thousands(r.events),
            r.partitions,
            thousands(r.events_per_second as u64),
            r.seconds,
            thousands(r.accounted),
            r.cpu_seconds_per_million_events,
            r.cpu_seconds,
            r.peak_rss_bytes >> 20,
        );
    }
    let mut out = format!(
        "scorestream bench: {} events, {} partitions, {:?} model{}{}\n\
         events/s (first fetch to last commit)  {}\n\
         seconds                                {:.2}\n\
         accounted for                          {} ({} scored, {} dead letters)\n\
         batches                                {} (latency fetch to written: p50 {:.1} ms, p99 {:.1} ms)\n\
         CPU seconds per million events         {:.2} ({:.2} s in all)\n\
         peak RSS                               {} MiB\n\
         output                                 {} files, {} MiB\n\
         stages (time in stage, per event, share):\n",
        thousands(r.events),
        r.partitions,
        r.model,
        r.sustained_rate
            .map(|rate| format!(", produced at {} events/s while consuming", thousands(rate)))
            .unwrap_or_default(),
        r.target_latency_ms
            .map(|t| format!(", batch.target_latency {t:.0} ms"))
            .unwrap_or_default(),
        thousands(r.events_per_second as u64),
        r.seconds,
        thousands(r.accounted),
        thousands(r.rows_scored),
        thousands(r.dead_letters),
        thousands(r.batches),
        r.batch_latency_p50_ms,
        r.batch_latency_p99_ms,
        r.cpu_seconds_per_million_events,
        r.cpu_seconds,
        r.peak_rss_bytes >> 20,
        thousands(r.files),
        r.output_bytes >> 20,
    );
    for s in &r.stages {
        out.push_str(&format!(
            "  {:<14} {:>8.2} s  {:>7.3} µs  {:>5.1}%\n",
            s.stage,
            s.seconds,
            s.microseconds_per_event,
            s.share * 100.0
        ));
    }
    if !r.queue_rows_mean.is_empty() {
        out.push_str("rows queued before each operator (mean of 1 s samples):\n ");
        for (queue, rows) in &r.queue_rows_mean {
            out.push_str(&format!(" {queue} {}", thousands(*rows)));
        }
        out.push('\n');
    }
    out
}
