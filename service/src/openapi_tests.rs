//! The OpenAPI document: the checked-in copy is what the code generates,
//! the service serves exactly that, and the document and the router agree
//! on every route, every status and which routes need a token.

use std::path::Path;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::openapi::document;
use crate::tests::{TOKEN, api};

/// How to bring the checked-in copy up to date after a deliberate change.
const BLESS: &str = "SCORESTREAM_BLESS=1 cargo test --release --workspace --features onnx --lib checked_in_document";

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/openapi.json");
    let generated = document();
    if std::env::var_os("SCORESTREAM_BLESS").is_some() {
        std::fs::write(&path, generated).expect("writing service/src/openapi.json");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&path).expect("reading service/src/openapi.json");
    let first_difference = checked_in
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
    assert!(
        checked_in == generated,
        "service/src/openapi.json is not the document the handlers generate (first difference \
         at line {}). If the API change is meant, regenerate it with\n    {BLESS}\nand commit it.",
        first_difference + 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_serves_the_generated_document() {
    let api = api(1 << 20);
    let (status, headers, body) = api.raw(Method::GET, "/openapi.json", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json"),
        "{headers:?}"
    );
    assert!(
        body == document().as_bytes(),
        "GET /openapi.json is not the generated document"
    );
}

/// Every documented operation is routed and answers only statuses it
/// documents; every method a documented path does not document answers
/// 405; and an operation needs a token exactly when the document says so.
#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_is_served_and_documents_its_errors() {
    let api = api(1 << 20);
    let doc: Value = serde_json::from_str(document()).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut served = 0;
    for (path, ops) in paths {
        let uri = path.replace("{name}", "no-such-job");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            let (status, _, _) = api.call(method.clone(), &uri, Some(TOKEN), "").await;
            let Some(op) = ops.get(method.as_str().to_lowercase()) else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not documented"
                );
                continue;
            };
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            let documented = op["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {path} answered {status}, undocumented"
            );
            let needs_token = op.get("security").is_some();
            assert_eq!(
                needs_token,
                method != Method::GET,
                "{method} {path}: security"
            );
            let (anonymous, _, _) = api.call(method.clone(), &uri, None, "").await;
            assert_eq!(
                anonymous == StatusCode::UNAUTHORIZED,
                needs_token,
                "{method} {path} without a token answered {anonymous}"
            );
            served += 1;
        }
    }
    assert_eq!(served, 12);
    let (status, _, _) = api.call(Method::GET, "/v1/nothing", None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
