//! What a closed window produces: the report the drift table stores and
//! the alerts a breached threshold raises. Kept apart from the operator so
//! the table and the alert producer depend on these types, not on it.

use serde::Serialize;

use super::stats::Statistic;
use super::window::ColumnStats;

/// One closed window's results.
#[derive(Debug, Clone)]
pub struct WindowReport {
    pub model_name: String,
    pub model_version: String,
    /// Event time (the Kafka timestamp) the window covers, ms since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    pub rows: u64,
    /// Rows of batches skipped while the window was open (the operator was
    /// behind), so not in its statistics.
    pub skipped: u64,
    pub columns: Vec<ColumnStats>,
    /// `(column, statistic, value, threshold)` of each breach.
    pub breaches: Vec<(String, Statistic, f64, f64)>,
}

/// An alert, as logged and produced to the alerts topic.
#[derive(Debug, Clone, Serialize)]
pub struct DriftAlert<'a> {
    pub job: &'a str,
    pub model_name: &'a str,
    pub model_version: &'a str,
    pub feature: &'a str,
    pub statistic: &'static str,
    pub value: f64,
    pub threshold: f64,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub window_rows: u64,
}
