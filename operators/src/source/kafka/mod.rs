//! The Kafka source: a consumer-group member that reads messages into
//! [`RawChunk`]s and commits offsets only when the sink says the data they
//! carried is durable.

mod auth;
mod chunk;
mod config;
mod consumer;
mod fetch_queue;
mod options;
#[cfg(test)]
mod tests;

pub use chunk::RawChunk;
pub use config::{KafkaSourceConfig, StartFrom, is_secret, redact_options, redact_text};
pub use consumer::{KafkaSource, ResumePositions, SourceGauges, SourceReport};
pub use options::{OptionPolicy, PATH_OPTIONS};
