use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::prelude::SessionContext;
use scorestream_operators::drift::DRIFT_DIR;
use scorestream_operators::sink::parquet::{
    DEAD_LETTERS_DIR, EVENT_DATE, EVENT_HOUR, OutputPath, ParquetSinkConfig, SCORES_DIR, Store,
};
use url::Url;

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub(crate) enum Format {
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
pub(crate) struct Args {
    /// SQL over the tables `scores` (with its partition columns, such as
    /// `event_date` and `event_hour`), `dead_letters` and `drift`.
    sql: String,
    /// The job's output (its `sink.path`): a directory or s3://bucket/prefix,
    /// reached with the AWS_* environment variables.
    #[arg(long, conflicts_with = "job")]
    path: Option<String>,
    /// Read the output directory from this job config instead.
    #[arg(long)]
    job: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Whether `dir` holds a committed Parquet file, at any depth. Temporary
/// files of a write in progress end in `.tmp` and are not counted, nor read.
fn has_parquet(store: &Store, dir: &str) -> anyhow::Result<bool> {
    let hidden = |s: &str| s.starts_with(['.', '_']);
    Ok(store.list_tree(dir)?.iter().any(|(d, name)| {
        name.ends_with(".parquet")
            && !hidden(name)
            && !d.strip_prefix(dir).unwrap_or(d).split('/').any(hidden)
    }))
}

/// The Hive partition columns under `dir`, outermost first, read off the
/// first `name=value` directory at each level. `event_date` is a date and
/// `event_hour` an integer; any other is a string.
fn partition_columns(store: &Store, dir: &str) -> anyhow::Result<Vec<(String, DataType)>> {
    let mut cols = Vec::new();
    let mut at = dir.to_owned();
    loop {
        let next = store.list_dirs(&at)?.into_iter().find_map(|name| {
            let (k, _) = name.split_once('=')?;
            (!name.starts_with(['.', '_'])).then(|| (k.to_owned(), name.clone()))
        });
        let Some((k, name)) = next else { break };
        let t = match k.as_str() {
            EVENT_DATE => DataType::Date32,
            EVENT_HOUR => DataType::Int32,
            _ => DataType::Utf8,
        };
        cols.push((k, t));
        at = format!("{at}/{name}");
    }
    Ok(cols)
}

/// Registers every committed Parquet file of a table, partition columns
/// included, so a `WHERE` on them skips whole directories.
async fn register(
    ctx: &SessionContext,
    store: &Store,
    name: &str,
    dir: &str,
) -> anyhow::Result<bool> {
    if !has_parquet(store, dir)? {
        return Ok(false);
    }
    let url = match store.local_root() {
        Some(root) => format!("{}/", root.join(dir).canonicalize()?.display()),
        None => format!("{}/", store.describe(dir)),
    };
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_columns(store, dir)?);
    ctx.register_listing_table(name, &url, options, None, None)
        .await
        .with_context(|| format!("registering table `{name}` from {}", store.describe(dir)))?;
    Ok(true)
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let sink = match (&args.path, &args.job) {
        (Some(p), _) => ParquetSinkConfig::at_output(
            OutputPath::parse(p).map_err(|e| anyhow::anyhow!("--path: {e}"))?,
        ),
        (None, Some(job)) => scorestream_pipeline::config::load_file(job)?.sink,
        (None, None) => ParquetSinkConfig::at("out/demo"),
    };
    if let Some(root) = sink.path.local()
        && !root.is_dir()
    {
        bail!(
            "no output directory at {} (pass --path DIR or --job JOB.toml)",
            root.display()
        );
    }
    let store = sink
        .store()
        .with_context(|| format!("opening {}", sink.path))?;
    let ctx = SessionContext::new();
    if let Some((object_store, url)) = store.object_store() {
        ctx.register_object_store(&Url::parse(&url.bucket_url())?, object_store);
    }
    let scores = register(&ctx, &store, "scores", SCORES_DIR).await?;
    let dead = register(&ctx, &store, "dead_letters", DEAD_LETTERS_DIR).await?;
    let drift = register(&ctx, &store, "drift", DRIFT_DIR).await?;
    if !scores && !dead && !drift {
        bail!("{} holds no committed Parquet files yet", sink.path);
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
