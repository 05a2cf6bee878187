//! Batch sizes steered toward a latency target (`batch.target_latency`).
//!
//! Big batches score cheaply per row but make every row in them wait for
//! the whole batch; how big is too big depends on the model, the machine
//! and the load, so a fixed `max_rows` is either slow or wasteful. The sink
//! reports what each batch's size decides: the time it waited for rows
//! plus the time it was scored and written, queues excluded (queueing
//! while a job works off a backlog is a throughput matter, which smaller
//! batches would only make worse), and the batcher
//! adjusts its size: a quarter smaller when a batch was late, an eighth
//! bigger when batches are comfortably early, within `min_rows` and
//! `max_rows` (multiplicative decrease, gentle increase, so it settles
//! instead of oscillating).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The latest batch latency, written by the sink, read by the batcher.
#[derive(Debug, Default)]
pub struct LatencyFeedback {
    latency_us: AtomicU64,
    /// Bumped on every report, so one report steers once.
    reports: AtomicU64,
}

impl LatencyFeedback {
    pub fn record(&self, latency: Duration) {
        self.latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
        self.reports.fetch_add(1, Ordering::Release);
    }

    fn since(&self, seen: u64) -> Option<(u64, Duration)> {
        let reports = self.reports.load(Ordering::Acquire);
        (reports != seen).then(|| {
            (
                reports,
                Duration::from_micros(self.latency_us.load(Ordering::Relaxed)),
            )
        })
    }
}

/// The batcher's side: the current size and what it has seen.
#[derive(Debug)]
pub struct AdaptiveSize {
    target: Duration,
    min_rows: usize,
    max_rows: usize,
    rows: usize,
    seen: u64,
}

impl AdaptiveSize {
    /// Starts at `max_rows` (throughput first) and shrinks if that is late.
    pub fn new(target: Duration, min_rows: usize, max_rows: usize) -> Self {
        let max_rows = max_rows.max(1);
        Self {
            target,
            min_rows: min_rows.clamp(1, max_rows),
            max_rows,
            rows: max_rows,
            seen: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The size after one more observed batch latency.
    pub(crate) fn observe(&mut self, latency: Duration) -> usize {
        if latency > self.target {
            self.rows = (self.rows - (self.rows / 4).max(1)).max(self.min_rows);
        } else if latency < self.target.mul_f64(0.7) {
            self.rows = (self.rows + (self.rows / 8).max(1)).min(self.max_rows);
        }
        self.rows
    }

    /// Applies the newest report, if there is one it has not seen.
    pub(crate) fn steer(&mut self, feedback: &LatencyFeedback) -> Option<usize> {
        let (reports, latency) = feedback.since(self.seen)?;
        self.seen = reports;
        Some(self.observe(latency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn late_batches_shrink_to_the_floor_and_early_ones_grow_back() {
        let mut a = AdaptiveSize::new(100 * MS, 1_000, 64_000);
        assert_eq!(a.rows(), 64_000);
        let mut last = a.rows();
        for _ in 0..40 {
            let rows = a.observe(300 * MS);
            assert!(rows <= last && rows >= 1_000, "{rows}");
            last = rows;
        }
        assert_eq!(last, 1_000, "never below min_rows");
        // Within the band: no change.
        assert_eq!(a.observe(90 * MS), 1_000);
        for _ in 0..100 {
            let rows = a.observe(10 * MS);
            assert!(rows >= last && rows <= 64_000, "{rows}");
            last = rows;
        }
        assert_eq!(last, 64_000, "never above max_rows");
    }

    #[test]
    fn each_report_steers_once() {
        let f = LatencyFeedback::default();
        let mut a = AdaptiveSize::new(100 * MS, 10, 1_000);
        assert_eq!(a.steer(&f), None, "nothing reported yet");
        f.record(500 * MS);
        assert_eq!(a.steer(&f), Some(750));
        assert_eq!(a.steer(&f), None, "the same report again");
        f.record(500 * MS);
        assert_eq!(a.steer(&f), Some(563));
    }

    #[test]
    fn a_tiny_range_still_moves() {
        let mut a = AdaptiveSize::new(MS, 1, 3);
        assert_eq!(a.observe(10 * MS), 2);
        assert_eq!(a.observe(10 * MS), 1);
        assert_eq!(a.observe(10 * MS), 1);
        assert_eq!(a.observe(Duration::ZERO), 2);
        let mut b = AdaptiveSize::new(MS, 1, 1);
        assert_eq!(b.observe(Duration::ZERO), 1);
    }
}
