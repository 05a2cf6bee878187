//! The dead-letter topic: each dead letter also produced to a Kafka topic
//! (`[dead_letters] topic`), raw bytes, key and headers as they arrived plus
//! `scorestream.*` provenance headers, before the batch's Parquet commit.
//! Delivery is at-least-once; see [`DeadLetterProducer`].

mod config;
mod context;
mod producer;
mod rate;
#[cfg(test)]
mod tests;

pub use config::{DeadLettersConfig, check_topic_name};
pub use context::ProducerContext;
pub(crate) use context::producer_for;
pub use producer::{DeadLetterProducer, Outgoing, RawProducer, headers, original_headers};
pub use rate::{DeadLetterRate, OnMaxRate, RateBreach};
