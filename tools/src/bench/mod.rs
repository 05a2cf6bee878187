//! `scorestream bench`: the reference workload end to end against a real
//! broker, measured the way a user would measure a deployment.
//!
//! The demo's events (about 200 bytes of JSON, 16 online features per
//! account from the file store) go to a fresh topic first; then the demo
//! job, with the small (20-64-32-1) or large (64-256-256-1) MLP, consumes
//! them into Parquet. Throughput counts from the first fetch to the commit
//! of the last file, so the broker's and the producer's work is outside
//! it. `--rate` instead produces while the job consumes, for a sustained
//! run whose memory is sampled every second.

mod features;
mod model;
mod process;
mod run;
mod source_only;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::ToolError;

pub use features::{
    FeatureBenchOptions, FeatureBenchReport, FeatureLayout, RedisTarget, run_feature_bench,
};
pub use model::write_large_model;
pub use process::{cpu_time, peak_rss_bytes, reset_peak_rss, rss_bytes};
pub use run::run_bench;

/// Which network scores the events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchModel {
    /// The demo's trained 20-64-32-1 MLP.
    #[default]
    Small,
    /// A 64-256-256-1 MLP with seeded random weights over the same columns.
    Large,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub brokers: String,
    pub events: u64,
    pub partitions: i32,
    pub model: BenchModel,
    /// Working directory: the job's files and its Parquet output.
    pub out: PathBuf,
    pub seed: u64,
    /// Produce at this rate while the job consumes (sustained mode),
    /// instead of producing everything first.
    pub rate: Option<u64>,
    /// `batch.target_latency` for the job (adaptive batch sizes).
    pub target_latency: Option<Duration>,
    /// Give up when nothing is acknowledged for this long.
    pub stall_timeout: Duration,
    /// Run the job's Kafka source alone, dropping what it reads: the floor
    /// under the job's cost on this machine and broker.
    pub source_only: bool,
}

/// What one run measured. Times are wall-clock; CPU is the whole process
/// (every thread) from the job's start to its last commit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// Only the Kafka source ran (`--source-only`): no scoring, no output.
    pub source_only: bool,
    pub model: BenchModel,
    pub events: u64,
    pub partitions: i32,
    pub sustained_rate: Option<u64>,
    pub target_latency_ms: Option<f64>,
    pub produce_seconds: f64,
    /// Rows scored plus dead letters: every event accounted for.
    pub accounted: u64,
    pub rows_scored: u64,
    pub dead_letters: u64,
    pub files: u64,
    pub output_bytes: u64,
    /// From the first fetch to the commit of the last file.
    pub seconds: f64,
    pub events_per_second: f64,
    pub batches: u64,
    pub batch_latency_p50_ms: f64,
    pub batch_latency_p99_ms: f64,
    pub cpu_seconds: f64,
    pub cpu_seconds_per_million_events: f64,
    pub peak_rss_bytes: u64,
    /// `(seconds since the job started, RSS bytes)`, once a second.
    pub rss_samples: Vec<(u64, u64)>,
    /// Per stage: seconds in the stage over the run, and the share of the
    /// summed stage time.
    pub stages: Vec<StageTime>,
    /// Mean rows waiting in each queue between operators (sampled once a
    /// second): a full queue sits in front of the bottleneck, empty ones
    /// everywhere mean the source is.
    pub queue_rows_mean: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    pub seconds: f64,
    pub microseconds_per_event: f64,
    pub share: f64,
}

impl BenchReport {
    /// The run's settings, with nothing measured yet.
    fn empty(opts: &BenchOptions) -> Self {
        Self {
            source_only: opts.source_only,
            model: opts.model,
            events: opts.events,
            partitions: opts.partitions,
            sustained_rate: opts.rate,
            target_latency_ms: opts.target_latency.map(|t| t.as_secs_f64() * 1e3),
            ..Self::default()
        }
    }
}

fn admin_config(brokers: &str) -> rdkafka::ClientConfig {
    use scorestream_operators::kafka::{ClientRole, KafkaOptions, client_config};
    client_config(brokers, &KafkaOptions::default(), ClientRole::Admin)
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), ToolError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = admin_config(brokers).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await?;
    for r in results {
        r.map_err(|(t, e)| {
            ToolError::Incomplete(format!("cannot create the bench topic `{t}`: {e}"))
        })?;
    }
    Ok(())
}

/// Frees the broker's copy of the events (tansu keeps them in memory).
async fn delete_topic(brokers: &str, topic: &str) -> Result<(), ToolError> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = admin_config(brokers).create()?;
    admin.delete_topics(&[topic], &AdminOptions::new()).await?;
    Ok(())
}
