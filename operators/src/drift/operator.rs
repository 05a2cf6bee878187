//! The drift operator: fed copies of the scored batches through its own
//! bounded queue, it cuts them into tumbling windows, compares each window
//! with the reference, and reports every window (drift table, gauges) and
//! every breached threshold (alerts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMillisecondType;
use metrics::{counter, gauge};
use scorestream_schemas::columns;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::alerts::AlertProducer;
use super::config::{DriftConfig, WindowConfig, breaches};
use super::profile::ReferenceProfile;
use super::recent::RecentAlerts;
use super::report::{DriftAlert, WindowReport};
use super::stats::Statistic;
use super::table::DriftTable;
use super::window::Window;
use crate::Result;

pub struct DriftOperator {
    config: DriftConfig,
    profile: ReferenceProfile,
    columns: Vec<String>,
    job: String,
    table: DriftTable,
    alerts: Option<AlertProducer>,
    /// Rows the scorer skipped because the queue was full; taken at each
    /// window's close.
    skipped: Arc<AtomicU64>,
    window: Window,
    /// Event-time bucket of the open window (event-time windows only).
    bucket: Option<i64>,
    /// Earliest and latest event time seen in the open window.
    span: Option<(i64, i64)>,
    model: (String, String),
    windows: u64,
    /// The newest alerts, for the job's status.
    recent: RecentAlerts,
}

impl DriftOperator {
    pub fn new(
        config: DriftConfig,
        profile: ReferenceProfile,
        columns: Vec<String>,
        job: String,
        table: DriftTable,
        alerts: Option<AlertProducer>,
        skipped: Arc<AtomicU64>,
    ) -> Self {
        let window = Window::new(&profile, &columns, config.sample_rows, 0);
        Self {
            config,
            profile,
            columns,
            job,
            table,
            alerts,
            skipped,
            window,
            bucket: None,
            span: None,
            model: (String::new(), String::new()),
            windows: 0,
            recent: RecentAlerts::default(),
        }
    }

    /// Consumes batches until the scorer closes the queue, then reports the
    /// last, partial window.
    pub async fn run(mut self, mut rx: mpsc::Receiver<RecordBatch>) -> Result<Vec<WindowReport>> {
        let mut reports = Vec::new();
        while let Some(batch) = rx.recv().await {
            for report in crate::cpu_bound(|| self.add(&batch))? {
                self.emit(&report).await?;
                reports.push(report);
            }
        }
        if self.window.rows > 0 {
            let report = crate::cpu_bound(|| self.close());
            self.emit(&report).await?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Adds a batch, returning the windows it completed.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<Vec<WindowReport>> {
        if let (Some(n), Some(v)) = (
            batch.column_by_name(columns::MODEL_NAME),
            batch.column_by_name(columns::MODEL_VERSION),
        ) && batch.num_rows() > 0
        {
            let (n, v) = (n.as_string::<i32>(), v.as_string::<i32>());
            self.model = (n.value(0).to_owned(), v.value(0).to_owned());
        }
        let times = batch
            .column_by_name(columns::INGEST_TIME)
            .map(|c| c.as_primitive::<TimestampMillisecondType>().clone());
        let n = batch.num_rows();
        let mut done = Vec::new();
        let mut from = 0;
        while from < n {
            let to = match self.config.window {
                WindowConfig::Rows(size) => {
                    let room = (size - self.window.rows.min(size)) as usize;
                    from + room.min(n - from)
                }
                WindowConfig::EventTime(d) => {
                    let width = (d.0.as_millis() as i64).max(1);
                    let bucket_of = |i: usize| {
                        times
                            .as_ref()
                            .filter(|t| t.is_valid(i))
                            .map(|t| t.value(i).div_euclid(width))
                    };
                    // Rows of the open window's bucket or earlier (late
                    // rows count in the open window) run on; a later
                    // bucket closes it.
                    let current = *self.bucket.get_or_insert(bucket_of(from).unwrap_or(0));
                    let mut to = from;
                    while to < n && bucket_of(to).is_none_or(|b| b <= current) {
                        to += 1;
                    }
                    if to == from {
                        if self.window.rows > 0 {
                            done.push(self.close());
                        }
                        self.bucket = bucket_of(from);
                        continue;
                    }
                    to
                }
            };
            if let Some(t) = &times {
                for i in from..to {
                    if t.is_valid(i) {
                        let v = t.value(i);
                        self.span = Some(self.span.map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
                    }
                }
            }
            self.window.add(batch, from, to);
            from = to;
            if matches!(self.config.window, WindowConfig::Rows(size) if self.window.rows >= size) {
                done.push(self.close());
            }
        }
        Ok(done)
    }

    /// Closes the open window and starts the next.
    fn close(&mut self) -> WindowReport {
        let next = Window::new(&self.profile, &self.columns, self.config.sample_rows, {
            self.windows += 1;
            self.windows
        });
        let mut window = std::mem::replace(&mut self.window, next);
        window.skipped = self.skipped.swap(0, Ordering::Relaxed);
        let (start_ms, end_ms) = match (self.config.window, self.bucket) {
            (WindowConfig::EventTime(d), Some(b)) => {
                let width = d.0.as_millis() as i64;
                (b * width, (b + 1) * width)
            }
            _ => self.span.unwrap_or((0, 0)),
        };
        self.span = None;
        let (rows, skipped) = (window.rows, window.skipped);
        let columns = window.close();
        let mut found = Vec::new();
        for c in &columns {
            for s in Statistic::ALL {
                if let (Some(v), Some(t)) = (c.stats.get(s), self.config.threshold(&c.column, s))
                    && breaches(s, v, t)
                {
                    found.push((c.column.clone(), s, v, t));
                }
            }
        }
        WindowReport {
            model_name: self.model.0.clone(),
            model_version: self.model.1.clone(),
            start_ms,
            end_ms,
            rows,
            skipped,
            columns,
            breaches: found,
        }
    }

    /// Also keeps the newest alerts in `recent`, for whoever shows the
    /// job's status.
    pub fn with_recent_alerts(mut self, recent: RecentAlerts) -> Self {
        self.recent = recent;
        self
    }

    /// Writes the window to the drift table, sets the gauges, and logs and
    /// produces its alerts.
    async fn emit(&mut self, r: &WindowReport) -> Result<()> {
        let (table, job) = (&mut self.table, &self.job);
        crate::cpu_bound(|| table.write(job, r))?;
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
            skipped = r.skipped,
            breaches = r.breaches.len(),
            "drift window closed"
        );
        let alerts: Vec<DriftAlert<'_>> = r
            .breaches
            .iter()
            .map(|(feature, s, value, threshold)| DriftAlert {
                job: &self.job,
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
            .collect();
        for a in &alerts {
            self.recent.push(a);
            counter!("scorestream_drift_alerts_total", "feature" => a.feature.to_owned(), "statistic" => a.statistic)
                .increment(1);
            warn!(
                alert = %serde_json::to_string(a).unwrap_or_default(),
                "drift threshold breached"
            );
        }
        if let Some(p) = &self.alerts
            && !alerts.is_empty()
        {
            p.send(&alerts).await?;
        }
        Ok(())
    }
}
