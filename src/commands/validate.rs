use std::path::Path;

use scorestream_operators::drift::{DriftConfig, WindowConfig};
use scorestream_operators::features::{FeaturesConfig, ProbeReport, probe_store};
use scorestream_pipeline::config::load_file;
use scorestream_pipeline::runtime::Job;
use scorestream_pipeline::{PipelineError, Problem};

/// Everything `run` checks before it starts, without connecting to Kafka or
/// writing output; and unless `offline`, whether the feature store holds
/// what the job reads (a wrong name there would otherwise score on nulls).
pub(crate) async fn run(path: &Path, offline: bool) -> anyhow::Result<()> {
    let config = load_file(path)?;
    let store = if offline {
        Ok(None)
    } else {
        check_store(&config.features).await.map(Some)
    };
    let (job, store) = combine(path, Job::build(config), store)?;
    println!("{}: valid", path.display());
    if let Some(r) = &store {
        print_store(r);
    }
    print_job(&job);
    Ok(())
}

/// Every problem at once: the store's are added to the build's, so one run
/// of `validate` lists all there is to fix.
fn combine(
    path: &Path,
    job: Result<Job, PipelineError>,
    store: Result<Option<ProbeReport>, Vec<Problem>>,
) -> anyhow::Result<(Job, Option<ProbeReport>)> {
    match (job, store) {
        (Ok(job), Ok(store)) => Ok((job, store)),
        (Err(PipelineError::InvalidConfig { path, mut problems }), Err(more)) => {
            problems.extend(more);
            Err(PipelineError::InvalidConfig { path, problems }.into())
        }
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(problems)) => Err(PipelineError::InvalidConfig {
            path: path.display().to_string(),
            problems,
        }
        .into()),
    }
}

fn print_store(r: &ProbeReport) {
    println!("  store:    {}", r.summary);
    for n in &r.notes {
        println!("  note:     {n}");
    }
}

/// What the job will do once running, in the order its data flows.
fn print_job(job: &Job) {
    let c = job.config();
    println!("  job:      {}", c.job.name);
    println!(
        "  source:   kafka {} topics {:?} group {}",
        c.source.brokers, c.source.topics, c.source.group_id
    );
    println!("  schema:   {} fields", c.schema.fields.len());
    println!(
        "  model:    {} v{} ({}) on {} in {}",
        job.model_name(),
        job.model_version(),
        c.model.path.display(),
        job.device(),
        job.precision()
    );
    println!(
        "  batches:  up to {} rows or {:?}",
        c.batch.max_rows, c.batch.max_wait
    );
    println!(
        "  output:   {} ({} columns)",
        c.sink.path,
        job.output_schema().fields().len()
    );
    print_layout(job);
    if let Some(d) = &c.drift {
        print_drift(job, d);
    }
}

fn print_layout(job: &Job) {
    let c = job.config();
    let r = &c.sink.roll;
    println!(
        "  layout:   {}, {:?}; files roll at {} MiB, {} rows, {} open or {} idle",
        partition_layout(job),
        c.sink.compression,
        r.max_bytes.0 >> 20,
        r.max_rows,
        humantime::format_duration(r.interval.0),
        humantime::format_duration(r.inactivity.0)
    );
}

/// Names the time column only when a partition is derived from it, since
/// that is the one choice not visible in the partition names themselves.
fn partition_layout(job: &Job) -> String {
    let partitions: Vec<String> = job
        .partitions()
        .columns(job.output_schema())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if partitions.is_empty() {
        "one directory".to_owned()
    } else if partitions
        .iter()
        .any(|p| p == "event_date" || p == "event_hour")
    {
        format!(
            "partitioned by {} (from {})",
            partitions.join("/"),
            job.config().sink.partition_time
        )
    } else {
        format!("partitioned by {}", partitions.join("/"))
    }
}

fn print_drift(job: &Job, d: &DriftConfig) {
    let window = match d.window {
        WindowConfig::Rows(n) => format!("{n} rows"),
        WindowConfig::EventTime(t) => format!("{:?} of event time", t.0),
    };
    println!(
        "  drift:    {} against {}, windows of {window}, alerts {}",
        job.drift_columns().join(", "),
        d.profile.display(),
        d.alerts_topic
            .as_deref()
            .map_or("to the log".to_owned(), |t| format!(
                "to the log and topic {t}"
            ))
    );
}

/// The store's answer as config problems, keyed under `features.`.
async fn check_store(features: &FeaturesConfig) -> Result<ProbeReport, Vec<Problem>> {
    match probe_store(features).await {
        Ok(r) if r.problems.is_empty() => Ok(r),
        Ok(r) => Err(r
            .problems
            .into_iter()
            .map(|(k, m)| Problem::new(format!("features.{k}"), m))
            .collect()),
        Err(e) => Err(vec![Problem::new(
            "features.store.url",
            format!(
                "{e}; `scorestream validate --offline` checks the file without asking the store"
            ),
        )]),
    }
}
