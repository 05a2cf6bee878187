use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use scorestream_operators::sink::parquet::OutputPath;
use scorestream_pipeline::config::{Confinement, Roots};
use scorestream_service::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS, ServeOptions, TOKENS_ENV, Tokens,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where submitted jobs are persisted (and resumed from on restart).
    #[arg(long, default_value = "scorestream-data")]
    data_dir: PathBuf,
    /// What relative paths (model, features, profile, output, TLS files)
    /// in submitted job configs resolve against; the default of every root.
    #[arg(long, default_value = ".")]
    base_dir: PathBuf,
    /// Where jobs may read models (repeatable; default: --base-dir).
    #[arg(long, value_name = "DIR")]
    model_root: Vec<PathBuf>,
    /// Where jobs may read feature files, drift profiles and TLS files
    /// (repeatable; default: --base-dir).
    #[arg(long, value_name = "DIR")]
    input_root: Vec<PathBuf>,
    /// Where jobs may write output: a directory or s3://bucket/prefix
    /// (repeatable; default: --base-dir). The data directory never is.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    output_root: Vec<String>,
    /// A librdkafka option jobs may set beyond the built-in allow-list
    /// (repeatable; `prefix.*` allows a family, e.g. `sasl.kerberos.*`).
    #[arg(long, value_name = "KEY")]
    allow_kafka_option: Vec<String>,
    /// API tokens, one per line (`#` comments). Without it, tokens come
    /// from $SCORESTREAM_API_TOKENS (comma-separated).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Request bodies above this many bytes are refused (413).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// API connections held at most; never more than a quarter of the
    /// open-file limit, leaving the rest to the jobs. At the cap, the
    /// oldest connection that has sent nothing is closed to make room.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// How long a client has to send a request's headers, from connecting
    /// (or from the request's first byte).
    #[arg(long, default_value_t = DEFAULT_HEADER_TIMEOUT.into())]
    header_timeout: humantime::Duration,
    /// How long a connection may sit with no byte moving while no request
    /// is being handled (keep-alive between requests, or a response the
    /// client does not read).
    #[arg(long, default_value_t = DEFAULT_IDLE_TIMEOUT.into())]
    idle_timeout: humantime::Duration,
    /// How long a request body may take to arrive in full (408 after).
    #[arg(long, default_value_t = DEFAULT_BODY_TIMEOUT.into())]
    body_timeout: humantime::Duration,
    /// A job file to submit at start-up unless a job of its name is
    /// persisted already; repeatable. Its relative paths resolve against
    /// its own directory, as with `scorestream run`.
    #[arg(long, value_name = "JOB.toml")]
    submit: Vec<PathBuf>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.max_connections > 0,
        "--max-connections must be at least 1"
    );
    let tokens = Tokens::load(args.token_file.as_deref(), std::env::var(TOKENS_ENV).ok())?;
    let metrics = scorestream_pipeline::telemetry::install_prometheus()?;
    let absolute =
        |p: &PathBuf| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    let base_dir = std::fs::canonicalize(&args.base_dir)
        .with_context(|| format!("--base-dir {}", args.base_dir.display()))?;
    let data_dir = absolute(&args.data_dir)?;
    let confinement = confinement(&args, &base_dir, &data_dir)?;
    let options = ServeOptions {
        listen: args.listen,
        data_dir,
        base_dir,
        confinement,
        tokens,
        max_body_bytes: args.max_body_bytes,
        max_connections: args.max_connections,
        header_timeout: positive("--header-timeout", args.header_timeout)?,
        idle_timeout: positive("--idle-timeout", args.idle_timeout)?,
        body_timeout: positive("--body-timeout", args.body_timeout)?,
        submit: args.submit.iter().map(absolute).collect::<Result<_, _>>()?,
    };
    scorestream_service::serve(options, metrics, crate::commands::shutdown_signal()).await?;
    Ok(())
}

/// The roots jobs are confined to; each defaults to the base directory.
fn confinement(args: &Args, base: &Path, data_dir: &Path) -> anyhow::Result<Confinement> {
    let or_base = |list: &[PathBuf]| {
        if list.is_empty() {
            vec![base.to_owned()]
        } else {
            list.to_vec()
        }
    };
    let outputs = if args.output_root.is_empty() {
        vec![OutputPath::Local(base.to_owned())]
    } else {
        args.output_root
            .iter()
            .map(|o| OutputPath::parse(o).map_err(|e| anyhow::anyhow!("--output-root {o}: {e}")))
            .collect::<anyhow::Result<_>>()?
    };
    let mut private = vec![data_dir.to_owned()];
    private.extend(args.token_file.iter().cloned());
    let roots = Roots {
        models: or_base(&args.model_root),
        inputs: or_base(&args.input_root),
        outputs,
        private,
        also_options: args.allow_kafka_option.clone(),
    };
    Confinement::new(roots).map_err(anyhow::Error::msg)
}

/// Zero would close every connection at once.
fn positive(flag: &str, d: humantime::Duration) -> anyhow::Result<Duration> {
    anyhow::ensure!(!d.is_zero(), "{flag} must be more than zero");
    Ok(d.into())
}
