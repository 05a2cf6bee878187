//! The Kafka source: a consumer-group member that reads messages into
//! [`RawChunk`]s and commits offsets only when the sink says the data they
//! carried is durable.

mod accept;
mod auth;
mod chunk;
mod config;
mod consumer;
mod fetch_queue;
mod incoming;
mod rebalance;
mod state;
#[cfg(test)]
mod tests;

pub use chunk::RawChunk;
pub use config::{KafkaSourceConfig, StartFrom};
pub use consumer::{KafkaSource, SourceGauges};
pub use state::{ResumePositions, SourceReport};
