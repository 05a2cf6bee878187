//! The JSON bodies the API sends and reads, besides a job's status
//! (`status.rs`) and a dry run's checks (`probe.rs`). They are types rather
//! than `json!` values so that the OpenAPI document is derived from what
//! is really sent.
//!
//! Their fields are declared in alphabetical order on purpose: these bodies
//! were built as `serde_json::Value`s, whose objects serialize their keys
//! sorted, and clients have seen them in that order.

use scorestream_pipeline::Problem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::probe::Check;

/// What went wrong, in words.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    pub(crate) error: String,
    /// Every problem of an invalid job config.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) problems: Option<Vec<ProblemBody>>,
}

impl ErrorBody {
    pub(crate) fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            problems: None,
        }
    }
}

/// One problem of a job config.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemBody {
    /// Dotted config key, e.g. `batch.max_wait`; empty for the whole file.
    pub(crate) key: String,
    pub(crate) message: String,
}

pub(crate) fn problems(problems: &[Problem]) -> Vec<ProblemBody> {
    problems
        .iter()
        .map(|p| ProblemBody {
            key: p.key.clone(),
            message: p.message.clone(),
        })
        .collect()
}

/// A one-word (or one-line) state of the process.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(examples("ok"))]
    pub(crate) status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    /// Jobs that failed (they do not make the service unready).
    pub(crate) failed_jobs: Vec<String>,
    #[schema(examples("ready"))]
    pub(crate) status: &'static str,
}

/// Every job the service hosts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    // Each status as a `serde_json::Value`, as the list has always been
    // built: its keys come out sorted (a single job's status keeps its
    // declaration order).
    #[schema(value_type = Vec<crate::JobStatus>)]
    pub(crate) jobs: Vec<serde_json::Value>,
}

/// A dry run's verdict, problem by problem and check by check.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRun {
    /// What only the outside world can answer; empty when the config is
    /// invalid.
    pub(crate) checks: Vec<Check>,
    /// The job's name, when the config is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) job: Option<String>,
    pub(crate) problems: Vec<ProblemBody>,
    /// The config is valid and every check passed.
    pub(crate) valid: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelRequest {
    /// A version in the job's model registry, or `latest` to follow its
    /// highest version again.
    #[schema(examples("v2", "latest"))]
    pub(crate) version: String,
}
