//! The latest drift alerts of a job, kept in memory for its status page
//! (`GET /v1/jobs/{name}` under `scorestream serve`): people asking "is
//! this job drifting?" should not have to read the drift table.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::DriftAlert;
use super::health::DriftHealth;

/// How many alerts a job keeps: enough to see which features breach and
/// how often, bounded so a drifting job cannot grow memory.
pub(super) const RECENT_ALERTS: usize = 20;

/// A bounded, shared list of the newest alerts (oldest first), as the
/// JSON objects the alerts topic receives, and drift's health: the drift
/// side of a job's status.
#[derive(Debug, Clone, Default)]
pub struct RecentAlerts {
    alerts: Arc<Mutex<VecDeque<serde_json::Value>>>,
    health: DriftHealth,
}

impl RecentAlerts {
    /// Whether drift delivers its windows, and if not why.
    pub fn health(&self) -> &DriftHealth {
        &self.health
    }

    pub fn push(&self, alert: &DriftAlert<'_>) {
        let Ok(value) = serde_json::to_value(alert) else {
            return;
        };
        if let Ok(mut q) = self.alerts.lock() {
            if q.len() == RECENT_ALERTS {
                q.pop_front();
            }
            q.push_back(value);
        }
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<serde_json::Value> {
        self.alerts
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(value: f64) -> DriftAlert<'static> {
        DriftAlert {
            job: "j",
            model_name: "m",
            model_version: "1",
            feature: "amount",
            statistic: "psi",
            value,
            threshold: 0.2,
            window_start_ms: 0,
            window_end_ms: 1,
            window_rows: 10,
        }
    }

    #[test]
    fn keeps_only_the_newest_alerts_in_order() {
        let recent = RecentAlerts::default();
        for i in 0..(RECENT_ALERTS + 5) {
            recent.push(&alert(i as f64));
        }
        let kept = recent.snapshot();
        assert_eq!(kept.len(), RECENT_ALERTS);
        assert_eq!(kept[0]["value"], 5.0);
        assert_eq!(kept[RECENT_ALERTS - 1]["value"], (RECENT_ALERTS + 4) as f64);
        assert_eq!(kept[0]["feature"], "amount");
    }
}
