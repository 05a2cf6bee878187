use scorestream_operators::{ErrorKind, OperatorError};

/// One thing wrong with a job config, named by its dotted key: the same
/// type every operator section reports with.
pub use scorestream_operators::config::ConfigError as Problem;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("job config {path} has {} problem(s):\n{}", .problems.len(), list(.problems))]
    InvalidConfig {
        path: String,
        problems: Vec<Problem>,
    },
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error("internal error: task {0} panicked or was aborted")]
    TaskFailed(String),
    /// The Prometheus recorder could not be built or installed (another
    /// recorder is already the process's global one).
    #[error("internal error: metrics recorder: {reason}")]
    MetricsRecorder { reason: String },
    /// A model version asked for by name cannot score this job.
    #[error("model version `{version}`: {reason}")]
    ModelSwap { version: String, reason: String },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl PipelineError {
    /// A file-system failure, as the operators report theirs.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PipelineError::Operator(OperatorError::io(context, source))
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::InvalidConfig { .. } | PipelineError::ModelSwap { .. } => {
                ErrorKind::User
            }
            PipelineError::Operator(e) => e.kind(),
            PipelineError::TaskFailed(_) | PipelineError::MetricsRecorder { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
