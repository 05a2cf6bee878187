//! The API's handlers. Each one's `#[utoipa::path]` is both its route
//! (`openapi::routes` registers it there) and its entry in the OpenAPI
//! document: the statuses it answers with and their bodies. What the
//! layers around every handler add (401, 408, 413) is documented once, in
//! `openapi.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::bodies::{self, DryRun, ErrorBody, Health, JobList, ModelRequest, Ready};
use crate::state::AppState;
use crate::{JobStatus, ServiceError, probe};

const JOB_CONFIG: &str = "A job config, as `scorestream run` reads from a file. Relative paths resolve against the service's --base-dir.";
const BAD_NAME: &str = "The name is not a valid job name.";
const NO_SUCH_JOB: &str = "No job of that name.";
const NOT_SAVED: &str = "The change could not be persisted in the data directory.";

/// The job a request is about.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobPath {
    /// The job's name (`[job] name`): 1 to 64 letters, digits, '-' or '_'.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    name: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StopQuery {
    /// Answer once the job has drained and committed (default true).
    wait: Option<bool>,
}

#[utoipa::path(get, path = "/healthz", summary = "Liveness: the process answers.",
    responses((status = 200, description = "Alive.", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz",
    summary = "Readiness: persisted jobs are resumed and the service is not shutting down.",
    responses(
        (status = 200, description = "Ready; lists jobs that failed.", body = Ready),
        (status = 503, description = "Starting or stopping.", body = Health),
    ))]
pub(crate) async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.ready.load(Ordering::Relaxed) {
        let ready = Ready {
            failed_jobs: app.jobs.failed(),
            status: "ready",
        };
        (StatusCode::OK, Json(ready)).into_response()
    } else {
        let status = "not ready: resuming persisted jobs or shutting down";
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status })).into_response()
    }
}

#[utoipa::path(get, path = "/metrics",
    summary = "Prometheus metrics of every job (label `job`).",
    responses((status = 200, description = "Prometheus text format 0.0.4.", body = String,
        content_type = "text/plain")))]
pub(crate) async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/openapi.json", summary = "This document.",
    responses((status = 200, description = "OpenAPI 3.1.", body = Object,
        content_type = "application/json")))]
pub(crate) async fn openapi(State(app): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], app.openapi).into_response()
}

#[utoipa::path(get, path = "/v1/jobs", summary = "List jobs with their status.",
    responses((status = 200, description = "Every job the service hosts.", body = JobList)))]
pub(crate) async fn list_jobs(
    State(app): State<Arc<AppState>>,
) -> Result<Json<JobList>, ServiceError> {
    let jobs: Result<Vec<_>, _> = app.jobs.list().iter().map(serde_json::to_value).collect();
    let jobs = jobs.map_err(|e| ServiceError::Internal(format!("a status as JSON: {e}")))?;
    Ok(Json(JobList { jobs }))
}

/// The body as a job config: UTF-8 TOML.
fn config_text(body: Bytes) -> Result<String, ServiceError> {
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        ServiceError::BadRequest("the body must be a job config in UTF-8 TOML".into())
    })?;
    if text.trim().is_empty() {
        return Err(ServiceError::BadRequest(
            "the body is empty: send the job config (TOML) as the request body".into(),
        ));
    }
    Ok(text)
}

#[utoipa::path(post, path = "/v1/jobs",
    summary = "Submit a job: validated, persisted and started.",
    request_body(content = String, content_type = "application/toml", description = JOB_CONFIG),
    responses(
        (status = 201, description = "Submitted; the job is starting.", body = JobStatus,
            headers(("Location" = String, description = "The job's URL, /v1/jobs/{name}."))),
        (status = 400, body = ErrorBody, description = "The body is not a runnable job config: \
            every problem, each named by its dotted key; or not UTF-8, or empty."),
        (status = 409, body = ErrorBody, description = "A job of that name exists, or another \
            job writes to the same sink.path (or one inside it, or around it)."),
        (status = 500, description = NOT_SAVED, body = ErrorBody),
    ))]
