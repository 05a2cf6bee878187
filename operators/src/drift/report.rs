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
    /// Event time the window covers (the job's `sink.partition_time`
    /// column, the Kafka timestamp by default), ms since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Scored rows in the window.
    pub rows: u64,
    /// Of `rows`, those the operator did not read one by one because it was
    /// behind: a uniform sample of them stands for them (the `skipped_rows`
    /// column). When not 0, the counts and statistics are estimates.
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
