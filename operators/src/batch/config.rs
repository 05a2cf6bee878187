use std::time::Duration;

use serde::Deserialize;

use crate::config::{ConfigError, HumanDuration, Validate, found};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch is sent to the model as soon as it has this many rows.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// ...or once its oldest row has waited this long.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
    /// Steer batch sizes so a batch is written this long after its oldest
    /// row reached the batcher: sizes shrink (down to `min_rows`) while batches
    /// are late and grow back (up to `max_rows`) while they are early. A
    /// batch then waits at most half the target for rows.
    #[serde(default)]
    pub target_latency: Option<HumanDuration>,
    /// The smallest batch `target_latency` may shrink to.
    #[serde(default = "default_min_rows")]
    pub min_rows: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: default_max_rows(),
            max_wait: default_max_wait(),
            target_latency: None,
            min_rows: default_min_rows(),
        }
    }
}

fn default_max_rows() -> usize {
    65_536
}
fn default_min_rows() -> usize {
    1_024
}
fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}

impl BatchConfig {
    /// How long the oldest row may wait for more: `max_wait`, and with a
    /// latency target at most half of it, leaving the rest for the work.
    pub fn effective_max_wait(&self) -> Duration {
        match self.target_latency {
            Some(t) => self.max_wait.0.min(t.0 / 2),
            None => self.max_wait.0,
        }
    }

    /// The size controller, when a latency target is set.
    pub fn adaptive(&self) -> Option<super::AdaptiveSize> {
        self.target_latency
            .map(|t| super::AdaptiveSize::new(t.0, self.min_rows, self.max_rows))
    }
}

impl Validate for BatchConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut p = Vec::new();
        if self.max_rows == 0 {
            p.push(ConfigError::new("max_rows", "must be at least 1"));
        }
        if self.max_wait.0.is_zero() {
            p.push(ConfigError::new("max_wait", "must be longer than 0ms"));
        }
        if self.target_latency.is_some_and(|t| t.0.is_zero()) {
            p.push(ConfigError::new(
                "target_latency",
                "must be longer than 0ms",
            ));
        }
        if self.min_rows == 0 || self.min_rows > self.max_rows {
            p.push(ConfigError::new(
                "min_rows",
                format!("must be between 1 and max_rows ({})", self.max_rows),
            ));
        }
        found(p)
    }
}
