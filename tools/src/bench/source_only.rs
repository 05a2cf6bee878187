//! `scorestream bench --source-only`: the job's Kafka source alone, every
//! chunk dropped as it arrives. What it costs per event is the floor under
//! the whole job on the same machine and broker: librdkafka's fetch, its
//! per-message queue and our chunking, with nothing decoded, scored or
//! written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scorestream_operators::Coverage;
use scorestream_operators::queue::channel;
use scorestream_operators::source::kafka::{KafkaSource, RawChunk, ResumePositions, SourceGauges};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ToolError;
use scorestream_pipeline::config::JobConfig;

/// What reading the events took.
pub(super) struct SourceRun {
    pub events: u64,
    /// From the first chunk to the one that completed the count.
    pub seconds: f64,
}

/// Nothing is in the output: the group's offsets (none, a fresh group) and
/// `start_from` decide where reading starts.
struct NothingWritten;

impl ResumePositions for NothingWritten {
    fn resume_positions(
        &self,
        partitions: &[(String, i32)],
    ) -> scorestream_operators::Result<Vec<Option<i64>>> {
        Ok(vec![None; partitions.len()])
    }
}

/// Reads `events` messages through the job's source and its queue, then
/// acknowledges them all (as a sink's commit would) and stops.
pub(super) async fn read_all(
    config: &JobConfig,
    events: u64,
    stall_timeout: Duration,
) -> Result<SourceRun, ToolError> {
    let source = KafkaSource::build(
        &config.source,
        SourceGauges::default(),
        Arc::new(NothingWritten),
    )?;
    let (tx, mut rx) = channel::<RawChunk>(config.queues.capacity_rows);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel::<Coverage>();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(source.run(tx, ack_rx, cancel.clone()));

    let mut read = 0u64;
    let mut first = None;
    let mut covered = Coverage::default();
    let outcome = loop {
        if read >= events {
            break Ok(());
        }
        match tokio::time::timeout(stall_timeout, rx.recv()).await {
            Ok(Some(chunk)) => {
                first.get_or_insert_with(Instant::now);
                read += chunk.len() as u64;
                if let Err(e) = covered.merge(chunk.coverage) {
                    break Err(e.into());
                }
            }
            Ok(None) => {
                break Err(ToolError::Incomplete(format!(
                    "the Kafka source stopped after {read} of {events} events"
                )));
            }
            Err(_) => {
                break Err(ToolError::Incomplete(format!(
                    "no progress for {stall_timeout:?}: {read} of {events} events read"
                )));
            }
        }
    };
    let seconds = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    // Like a sink, acknowledge what the source hands over while stopping,
    // and hang up once its queue closes: the source stops after that.
    let _ = ack_tx.send(covered);
    let mut acks = Some(ack_tx);
    cancel.cancel();
    let mut running = running;
    let stopped = loop {
        tokio::select! {
            r = &mut running => break r,
            chunk = rx.recv(), if acks.is_some() => match (chunk, &acks) {
                (Some(chunk), Some(a)) => {
                    let _ = a.send(chunk.coverage);
                }
                _ => acks = None,
            },
        }
    }
    .map_err(|e| ToolError::TaskFailed(format!("kafka source: {e}")))?;
    outcome?;
    stopped?;
    Ok(SourceRun {
        events: read,
        seconds,
    })
}
