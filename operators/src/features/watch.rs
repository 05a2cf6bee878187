//! Watches, per feature, how many looked-up rows got no value. A wrong
//! project, view or feature name does not fail a lookup: it answers null
//! for every key, and the model then scores on imputed means. Counting per
//! batch (a popcount of the join's missing bitmaps) catches that within a
//! window, where row-level policies cannot tell a broken config from an
//! unknown entity.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::BooleanArray;
use metrics::{Counter, Gauge, counter, gauge};
use serde::Deserialize;
use tracing::warn;

use crate::config::{ConfigError, HumanDuration};
use crate::{OperatorError, Result};

/// What to do when a feature is missing for (nearly) every row of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingAction {
    /// Log a warning, once per window and feature.
    #[default]
    Warn,
    /// Stop the job, naming the features: scoring on nulls is worse than
    /// not scoring when the store is known to hold the features.
    Fail,
    /// Only count (for stores where most keys are legitimately unknown).
    Off,
}

/// `[features.missing_check]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingCheckConfig {
    /// Counts restart after this long (once `min_rows` were seen), so a
    /// warning repeats at most once per window.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// Share of rows (0 to 1) without a value at or above which a feature
    /// counts as missing for (nearly) every key.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Rows a window needs before it is judged: a few unknown keys at start
    /// are no evidence of a broken config.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    #[serde(default)]
    pub action: MissingAction,
}

fn default_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_threshold() -> f64 {
    0.99
}

fn default_min_rows() -> u64 {
    1000
}

impl Default for MissingCheckConfig {
    fn default() -> Self {
        Self {
            window: default_window(),
            threshold: default_threshold(),
            min_rows: default_min_rows(),
            action: MissingAction::default(),
        }
    }
}

impl MissingCheckConfig {
    /// Problems, each with its key inside `[features.missing_check]`.
    pub(crate) fn problems(&self) -> Vec<ConfigError> {
        let mut p = Vec::new();
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            p.push(ConfigError::new(
                "threshold",
                format!(
                    "{} is not a share of rows; write a number above 0 and at most 1, e.g. 0.99",
                    self.threshold
                ),
            ));
        }
        if self.min_rows == 0 {
            p.push(ConfigError::new("min_rows", "must be at least 1"));
        }
        if self.window.0.is_zero() {
            p.push(ConfigError::new("window", "must be longer than 0s"));
        }
        p
    }
}

/// One watched feature: its names for logs and labels.
pub(crate) struct Watched {
    pub(crate) feature: String,
    /// The Feast view, empty for other stores.
    pub(crate) view: String,
}

struct Window {
    started: Instant,
    rows: u64,
    missing: Vec<u64>,
    /// Already reported in this window.
    reported: Vec<bool>,
}

pub(crate) struct MissingWatch {
    config: MissingCheckConfig,
    features: Vec<Watched>,
    window: Mutex<Window>,
    /// Registered on the first batch, inside the job's span, so they carry
    /// its `job` label; per batch, no label is built again.
    handles: OnceLock<Vec<(Counter, Gauge)>>,
}

impl MissingWatch {
    pub(crate) fn new(config: MissingCheckConfig, features: Vec<Watched>) -> Self {
        let n = features.len();
        Self {
            config,
            features,
            window: Mutex::new(Window {
                started: Instant::now(),
                rows: 0,
                missing: vec![0; n],
                reported: vec![false; n],
            }),
            handles: OnceLock::new(),
        }
    }

    /// Counts one batch: `missing[j]` flags the rows without feature `j`.
    /// Fails, naming the features, when the action is `fail` and a window
    /// has them missing for at least `threshold` of its rows.
    pub(crate) fn record(&self, missing: &[BooleanArray], rows: usize) -> Result<()> {
        if rows == 0 || self.features.is_empty() {
            return Ok(());
        }
        let handles = self.handles.get_or_init(|| {
            self.features
                .iter()
                .map(|f| {
                    (
                        counter!("scorestream_feature_missing_total", "view" => f.view.clone(), "feature" => f.feature.clone()),
                        gauge!("scorestream_feature_missing_ratio", "view" => f.view.clone(), "feature" => f.feature.clone()),
                    )
                })
                .collect()
        });
        let mut w = self.window.lock().map_err(|_| {
            OperatorError::Internal("the missing-feature window was poisoned".into())
        })?;
        w.rows += rows as u64;
        for (j, m) in missing.iter().enumerate().take(self.features.len()) {
            let c = m.true_count() as u64;
            handles[j].0.increment(c);
            w.missing[j] += c;
        }
        if w.rows < self.config.min_rows {
            return Ok(());
        }
        let mut failing = Vec::new();
        for (j, (_, ratio)) in handles.iter().enumerate() {
            let share = w.missing[j] as f64 / w.rows as f64;
            ratio.set(share);
            if share < self.config.threshold || w.reported[j] {
                continue;
            }
            w.reported[j] = true;
            let f = &self.features[j];
            match self.config.action {
                MissingAction::Off => {}
                MissingAction::Warn => warn!(
                    feature = %f.feature,
                    view = %f.view,
                    missing = w.missing[j],
                    rows = w.rows,
                    "feature `{}` had no value for {} of {} rows looked up; check its name, view and the store's project (`scorestream validate` probes them)",
                    f.feature,
                    w.missing[j],
                    w.rows
                ),
                MissingAction::Fail => failing.push(self.describe(j, w.missing[j], w.rows)),
            }
        }
        if !failing.is_empty() {
            return Err(OperatorError::FeaturesMissing {
                features: failing.join(", "),
                rows: w.rows,
            });
        }
        if w.started.elapsed() >= self.config.window.0 {
            let n = self.features.len();
            *w = Window {
                started: Instant::now(),
                rows: 0,
                missing: vec![0; n],
                reported: vec![false; n],
            };
        }
        Ok(())
    }

    fn describe(&self, j: usize, missing: u64, rows: u64) -> String {
        let f = &self.features[j];
        let view = if f.view.is_empty() {
            String::new()
        } else {
            format!(" of view `{}`", f.view)
        };
        format!("`{}`{view} ({missing} of {rows} rows)", f.feature)
    }
}
