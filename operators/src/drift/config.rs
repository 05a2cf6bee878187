//! `[drift]`: which reference a job is compared with, how windows are cut,
//! and when a statistic raises an alert.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::stats::Statistic;
use crate::config::{ConfigError, HumanDuration, Validate, found};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// The reference profile (`scorestream profile`); relative to the job file.
    pub profile: PathBuf,
    /// Tumbling windows: `{ rows = 10000 }` or `{ event_time = "5m" }`
    /// (by the job's event time, `sink.partition_time`).
    #[serde(default)]
    pub window: WindowConfig,
    /// Batches waiting for the drift operator. When it is full the scorer
    /// does not wait: a uniform sample of the rows waits instead, each
    /// standing for the rows it replaced.
    #[serde(default = "default_queue_batches")]
    pub queue_batches: usize,
    /// Values kept per numeric column per window for KS and Wasserstein
    /// (beyond, a uniform sample; bins count every row), and rows kept of
    /// the batches that found the queue full.
    #[serde(default = "default_sample_rows")]
    pub sample_rows: usize,
    /// Columns to watch (default: every profiled column the output has,
    /// `score` included).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Alert thresholds per statistic, for every column; `column_thresholds = { X = { ... } }`
    /// overrides them for column X.
    #[serde(default = "default_thresholds")]
    pub thresholds: BTreeMap<Statistic, f64>,
    #[serde(default, rename = "column_thresholds")]
    pub column_thresholds: BTreeMap<String, BTreeMap<Statistic, f64>>,
    /// A Kafka topic (on the source's cluster) that receives each alert as
    /// JSON; alerts are logged in any case.
    #[serde(default)]
    pub alerts_topic: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowConfig {
    Rows(u64),
    EventTime(HumanDuration),
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self::Rows(100_000)
    }
}

fn default_queue_batches() -> usize {
    4
}

fn default_sample_rows() -> usize {
    20_000
}

/// PSI above 0.2 is the usual "significant shift"; a tenth more missing
/// values is a broken feed more often than drift.
fn default_thresholds() -> BTreeMap<Statistic, f64> {
    BTreeMap::from([(Statistic::Psi, 0.2), (Statistic::MissingRateChange, 0.1)])
}

impl DriftConfig {
    /// The threshold for `statistic` on `column`, if any.
    pub fn threshold(&self, column: &str, statistic: Statistic) -> Option<f64> {
        self.column_thresholds
            .get(column)
            .and_then(|t| t.get(&statistic))
            .or_else(|| self.thresholds.get(&statistic))
            .copied()
    }
}

impl Validate for DriftConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut p = Vec::new();
        match self.window {
            WindowConfig::Rows(0) => p.push(ConfigError::new("window", "rows must be at least 1")),
            WindowConfig::EventTime(d) if d.0.is_zero() => p.push(ConfigError::new(
                "window",
                "event_time must be longer than 0s",
            )),
            _ => {}
        }
        if let Some(topic) = &self.alerts_topic
            && let Err(why) = crate::sink::dead_letter_topic::check_topic_name(topic)
        {
            p.push(ConfigError::new("alerts_topic", why));
        }
        if self.queue_batches == 0 {
            p.push(ConfigError::new("queue_batches", "must be at least 1"));
        }
        if self.sample_rows == 0 {
            p.push(ConfigError::new("sample_rows", "must be at least 1"));
        }
        let all = std::iter::once(("thresholds".to_owned(), &self.thresholds)).chain(
            self.column_thresholds
                .iter()
                .map(|(c, t)| (format!("column_thresholds.{c}"), t)),
        );
        for (key, thresholds) in all {
            for (s, v) in thresholds {
                let ok = match s {
                    Statistic::ChiSquareP => (0.0..=1.0).contains(v),
                    _ => v.is_finite() && *v >= 0.0,
                };
                if !ok {
                    p.push(ConfigError::new(
                        format!("{key}.{}", s.name()),
                        format!("{v} is not a valid threshold"),
                    ));
                }
            }
        }
        found(p)
    }
}

/// Whether `value` of `statistic` breaches `threshold`: a p-value breaches
/// by being below it, every other statistic by being above it (in absolute
/// value, for the signed missing-rate change).
pub fn breaches(statistic: Statistic, value: f64, threshold: f64) -> bool {
    match statistic {
        Statistic::ChiSquareP => value < threshold,
        _ => value.abs() > threshold,
    }
}
