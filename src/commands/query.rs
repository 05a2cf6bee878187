use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use scorestream_operators::drift::DRIFT_DIR;
use scorestream_operators::sink::parquet::{DEAD_LETTERS_DIR, SCORES_DIR};

#[derive(clap::Args)]
pub struct Args {
    /// SQL over the tables `scores`, `dead_letters` and `drift`.
    sql: String,
    /// The job's output directory (its `sink.path`).
    #[arg(long, conflicts_with = "job")]
    path: Option<PathBuf>,
    /// Read the output directory from this job config instead.
    #[arg(long)]
    job: Option<PathBuf>,
}

/// Registers every committed Parquet file of a table. Temporary files of a
/// write in progress end in `.tmp`, so the `.parquet` filter skips them.
async fn register(ctx: &SessionContext, name: &str, dir: &Path) -> anyhow::Result<bool> {
    let has_files = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        })
        .unwrap_or(false);
    if has_files {
        let url = format!("{}/", dir.canonicalize()?.display());
        ctx.register_parquet(
            name,
            &url,
            ParquetReadOptions::default().file_extension(".parquet"),
        )
        .await
        .with_context(|| format!("registering table `{name}` from {}", dir.display()))?;
    }
    Ok(has_files)
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
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
    Ok(())
}
