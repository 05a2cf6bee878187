//! The drift operator: fed copies of the scored batches through its own
//! bounded queue, it cuts them into tumbling windows, compares each window
//! with the reference, and reports every window (drift table, gauges) and
//! every breached threshold (alerts). A failure to report degrades drift
//! (see [`DriftHealth`](super::DriftHealth)); it never stops the job.

use arrow::array::{Array, AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use scorestream_schemas::columns;
use tokio::sync::mpsc;

use super::alerts::AlertProducer;
use super::config::{DriftConfig, WindowConfig, breaches};
use super::deliver::Outlet;
use super::profile::ReferenceProfile;
use super::recent::RecentAlerts;
use super::report::WindowReport;
use super::stats::Statistic;
use super::table::DriftTable;
use super::window::Window;
use crate::Result;

/// What the scorer hands the drift operator: scored rows, each standing for
/// `2^weight_log2` scored rows (0 for a whole batch; more for the uniform
/// sample the tee keeps of batches that arrived while the queue was full).
#[derive(Debug, Clone)]
pub struct DriftBatch {
    pub batch: RecordBatch,
    pub weight_log2: u32,
}

pub struct DriftOperator {
    config: DriftConfig,
    profile: ReferenceProfile,
    columns: Vec<String>,
    /// The event-time column windows are cut by (`sink.partition_time`).
    time_column: String,
    outlet: Outlet,
    window: Window,
    /// Event-time bucket of the open window (event-time windows only).
    bucket: Option<i64>,
    /// Earliest and latest event time seen in the open window.
    span: Option<(i64, i64)>,
    model: (String, String),
    windows: u64,
}

impl DriftOperator {
    pub fn new(
        config: DriftConfig,
        profile: ReferenceProfile,
        columns: Vec<String>,
        job: String,
        table: DriftTable,
        alerts: Option<AlertProducer>,
    ) -> Self {
        let window = Window::new(&profile, &columns, config.sample_rows, 0);
        Self {
            config,
            profile,
            columns,
            time_column: columns::INGEST_TIME.to_owned(),
            outlet: Outlet::new(job, table, alerts),
            window,
            bucket: None,
            span: None,
            model: (String::new(), String::new()),
            windows: 0,
        }
    }

    /// Cuts windows by this timestamp column of the scored output instead
    /// of the Kafka timestamp (`ingest_time`).
    pub fn with_time_column(mut self, column: impl Into<String>) -> Self {
        self.time_column = column.into();
        self
    }

    /// Also keeps the newest alerts and drift's health in `recent`, for
    /// whoever shows the job's status.
    pub fn with_recent_alerts(mut self, recent: RecentAlerts) -> Self {
        self.outlet.set_recent(recent);
        self
    }

    /// Consumes batches until the scorer closes the queue, then reports the
    /// last, partial window; returns how many windows closed. Windows that
    /// could not be delivered are retried meanwhile, and given up on (with
    /// an error log) only at shutdown.
    pub async fn run(mut self, mut rx: mpsc::Receiver<DriftBatch>) -> Result<u64> {
        loop {
            let retry = self.outlet.retry_at();
            let next = tokio::select! {
                next = rx.recv() => next,
                () = crate::sleep_until(retry) => {
                    self.outlet.flush().await;
                    continue;
                }
            };
            let Some(b) = next else { break };
            for report in crate::cpu_bound(|| self.add_weighted(&b.batch, b.weight_log2)) {
                self.outlet.deliver(report).await;
            }
        }
        if self.window.rows > 0 {
            let report = crate::cpu_bound(|| self.close());
            self.outlet.deliver(report).await;
        }
        self.outlet.finish().await;
        Ok(self.windows)
    }

    /// The batch's event times in ms, if it has the time column.
    fn times(&self, batch: &RecordBatch) -> Option<TimestampMillisecondArray> {
        let c = batch.column_by_name(&self.time_column)?;
        // Same time zone: the values stay instants (ms since the epoch).
        let DataType::Timestamp(_, tz) = c.data_type() else {
            return None;
        };
        let c = cast(c, &DataType::Timestamp(TimeUnit::Millisecond, tz.clone())).ok()?;
        Some(c.as_primitive::<TimestampMillisecondType>().clone())
    }

    /// Adds a whole batch, returning the windows it completed.
    pub fn add(&mut self, batch: &RecordBatch) -> Vec<WindowReport> {
        self.add_weighted(batch, 0)
    }

    /// Adds rows that each stand for `2^weight_log2` scored rows.
    pub fn add_weighted(&mut self, batch: &RecordBatch, weight_log2: u32) -> Vec<WindowReport> {
        if let (Some(n), Some(v)) = (
            batch.column_by_name(columns::MODEL_NAME),
            batch.column_by_name(columns::MODEL_VERSION),
        ) && batch.num_rows() > 0
        {
            let (n, v) = (n.as_string::<i32>(), v.as_string::<i32>());
            self.model = (n.value(0).to_owned(), v.value(0).to_owned());
        }
        let times = self.times(batch);
        let w = 1u64 << weight_log2;
        let n = batch.num_rows();
        let mut done = Vec::new();
        let mut from = 0;
        while from < n {
            let to = match self.config.window {
                WindowConfig::Rows(size) => {
                    // Sampled rows stand for `w` rows each: a window can
                    // end up to `w - 1` rows past its size.
                    let room = (size - self.window.rows.min(size)).div_ceil(w) as usize;
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
            self.window.add(batch, from, to, weight_log2);
            from = to;
            if matches!(self.config.window, WindowConfig::Rows(size) if self.window.rows >= size) {
                done.push(self.close());
            }
        }
        done
    }

    /// Closes the open window and starts the next.
    fn close(&mut self) -> WindowReport {
        let next = Window::new(&self.profile, &self.columns, self.config.sample_rows, {
            self.windows += 1;
            self.windows
        });
        let window = std::mem::replace(&mut self.window, next);
        let (start_ms, end_ms) = match (self.config.window, self.bucket) {
            (WindowConfig::EventTime(d), Some(b)) => {
                let width = d.0.as_millis() as i64;
                (b * width, (b + 1) * width)
            }
            _ => self.span.unwrap_or((0, 0)),
        };
        self.span = None;
        let (rows, skipped) = (window.rows, window.sampled);
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
}
