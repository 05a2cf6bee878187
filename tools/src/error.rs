use scorestream_operators::{ErrorKind, OperatorError};
use scorestream_pipeline::PipelineError;

/// What a command tool can fail on, beyond the job runtime's own errors.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Boxed: the runtime's error is large, and a tool's error travels
    /// through `Result`s on every call.
    #[error(transparent)]
    Pipeline(Box<PipelineError>),
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error("the demo's broker: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{0}")]
    Incomplete(String),
    #[error("internal error: task {0} panicked or was aborted")]
    TaskFailed(String),
    /// `replay` was pointed at a job whose output directory does not exist.
    #[error("no output directory at {0} (the job's sink.path): has the job run here?")]
    NoOutput(String),
    #[error("{option}: {reason}")]
    BadOption {
        option: &'static str,
        reason: String,
    },
    #[error("the predicate `{predicate}` is invalid: {reason}")]
    BadPredicate { predicate: String, reason: String },
    #[error("reading the dead letters in {dir}: {reason}")]
    ReadDeadLetters { dir: String, reason: String },
    /// A replay log that is not what `replay` writes; it is not skipped
    /// silently, since that would re-send everything it lists.
    #[error("replay log {path} is unreadable ({reason}); fix or remove it")]
    ReplayLog { path: String, reason: String },
    /// A reference profile could not be built from `input`.
    #[error("profile {input}: {reason}")]
    Profile { input: String, reason: String },
    /// The drift table could not be read back (for the report).
    #[error("drift table {dir}: {reason}")]
    DriftTable { dir: String, reason: String },
}

impl From<PipelineError> for ToolError {
    fn from(e: PipelineError) -> Self {
        ToolError::Pipeline(Box::new(e))
    }
}

impl ToolError {
    /// A file-system failure, as the operators report theirs.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ToolError::Operator(OperatorError::io(context, source))
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ToolError::NoOutput(_)
            | ToolError::BadOption { .. }
            | ToolError::BadPredicate { .. }
            | ToolError::ReplayLog { .. }
            | ToolError::Profile { .. }
            | ToolError::DriftTable { .. } => ErrorKind::User,
            ToolError::Pipeline(e) => e.kind(),
            ToolError::Operator(e) => e.kind(),
            ToolError::Kafka(_) | ToolError::Incomplete(_) | ToolError::ReadDeadLetters { .. } => {
                ErrorKind::External
            }
            ToolError::TaskFailed(_) => ErrorKind::Internal,
        }
    }
}
