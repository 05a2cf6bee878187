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
        c.sink.path.display(),
        job.output_schema().fields().len()
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
