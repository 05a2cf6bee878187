use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::prelude::SessionContext;
use scorestream_operators::drift::DRIFT_DIR;
use scorestream_operators::sink::parquet::{DEAD_LETTERS_DIR, EVENT_DATE, EVENT_HOUR, SCORES_DIR};

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

#[derive(clap::Args)]
pub struct Args {
    /// SQL over the tables `scores` (with its partition columns, such as
    /// `event_date` and `event_hour`), `dead_letters` and `drift`.
    sql: String,
    /// The job's output directory (its `sink.path`).
    #[arg(long, conflicts_with = "job")]
    path: Option<PathBuf>,
    /// Read the output directory from this job config instead.
    #[arg(long)]
    job: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Whether `dir` holds a committed Parquet file, at any depth. Temporary
/// files of a write in progress end in `.tmp` and are not counted, nor read.
fn has_parquet(dir: &Path) -> bool {
    let Ok(it) = std::fs::read_dir(dir) else {
        return false;
    };
    it.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            !name.starts_with(['.', '_']) && has_parquet(&e.path())
        } else {
            name.ends_with(".parquet") && !name.starts_with('.')
        }
    })
}

/// The Hive partition columns under `dir`, outermost first, read off the
/// first `name=value` directory at each level. `event_date` is a date and
/// `event_hour` an integer; any other is a string.
fn partition_columns(dir: &Path) -> Vec<(String, DataType)> {
    let mut cols = Vec::new();
    let mut at = dir.to_owned();
    loop {
        let Ok(it) = std::fs::read_dir(&at) else {
            break;
        };
        let mut next = None;
        for e in it.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir())
                && !name.starts_with(['.', '_'])
                && let Some((k, _)) = name.split_once('=')
            {
                next = Some((k.to_owned(), e.path()));
                break;
            }
        }
        let Some((k, path)) = next else { break };
        let t = match k.as_str() {
            EVENT_DATE => DataType::Date32,
            EVENT_HOUR => DataType::Int32,
            _ => DataType::Utf8,
        };
        cols.push((k, t));
        at = path;
    }
    cols
}

/// Registers every committed Parquet file of a table, partition columns
/// included, so a `WHERE` on them skips whole directories.
async fn register(ctx: &SessionContext, name: &str, dir: &Path) -> anyhow::Result<bool> {
    if !has_parquet(dir) {
        return Ok(false);
    }
    let url = format!("{}/", dir.canonicalize()?.display());
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_columns(dir));
    ctx.register_listing_table(name, &url, options, None, None)
        .await
        .with_context(|| format!("registering table `{name}` from {}", dir.display()))?;
    Ok(true)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let root = match (&args.path, &args.job) {
        (Some(p), _) => p.clone(),
        (None, Some(job)) => scorestream_pipeline::config::load_file(job)?.sink.path,
        (None, None) => PathBuf::from("out/demo"),
    };
    if !root.is_dir() {
        bail!(
            "no output directory at {} (pass --path DIR or --job JOB.toml)",
            root.display()
        );
    }
    let ctx = SessionContext::new();
    let scores = register(&ctx, "scores", &root.join(SCORES_DIR)).await?;
    let dead = register(&ctx, "dead_letters", &root.join(DEAD_LETTERS_DIR)).await?;
    let drift = register(&ctx, "drift", &root.join(DRIFT_DIR)).await?;
    if !scores && !dead && !drift {
        bail!("{} holds no committed Parquet files yet", root.display());
    }
    let df = ctx.sql(&args.sql).await.context("the query is invalid")?;
    let batches = df.collect().await.context("the query failed")?;
    let mut out = std::io::stdout().lock();
    print(&mut out, &batches, args.format)
}

fn print(
    out: &mut impl std::io::Write,
    batches: &[RecordBatch],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Table => writeln!(
            out,
            "{}",
            arrow::util::pretty::pretty_format_batches(batches)?
        )?,
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut *out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            w.write_batches(&batches.iter().collect::<Vec<_>>())?;
            w.finish()?;
        }
    }
    Ok(())
}
