use scorestream_operators::ErrorKind;
use scorestream_pipeline::{PipelineError, Problem};

/// Everything the service can answer with besides success. Each variant
/// maps to one HTTP status (its `IntoResponse` in `api.rs`) and a domain.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A submitted or dry-run config that does not describe a runnable job.
    #[error("invalid job config: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidJob { problems: Vec<Problem> },
    #[error("no job named `{0}`")]
    NoSuchJob(String),
    /// The request conflicts with the job's state (a name taken, a job
    /// already running, a running job deleted, ...).
    #[error("{0}")]
    Conflict(String),
    /// A well-formed request whose content cannot be used.
    #[error("{0}")]
    BadRequest(String),
    #[error("a model version cannot score job `{job}`: {source}")]
    ModelSwap {
        job: String,
        #[source]
        source: Box<PipelineError>,
    },
    /// A request body over `--max-body-bytes`, declared or sent.
    #[error(
        "the request body is larger than the {limit} bytes the service accepts (--max-body-bytes)"
    )]
    BodyTooLarge { limit: usize },
    /// A request body that did not arrive in full within `--body-timeout`.
    #[error("the request body did not arrive within {after:?} (--body-timeout)")]
    BodyTimeout { after: std::time::Duration },
    /// The service's own options (token file, data directory, listener).
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A persisted job's state file is not what the service writes.
    #[error("{path} is unreadable ({reason}); fix or remove it")]
    Persisted { path: String, reason: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidJob { .. }
            | Self::NoSuchJob(_)
            | Self::Conflict(_)
            | Self::BadRequest(_)
            | Self::BodyTooLarge { .. }
            | Self::BodyTimeout { .. }
            | Self::ModelSwap { .. }
            | Self::Setup(_)
            | Self::Persisted { .. } => ErrorKind::User,
            Self::Io { .. } => ErrorKind::External,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<PipelineError> for ServiceError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::InvalidConfig { problems, .. } => Self::InvalidJob { problems },
            other if other.kind() == ErrorKind::User => Self::InvalidJob {
                problems: vec![Problem::new("", other.to_string())],
            },
            other => Self::Internal(other.to_string()),
        }
    }
}
