//! What a `[drift]` job compares with: the reference profile and the
//! output columns it watches, each checked to be in both; and the drift
//! operator built from them.

use scorestream_operators::OperatorError;
use scorestream_operators::drift::{
    AlertProducer, DriftBatch, DriftOperator, DriftTable, RecentAlerts, ReferenceProfile,
};
use scorestream_operators::sink::parquet::Store;
use scorestream_schemas::columns;
use tokio::sync::mpsc;

use super::drift_tee::DriftTee;
use crate::Problem;
use crate::config::JobConfig;

/// The reference profile a `[drift]` job compares with, the output
/// columns it watches, and the event-time column its windows are cut by.
pub(super) struct DriftSetup {
    pub(super) profile: ReferenceProfile,
    pub(super) columns: Vec<String>,
    pub(super) time_column: String,
}

/// The drift operator, its receiving end, and the scorer's end.
pub(super) type DriftParts = (DriftOperator, mpsc::Receiver<DriftBatch>, DriftTee);

impl DriftSetup {
    /// The drift operator of a `[drift]` job, writing its table into
    /// `store` and keeping its alerts and health in `status`. A table or
    /// alerts topic that cannot be opened at start is an error (the job's
    /// settings are wrong); later failures only degrade drift.
    pub(super) fn start(
        self,
        config: &JobConfig,
        store: &Store,
        job: &str,
        status: RecentAlerts,
    ) -> Result<Option<DriftParts>, OperatorError> {
        let Some(d) = &config.drift else {
            return Ok(None);
        };
        let keep: Vec<String> = self
            .columns
            .iter()
            .map(String::as_str)
            .chain([
                self.time_column.as_str(),
                columns::MODEL_NAME,
                columns::MODEL_VERSION,
            ])
            .map(str::to_owned)
            .collect();
        let (tee, rx) = DriftTee::new(d.queue_batches, d.sample_rows, keep);
        let table = DriftTable::open_in(store.clone())?;
        let alerts = d
            .alerts_topic
            .as_deref()
            .map(|t| AlertProducer::build(&config.source, t))
            .transpose()?;
        let op = DriftOperator::new(
            d.clone(),
            self.profile,
            self.columns,
            job.to_owned(),
            table,
            alerts,
        )
        .with_time_column(self.time_column)
        .with_recent_alerts(status);
        Ok(Some((op, rx, tee)))
    }
}

/// Loads the drift profile and picks the watched columns: those asked for,
/// or every profiled column the output has. Each column must be in both.
pub(super) fn drift_setup(
    config: &JobConfig,
    output: &arrow::datatypes::SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<DriftSetup> {
    let d = config.drift.as_ref()?;
    let profile = match ReferenceProfile::load(&d.profile) {
        Ok(p) => p,
        Err(e) => {
            problems.push(Problem::new("drift.profile", e.to_string()));
            return None;
        }
    };
    let in_output = |c: &str| output.index_of(c).is_ok();
    let columns: Vec<String> = if d.columns.is_empty() {
        profile
            .columns
            .keys()
            .filter(|c| in_output(c))
            .cloned()
            .collect()
    } else {
        for c in &d.columns {
            if !profile.columns.contains_key(c) {
                problems.push(Problem::new(
                    "drift.columns",
                    format!("`{c}` is not in the profile {}", d.profile.display()),
                ));
            } else if !in_output(c) {
                problems.push(Problem::new(
                    "drift.columns",
                    format!("`{c}` is not a column of the scored output"),
                ));
            }
        }
        d.columns.clone()
    };
    if columns.is_empty() {
        problems.push(Problem::new(
            "drift.profile",
            format!(
                "none of the profile's columns ({}) is in the scored output",
                profile
                    .columns
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    // Windows follow the job's event time, as its output partitions do.
    let time_column = config.sink.partition_time.clone();
    if !in_output(&time_column) {
        problems.push(Problem::new(
            "sink.partition_time",
            format!("`{time_column}` (drift's event time) is not a column of the scored output"),
        ));
    }
    for c in d.column_thresholds.keys() {
        if !columns.contains(c) {
            problems.push(Problem::new(
                format!("drift.column_thresholds.{c}"),
                "is not a watched column",
            ));
        }
    }
    Some(DriftSetup {
        profile,
        columns,
        time_column,
    })
}
