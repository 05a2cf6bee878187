//! What every handler shares, built once by `serve`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Tokens;
use crate::jobs::Jobs;

pub(crate) struct AppState {
    pub jobs: Arc<Jobs>,
    pub tokens: Tokens,
    pub metrics: PrometheusHandle,
    /// Set once persisted jobs are resumed; cleared when shutting down.
    pub ready: AtomicBool,
    /// The OpenAPI document, served at `/openapi.json`. Handed in rather
    /// than fetched by the handler: the document is made from the handlers,
    /// so the handlers reaching for it would make an import circle.
    pub openapi: &'static str,
}
