//! Where a closed window goes: gauges, counters and logs at once (they
//! cannot fail), then the drift table and the alerts topic, which can. A
//! window that cannot be delivered waits in a bounded queue and is retried
//! with backoff while drift reports itself degraded; scoring never waits.

use std::collections::VecDeque;
use std::time::Duration;

use metrics::{counter, gauge};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::alerts::AlertProducer;
use super::health::{DriftDegraded, DriftFailure, DriftHealth};
use super::recent::RecentAlerts;
use super::report::{DriftAlert, WindowReport};
use super::stats::Statistic;
use super::table::DriftTable;
use crate::OperatorError;

/// Windows kept for a retry. A window is a few kilobytes, so this is about
/// a megabyte, and at the default 100,000-row windows some ten million
/// scored rows of outage before the oldest window is given up on.
pub(super) const MAX_PENDING: usize = 128;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(15);

struct Pending {
    report: WindowReport,
    written: bool,
}

pub(super) struct Outlet {
    job: String,
    table: DriftTable,
    alerts: Option<AlertProducer>,
    recent: RecentAlerts,
    pending: VecDeque<Pending>,
    degraded: Option<DriftDegraded>,
    dropped: u64,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Outlet {
    pub(super) fn new(job: String, table: DriftTable, alerts: Option<AlertProducer>) -> Self {
        gauge!("scorestream_drift_healthy").set(1.0);
        Self {
            job,
            table,
            alerts,
            recent: RecentAlerts::default(),
            pending: VecDeque::new(),
            degraded: None,
            dropped: 0,
            backoff: FIRST_BACKOFF,
            retry_at: None,
        }
    }

    pub(super) fn set_recent(&mut self, recent: RecentAlerts) {
        self.recent = recent;
    }

    fn health(&self) -> &DriftHealth {
        self.recent.health()
    }

    /// When the next retry of waiting windows is due, if any wait.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| !self.pending.is_empty())
    }

    /// Reports a closed window: observed now, delivered now or, while drift
    /// is degraded, at the next retry (in order, after the ones waiting).
    pub(super) async fn deliver(&mut self, r: WindowReport) {
        self.observe(&r);
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
            counter!("scorestream_drift_windows_dropped_total").increment(1);
            warn!(
                waiting = MAX_PENDING,
                "drift: the oldest undelivered window is dropped"
            );
        }
        self.pending.push_back(Pending {
            report: r,
            written: false,
        });
        if self.degraded.is_none() {
            self.flush().await;
        } else {
            self.publish();
        }
    }

    /// Delivers waiting windows, oldest first, until one fails.
    pub(super) async fn flush(&mut self) {
        while let Some(p) = self.pending.front_mut() {
            if !p.written {
                let (table, job) = (&mut self.table, &self.job);
                if let Err(e) = crate::cpu_bound(|| table.write(job, &p.report)) {
                    return self.failed(DriftFailure::Table, &e);
                }
                p.written = true;
            }
            if let Some(producer) = &self.alerts
                && !p.report.breaches.is_empty()
                && let Err(e) = producer.send(&alerts_of(&self.job, &p.report)).await
            {
                return self.failed(DriftFailure::Alerts, &e);
            }
            self.pending.pop_front();
        }
        self.recovered();
    }

    /// On shutdown: one more attempt, and an error naming what is lost.
    pub(super) async fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.flush().await;
        }
        if let Some(d) = &self.degraded {
            error!(
                windows = self.pending.len(),
                cause = d.cause.name(),
                error = %d.reason,
                "drift: windows not delivered before shutdown"
            );
        }
    }

    fn failed(&mut self, cause: DriftFailure, e: &OperatorError) {
        counter!("scorestream_drift_failures_total", "cause" => cause.name()).increment(1);
        let reason = e.to_string();
        match &mut self.degraded {
            None => {
                error!(
                    cause = cause.name(),
                    error = %reason,
                    "drift degraded: scoring goes on; closed windows wait and are retried"
                );
                gauge!("scorestream_drift_healthy").set(0.0);
                self.backoff = FIRST_BACKOFF;
                self.degraded = Some(DriftDegraded {
                    cause,
                    reason,
                    since_ms: crate::now_ms(),
                    failures: 1,
                    pending_windows: 0,
                    dropped_windows: 0,
                });
            }
            Some(d) => {
                debug!(cause = cause.name(), error = %reason, "drift still degraded");
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                d.failures += 1;
                (d.cause, d.reason) = (cause, reason);
            }
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.publish();
    }

    fn recovered(&mut self) {
        if let Some(d) = self.degraded.take() {
            info!(
                failures = d.failures,
                dropped_windows = self.dropped,
                "drift recovered: waiting windows delivered"
            );
            gauge!("scorestream_drift_healthy").set(1.0);
        }
        self.retry_at = None;
        self.backoff = FIRST_BACKOFF;
        self.publish();
    }

    fn publish(&mut self) {
        if let Some(d) = &mut self.degraded {
            d.pending_windows = self.pending.len();
            d.dropped_windows = self.dropped;
        }
        self.health().set(self.degraded.clone());
    }

    /// Gauges, counters, the log line and the status's recent alerts.
    fn observe(&self, r: &WindowReport) {
        for c in &r.columns {
            for s in Statistic::ALL {
                if let Some(v) = c.stats.get(s) {
                    gauge!("scorestream_drift_statistic", "feature" => c.column.clone(), "statistic" => s.name())
                        .set(v);
                }
            }
        }
        counter!("scorestream_drift_windows_total").increment(1);
        info!(
            rows = r.rows,
            sampled = r.skipped,
            breaches = r.breaches.len(),
            "drift window closed"
        );
        for a in alerts_of(&self.job, r) {
            self.recent.push(&a);
            counter!("scorestream_drift_alerts_total", "feature" => a.feature.to_owned(), "statistic" => a.statistic)
                .increment(1);
            warn!(
                alert = %serde_json::to_string(&a).unwrap_or_default(),
                "drift threshold breached"
            );
        }
    }
}

fn alerts_of<'a>(job: &'a str, r: &'a WindowReport) -> Vec<DriftAlert<'a>> {
    r.breaches
        .iter()
        .map(|(feature, s, value, threshold)| DriftAlert {
            job,
            model_name: &r.model_name,
            model_version: &r.model_version,
            feature,
            statistic: s.name(),
            value: *value,
            threshold: *threshold,
            window_start_ms: r.start_ms,
            window_end_ms: r.end_ms,
            window_rows: r.rows,
        })
        .collect()
}
