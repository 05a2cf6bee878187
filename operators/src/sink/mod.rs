//! Sinks: where scored rows and dead letters are made durable.
//!
//! [`Sink`] is the extension point. Parquet (`parquet/`) is the one
//! implementation today; a Delta table or a Kafka topic is a new folder
//! beside it implementing the trait, chosen where the job is built.

mod committed;
pub mod dead_letter_topic;
pub mod parquet;

use std::sync::Arc;
use std::time::Instant;

pub use committed::Committed;
pub(crate) use committed::add_stages;

use crate::source::kafka::ResumePositions;
use crate::{Envelope, Result};

/// Where scored rows and dead letters become durable, exactly once.
///
/// The protocol: a sink commits each Kafka partition's rows together with
/// the offsets they cover, atomically, in a record of its own (the Parquet
/// sink's commit log). Every call returns a [`Committed`] naming the
/// offsets that are now durable; only then does the source commit them to
/// Kafka. After a restart or a rebalance the source asks
/// [`Sink::resume_positions`] where each partition continues, so the sink's
/// record, not the consumer group, decides what is written twice (nothing)
/// and what is lost (nothing).
pub trait Sink: Send {
    /// The sink's own record of what is durable, read by the source.
    fn resume_positions(&self) -> Arc<dyn ResumePositions>;

    /// Takes one scored envelope; commits whatever a limit closed.
    fn write(&mut self, env: Envelope) -> Result<Committed>;

    /// When [`Sink::tick`] next has something to commit (a file's age or
    /// inactivity limit), or `None` while nothing is open.
    fn next_deadline(&self) -> Option<Instant>;

    /// Commits what has reached a time limit by `now`.
    fn tick(&mut self, now: Instant) -> Result<Committed>;

    /// Commits everything still open; the job is stopping.
    fn close(self: Box<Self>) -> Result<Committed>;

    /// Files (or other units) open now, for the `sink_open_files` gauge.
    fn open_files(&self) -> usize;

    /// Encoded bytes held in memory, for the `sink_buffered_bytes` gauge.
    fn buffered_bytes(&self) -> usize;
}
