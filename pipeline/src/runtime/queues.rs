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

/// The queues between the operators, bounded in rows, and the sink's
/// acknowledgements to the source.
pub(super) struct Queues {
    pub(super) raw_tx: RowSender<RawChunk>,
    pub(super) raw_rx: RowReceiver<RawChunk>,
    pub(super) dec_tx: RowSender<Envelope>,
    pub(super) dec_rx: RowReceiver<Envelope>,
    pub(super) join_tx: RowSender<Envelope>,
    pub(super) join_rx: RowReceiver<Envelope>,
    pub(super) batch_tx: RowSender<Envelope>,
    pub(super) batch_rx: RowReceiver<Envelope>,
    pub(super) score_tx: RowSender<Envelope>,
    pub(super) score_rx: RowReceiver<Envelope>,
    pub(super) ack_tx: mpsc::UnboundedSender<Coverage>,
    pub(super) ack_rx: mpsc::UnboundedReceiver<Coverage>,
}

impl Queues {
    pub(super) fn new(cap: usize) -> Self {
        let (raw_tx, raw_rx) = channel(cap);
        let (dec_tx, dec_rx) = channel(cap);
        let (join_tx, join_rx) = channel(cap);
        let (batch_tx, batch_rx) = channel(cap);
        let (score_tx, score_rx) = channel(cap);
        // Acks are control messages, one per commit: unbounded so the sink
        // never blocks on the source (which may itself wait on the queue).
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        Self {
            raw_tx,
            raw_rx,
            dec_tx,
            dec_rx,
            join_tx,
            join_rx,
            batch_tx,
            batch_rx,
            score_tx,
            score_rx,
            ack_tx,
            ack_rx,
        }
    }

    /// The queues the reading stages use, and the rest.
    pub(super) fn split(self) -> (IngestQueues, ScoringQueues) {
        (
            IngestQueues {
                raw_tx: self.raw_tx,
                raw_rx: self.raw_rx,
                dec_tx: self.dec_tx,
                dec_rx: self.dec_rx,
                join_tx: self.join_tx,
                join_rx: self.join_rx,
                batch_tx: self.batch_tx,
                ack_rx: self.ack_rx,
            },
            ScoringQueues {
                batch_rx: self.batch_rx,
                score_tx: self.score_tx,
                score_rx: self.score_rx,
                ack_tx: self.ack_tx,
            },
        )
    }

    pub(super) fn depths(&self) -> [(&'static str, QueueDepth); 5] {
        [
            ("raw", self.raw_tx.depth()),
            ("decoded", self.dec_tx.depth()),
            ("joined", self.join_tx.depth()),
            ("batched", self.batch_tx.depth()),
            ("scored", self.score_tx.depth()),
        ]
    }
}
