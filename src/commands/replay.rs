use anyhow::bail;
use std::path::PathBuf;

use scorestream_pipeline::config::load_file;
use scorestream_schemas::DeadLetterStage;
use scorestream_tools::replay::{ReplayOptions, ReplayReport, parse_stage, replay};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The job config (TOML): its `sink.path` holds the dead letters, its
    /// `[source]` names the brokers and client settings to produce with.
    job: PathBuf,
    /// Only dead letters rejected at this stage: parse, schema, oversized or features.
    #[arg(long, value_parser = parse_stage)]
    stage: Option<DeadLetterStage>,
    /// Only dead letters for which this SQL predicate over the `dead_letters`
    /// columns holds, e.g. "source_offset > 1000 AND reason LIKE '%amount%'".
    #[arg(long = "where", value_name = "SQL")]
    predicate: Option<String>,
    /// Produce to this topic instead of each dead letter's source topic.
    #[arg(long, value_name = "TOPIC")]
    to: Option<String>,
    /// Show what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also re-send dead letters an earlier replay already re-submitted.
    #[arg(long)]
    again: bool,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let config = load_file(&args.job)?;
    let options = ReplayOptions {
        stage: args.stage,
        predicate: args.predicate,
        to: args.to,
        dry_run: args.dry_run,
        again: args.again,
    };
    if !config.dead_letters.parquet {
        eprintln!(
            "note: this job writes no Parquet dead letters (dead_letters.parquet = false); \
             replay reads only those written while it was on"
        );
    }
    let Some(root) = config.sink.path.local() else {
        bail!(
            "{} is an object store: replay reads Parquet dead letters from a local output \
             directory and does not read s3:// outputs yet",
            config.sink.path
        );
    };
    let report = replay(&config.source, root, &options).await?;
    if options.dry_run {
        for r in &report.selected {
            println!(
                "would send {} ({}, {} bytes) to {}: {}",
                r.of,
                r.stage.as_str(),
                r.bytes,
                r.to,
                r.reason
            );
        }
    }
    print_summary(&report, options.dry_run);
    Ok(())
}

fn print_summary(r: &ReplayReport, dry_run: bool) {
    let verb = if dry_run {
        "would re-submit"
    } else {
        "re-submitted"
    };
    let sending = if dry_run {
        r.selected.len()
    } else {
        r.resubmitted
    };
    println!(
        "scorestream replay{}: {} dead letter(s) found, {} skipped as already replayed, {sending} {verb}",
        if dry_run { " (dry run)" } else { "" },
        r.found,
        r.already_replayed,
    );
    for (stage, c) in &r.per_stage {
        let n = if dry_run {
            r.selected
                .iter()
                .filter(|s| s.stage.as_str() == *stage)
                .count()
        } else {
            c.resubmitted
        };
        println!(
            "  {stage:<10} found {:>6}  already replayed {:>6}  {verb} {n:>6}",
            c.found, c.already_replayed
        );
    }
    if let Some(log) = &r.log {
        println!("  replay log: {}", log.display());
    }
}
