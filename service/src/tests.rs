//! The API through its router, without a network: authentication, limits,
//! error bodies and redaction (the OpenAPI document's tests, which use the
//! same harness, are `openapi_tests.rs`). The end-to-end run against a
//! broker is `tests/service.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::api::{BodyLimits, router};
use crate::state::AppState;
use crate::{JobStore, Jobs, Tokens};
use scorestream_pipeline::config::{Confinement, Roots};

pub(crate) const TOKEN: &str = "test-token-0123456789";
pub(crate) const SECRET: &str = "sasl-secret-do-not-show";

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) struct Api {
    app: axum::Router,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) out: PathBuf,
}

/// Jobs read the demo's model and features (`jobs/demo`, also their base
/// directory) and write under `out`; `data` is the service's own state.
pub(crate) fn demo_confinement(out: &Path, data: &Path) -> Confinement {
    let demo = repo().join("jobs/demo");
    std::fs::create_dir_all(out).expect("out");
    Confinement::new(Roots {
        models: vec![demo.clone()],
        inputs: vec![demo],
        outputs: vec![out.to_owned().into()],
        private: vec![data.to_owned()],
        also_options: Vec::new(),
    })
    .expect("roots")
}

pub(crate) fn api(max_body: usize) -> Api {
    api_with(max_body, std::time::Duration::from_secs(30))
}

fn api_with(max_body: usize, body_timeout: std::time::Duration) -> Api {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let confinement = demo_confinement(&out, &dir.path().join("data"));
    api_in_with(
        dir,
        repo().join("jobs/demo"),
        confinement,
        max_body,
        body_timeout,
    )
}

/// The API over a service whose jobs resolve against `base` and are held
/// to `confinement`.
pub(crate) fn api_in(
    dir: tempfile::TempDir,
    base: PathBuf,
    confinement: Confinement,
    max_body: usize,
) -> Api {
    let timeout = std::time::Duration::from_secs(30);
    api_in_with(dir, base, confinement, max_body, timeout)
}

fn api_in_with(
    dir: tempfile::TempDir,
    base: PathBuf,
    confinement: Confinement,
    max_body: usize,
    body_timeout: std::time::Duration,
) -> Api {
    let store = JobStore::open(&dir.path().join("data")).expect("store");
    let jobs = Arc::new(Jobs::new(store, base, confinement));
    let state = Arc::new(AppState {
        jobs,
        tokens: Tokens::load(None, Some(TOKEN.into())).expect("tokens"),
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle(),
        ready: true.into(),
        openapi: crate::openapi::document(),
    });
    let out = dir.path().join("out");
    Api {
        app: router(
            state,
            BodyLimits {
                max_bytes: max_body,
                timeout: body_timeout,
            },
        ),
        dir,
        out,
    }
}

