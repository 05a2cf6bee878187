use tokio::time::Instant;

use std::sync::Arc;

use super::{AdaptiveSize, Coalescer, LatencyFeedback};
use crate::queue::{RowReceiver, RowSender};
use crate::{Envelope, OperatorError, Result};

/// Drives a [`Coalescer`]: flushes full batches at once, partial ones at their
/// deadline, and whatever is left when the input closes (drain on shutdown).
/// With `adaptive`, each new latency report resizes the batches first.
pub async fn run_batcher(
    mut coalescer: Coalescer,
    mut input: RowReceiver<Envelope>,
    output: RowSender<Envelope>,
    mut adaptive: Option<(AdaptiveSize, Arc<LatencyFeedback>)>,
) -> Result<()> {
    let send = |e: Envelope| async {
        output
            .send(e)
            .await
            .map_err(|_| OperatorError::Disconnected("batcher"))
    };
    loop {
        let deadline = coalescer.deadline();
        tokio::select! {
            next = input.recv() => match next {
                Some(env) => {
                    if let Some((size, feedback)) = &mut adaptive
                        && let Some(rows) = size.steer(feedback)
                    {
                        coalescer.set_max_rows(rows);
                        metrics::gauge!("scorestream_batch_target_rows").set(rows as f64);
                    }
                    let flush = env.flush;
                    for full in coalescer.push(env, Instant::now())? {
                        send(full).await?;
                    }
                    if flush && let Some(env) = coalescer.flush()? {
                        send(env).await?;
                    }
                }
                None => break,
            },
            _ = crate::sleep_until(deadline) => {
                if let Some(env) = coalescer.flush()? {
                    send(env).await?;
                }
            }
        }
    }
    if let Some(env) = coalescer.flush()? {
        send(env).await?;
    }
    Ok(())
}
