//! The REST API's layers: authentication, body limits and error bodies,
//! around the routes `openapi.rs` lists (the handlers are in
//! `handlers.rs`, what they share in `state.rs`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use scorestream_operators::ErrorKind;
use tracing::warn;

use crate::ServiceError;
use crate::bodies::{self, ErrorBody};
use crate::openapi::routes;
use crate::state::AppState;

/// What a request body is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    /// From the end of the headers to the body's last byte.
    pub timeout: std::time::Duration,
}

pub(crate) fn router(state: Arc<AppState>, body: BodyLimits) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
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
    let refusal = ErrorBody::new(
        "this endpoint needs `Authorization: Bearer <token>` with a token the service was started with",
    );
    let mut r = (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
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
            ServiceError::InvalidJob { problems } => ErrorBody {
                error: "invalid job config".into(),
                problems: Some(bodies::problems(problems)),
            },
            other => ErrorBody::new(other.to_string()),
        };
        (status, Json(body)).into_response()
    }
}
