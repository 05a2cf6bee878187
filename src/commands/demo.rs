use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use scorestream_tools::demo::{DemoOptions, run_demo};

use crate::progress;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// How many events the generator produces.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Output directory: created if missing, used if empty, replaced if it holds earlier demo output.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Produce at most this many events per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    /// Seed of the event generator (the accounts are those the model was trained on).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let opts = DemoOptions {
        events: args.events,
        partitions: args.partitions,
        out: args.out,
        seed: args.seed,
        rate: args.rate,
        stall_timeout: Duration::from_secs(60),
    };
    eprintln!(
        "scorestream demo: {} synthetic transactions -> in-process Kafka topic `transactions` ({} partitions) -> \
         decode -> feature join -> batch -> model -> Parquet",
        progress::thousands(opts.events),
        opts.partitions
    );
    let mut last = Instant::now();
    let interrupt = tokio_util::sync::CancellationToken::new();
    let on_signal = interrupt.clone();
    tokio::spawn(async move {
        crate::commands::shutdown_signal().await;
        eprintln!("interrupted: stopping the generator, draining and committing...");
        on_signal.cancel();
    });
    let report = run_demo(
        &scorestream_tools::demo::EMBEDDED,
        &opts,
        interrupt,
        |snap, produced| {
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprintln!("{}", progress::line(snap, Some(produced)));
            }
        },
    )
    .await
    .context("the demo failed")?;
    let p = &report.produced;
    let mut out = std::io::stdout().lock();
    let how = if report.interrupted {
        "interrupted (drained and committed)"
    } else {
        "finished"
    };
    writeln!(
        out,
        "\nscorestream demo {how}: model {} on {}",
        report.model, report.device
    )?;
    writeln!(
        out,
        "  events produced: {} ({} well-formed, {} for unknown accounts, {} malformed)",
        progress::thousands(p.delivered),
        progress::thousands(p.good),
        progress::thousands(p.unknown_account),
        progress::thousands(p.malformed)
    )?;
    writeln!(out, "{}", progress::summary(&report.job.stats))?;
    writeln!(out, "  output: {}", report.out.display())?;
    writeln!(
        out,
        "\nQuery it:\n  scorestream query --path {} \"SELECT channel, count(*) AS n, avg(score) AS avg_score FROM scores GROUP BY channel\"",
        report.out.display()
    )?;
    Ok(())
}
