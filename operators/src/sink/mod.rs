//! Sinks: where scored rows and dead letters are made durable.

pub mod parquet;
