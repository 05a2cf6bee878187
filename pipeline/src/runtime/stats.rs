use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use scorestream_operators::drift::RecentAlerts;
use scorestream_operators::scorer::ModelInUse;

/// Counters a job keeps while it runs, updated once per batch (never per
/// row) and read by progress output, summaries and metrics.
#[derive(Debug)]
pub struct JobStats {
    started: Instant,
    /// When the first event arrived: throughput counts from here, not from
    /// start-up (joining a consumer group takes seconds).
    first_event: OnceLock<Instant>,
    pub events_in: AtomicU64,
    pub rows_scored: AtomicU64,
    pub dead_letters: AtomicU64,
    pub files_written: AtomicU64,
    pub bytes_written: AtomicU64,
    pub batches_scored: AtomicU64,
    /// Kafka messages whose offsets are acknowledged (rows + dead letters).
    pub messages_acked: AtomicU64,
    /// Partitions this job's consumer currently owns.
    pub partitions_assigned: Arc<AtomicI64>,
    /// Milliseconds from the event's Kafka timestamp to its file's commit:
    /// the event's age when it became readable. A backfill or a replay
    /// brings events days old, so this reaches
    /// [`StatsSnapshot::EVENT_AGE_CEILING_MS`], not an hour.
    latency_ms: Mutex<Histogram<u64>>,
    /// Microseconds from a batch's oldest fetch to its rows being written.
    batch_latency_us: Mutex<Histogram<u64>>,
    /// The models scoring now, updated when a version is swapped in.
    models: Mutex<Vec<ModelInUse>>,
    /// The newest drift alerts (jobs with `[drift]`).
    pub recent_alerts: RecentAlerts,
    /// Rows in each queue between operators, sampled every second.
    queues: Mutex<Vec<(&'static str, u64)>>,
    /// Messages in the assigned partitions not yet read (high watermark
    /// minus position), summed; -1 until the consumer has reported it.
    pub consumer_lag: Arc<AtomicI64>,
    /// Why reading is paused (`[dead_letters] on_max_rate = "pause"`),
    /// while it is.
    paused: Mutex<Option<String>>,
    /// Nanoseconds spent in each of [`STAGES`], summed over batches.
    stage_ns: [AtomicU64; STAGES.len()],
}

/// The stages whose time a job accounts per batch, in pipeline order.
pub(super) const STAGES: [&str; 4] = ["decode", "feature_join", "score", "sink_write"];

impl Default for JobStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            first_event: OnceLock::new(),
            events_in: AtomicU64::new(0),
            rows_scored: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            batches_scored: AtomicU64::new(0),
            messages_acked: AtomicU64::new(0),
            partitions_assigned: Arc::new(AtomicI64::new(0)),
            models: Mutex::new(Vec::new()),
            recent_alerts: RecentAlerts::default(),
            queues: Mutex::new(Vec::new()),
            consumer_lag: Arc::new(AtomicI64::new(-1)),
            paused: Mutex::new(None),
            stage_ns: Default::default(),
            // 1 ms to 10 years at 3 significant digits (~240 KiB).
            latency_ms: Mutex::new(histogram(StatsSnapshot::EVENT_AGE_CEILING_MS)),
            // 1 µs to 1 hour.
            batch_latency_us: Mutex::new(histogram(3_600_000_000)),
        }
    }
}

/// A histogram from 1 to `max` at 3 significant digits; the bounds are
/// constants, so this cannot fail.
fn histogram(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
    })
}

/// A consistent-enough copy of the counters for display.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    pub elapsed: Duration,
    /// Since the first event arrived.
    pub active: Duration,
    pub events_in: u64,
    pub rows_scored: u64,
    pub dead_letters: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    pub batches_scored: u64,
    pub messages_acked: u64,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    /// Per batch, fetch to written (see [`JobStats::record_batch_latency`]).
    pub batch_latency_p50: Duration,
    pub batch_latency_p99: Duration,
}

impl StatsSnapshot {
    /// The oldest event age the latency percentiles hold; an older event
    /// counts as this old, so a percentile at or above it means "at least".
    pub const EVENT_AGE_CEILING_MS: u64 = 10 * 365 * 86_400_000;

    /// Events acknowledged per second since the first event arrived.
    pub fn throughput(&self) -> f64 {
        let s = self.active.as_secs_f64();
        if s > 0.0 {
            self.messages_acked as f64 / s
        } else {
            0.0
        }
    }
}

