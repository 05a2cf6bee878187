//! Reads the feature store's own metrics while the bench runs, so the
//! figures are the ones a deployment's dashboard would show: the store
//! records one `scorestream_feature_lookup_seconds` sample per Redis round
//! trip and counts cache hits and misses per distinct key of a batch.
//!
//! Installed as the bench thread's local recorder (not the global one), so
//! it sees only the bench's join, whatever else the process records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram as Hdr;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

pub(super) const LOOKUP_SECONDS: &str = "scorestream_feature_lookup_seconds";
pub(super) const CACHE_HITS: &str = "scorestream_feature_cache_hits_total";
pub(super) const CACHE_MISSES: &str = "scorestream_feature_cache_misses_total";
pub(super) const DECODE_ERRORS: &str = "scorestream_feature_decode_errors_total";

/// Round-trip latencies in nanoseconds: a fixed-size histogram, so memory
/// does not grow with the number of events.
struct Latencies(Mutex<Hdr<u64>>);

impl HistogramFn for Latencies {
    fn record(&self, seconds: f64) {
        let ns = (seconds * 1e9).round().max(1.0) as u64;
        if let Ok(mut h) = self.0.lock() {
            h.saturating_record(ns);
        }
    }
}

/// Counters by name, and the round-trip latency histogram.
pub(super) struct Capture {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    latencies: Arc<Latencies>,
}

/// Round trips and their latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RoundTrips {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Capture {
    pub(super) fn new() -> Result<Self, String> {
        // 1 ns to 10 minutes, 3 significant digits.
        let h = Hdr::new_with_bounds(1, 600_000_000_000, 3).map_err(|e| e.to_string())?;
        Ok(Self {
            counters: Mutex::default(),
            latencies: Arc::new(Latencies(Mutex::new(h))),
        })
    }

    fn counter_cell(&self, name: &str) -> Arc<AtomicU64> {
        let mut map = match self.counters.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(name.to_owned()).or_default().clone()
    }

    pub(super) fn counter(&self, name: &str) -> u64 {
        self.counter_cell(name).load(Ordering::Acquire)
    }

    pub(super) fn round_trips(&self) -> RoundTrips {
        let Ok(h) = self.latencies.0.lock() else {
            return RoundTrips::default();
        };
        let ms = |ns: u64| ns as f64 / 1e6;
        RoundTrips {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.counter_cell(key.name()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if key.name() == LOOKUP_SECONDS {
            Histogram::from_arc(self.latencies.clone())
        } else {
            Histogram::noop()
        }
    }
}
