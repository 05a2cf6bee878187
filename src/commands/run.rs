use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use scorestream_pipeline::config::load_file;
use scorestream_pipeline::runtime::{Job, JobStats};
use tokio_util::sync::CancellationToken;

use crate::progress;

/// Serves every metric the job records (throughput, latencies, lag, drift
/// gauges, ...), labelled with the job, for Prometheus to scrape at
/// `http://ADDR/metrics`. The listener is bound before the job starts so a
/// taken port fails the command at once; the returned task ends with the
/// process.
async fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let handle = scorestream_pipeline::telemetry::install_prometheus()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("serving metrics on {addr}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    crate::commands::say(format_args!(
        "scorestream run: Prometheus metrics at http://{addr}/metrics"
    ));
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    }))
}

pub(crate) async fn run(
    path: &Path,
    exit_on_idle: Option<Duration>,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let config = load_file(path)?;
    let metrics_server = match metrics_listen {
        Some(addr) => Some(serve_metrics(addr).await?),
        None => None,
    };
    let job = Job::build(config)?;
    let out = job.config().sink.path.clone();
    crate::commands::say(format_args!(
        "scorestream run: job `{}`, model {} v{} on {}, output {}",
        job.config().job.name,
        job.model_name(),
        job.model_version(),
        job.device(),
        out
    ));
    let stats = Arc::new(JobStats::default());
    let stop = CancellationToken::new();
    let mut running = tokio::spawn(job.run(stop.clone(), stats.clone()));

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Idle means: partitions owned, and neither new events nor a new
    // assignment for the whole period.
    let (mut last_in, mut last_assigned, mut last_change) = (0, 0, Instant::now());
    let report = loop {
        tokio::select! {
            r = &mut running => break r.context("the job task failed")??,
            _ = crate::commands::shutdown_signal(), if !stop.is_cancelled() => {
                crate::commands::say("stopping: draining, flushing and committing...");
                stop.cancel();
            }
            _ = tick.tick() => {
                let snap = stats.snapshot();
                crate::commands::say(progress::line(&snap, None));
                let assigned = stats.partitions_assigned.load(std::sync::atomic::Ordering::Relaxed);
                if snap.events_in != last_in || assigned != last_assigned || assigned <= 0 {
                    (last_in, last_assigned, last_change) = (snap.events_in, assigned, Instant::now());
                } else if let Some(idle) = exit_on_idle
                    && !stop.is_cancelled()
                    && snap.messages_acked == snap.events_in
                    && last_change.elapsed() >= idle
                {
                    crate::commands::say(format_args!("idle for {idle:?} with everything committed: stopping"));
                    stop.cancel();
                }
            }
        }
    };
    if let Some(server) = metrics_server {
        server.abort();
    }
    println!("scorestream run finished: job stopped cleanly");
    println!("{}", progress::summary(&report.stats));
    println!("{}", progress::source_summary(&report.source));
    println!("  output: {out}");
    Ok(())
}
