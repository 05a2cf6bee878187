use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use scorestream_service::{DEFAULT_MAX_BODY_BYTES, ServeOptions, TOKENS_ENV, Tokens};

#[derive(clap::Args)]
pub struct Args {
    /// Where the API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where submitted jobs are persisted (and resumed from on restart).
    #[arg(long, default_value = "scorestream-data")]
    data_dir: PathBuf,
    /// What relative paths (model, features, profile) in submitted job
    /// configs resolve against.
    #[arg(long, default_value = ".")]
    base_dir: PathBuf,
    /// API tokens, one per line (`#` comments). Without it, tokens come
    /// from $SCORESTREAM_API_TOKENS (comma-separated).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Request bodies above this many bytes are refused (413).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// A job file to submit at start-up unless a job of its name is
    /// persisted already; repeatable. Its relative paths resolve against
    /// its own directory, as with `scorestream run`.
    #[arg(long, value_name = "JOB.toml")]
    submit: Vec<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tokens = Tokens::load(args.token_file.as_deref(), std::env::var(TOKENS_ENV).ok())?;
    let metrics = scorestream_pipeline::telemetry::install_prometheus()?;
    let absolute =
        |p: &PathBuf| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    let options = ServeOptions {
        listen: args.listen,
        data_dir: absolute(&args.data_dir)?,
        base_dir: absolute(&args.base_dir)?,
        tokens,
        max_body_bytes: args.max_body_bytes,
        submit: args.submit.iter().map(absolute).collect::<Result<_, _>>()?,
    };
    scorestream_service::serve(options, metrics, crate::commands::shutdown_signal()).await?;
    Ok(())
}