impl Api {
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value, Vec<(String, String)>) {
        let (status, headers, bytes) = self.raw(method, uri, token, body).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, headers)
    }

    /// The response as sent: its body's bytes, not parsed.
    pub(crate) async fn raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Vec<(String, String)>, axum::body::Bytes) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body.into()).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, headers, bytes)
    }

    /// The demo job (file features, the demo model), writing to this test's
    /// directory, with a SASL password among its Kafka settings.
    pub(crate) fn demo_job(&self, name: &str) -> String {
        let text = std::fs::read_to_string(repo().join("jobs/demo/job.toml")).expect("demo job");
        text.replace("name = \"fraud-demo\"", &format!("name = \"{name}\""))
            .replace("brokers = \"127.0.0.1:9092\"", "brokers = \"127.0.0.1:1\"")
            .replace("path = \"out/fraud-demo\"", &format!("path = {:?}", self.out.join(name).display().to_string()))
            .replace(
                "max_message_bytes = \"64KiB\"",
                &format!("max_message_bytes = \"64KiB\"\n[source.options]\n\"sasl.username\" = \"alice\"\n\"sasl.password\" = \"{SECRET}\""),
            )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutating_requests_need_a_known_bearer_token_and_reads_do_not() {
    let api = api(1 << 20);
    for token in [None, Some("wrong-token-0123456789")] {
        let (status, body, headers) = api.call(Method::POST, "/v1/jobs", token, "[job]").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "www-authenticate" && v == "Bearer")
        );
        assert!(
            body["error"].as_str().unwrap_or("").contains("Bearer"),
            "{body}"
        );
    }
    for (method, uri) in [
        (Method::POST, "/v1/jobs/dry-run"),
        (Method::POST, "/v1/jobs/x/stop"),
        (Method::POST, "/v1/jobs/x/start"),
        (Method::PUT, "/v1/jobs/x/model"),
        (Method::DELETE, "/v1/jobs/x"),
    ] {
        let (status, _, _) = api.call(method.clone(), uri, None, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    let (status, body, _) = api.call(Method::GET, "/v1/jobs", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"], Value::Array(vec![]));
    let (status, _, _) = api.call(Method::GET, "/healthz", None, "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused_with_413() {
    let api = api(4096);
    let big = "#".repeat(8192);
    let (status, _, _) = api.call(Method::POST, "/v1/jobs", Some(TOKEN), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Bodies that never arrive: with a declared length over the limit, 413
/// before any of it is read; within the limit, 408 once the body timeout
/// passes; without a token, 401 before either.
#[tokio::test(flavor = "multi_thread")]
async fn declared_oversized_bodies_are_refused_unread_and_stalled_ones_time_out() {
    let api = api_with(4096, std::time::Duration::from_millis(300));
    let stalled = |length: &str, token: bool| {
        // The sender is kept (returned) so the body stays open, never sent.
        let (sender, body) =
            http_body_util::channel::Channel::<axum::body::Bytes, std::convert::Infallible>::new(1);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/v1/jobs")
            .header(header::CONTENT_LENGTH, length);
        if token {
            req = req.header(header::AUTHORIZATION, format!("bearer {TOKEN}"));
        }
        (sender, req.body(Body::new(body)).expect("request"))
    };
    for (length, token, expected) in [
        ("10000000000", true, StatusCode::PAYLOAD_TOO_LARGE),
        ("100", true, StatusCode::REQUEST_TIMEOUT),
        ("10000000000", false, StatusCode::UNAUTHORIZED),
    ] {
        let (_sender, req) = stalled(length, token);
        let resp = api.app.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.status(), expected, "Content-Length {length}");
        if expected != StatusCode::UNAUTHORIZED {
            assert_eq!(
                resp.headers().get(header::CONNECTION).map(|v| v.as_bytes()),
                Some(&b"close"[..])
            );
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            let body: Value = serde_json::from_slice(&bytes).expect("JSON error");
            let error = body["error"].as_str().unwrap_or("");
            assert!(
                error.contains("--max-body-bytes") || error.contains("--body-timeout"),
                "{body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configs_get_every_problem_by_key_and_bad_names_are_refused() {
    let api = api(1 << 20);
    let (status, body, _) = api
        .call(
            Method::POST,
            "/v1/jobs",
            Some(TOKEN),
            "[job]\nname = \"../etc\"\n[batch]\nmax_rows = \"many\"\n",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let keys: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    for key in ["job.name", "batch.max_rows", "source", "model"] {
        assert!(
            keys.iter().any(|k| k.starts_with(key)),
            "{key} not named in {body}"
        );
    }
    let (status, body, _) = api
        .call(Method::POST, "/v1/jobs", Some(TOKEN), vec![0xff, 0xfe])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("UTF-8"),
        "{body}"
    );
    for uri in [
        "/v1/jobs/..%2F..%2Fetc",
        "/v1/jobs/a%20b",
        &format!("/v1/jobs/{}", "x".repeat(65)),
    ] {
        let (status, body, _) = api.call(Method::GET, uri, None, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("invalid job name"),
            "{body}"
        );
    }
    let (status, body, _) = api.call(Method::GET, "/v1/jobs/nope", None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body, _) = api
        .call(
            Method::PUT,
            "/v1/jobs/nope/model",
            Some(TOKEN),
            "{\"versio\": 1}",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn submitted_jobs_show_their_config_with_secrets_redacted_and_stop_and_delete() {
    let api = api(1 << 20);
    let job = api.demo_job("redacted");
    let (status, body, headers) = api
        .call(Method::POST, "/v1/jobs", Some(TOKEN), job.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "location" && v == "/v1/jobs/redacted")
    );
    assert!(!body.to_string().contains(SECRET), "{body}");

    let (status, again, _) = api.call(Method::POST, "/v1/jobs", Some(TOKEN), job).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, body, _) = api.call(Method::GET, "/v1/jobs/redacted", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let config = body["config"].as_str().expect("config");
    assert!(
        config.contains("<redacted>") && config.contains("alice"),
        "{config}"
    );
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert_eq!(body["model"]["in_use"][0]["role"], "champion", "{body}");

    let (status, _, _) = api
        .call(Method::DELETE, "/v1/jobs/redacted", Some(TOKEN), "")
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a running job cannot be deleted"
    );
    let (status, body, _) = api
        .call(Method::POST, "/v1/jobs/redacted/stop", Some(TOKEN), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        matches!(body["state"].as_str(), Some("stopped" | "failed")),
        "{body}"
    );
    assert_eq!(body["desired"], "stopped");
    assert!(!body.to_string().contains(SECRET), "{body}");
    let (status, body, _) = api
        .call(
            Method::PUT,
            "/v1/jobs/redacted/model",
            Some(TOKEN),
            "{\"version\": \"v2\"}",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _, _) = api
        .call(Method::DELETE, "/v1/jobs/redacted", Some(TOKEN), "")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body, _) = api.call(Method::GET, "/v1/jobs", None, "").await;
    assert_eq!(body["jobs"], Value::Array(vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_persisted_job_that_no_longer_loads_is_listed_as_failed_and_the_rest_resume() {
    use crate::store::{Desired, JobState, Persisted};
    let dir = tempfile::tempdir().expect("tmp");
    let state = |desired| JobState {
        desired,
        model_version: None,
        submitted_at: "2026-12-02T00:00:00Z".into(),
        base_dir: repo().join("jobs/demo"),
    };
    {
        let store = JobStore::open(dir.path()).expect("store");
        let broken = "[job]\nname = \"broken\"\n[nonsense]\npassword = \"pw-in-broken\"\n";
        store
            .save(&Persisted {
                name: "broken".into(),
                toml: broken.into(),
                state: state(Desired::Running),
            })
            .expect("save");
        let demo = std::fs::read_to_string(repo().join("jobs/demo/job.toml")).expect("demo");
        store
            .save(&Persisted {
                name: "fraud-demo".into(),
                toml: demo,
                state: state(Desired::Stopped),
            })
            .expect("save");
    }
    let confinement = demo_confinement(&repo().join("jobs/demo"), dir.path());
    let jobs = Jobs::new(
        JobStore::open(dir.path()).expect("store"),
        repo(),
        confinement,
    );
    assert_eq!(jobs.resume().await.expect("resume"), 0);
    let broken = jobs.status("broken").expect("listed");
    let shown = serde_json::to_string(&broken).expect("json");
    assert!(
        shown.contains("\"state\":\"failed\"") && shown.contains("nonsense"),
        "{shown}"
    );
    assert!(!shown.contains("pw-in-broken"), "{shown}");
    let demo = jobs.status("fraud-demo").expect("listed");
    assert!(matches!(demo.run, crate::RunState::Stopped), "{demo:?}");
    assert!(demo.output.ends_with("out/fraud-demo"), "{}", demo.output);
}
