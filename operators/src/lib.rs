//! scorestream's stream operators.
//!
//! Each operator family is a folder with its typed config, its implementation
//! and its tests. Operators exchange [`Envelope`]s: an Arrow `RecordBatch` plus
//! the dead letters and Kafka offsets it carries, so acknowledgement travels in
//! order with the data it covers.
//!
//! The public surface is what `pipeline` wires together, and nothing else
//! (`unreachable_pub` keeps it so):
//! - the extension points: [`decode::Decoder`], [`features::FeatureStore`],
//!   [`scorer::Model`], [`sink::Sink`] (with [`sink::Committed`] and the
//!   source's [`source::kafka::ResumePositions`]);
//! - each family's operator and its config: `source::kafka::{KafkaSource,
//!   KafkaSourceConfig}`, `decode::JsonDecoder`, `features::{FeatureJoin,
//!   FeaturesConfig}`, `batch::{Coalescer, BatchConfig}`, `scorer::{Scorer,
//!   ScorerConfig, ModelPackage}`, `sink::parquet::{ParquetSink,
//!   ParquetSinkConfig}`, `sink::dead_letter_topic`, `drift::{DriftOperator,
//!   DriftConfig, ReferenceProfile}`;
//! - [`kafka`], the one builder of librdkafka client configs and the option
//!   allow-list;
//! - the row-bounded [`queue`], [`Envelope`], [`OperatorError`].

pub mod batch;
pub mod config;
pub mod decode;
pub mod drift;
mod envelope;
mod error;
pub mod features;
pub mod kafka;
pub mod queue;
pub mod scorer;
pub mod sink;
pub mod source;

pub use envelope::{Coverage, Envelope, TopicPartition};
pub use error::{OperatorError, Result};
pub use scorestream_schemas::ErrorKind;

/// Milliseconds since the Unix epoch, for timestamps written to output rows.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs CPU-heavy operator work (decode, scoring, Parquet encoding, drift
/// windows) without starving other tasks on a multi-threaded runtime; on a
/// current-thread runtime, where `block_in_place` would panic, it simply
/// runs inline.
pub fn cpu_bound<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Sleeps until the deadline, or forever when there is none: the idle arm of
/// operators' `select!` loops.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
