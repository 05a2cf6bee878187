use std::path::Path;

use scorestream_pipeline::config::load_file;
use scorestream_pipeline::runtime::Job;

/// Everything `run` checks before it starts, without connecting to Kafka or
/// writing output.
pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = load_file(path)?;
    let job = Job::build(config)?;
    let c = job.config();
    println!("{}: valid", path.display());
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
