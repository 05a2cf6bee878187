//! The REST API: routes, authentication, limits and error bodies. The
//! routes and their bodies are documented in `openapi.json`, served at
//! `/openapi.json`; a test checks the two list the same routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use scorestream_operators::ErrorKind;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use crate::auth::Tokens;
use crate::jobs::Jobs;
use crate::{ServiceError, probe};

pub const OPENAPI: &str = include_str!("openapi.json");

/// What every handler shares.
pub(crate) struct AppState {
    pub jobs: Arc<Jobs>,
    pub tokens: Tokens,
    pub metrics: PrometheusHandle,
    /// Set once persisted jobs are resumed; cleared when shutting down.
    pub ready: AtomicBool,
}

/// What a request body is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    /// From the end of the headers to the body's last byte.
    pub timeout: std::time::Duration,
}

pub(crate) fn router(state: Arc<AppState>, body: BodyLimits) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/jobs", get(list).post(submit))
        .route("/v1/jobs/dry-run", post(dry_run))
        .route("/v1/jobs/{name}", get(status).delete(delete))
        .route("/v1/jobs/{name}/stop", post(stop))
        .route("/v1/jobs/{name}/start", post(start))
        .route("/v1/jobs/{name}/model", put(swap_model))
        .layer(middleware::from_fn_with_state(body, read_body))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(body.max_bytes))
        .with_state(state)
}

/// Reads are open (responses never hold secrets); everything that changes
/// or probes something needs a bearer token.
async fn authenticate(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let open = matches!(*req.method(), Method::GET | Method::HEAD);
    if open {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if app.tokens.allows(given) {
        return next.run(req).await;
    }
    // The token itself is never logged, only that one was refused.
    warn!(
        method = %req.method(),
        path = %req.uri().path(),
        had_token = given.is_some(),
        "request refused: missing or unknown bearer token"
    );
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "this endpoint needs `Authorization: Bearer <token>` with a token the service was started with"})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Reads the whole body (after authentication, before any handler) under
/// both limits: a declared `Content-Length` over the size limit is refused
/// before a byte is read, and the body must arrive in full within the
/// timeout, so a slow or stalled upload cannot hold its connection.
/// (tower-http's body timeout restarts with every chunk, so a trickle
/// would never trip it.)
async fn read_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = ServiceError::BodyTooLarge {
        limit: limits.max_bytes,
    };
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return closing(too_large.into_response());
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_bytes);
    let read = tokio::time::timeout(limits.timeout, http_body_util::BodyExt::collect(limited));
    match read.await {
        Ok(Ok(collected)) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            closing(too_large.into_response())
        }
        Ok(Err(e)) => {
            ServiceError::BadRequest(format!("reading the request body: {e}")).into_response()
        }
        Err(_) => closing(
            ServiceError::BodyTimeout {
                after: limits.timeout,
            }
            .into_response(),
        ),
    }
}

/// Marks a response sent before its request's body was read in full: the
/// connection cannot carry another request.
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = match &self {
            ServiceError::InvalidJob { .. } | ServiceError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ServiceError::NoSuchJob(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::ModelSwap { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if self.kind() != ErrorKind::User {
            warn!(error = %self, "request failed");
        }
        let body = match &self {
            ServiceError::InvalidJob { problems } => json!({
                "error": "invalid job config",
                "problems": problems.iter().map(|p| json!({"key": p.key, "message": p.message})).collect::<Vec<_>>(),
            }),
            other => json!({"error": other.to_string()}),
        };
        (status, Json(body)).into_response()
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let failed = app.jobs.failed();
    if app.ready.load(Ordering::Relaxed) {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "failed_jobs": failed})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready: resuming persisted jobs or shutting down"})),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn list(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({"jobs": app.jobs.list()}))
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

async fn submit(State(app): State<Arc<AppState>>, body: Bytes) -> Result<Response, ServiceError> {
    let status = app.jobs.submit(config_text(body)?, None).await?;
    let location = format!("/v1/jobs/{}", status.name);
    let mut r = (StatusCode::CREATED, Json(status)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn dry_run(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ServiceError> {
    let text = config_text(body)?;
    match app.jobs.build(text, None).await {
        Ok(job) => {
            let checks = probe::probe(&job).await;
            let valid = checks.iter().all(|c| c.ok);
            Ok(Json(json!({
                "valid": valid,
                "job": job.config().job.name.as_str(),
                "problems": [],
                "checks": checks,
            })))
        }
        Err(ServiceError::InvalidJob { problems }) => Ok(Json(json!({
            "valid": false,
            "problems": problems.iter().map(|p| json!({"key": p.key, "message": p.message})).collect::<Vec<_>>(),
            "checks": [],
        }))),
        Err(e) => Err(e),
    }
}

/// Job names in paths are checked like names in configs, so a request can
/// never name a file outside the data directory.
fn job_name(name: &str) -> Result<&str, ServiceError> {
    scorestream_pipeline::config::JobName::parse(name).map_err(ServiceError::BadRequest)?;
    Ok(name)
}

async fn status(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ServiceError> {
    Ok(Json(app.jobs.status(job_name(&name)?)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopQuery {
    /// Wait until the job has drained and committed (default true).
    wait: Option<bool>,
}

async fn stop(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
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

async fn start(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ServiceError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app.jobs.start(job_name(&name)?)?),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelRequest {
    version: String,
}

async fn swap_model(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ServiceError> {
    let req: ModelRequest = serde_json::from_slice(&body).map_err(|e| {
        ServiceError::BadRequest(format!(
            "the body must be JSON like {{\"version\": \"v2\"}}: {e}"
        ))
    })?;
    let status = app.jobs.swap_model(job_name(&name)?, &req.version).await?;
    Ok(Json(status).into_response())
}

async fn delete(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ServiceError> {
    app.jobs.delete(job_name(&name)?)?;
    Ok(StatusCode::NO_CONTENT)
}
