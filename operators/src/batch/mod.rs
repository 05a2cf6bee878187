//! The batch coalescer: gathers the decoder's small chunks into the large
//! batches models score efficiently, flushing at `max_rows` or `max_wait`,
//! whichever comes first; with `target_latency`, `max_rows` becomes a
//! ceiling and the size follows the measured batch latency.

mod adaptive;
mod coalescer;
mod config;
mod task;
#[cfg(test)]
mod tests;

pub(crate) use adaptive::AdaptiveSize;
pub use adaptive::LatencyFeedback;
pub use coalescer::Coalescer;
pub use config::BatchConfig;
pub use task::run_batcher;
