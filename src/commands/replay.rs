use anyhow::bail;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use scorestream_pipeline::config::load_file;
use scorestream_schemas::{DeadLetterStage, ReasonCode};
use scorestream_tools::replay::{
    Progress, ReplayOptions, ReplayReport, parse_stage, replay, rfc3339_ms,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The job config (TOML): its `sink.path` holds the dead letters, its
    /// `[source]` names the brokers and client settings to produce with.
    job: PathBuf,
    /// Only dead letters rejected at this stage: parse, schema, oversized or features.
    #[arg(long, value_parser = parse_stage)]
    stage: Option<DeadLetterStage>,
    /// Only dead letters with this reason code: invalid_json, not_an_object,
    /// missing_field, wrong_type, oversized, feature_missing, feature_stale
    /// or schema_unavailable.
    #[arg(long, value_parser = ReasonCode::parse)]
    reason: Option<ReasonCode>,
    /// Only dead letters rejected at or after this time (RFC 3339, e.g.
    /// 2024-05-01T12:00:00Z).
    #[arg(long, value_parser = rfc3339_ms, value_name = "TIME")]
    since: Option<i64>,
    /// Only dead letters rejected before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339_ms, value_name = "TIME")]
    until: Option<i64>,
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
    /// Send at most this many messages per second.
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
}

/// How often progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let config = load_file(&args.job)?;
    let options = ReplayOptions {
        stage: args.stage,
        reason: args.reason,
        since_ms: args.since,
        until_ms: args.until,
        predicate: args.predicate,
        to: args.to,
        dry_run: args.dry_run,
        again: args.again,
        rate: args.rate,
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
    let mut last = Instant::now();
    let dry_run = options.dry_run;
    let mut progress = |p: Progress<'_>| match p {
        Progress::Selected(r) if dry_run => println!(
            "would send {} ({}, {}, {} bytes) to {}: {}",
            r.of,
            r.stage.as_str(),
            r.code.map_or("no reason code", |c| c.as_str()),
            r.bytes,
            r.to,
            r.reason
        ),
        Progress::Selected(_) => {}
        Progress::Batch(r) => {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                eprintln!(
                    "replay: {} found, {} already replayed, {} {}",
                    r.found,
                    r.already_replayed,
                    if dry_run { r.selected } else { r.resubmitted },
                    if dry_run { "would be sent" } else { "sent" }
                );
            }
        }
    };
    let report = replay(&config.source, root, &options, &mut progress).await?;
    print_summary(&report, options.dry_run);
    Ok(())
}

fn print_summary(r: &ReplayReport, dry_run: bool) {
    let verb = if dry_run {
        "would re-submit"
    } else {
        "re-submitted"
    };
    let sending = if dry_run { r.selected } else { r.resubmitted };
    println!(
        "scorestream replay{}: {} dead letter(s) found, {} skipped as already replayed, {sending} {verb}",
        if dry_run { " (dry run)" } else { "" },
        r.found,
        r.already_replayed,
    );
    for (stage, c) in &r.per_stage {
        let n = if dry_run {
            c.found - c.already_replayed
        } else {
            c.resubmitted
        };
        println!(
            "  {stage:<10} found {:>6}  already replayed {:>6}  {verb} {n:>6}",
            c.found, c.already_replayed
        );
    }
    for log in &r.logs {
        println!("  replay log: {}", log.display());
    }
}
