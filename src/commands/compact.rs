use std::path::PathBuf;

use anyhow::{Context, bail};
use scorestream_operators::config::ByteSize;
use scorestream_operators::sink::parquet::compact::{CompactOptions, CompactReport, compact};
use scorestream_operators::sink::parquet::compact_object::compact_store;
use scorestream_operators::sink::parquet::{OutputPath, ParquetSinkConfig, writer_properties};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The job whose output to compact (its `sink.path`, compression and row groups).
    #[arg(long, conflicts_with = "path")]
    job: Option<PathBuf>,
    /// The output: a directory or `s3://bucket/prefix` (reached over the
    /// `AWS_*` environment), written with the default sink settings.
    #[arg(long)]
    path: Option<String>,
    /// Files smaller than this are merged into files of about this size.
    #[arg(long, default_value = "128MiB", value_parser = ByteSize::parse)]
    target_size: ByteSize,
    /// Leave partitions written to more recently than this, e.g. "1h" or "0s".
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    older_than: std::time::Duration,
    /// Print what would be merged and change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let sink = match (&args.job, &args.path) {
        (Some(job), _) => scorestream_pipeline::config::load_file(job)?.sink,
        (None, Some(p)) => ParquetSinkConfig::at_output(
            OutputPath::parse(p).map_err(|e| anyhow::anyhow!("--path: {e}"))?,
        ),
        (None, None) => bail!("pass --job JOB.toml or --path DIR"),
    };
    let opts = CompactOptions {
        target_bytes: args.target_size.0.max(1),
        older_than: args.older_than,
        dry_run: args.dry_run,
        props: writer_properties(&sink),
    };
    let report = match sink.path.local() {
        Some(root) => {
            if !root.is_dir() {
                bail!("no output directory at {}", root.display());
            }
            compact(root, &opts).with_context(|| format!("compacting {}", root.display()))?
        }
        None => compact_object_store(&sink, &opts)?,
    };
    if report.recovered > 0 {
        println!("finished {} interrupted compaction(s)", report.recovered);
    }
    let verb = if args.dry_run {
        "would merge"
    } else {
        "merged"
    };
    for m in &report.merged {
        let after = if args.dry_run {
            format!("about {}", m.files_after)
        } else {
            format!(
                "{} ({} rows, {} -> {} bytes)",
                m.files_after, m.rows, m.bytes_before, m.bytes_after
            )
        };
        println!("{verb} {}: {} files -> {after}", m.dir, m.files_before);
    }
    if report.merged.is_empty() {
        println!("nothing to compact");
    }
    if !report.busy.is_empty() {
        println!(
            "skipped {} partition(s) a writer has open: {}",
            report.busy.len(),
            report.busy.join(", ")
        );
    }
    if !report.recent.is_empty() {
        println!(
            "skipped {} partition(s) written to in the last {}",
            report.recent.len(),
            humantime::format_duration(args.older_than)
        );
    }
    Ok(())
}

/// An S3 output: merged files swapped in through compaction records (see
/// `compact_object`); the store's requests run on the command's runtime.
fn compact_object_store(
    sink: &ParquetSinkConfig,
    opts: &CompactOptions,
) -> anyhow::Result<CompactReport> {
    let scratch = sink
        .spool_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("scorestream-compact-{}", std::process::id()));
    let store = sink
        .store()
        .with_context(|| format!("opening {}", sink.path))?;
    let report = compact_store(&store, opts, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    report.with_context(|| format!("compacting {}", sink.path))
}
