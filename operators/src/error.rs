use std::path::PathBuf;

use arrow::error::ArrowError;
use scorestream_schemas::{ErrorKind, SchemaError};

pub type Result<T, E = OperatorError> = std::result::Result<T, E>;

/// Every way an operator can fail. Bad *events* never appear here: they become
/// dead letters. These are failures of the job itself.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// librdkafka refused the client settings (secret values already redacted).
    #[error("kafka client settings: {0}")]
    KafkaSetup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing parquet file {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("feature store {path}: {reason}")]
    FeatureFile { path: PathBuf, reason: String },
    #[error(
        "feature store: no features for key `{key}` and the job's policy is on_missing = \"fail\""
    )]
    MissingFeatures { key: String },
    #[error(
        "feature store: feature `{feature}` of key `{key}` is {problem} and the job's policy is \"fail\""
    )]
    UnusableFeature {
        key: String,
        feature: String,
        problem: String,
    },
    /// A feature had no value for (nearly) every row of a window and
    /// `features.missing_check.action` is `fail`.
    #[error(
        "feature store: no value for {features} in a window of {rows} rows, and features.missing_check.action is \"fail\"; check the store's project, views and feature names (`scorestream validate` probes them)"
    )]
    FeaturesMissing { features: String, rows: u64 },
    /// The store could not be asked (connection refused, timeout); the
    /// connection details are already redacted.
    #[error("feature store {store} unavailable: {reason}")]
    FeatureStoreUnavailable { store: String, reason: String },
    /// The store's settings cannot work (bad URL, wrong credentials).
    #[error("feature store: {0}")]
    FeatureStoreConfig(String),
    /// The store answered, but not with feature data (a key of the wrong
    /// type, say): retrying will not help.
    #[error("feature store {store}: {reason}")]
    FeatureStoreData { store: String, reason: String },
    /// A drift reference profile could not be read at `input`.
    #[error("profile {input}: {reason}")]
    Profile { input: String, reason: String },
    #[error("model package {path}: {reason}")]
    ModelPackage { path: PathBuf, reason: String },
    #[error("model input `{input}`: {reason}")]
    ModelInput { input: String, reason: String },
    #[error("device `{0}`: {1}")]
    Device(String, String),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("event schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("internal arrow error: {0}")]
    Arrow(#[from] ArrowError),
    #[error("{0} stopped unexpectedly: its downstream queue closed")]
    Disconnected(&'static str),
    /// Another writer committed this partition's range first: this process no
    /// longer owns the partition (it was rebalanced away while stalled).
    /// Nothing was written twice; restarting resumes from the commit log.
    #[error(
        "{topic}/{partition}: offsets from {offset} were already committed by another writer ({other}); this process lost the partition and stops so that nothing is written twice"
    )]
    Fenced {
        topic: String,
        partition: i32,
        offset: i64,
        other: String,
    },
    /// The output's commit log is unreadable or inconsistent.
    #[error("commit log {location}: {reason}")]
    CommitLog { location: String, reason: String },
    /// A request to the output's object store failed (the store's
    /// credentials never appear: they travel in request headers).
    #[error("{context}: {source}")]
    ObjectStore {
        context: String,
        #[source]
        source: object_store::Error,
    },
    /// `sink.path` or `[sink.s3]` cannot work.
    #[error("output: {0}")]
    OutputConfig(String),
    /// Partitions were revoked but the pipeline did not commit what it read
    /// from them in time.
    #[error(
        "rebalance: the pipeline did not commit in-flight data of revoked partitions within {0:?} (source.revoke_timeout)"
    )]
    RevokeTimeout(std::time::Duration),
    #[error("internal error (a bug): {0}")]
    Internal(String),
    /// Too many messages became dead letters (`[dead_letters] max_rate`,
    /// `on_max_rate = "fail"`): the producers' data, not the job, is wrong.
    /// What was read is written and committed, dead letters included.
    #[error("dead letters: {0}; the job stops (on_max_rate = \"fail\")")]
    DeadLetterRate(String),
    /// Produced messages the brokers did not acknowledge (secret values
    /// already redacted). Nothing was committed for them; retrying re-sends.
    #[error(
        "kafka topic `{topic}`: {failed} of {total} message(s) not delivered; \
         the first came from {from_topic} partition {from_partition} offset {from_offset}: {reason}"
    )]
    Delivery {
        topic: String,
        failed: usize,
        total: usize,
        from_topic: String,
        from_partition: i32,
        from_offset: i64,
        reason: String,
    },
    /// The cluster kept refusing the job's credentials or TLS handshake
    /// (secret values already redacted).
    #[error(
        "kafka: authentication kept failing for {after:?} (source.auth_timeout); check the SASL/TLS settings in source.options: {reason}"
    )]
    KafkaAuth {
        after: std::time::Duration,
        reason: String,
    },
    /// No broker answered a metadata request (secret values already redacted).
    #[error("kafka brokers {brokers} did not answer: {reason}")]
    BrokersUnreachable { brokers: String, reason: String },
}

impl OperatorError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OperatorError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            OperatorError::Kafka(_)
            | OperatorError::Io { .. }
            | OperatorError::Parquet { .. }
            | OperatorError::Fenced { .. }
            | OperatorError::CommitLog { .. }
            | OperatorError::ObjectStore { .. }
            | OperatorError::RevokeTimeout(_)
            | OperatorError::Delivery { .. }
            | OperatorError::FeatureStoreUnavailable { .. }
            | OperatorError::FeatureStoreData { .. }
            | OperatorError::BrokersUnreachable { .. } => ErrorKind::External,
            OperatorError::FeatureFile { .. }
            | OperatorError::MissingFeatures { .. }
            | OperatorError::UnusableFeature { .. }
            | OperatorError::FeaturesMissing { .. }
            | OperatorError::FeatureStoreConfig(_)
            | OperatorError::ModelPackage { .. }
            | OperatorError::Profile { .. }
            | OperatorError::ModelInput { .. }
            | OperatorError::Device(..)
            | OperatorError::KafkaSetup(_)
            | OperatorError::KafkaAuth { .. }
            | OperatorError::OutputConfig(_)
            | OperatorError::DeadLetterRate(_) => ErrorKind::User,
            OperatorError::Schema(e) => e.kind(),
            OperatorError::Candle(_)
            | OperatorError::Arrow(_)
            | OperatorError::Disconnected(_)
            | OperatorError::Internal(_) => ErrorKind::Internal,
        }
    }
}
