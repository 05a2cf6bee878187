//! Whether drift detection is keeping up with its outputs. Drift is a side
//! channel: when the drift table or the alerts topic fails, scoring goes on
//! and drift says it is degraded (here, for the job's status; in the
//! `scorestream_drift_healthy` gauge; in one error log), holds the windows
//! it could not deliver and retries them.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// What failed: where a closed window could not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftFailure {
    /// Writing the window to the drift table.
    Table,
    /// Producing its alerts to `drift.alerts_topic`.
    Alerts,
}

impl DriftFailure {
    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Alerts => "alerts",
        }
    }
}

/// Why drift is degraded, as the job's status shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftDegraded {
    pub cause: DriftFailure,
    /// The latest error (secrets already redacted).
    pub reason: String,
    /// When drift became degraded, ms since the epoch.
    pub since_ms: i64,
    /// Failed attempts since then.
    pub failures: u64,
    /// Closed windows waiting to be delivered.
    pub pending_windows: usize,
    /// Windows given up on because too many were waiting.
    pub dropped_windows: u64,
}

/// Shared between the drift operator, which sets it, and whoever shows the
/// job's status. `None` inside means healthy.
#[derive(Debug, Clone, Default)]
pub struct DriftHealth(Arc<Mutex<Option<DriftDegraded>>>);

impl DriftHealth {
    /// `None` while drift delivers every window; otherwise why not.
    pub fn degraded(&self) -> Option<DriftDegraded> {
        self.0.lock().ok().and_then(|g| g.clone())
    }

    pub(super) fn set(&self, state: Option<DriftDegraded>) {
        if let Ok(mut g) = self.0.lock() {
            *g = state;
        }
    }
}
