use std::path::Path;

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
    // Every problem at once: the store's are added to the build's.
    let job = match (Job::build(config), store) {
        (Ok(job), Ok(store)) => (job, store),
        (Err(PipelineError::InvalidConfig { path, mut problems }), Err(more)) => {
            problems.extend(more);
            return Err(PipelineError::InvalidConfig { path, problems }.into());
        }
        (Err(e), _) => return Err(e.into()),
        (Ok(_), Err(problems)) => {
            return Err(PipelineError::InvalidConfig {
                path: path.display().to_string(),
                problems,
            }
            .into());
        }
    };
    let (job, store) = job;
    let c = job.config();
    println!("{}: valid", path.display());
    if let Some(r) = &store {
        println!("  store:    {}", r.summary);
        for n in &r.notes {
            println!("  note:     {n}");
        }
    }
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
    let partitions: Vec<String> = job
        .partitions()
        .columns(job.output_schema())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let r = &c.sink.roll;
    let layout = if partitions.is_empty() {
        "one directory".to_owned()
    } else if partitions
        .iter()
        .any(|p| p == "event_date" || p == "event_hour")
    {
        format!(
            "partitioned by {} (from {})",
            partitions.join("/"),
            c.sink.partition_time
        )
    } else {
        format!("partitioned by {}", partitions.join("/"))
    };
    println!(
        "  layout:   {layout}, {:?}; files roll at {} MiB, {} rows, {} open or {} idle",
        c.sink.compression,
        r.max_bytes.0 >> 20,
        r.max_rows,
        humantime::format_duration(r.interval.0),
        humantime::format_duration(r.inactivity.0)
    );
    if let Some(d) = &c.drift {
        let window = match d.window {
            scorestream_operators::drift::WindowConfig::Rows(n) => format!("{n} rows"),
            scorestream_operators::drift::WindowConfig::EventTime(t) => {
                format!("{:?} of event time", t.0)
            }
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
    Ok(())
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
