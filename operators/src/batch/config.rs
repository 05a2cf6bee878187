use std::time::Duration;

use serde::Deserialize;

use crate::config::HumanDuration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch is sent to the model as soon as it has this many rows.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// ...or once its oldest row has waited this long.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: default_max_rows(),
            max_wait: default_max_wait(),
        }
    }
}

fn default_max_rows() -> usize {
    65_536
}
fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::from_millis(250))
}

impl BatchConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.max_rows == 0 {
            p.push(("max_rows".into(), "must be at least 1".into()));
        }
        if self.max_wait.0.is_zero() {
            p.push(("max_wait".into(), "must be longer than 0ms".into()));
        }
        p
    }
}
