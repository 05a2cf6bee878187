use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scorestream_pipeline::config::load_file;
use scorestream_pipeline::runtime::{Job, JobStats};
use tokio_util::sync::CancellationToken;

use crate::progress;

pub async fn run(path: &Path, exit_on_idle: Option<Duration>) -> anyhow::Result<()> {
    let config = load_file(path)?;
    let job = Job::build(config)?;
    let out = job.config().sink.path.clone();
    eprintln!(
        "scorestream run: job `{}`, model {} v{} on {}, output {}",
        job.config().job.name,
        job.model_name(),
        job.model_version(),
        job.device(),
        out.display()
    );
    let stats = Arc::new(JobStats::default());
    let stop = CancellationToken::new();
    let mut running = tokio::spawn(job.run(stop.clone(), stats.clone()));

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut last_in, mut last_change) = (0, Instant::now());
    let report = loop {
        tokio::select! {
            r = &mut running => break r.context("the job task failed")??,
            _ = crate::commands::shutdown_signal(), if !stop.is_cancelled() => {
                eprintln!("stopping: draining, flushing and committing...");
                stop.cancel();
            }
            _ = tick.tick() => {
                let snap = stats.snapshot();
                eprintln!("{}", progress::line(&snap, None));
                if snap.events_in != last_in {
                    (last_in, last_change) = (snap.events_in, Instant::now());
                } else if let Some(idle) = exit_on_idle
                    && !stop.is_cancelled()
                    && snap.messages_acked == snap.events_in
                    && last_change.elapsed() >= idle
                {
                    eprintln!("idle for {idle:?} with everything committed: stopping");
                    stop.cancel();
                }
            }
        }
    };
    println!("scorestream run finished: job stopped cleanly");
    println!("{}", progress::summary(&report.stats));
    println!("  output: {}", out.display());
    Ok(())
}
