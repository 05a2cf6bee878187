//! One hosted job as the service holds it: its submitted and shown config,
//! where its run is, and what changes while it runs, and the run itself.
//! The job table (`jobs.rs`) owns entries; status (`status.rs`) reads them.

use std::sync::{Arc, Mutex};

use scorestream_pipeline::config::{Redactor, redacted_toml};
use scorestream_pipeline::runtime::{Job, JobStats, ModelSwitch};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use utoipa::ToSchema;

use crate::ServiceError;
use crate::store::{JobState, Persisted};

/// Where a job's run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    /// Building (loading the model and features) before it runs.
    Starting,
    Running,
    /// Draining, flushing and committing after a stop.
    Stopping,
    Stopped,
    Failed {
        /// Why the job failed.
        error: String,
    },
}

impl RunState {
    pub(crate) fn is_final(&self) -> bool {
        matches!(self, Self::Stopped | Self::Failed { .. })
    }
}

/// One hosted job.
pub(crate) struct Entry {
    pub(crate) name: String,
    /// As submitted: what a restart builds from.
    pub(crate) toml: String,
    /// As shown: secrets replaced.
    pub(crate) shown_toml: String,
    pub(crate) redactor: Redactor,
    pub(crate) output: String,
    pub(crate) source: (String, Vec<String>, String),
    pub(crate) run: watch::Sender<RunState>,
    pub(crate) live: Mutex<Live>,
}

impl Entry {
    /// A persisted job whose config no longer loads (a newer scorestream
    /// reads it differently, or the operator narrowed the roots): listed as
    /// failed with the reason, so the other jobs still resume.
    pub(crate) fn failed(p: &Persisted, redactor: Redactor, error: String) -> Self {
        Entry {
            name: p.name.clone(),
            shown_toml: redacted_toml(&p.toml).unwrap_or_default(),
            redactor,
            toml: p.toml.clone(),
            output: String::new(),
            source: Default::default(),
            run: watch::Sender::new(RunState::Failed { error }),
            live: Mutex::new(Live::idle(p.state.clone())),
        }
    }

    /// The failure as the status shows it: explained, secrets redacted.
    fn fail(&self, e: &(dyn std::error::Error + 'static), what: &str) {
        let error = self
            .redactor
            .redact(&crate::descriptors::explain_failure(e, &self.name));
        error!(%error, "{what}");
        self.run.send_replace(RunState::Failed { error });
    }
}

/// Runs a built job (or records why it could not be built) until `stop`,
/// keeping the entry's run state and model switch current.
pub(crate) async fn run_entry(
    entry: &Entry,
    job: Result<Job, ServiceError>,
    stop: CancellationToken,
    stats: Arc<JobStats>,
) {
    let job = match job {
        Ok(job) => job,
        Err(e) => return entry.fail(&e, "the job cannot start"),
    };
    stats.set_models(job.models());
    if let Ok(mut live) = entry.live.lock() {
        live.switch = Some(job.model_switch());
    }
    if stop.is_cancelled() {
        entry.run.send_replace(RunState::Stopped);
        return;
    }
    entry.run.send_replace(RunState::Running);
    let outcome = job.run(stop, stats).await;
    if let Ok(mut live) = entry.live.lock() {
        live.switch = None;
        live.stop = None;
    }
    match outcome {
        Ok(report) => {
            info!(rows = report.stats.rows_scored, "job stopped");
            entry.run.send_replace(RunState::Stopped);
        }
        Err(e) => entry.fail(&e, "job failed"),
    }
}

/// What changes while a job runs.
pub(crate) struct Live {
    pub(crate) state: JobState,
    pub(crate) stats: Arc<JobStats>,
    pub(crate) started_at: Option<String>,
    pub(crate) stop: Option<CancellationToken>,
    pub(crate) switch: Option<ModelSwitch>,
}

impl Live {
    /// A job that has not started: no run to stop, no counters yet.
    pub(crate) fn idle(state: JobState) -> Self {
        Live {
            state,
            stats: Arc::new(JobStats::default()),
            started_at: None,
            stop: None,
            switch: None,
        }
    }
}
