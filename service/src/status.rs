//! A job's status as the API shows it: what it is doing, its counters since
//! it last started, the models scoring, and its latest drift alerts.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use crate::entry::{Entry, RunState};
use crate::store::Desired;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    pub name: String,
    #[serde(flatten)]
    pub run: RunState,
    /// What the job does when the service restarts.
    pub desired: Desired,
    #[schema(format = DateTime)]
    pub submitted_at: String,
    /// When the job last started; `null` before it first has.
    #[schema(format = DateTime, required = true)]
    pub started_at: Option<String>,
    pub source: Source,
    /// `sink.path`.
    pub output: String,
    pub model: Models,
    /// Since the job last started.
    pub counters: Counters,
    /// Messages in the assigned partitions not read yet; `null` until the
    /// consumer has reported it.
    #[schema(required = true)]
    pub lag_messages: Option<i64>,
    /// Events committed per second since the first event arrived.
    pub throughput_events_per_second: f64,
    pub partitions_assigned: i64,
    /// Rows waiting in each queue between operators.
    pub queued_rows: BTreeMap<&'static str, u64>,
    /// Kafka timestamp to committed output, over rows committed since start.
    pub freshness_ms: Freshness,
    /// The newest drift alerts (at most 20), oldest first (jobs with
    /// `[drift]`).
    #[schema(value_type = Vec<Object>)]
    pub drift_alerts: Vec<serde_json::Value>,
    /// `null` while drift delivers every window (or the job has no
    /// `[drift]`); otherwise why it is degraded: `cause` (`table` or
    /// `alerts`), `reason`, `since_ms`, `failures`, `pending_windows`,
    /// `dropped_windows`. Scoring goes on meanwhile.
    #[schema(value_type = Option<Object>, required = true)]
    pub drift_degraded: Option<serde_json::Value>,
    /// `null` while the job reads; otherwise why it paused reading
    /// (`[dead_letters] on_max_rate = "pause"`): the rate, window, top
    /// reasons and for how long.
    #[schema(required = true)]
    pub reading_paused: Option<String>,
    /// The submitted config with secret values replaced by `<redacted>`
    /// (single-job responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub config: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Source {
    pub brokers: String,
    pub topics: Vec<String>,
    pub group_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Models {
    /// The version swapped in by name; `null` while the job follows its
    /// registry's highest version.
    #[schema(required = true)]
    pub pinned_version: Option<String>,
    pub in_use: Vec<ModelInUse>,
}

/// A model scoring the job, and in which role.
// The scorer's own `ModelInUse`, as the API shows it: that one lives in
// `operators`, which knows nothing of the API's document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInUse {
    #[schema(schema_with = roles)]
    pub role: &'static str,
    pub name: String,
    pub version: String,
}

impl From<scorestream_operators::scorer::ModelInUse> for ModelInUse {
    fn from(m: scorestream_operators::scorer::ModelInUse) -> Self {
        Self {
            role: m.role,
            name: m.name,
            version: m.version,
        }
    }
}

/// The roles a scorer gives its models, for the document.
fn roles() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["champion", "shadow", "canary"]))
        .build()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Counters {
    pub events_in: u64,
    pub rows_scored: u64,
    pub dead_letters: u64,
    pub messages_committed: u64,
    pub batches_scored: u64,
    pub files_written: u64,
    pub bytes_written: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Freshness {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

pub(crate) fn state_name(s: &RunState) -> &'static str {
    match s {
        RunState::Starting => "starting",
        RunState::Running => "running",
        RunState::Stopping => "stopping",
        RunState::Stopped => "stopped",
        RunState::Failed { .. } => "failed",
    }
}

pub(crate) fn of(entry: &Entry, detail: bool) -> JobStatus {
    let live = entry.live.lock().unwrap_or_else(|p| p.into_inner());
    let stats = &live.stats;
    let snap = stats.snapshot();
    let lag = stats.consumer_lag.load(Ordering::Relaxed);
    JobStatus {
        name: entry.name.clone(),
        run: entry.run.borrow().clone(),
        desired: live.state.desired,
        submitted_at: live.state.submitted_at.clone(),
        started_at: live.started_at.clone(),
        source: Source {
            brokers: entry.source.0.clone(),
            topics: entry.source.1.clone(),
            group_id: entry.source.2.clone(),
        },
        output: entry.output.clone(),
        model: Models {
            pinned_version: live.state.model_version.clone(),
            in_use: stats.models().into_iter().map(ModelInUse::from).collect(),
        },
        counters: Counters {
            events_in: snap.events_in,
            rows_scored: snap.rows_scored,
            dead_letters: snap.dead_letters,
            messages_committed: snap.messages_acked,
            batches_scored: snap.batches_scored,
            files_written: snap.files_written,
            bytes_written: snap.bytes_written,
        },
        lag_messages: (lag >= 0).then_some(lag),
        throughput_events_per_second: (snap.throughput() * 10.0).round() / 10.0,
        partitions_assigned: stats.partitions_assigned.load(Ordering::Relaxed),
        queued_rows: stats.queues().into_iter().collect(),
        freshness_ms: Freshness {
            p50: snap.latency_p50_ms,
            p99: snap.latency_p99_ms,
            max: snap.latency_max_ms,
        },
        drift_alerts: stats.recent_alerts.snapshot(),
        drift_degraded: stats
            .recent_alerts
            .health()
            .degraded()
            .and_then(|d| serde_json::to_value(d).ok()),
        reading_paused: stats.paused(),
        config: detail.then(|| entry.shown_toml.clone()),
    }
}
