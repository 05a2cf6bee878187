//! Sinks: where scored rows and dead letters are made durable.

pub mod dead_letter_topic;
pub mod parquet;