impl JobStats {
    /// Counts events read from the source.
    pub fn events_arrived(&self, n: u64) {
        self.first_event.get_or_init(Instant::now);
        self.events_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records, under one lock per commit, how many milliseconds events took
    /// from Kafka to committed output, as (milliseconds, events).
    pub fn record_latencies(&self, ms: &[(u64, u64)]) {
        if let Ok(mut h) = self.latency_ms.lock() {
            for &(v, n) in ms {
                h.saturating_record_n(v.max(1), n);
            }
        }
    }

    /// Records how long one batch took from its oldest message's fetch until
    /// its rows were written into output files.
    pub fn record_batch_latency(&self, latency: Duration) {
        if let Ok(mut h) = self.batch_latency_us.lock() {
            h.saturating_record((latency.as_micros() as u64).max(1));
        }
    }

    /// Adds one batch's time in `stage` (one of [`STAGES`]).
    pub fn add_stage_time(&self, stage: &str, d: Duration) {
        if let Some(i) = STAGES.iter().position(|s| *s == stage) {
            self.stage_ns[i].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// Time spent in each stage so far, in [`STAGES`] order.
    pub fn stage_times(&self) -> Vec<(&'static str, Duration)> {
        STAGES
            .iter()
            .zip(&self.stage_ns)
            .map(|(s, ns)| (*s, Duration::from_nanos(ns.load(Ordering::Relaxed))))
            .collect()
    }

    pub fn set_models(&self, models: Vec<ModelInUse>) {
        if let Ok(mut m) = self.models.lock() {
            *m = models;
        }
    }

    pub fn models(&self) -> Vec<ModelInUse> {
        self.models.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn set_queues(&self, rows: Vec<(&'static str, u64)>) {
        if let Ok(mut q) = self.queues.lock() {
            *q = rows;
        }
    }

    pub(super) fn set_paused(&self, why: Option<String>) {
        if let Ok(mut p) = self.paused.lock() {
            *p = why;
        }
    }

    /// Why reading is paused, while it is (`on_max_rate = "pause"`).
    pub fn paused(&self) -> Option<String> {
        self.paused.lock().ok().and_then(|p| p.clone())
    }

    /// Rows queued before each operator, at the last sample.
    pub fn queues(&self) -> Vec<(&'static str, u64)> {
        self.queues.lock().map(|q| q.clone()).unwrap_or_default()
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (p50, p99, max) = self
            .latency_ms
            .lock()
            .map(|h| {
                if h.is_empty() {
                    (0, 0, 0)
                } else {
                    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
                }
            })
            .unwrap_or_default();
        let (batch_p50, batch_p99) = self
            .batch_latency_us
            .lock()
            .map(|h| {
                let q = |q| {
                    Duration::from_micros(if h.is_empty() {
                        0
                    } else {
                        h.value_at_quantile(q)
                    })
                };
                (q(0.5), q(0.99))
            })
            .unwrap_or_default();
        StatsSnapshot {
            batch_latency_p50: batch_p50,
            batch_latency_p99: batch_p99,
            elapsed: self.started.elapsed(),
            active: self
                .first_event
                .get()
                .map(Instant::elapsed)
                .unwrap_or_default(),
            events_in: load(&self.events_in),
            rows_scored: load(&self.rows_scored),
            dead_letters: load(&self.dead_letters),
            files_written: load(&self.files_written),
            bytes_written: load(&self.bytes_written),
            batches_scored: load(&self.batches_scored),
            messages_acked: load(&self.messages_acked),
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            latency_max_ms: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{JobStats, StatsSnapshot};

    /// Events produced days ago (a backfill) report their real age, not
    /// the hour an earlier histogram bound clamped them to.
    #[test]
    fn event_ages_of_days_are_kept_and_older_ones_reach_the_ceiling() {
        let stats = JobStats::default();
        let three_days = 3 * 86_400_000;
        stats.record_latencies(&[(1_200, 98), (three_days, 2)]);
        let s = stats.snapshot();
        assert_eq!(s.latency_p50_ms, 1_200);
        let close = |v: u64, want: u64| v.abs_diff(want) * 1_000 <= want;
        assert!(close(s.latency_p99_ms, three_days), "{}", s.latency_p99_ms);
        assert!(close(s.latency_max_ms, three_days), "{}", s.latency_max_ms);

        stats.record_latencies(&[(u64::MAX, 1)]);
        assert!(stats.snapshot().latency_max_ms >= StatsSnapshot::EVENT_AGE_CEILING_MS);
    }
}
