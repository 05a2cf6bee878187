//! Decoding raw Kafka messages into Arrow rows against the job's declared
//! event schema. A message that does not fit becomes a dead letter carrying its
//! raw bytes, provenance and the reason; it never stops the job.

mod check;
mod columns;
mod explain;
mod json;
mod scan;
#[cfg(test)]
mod tests;
mod timestamp;

pub use json::JsonDecoder;