pub(crate) async fn submit_job(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ServiceError> {
    let status = app.jobs.submit(config_text(body)?, None).await?;
    let location = format!("/v1/jobs/{}", status.name);
    let mut r = (StatusCode::CREATED, Json(status)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

#[utoipa::path(post, path = "/v1/jobs/dry-run",
    summary = "Check a job without starting it: the config, that its topics exist, that the \
        feature store answers, that the model's inputs match, and that the output is reachable.",
    request_body(content = String, content_type = "application/toml", description = JOB_CONFIG),
    responses(
        (status = 200, body = DryRun, description = "The verdict, problem by problem and check \
            by check: an invalid config is `valid: false` with its problems, not an error."),
        (status = 400, description = "The body is not UTF-8, or empty.", body = ErrorBody),
        (status = 500, body = ErrorBody,
            description = "Building the job failed for a reason other than its config."),
    ))]
pub(crate) async fn dry_run(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<DryRun>, ServiceError> {
    let text = config_text(body)?;
    match app.jobs.build(text, None).await {
        Ok(job) => {
            let checks = probe::probe(&job).await;
            Ok(Json(DryRun {
                valid: checks.iter().all(|c| c.ok),
                job: Some(job.config().job.name.to_string()),
                problems: Vec::new(),
                checks,
            }))
        }
        Err(ServiceError::InvalidJob { problems }) => Ok(Json(DryRun {
            valid: false,
            job: None,
            problems: bodies::problems(&problems),
            checks: Vec::new(),
        })),
        Err(e) => Err(e),
    }
}

/// Job names in paths are checked like names in configs, so a request can
/// never name a file outside the data directory.
fn job_name(name: &str) -> Result<&str, ServiceError> {
    scorestream_pipeline::config::JobName::parse(name).map_err(ServiceError::BadRequest)?;
    Ok(name)
}

#[utoipa::path(get, path = "/v1/jobs/{name}", params(JobPath),
    summary = "One job's status, counters, models, drift alerts and redacted config.",
    responses(
        (status = 200, description = "The job's status.", body = JobStatus),
        (status = 400, description = BAD_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
    ))]
pub(crate) async fn job_status(
    State(app): State<Arc<AppState>>,
    Path(JobPath { name }): Path<JobPath>,
) -> Result<Json<JobStatus>, ServiceError> {
    Ok(Json(app.jobs.status(job_name(&name)?)?))
}

#[utoipa::path(post, path = "/v1/jobs/{name}/stop", params(JobPath, StopQuery),
    summary = "Stop a job: it drains, flushes and commits, and stays stopped across restarts.",
    responses(
        (status = 200, description = "Stopped: drained, flushed and committed.", body = JobStatus),
        (status = 202, description = "Stopping (`wait=false`).", body = JobStatus),
        (status = 400, description = "The name is not a valid job name (JSON), or `wait` is \
            not `true` or `false` (plain text).",
            content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
        (status = 500, description = NOT_SAVED, body = ErrorBody),
    ))]
pub(crate) async fn stop_job(
    State(app): State<Arc<AppState>>,
    Path(JobPath { name }): Path<JobPath>,
    Query(q): Query<StopQuery>,
) -> Result<Response, ServiceError> {
    let wait = q.wait.unwrap_or(true);
    let status = app.jobs.stop(job_name(&name)?, wait).await?;
    let code = if wait {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(status)).into_response())
}

#[utoipa::path(post, path = "/v1/jobs/{name}/start", params(JobPath),
    summary = "Start a stopped or failed job again; it resumes from its committed offsets.",
    responses(
        (status = 202, description = "Starting.", body = JobStatus),
        (status = 400, description = BAD_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
        (status = 409, description = "The job is neither stopped nor failed.", body = ErrorBody),
        (status = 500, description = NOT_SAVED, body = ErrorBody),
    ))]
pub(crate) async fn start_job(
    State(app): State<Arc<AppState>>,
    Path(JobPath { name }): Path<JobPath>,
) -> Result<Response, ServiceError> {
    let status = app.jobs.start(job_name(&name)?)?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

#[utoipa::path(put, path = "/v1/jobs/{name}/model", params(JobPath),
    summary = "Score with another version of the job's model registry from the next batch on; \
        `latest` follows the registry's highest version again. The choice survives restarts.",
    request_body = ModelRequest,
    responses(
        (status = 200, description = "The job's status, scoring with that version.",
            body = JobStatus),
        (status = 400, body = ErrorBody, description = "The body is not JSON like \
            {\"version\": \"v2\"}, or the name is not a valid job name."),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
        (status = 409, description = "The job is not running.", body = ErrorBody),
        (status = 422, body = ErrorBody, description = "That version cannot score the job: it \
            is not in the registry (the versions there are named), or its inputs do not bind."),
        (status = 500, description = NOT_SAVED, body = ErrorBody),
    ))]
pub(crate) async fn swap_model(
    State(app): State<Arc<AppState>>,
    Path(JobPath { name }): Path<JobPath>,
    body: Bytes,
) -> Result<Json<JobStatus>, ServiceError> {
    let req: ModelRequest = serde_json::from_slice(&body).map_err(|e| {
        ServiceError::BadRequest(format!(
            "the body must be JSON like {{\"version\": \"v2\"}}: {e}"
        ))
    })?;
    Ok(Json(
        app.jobs.swap_model(job_name(&name)?, &req.version).await?,
    ))
}

#[utoipa::path(delete, path = "/v1/jobs/{name}", params(JobPath),
    summary = "Forget a stopped job (its output is kept).",
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = BAD_NAME, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
        (status = 409, description = "The job is still running: stop it first.",
            body = ErrorBody),
        (status = 500, description = NOT_SAVED, body = ErrorBody),
    ))]
pub(crate) async fn delete_job(
    State(app): State<Arc<AppState>>,
    Path(JobPath { name }): Path<JobPath>,
) -> Result<StatusCode, ServiceError> {
    app.jobs.delete(job_name(&name)?)?;
    Ok(StatusCode::NO_CONTENT)
}
