//! `scorestream serve`: one long-lived process hosting many scoring jobs,
//! submitted, watched, stopped and re-pointed at new model versions over a
//! REST API, persisted so a restart resumes them.

mod api;
mod auth;
mod bodies;
#[cfg(test)]
mod confine_tests;
mod descriptors;
mod entry;
mod error;
mod handlers;
mod http;
mod jobs;
mod openapi;
#[cfg(test)]
mod openapi_tests;
mod prepare;
mod probe;
mod state;
mod status;
mod store;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tracing::info;

pub use auth::{TOKENS_ENV, Tokens};
pub use entry::RunState;
pub use error::ServiceError;
pub use jobs::Jobs;
pub use openapi::OPENAPI;
pub use status::JobStatus;
pub use store::JobStore;

/// Request bodies above this are refused with 413: job configs are a few
/// kilobytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Connections the API holds at most (lowered to a quarter of the
/// open-file limit when that is less, to leave the rest to the jobs).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// A client that has sent nothing, or part of a request's headers, this
/// long after connecting (or after its request's first byte) is cut off.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection between requests, or one whose client stopped
/// reading its response, is closed after this long without a byte moving.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A request body must arrive in full within this (job configs are a few
/// kilobytes); slower ones get 408.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Persisted jobs (`jobs/<name>/`) and the service's lock.
    pub data_dir: PathBuf,
    /// What relative paths in submitted configs resolve against.
    pub base_dir: PathBuf,
    /// Where submitted jobs may read and write, and which Kafka options
    /// they may set.
    pub confinement: scorestream_pipeline::config::Confinement,
    pub tokens: Tokens,
    pub max_body_bytes: usize,
    /// What the API holds its clients to (see the defaults above).
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    /// Job files submitted at start-up unless a job of that name is already
    /// persisted (for containers that ship their jobs).
    pub submit: Vec<PathBuf>,
}

/// Serves until `shutdown` resolves, then stops every job (each drains,
/// flushes and commits, and stays persisted to resume on the next start).
pub async fn serve(
    options: ServeOptions,
    metrics: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let open_files = descriptors::raise_limit();
    let max_connections = descriptors::connection_cap(options.max_connections, open_files);
    let store = JobStore::open(&options.data_dir)?;
    let jobs = Arc::new(Jobs::new(
        store,
        options.base_dir.clone(),
        options.confinement.clone(),
    ));
    let state = Arc::new(state::AppState {
        jobs: jobs.clone(),
        tokens: options.tokens.clone(),
        metrics,
        ready: false.into(),
        openapi: openapi::document(),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| ServiceError::io(format!("listening on {}", options.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServiceError::io("reading the listening address", e))?;
    info!(
        %addr,
        data_dir = %options.data_dir.display(),
        max_connections,
        open_file_limit = ?open_files,
        "scorestream service listening"
    );
    eprintln!(
        "scorestream serve: listening on http://{addr} (API at /v1/jobs, OpenAPI at /openapi.json)"
    );

    if max_connections < options.max_connections {
        eprintln!(
            "scorestream serve: at most {max_connections} API connections (a quarter of the open-file limit, {}), not {}",
            open_files.unwrap_or_default(),
            options.max_connections
        );
    }

    let body = api::BodyLimits {
        max_bytes: options.max_body_bytes,
        timeout: options.body_timeout,
    };
    let app = api::router(state.clone(), body);
    let deadlines = http::Deadlines {
        header: options.header_timeout,
        idle: options.idle_timeout,
    };
    let stop_http = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        app,
        max_connections,
        deadlines,
        stop_http.clone(),
    ));

    let resumed = jobs.resume().await?;
    for file in &options.submit {
        submit_file(&jobs, file).await?;
    }
    state.ready.store(true, Ordering::Relaxed);
    info!(resumed, "ready");

    shutdown.await;
    state.ready.store(false, Ordering::Relaxed);
    eprintln!("scorestream serve: stopping every job (drain, flush, commit)...");
    jobs.shutdown().await;
    stop_http.cancel();
    server
        .await
        .map_err(|e| ServiceError::Internal(format!("the HTTP server task: {e}")))?;
    eprintln!("scorestream serve: stopped");
    Ok(())
}

/// `--submit FILE`: submits the job unless one of its name is persisted
/// already (the persisted one, perhaps stopped or re-pinned, wins).
async fn submit_file(jobs: &Jobs, file: &std::path::Path) -> Result<(), ServiceError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ServiceError::io(format!("reading {}", file.display()), e))?;
    let name = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| t.get("job")?.get("name")?.as_str().map(str::to_owned));
    if let Some(name) = &name
        && jobs.status(name).is_ok()
    {
        info!(job = %name, file = %file.display(), "already persisted; not submitted again");
        return Ok(());
    }
    let base = file.parent().map(std::path::Path::to_path_buf);
    jobs.submit(text, base)
        .await
        .map(|_| ())
        .map_err(|e| ServiceError::Setup(format!("--submit {}: {e}", file.display())))
}
