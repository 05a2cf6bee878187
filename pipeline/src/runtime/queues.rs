//! The queues between a job's operators: bounded in rows, so a slow stage
//! holds back the ones before it instead of letting memory grow.

use scorestream_operators::queue::{QueueDepth, RowReceiver, RowSender, channel};
use scorestream_operators::source::kafka::RawChunk;
use scorestream_operators::{Coverage, Envelope};
use tokio::sync::mpsc;

/// The queues ahead of the scorer, and the acknowledgements the source reads.
pub(super) struct IngestQueues {
    pub(super) raw_tx: RowSender<RawChunk>,
    pub(super) raw_rx: RowReceiver<RawChunk>,
    pub(super) dec_tx: RowSender<Envelope>,
    pub(super) dec_rx: RowReceiver<Envelope>,
    pub(super) join_tx: RowSender<Envelope>,
    pub(super) join_rx: RowReceiver<Envelope>,
    pub(super) batch_tx: RowSender<Envelope>,
    pub(super) ack_rx: mpsc::UnboundedReceiver<Coverage>,
}

/// The queues from the batcher on, and the sink's acknowledgements.
pub(super) struct ScoringQueues {
    pub(super) batch_rx: RowReceiver<Envelope>,
    pub(super) score_tx: RowSender<Envelope>,
    pub(super) score_rx: RowReceiver<Envelope>,
    pub(super) ack_tx: mpsc::UnboundedSender<Coverage>,
}

/// Every queue of a job, each bounded to `cap` rows, and how full each is.
pub(super) fn queues(cap: usize) -> (IngestQueues, ScoringQueues, [(&'static str, QueueDepth); 5]) {
    let (raw_tx, raw_rx) = channel(cap);
    let (dec_tx, dec_rx) = channel(cap);
    let (join_tx, join_rx) = channel(cap);
    let (batch_tx, batch_rx) = channel(cap);
    let (score_tx, score_rx) = channel(cap);
    // Acks are control messages, one per commit: unbounded so the sink
    // never blocks on the source (which may itself wait on the queue).
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let depths = [
        ("raw", raw_tx.depth()),
        ("decoded", dec_tx.depth()),
        ("joined", join_tx.depth()),
        ("batched", batch_tx.depth()),
        ("scored", score_tx.depth()),
    ];
    let ingest = IngestQueues {
        raw_tx,
        raw_rx,
        dec_tx,
        dec_rx,
        join_tx,
        join_rx,
        batch_tx,
        ack_rx,
    };
    let scoring = ScoringQueues {
        batch_rx,
        score_tx,
        score_rx,
        ack_tx,
    };
    (ingest, scoring, depths)
}
