pub(crate) mod bench;
pub(crate) mod compact;
pub(crate) mod demo;
pub(crate) mod drift;
pub(crate) mod profile;
pub(crate) mod query;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod train;
pub(crate) mod validate;

use tracing_log::log;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, span context (job, operator) as a prefix.
    #[default]
    Text,
    /// One JSON object per line with the current span and the span list
    /// (job, operator), for log shippers.
    Json,
}

/// The format `init_logging` was given, for [`say`].
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// A line for the person at the terminal (progress, what the command is
/// doing). With `--log-format json` stderr carries only JSON objects, so
/// the line becomes an info event instead (shown when RUST_LOG allows).
pub(crate) fn say(line: impl std::fmt::Display) {
    match LOG_FORMAT.get() {
        Some(LogFormat::Json) => tracing::info!(target: "scorestream", "{line}"),
        _ => eprintln!("{line}"),
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default of warnings only, so
/// progress lines stay readable.
///
/// The subscriber also carries the metrics layer, which keeps the `job`
/// field of scorestream's spans for metric labels. The level filter applies
/// to log lines only: scorestream's job and operator spans (info and above)
/// are always created, so metrics are labelled and a warning still shows
/// which job and operator it came from, whatever `RUST_LOG` says. They are
/// per job and per operator task, never per batch, so this costs nothing
/// on the data path.
pub(crate) fn init_logging(format: LogFormat) {
    let _ = LOG_FORMAT.set(format);
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let our_spans = filter_fn(|meta| {
        meta.is_span()
            && meta.target().starts_with("scorestream")
            && *meta.level() <= tracing::Level::INFO
    });
    // `log` records (librdkafka's, through rdkafka-rs) can only pass the
    // environment filter; `or` hides its hint, so without this `log` stays
    // at TRACE and rdkafka's per-poll `trace!` calls went through the whole
    // tracing dispatch to be dropped: 4.5% of a job's CPU.
    let log_max = log_max_level(&env);
    let filter = env.or(our_spans);
    let registry =
        tracing_subscriber::registry().with(scorestream_pipeline::telemetry::metrics_layer());
    let _ = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    log::set_max_level(log_max);
}

/// The most verbose `log` record the environment filter can let through.
fn log_max_level(env: &tracing_subscriber::EnvFilter) -> log::LevelFilter {
    use tracing_log::AsLog;
    env.max_level_hint()
        .map_or(log::LevelFilter::Trace, |level| level.as_log())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod log_level_tests {
    use super::log_max_level;
    use tracing_log::log;
    use tracing_subscriber::EnvFilter;

    #[test]
    fn log_follows_the_most_verbose_directive() {
        let level = |spec: &str| log_max_level(&EnvFilter::new(spec));
        assert_eq!(level("warn"), log::LevelFilter::Warn);
        assert_eq!(level("warn,librdkafka=debug"), log::LevelFilter::Debug);
        assert_eq!(level("info,rdkafka=trace"), log::LevelFilter::Trace);
        assert_eq!(level("off"), log::LevelFilter::Off);
    }
}
