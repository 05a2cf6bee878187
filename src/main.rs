//! `scorestream`: streaming batch scoring. Kafka in, features joined,
//! candle models, Parquet out.

mod commands;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc, for C code (librdkafka, zstd) as well as Rust: a job's threads
/// (tokio workers, the blocking stages, librdkafka's) allocate and free
/// batch-sized buffers on different threads, and glibc's per-thread arenas
/// kept that memory fragmented: RSS grew to more than twice the live heap.
/// Its options are built in from `.cargo/config.toml`.
#[cfg(all(unix, not(target_env = "msvc")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "scorestream",
    version,
    about = "Streaming batch scoring: Kafka in, features joined, candle models, Parquet out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or as one JSON object per line (with the job and
    /// operator spans); the level comes from RUST_LOG (default: warn).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "SCORESTREAM_LOG_FORMAT"
    )]
    log_format: commands::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo job end to end on embedded parts (in-process Kafka, generated events).
    Demo(commands::demo::Args),
    /// Run a scoring job until Ctrl-C / SIGTERM, then drain, flush and commit.
    Run {
        /// The job config (TOML).
        job: PathBuf,
        /// Stop by itself once every event read has been committed and nothing
        /// new arrived for this long (for batch replays and tests), e.g. "5s".
        #[arg(long, value_parser = humantime::parse_duration)]
        exit_on_idle: Option<std::time::Duration>,
        /// Serve Prometheus metrics (drift gauges included) at
        /// http://ADDR/metrics, e.g. 127.0.0.1:9464.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Host many jobs in one long-lived service with a REST API (submit, list,
    /// status, dry-run, stop, start, swap model), /metrics, /healthz, /readyz.
    Serve(commands::serve::Args),
    /// Check a job config: syntax, types, files, that features and model inputs
    /// fit, and that a Redis feature store holds the project, views and features named.
    Validate {
        job: PathBuf,
        /// Do not ask the feature store (for CI without access to it).
        #[arg(long)]
        offline: bool,
    },
    /// Run SQL over a job's output: tables `scores`, `dead_letters` and `drift`.
    Query(commands::query::Args),
    /// Merge the small committed files of closed output partitions into larger ones, atomically.
    Compact(commands::compact::Args),
    /// Re-submit a job's committed dead letters to Kafka, skipping those an earlier replay sent.
    Replay(commands::replay::Args),
    /// Build a reference profile (bins, samples, category frequencies) of training data, for drift detection.
    Profile(commands::profile::Args),
    /// Drift detection's outputs: `scorestream drift report`.
    Drift {
        #[command(subcommand)]
        command: commands::drift::Command,
    },
    /// Measure the reference workload end to end against a real broker:
    /// events/s, batch latency, CPU per million events, peak RSS.
    Bench(commands::bench::Args),
    /// Regenerate the demo's feature file and retrain its model (reproducible for a seed).
    Train(commands::train::Args),
}

/// candle asks how many threads it may use before every CPU matmul, and
/// unless `RAYON_NUM_THREADS` is set, the answer comes from parsing
/// `/proc/cpuinfo` each time: about 900 opens per 300,000 scored events,
/// and about 5% of the job's CPU in `scorestream bench` (BENCHMARKS.md,
/// 2026-12-03). Setting the variable to what the process may use (cgroup
/// quota and affinity included) makes it one environment read. A value the
/// user set is kept.
#[allow(unsafe_code)]
fn pin_rayon_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: called first thing in `main`, before any thread exists that
    // could read the environment concurrently.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
}

fn main() -> ExitCode {
    pin_rayon_threads();
    let cli = Cli::parse();
    commands::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Run {
                job,
                exit_on_idle,
                metrics_listen,
            } => commands::run::run(&job, exit_on_idle, metrics_listen).await,
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Validate { job, offline } => commands::validate::run(&job, offline).await,
            Command::Query(args) => commands::query::run(args).await,
            Command::Replay(args) => commands::replay::run(args).await,
            Command::Compact(args) => commands::compact::run(args),
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Train(args) => commands::train::run(args).await,
            Command::Profile(args) => commands::profile::run(args).await,
            Command::Drift { command } => commands::drift::run(command),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
