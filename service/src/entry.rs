//! One hosted job as the service holds it: its submitted and shown config,
//! where its run is, and what changes while it runs. The job table
//! (`jobs.rs`) owns entries; status (`status.rs`) reads them.

use std::sync::{Arc, Mutex};

use scorestream_pipeline::config::Redactor;
use scorestream_pipeline::runtime::{JobStats, ModelSwitch};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::store::JobState;

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

/// What changes while a job runs.
pub(crate) struct Live {
    pub(crate) state: JobState,
    pub(crate) stats: Arc<JobStats>,
    pub(crate) started_at: Option<String>,
    pub(crate) stop: Option<CancellationToken>,
    pub(crate) switch: Option<ModelSwitch>,
}
