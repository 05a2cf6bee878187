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
pub(crate) use json::original;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::source::kafka::RawChunk;
use crate::{Envelope, Result};

/// Turns a chunk of raw Kafka messages into rows of the job's event schema,
/// and every message that does not fit into a dead letter (raw bytes,
/// provenance, reason), so one bad message never stops the job. JSON is
/// the one format today; another (Avro, Protobuf) is a new file beside
/// `json.rs` implementing this trait, chosen where the job is built.
pub trait Decoder: Send + Sync {
    /// Event fields followed by provenance columns: the schema of every
    /// batch [`Decoder::decode`] returns, fixed when the job is built.
    fn output_schema(&self) -> &SchemaRef;

    /// Decodes one chunk; rows keep the messages' order. Fails only on a
    /// bug, never on bad input.
    fn decode(&self, chunk: &RawChunk) -> Result<Envelope>;

    /// Decodes one chunk and hands the chunk on with the rows (see
    /// [`Envelope::origin`]), so a row a later stage dead-letters keeps its
    /// original message. What the running pipeline calls.
    fn decode_keeping(&self, chunk: RawChunk) -> Result<Envelope> {
        let mut env = self.decode(&chunk)?;
        if env.batch.is_some() {
            env.origin = Some(Arc::new(chunk));
        }
        Ok(env)
    }
}
