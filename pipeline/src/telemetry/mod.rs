//! Metrics and their job label: the Prometheus recorder every job records
//! into, the HELP text and unit of each metric, and the tracing layer that
//! lets a metric recorded inside a job's span carry `job="<name>"`.
//!
//! Operators record with plain `metrics` macros and know nothing of jobs;
//! the runtime enters a `job` span around each job's tasks, and the
//! recorder installed here copies that span field onto every metric. One
//! process hosting many jobs (`scorestream serve`) thus reports each job
//! separately, with no job argument threaded through the operators.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! // The subscriber must carry the metrics layer for spans to become labels.
//! tracing_subscriber::registry()
//!     .with(scorestream_pipeline::telemetry::metrics_layer())
//!     .init();
//! let handle = scorestream_pipeline::telemetry::install_prometheus()?;
//! let span = tracing::info_span!("job", job = "fraud");
//! span.in_scope(|| metrics::counter!("scorestream_events_total").increment(3));
//! assert!(handle.render().contains(r#"scorestream_events_total{job="fraud"} 3"#));
//! # Ok::<(), scorestream_pipeline::PipelineError>(())
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_tracing_context::{MetricsLayer, TracingContextLayer};
use metrics_util::layers::Layer as _;
use scorestream_schemas::DeadLetterCounts;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

use crate::PipelineError;

mod catalog;

pub use catalog::{FRESHNESS_BUCKETS, Kind, LATENCY_BUCKETS, METRICS, MetricDoc, ROW_BUCKETS};

/// The only span field that becomes a label: job names are bounded by the
/// jobs a process runs, while `operator` and the like would multiply every
/// series for no question anyone asks of a dashboard.
pub const JOB_LABEL: &str = "job";

/// How often histogram samples are folded into their buckets when nobody
/// scrapes, so memory stays flat between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The tracing layer that remembers span fields for metric labels. Add it
/// to the process's subscriber; without it metrics carry no `job` label.
///
/// It sees only scorestream's own spans: those are per job and per
/// operator, so keeping their fields costs nothing per row, and spans from
/// dependencies are never created on its account.
pub fn metrics_layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    MetricsLayer::new().with_filter(filter_fn(|meta| {
        meta.is_span() && meta.target().starts_with("scorestream")
    }))
}

/// Installs the process's Prometheus recorder, with the `job` label taken
/// from the enclosing span and every metric described, and returns the
/// handle that renders `/metrics`. Idempotent: later calls return the same
/// handle, so `run` and `serve` can both ask for it.
pub fn install_prometheus() -> Result<PrometheusHandle, PipelineError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    // Two first callers must not both try to set the global recorder.
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = builder()?.build_recorder();
    let handle = recorder.handle();
    let recorder = TracingContextLayer::only_allow([JOB_LABEL]).layer(recorder);
    metrics::set_global_recorder(recorder).map_err(|e| PipelineError::MetricsRecorder {
        reason: e.to_string(),
    })?;
    describe_metrics();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| PipelineError::io("starting the metrics upkeep thread", e))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The exporter's settings: histograms with buckets (rendered as real
/// Prometheus histograms, which aggregate across jobs and instances, unlike
/// summaries).
pub fn builder() -> Result<PrometheusBuilder, PipelineError> {
    let bad = |e: metrics_exporter_prometheus::BuildError| PipelineError::MetricsRecorder {
        reason: e.to_string(),
    };
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(bad)?
        .set_buckets_for_metric(
            Matcher::Full("scorestream_output_freshness_seconds".into()),
            FRESHNESS_BUCKETS,
        )
        .map_err(bad)?
        .set_buckets_for_metric(Matcher::Suffix("_rows".into()), ROW_BUCKETS)
        .map_err(bad)
}

/// Gives every metric in [`METRICS`] its HELP text and unit on the current
/// recorder. The exporter prints HELP only for metrics that have a value.
pub fn describe_metrics() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

/// Counts committed dead letters by the stage that rejected them and the
/// reason code (one increment per pair per commit, never per letter). Both
/// labels come from closed sets, so the series stay few.
pub fn count_dead_letters(counts: &DeadLetterCounts) {
    for (stage, code, n) in counts.iter() {
        metrics::counter!(
            "scorestream_dead_letters_total",
            "stage" => stage.as_str(),
            "reason" => code.as_str()
        )
        .increment(n as u64);
    }
}

#[cfg(test)]
mod tests;
