//! Dry runs: everything `validate` checks, plus what only the outside world
//! can answer — the topics exist, the feature store answers, the output is
//! reachable — without starting the job.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use scorestream_operators::features::FeaturesConfig;
use scorestream_pipeline::runtime::Job;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// How long each outside check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One outside check of a dry run.
// Fields in alphabetical order: see `bodies.rs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Check {
    /// The config key the check is about.
    #[schema(schema_with = check_names)]
    pub check: &'static str,
    /// What was found, or why the check failed.
    pub detail: String,
    pub ok: bool,
}

/// The keys `probe` checks, for the document (the field is a `&str`).
fn check_names() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The config key the check is about."))
        .enum_values(Some(CHECKS))
        .build()
}

const TOPICS: &str = "source.topics";
const STORE: &str = "features.store";
const INPUTS: &str = "model.inputs";
const OUTPUT: &str = "sink.path";
const CHECKS: [&str; 4] = [TOPICS, STORE, INPUTS, OUTPUT];

impl Check {
    fn new(check: &'static str, result: Result<String, String>) -> Self {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        Self { check, ok, detail }
    }
}

/// Runs every check against a job that built (so its config, features and
/// model inputs already fit together).
pub(crate) async fn probe(job: &Job) -> Vec<Check> {
    let c = job.config();
    let inputs = Check::new(
        INPUTS,
        Ok(format!(
            "model {} v{} binds every input to the joined batch ({} columns scored on {})",
            job.model_name(),
            job.model_version(),
            job.output_schema().fields().len(),
            job.device()
        )),
    );
    let source = c.source.clone();
    let topics = tokio::task::spawn_blocking(move || topics(&source))
        .await
        .unwrap_or_else(|e| Err(format!("the check failed: {e}")));
    let features = feature_store(&c.features).await;
    let output = output(c);
    vec![
        Check::new(TOPICS, topics),
        Check::new(STORE, features),
        inputs,
        Check::new(OUTPUT, output),
    ]
}

/// Asks the brokers for each topic's metadata.
fn topics(
    source: &scorestream_operators::source::kafka::KafkaSourceConfig,
) -> Result<String, String> {
    let role = scorestream_operators::kafka::ClientRole::Metadata {
        group_id: &source.group_id,
    };
    let consumer: BaseConsumer = source
        .client_config(role)
        .create()
        .map_err(|e| source.options.redact(&e.to_string()))?;
    let mut found = Vec::new();
    for topic in &source.topics {
        let md = consumer
            .fetch_metadata(Some(topic), PROBE_TIMEOUT)
            .map_err(|e| {
                format!(
                    "brokers {} did not answer for topic `{topic}`: {}",
                    source.brokers,
                    source.options.redact(&e.to_string())
                )
            })?;
        match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                found.push(format!("{topic} ({} partitions)", t.partitions().len()));
            }
            _ => {
                return Err(format!(
                    "topic `{topic}` does not exist on {}",
                    source.brokers
                ));
            }
        }
    }
    Ok(found.join(", "))
}

/// Connects and samples what the job will read: a project, view or feature
/// that matches nothing fails the check, as `validate` does.
async fn feature_store(features: &FeaturesConfig) -> Result<String, String> {
    let probe = scorestream_operators::features::probe_store(features);
    let report = match tokio::time::timeout(PROBE_TIMEOUT * 2, probe).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {:?}", PROBE_TIMEOUT * 2)),
    };
    if report.problems.is_empty() {
        let mut detail = report.summary;
        for n in report.notes {
            detail.push_str(&format!("; note: {n}"));
        }
        return Ok(detail);
    }
    Err(report
        .problems
        .iter()
        .map(|(k, m)| format!("features.{k}: {m}"))
        .collect::<Vec<_>>()
        .join("; "))
}

/// A local output's directory must be creatable; an object store's bucket
/// must answer a listing.
fn output(c: &scorestream_pipeline::config::JobConfig) -> Result<String, String> {
    if let Some(dir) = c.sink.path.local() {
        let mut existing = dir;
        while !existing.exists() {
            existing = existing
                .parent()
                .ok_or_else(|| format!("{} has no existing parent", dir.display()))?;
        }
        let meta = std::fs::metadata(existing).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", existing.display()));
        }
        if meta.permissions().readonly() {
            return Err(format!("{} is read-only", existing.display()));
        }
        return Ok(format!("{} (writable)", dir.display()));
    }
    let store = c.sink.store().map_err(|e| e.to_string())?;
    tokio::task::block_in_place(|| store.list_files("_scorestream/commits"))
        .map(|files| format!("{} answers ({} commit entries)", c.sink.path, files.len()))
        .map_err(|e| e.to_string())
}
