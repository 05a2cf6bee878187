//! The API's routes and its OpenAPI document, generated from the handlers' annotations and
//! the body types rather than written by hand, so it cannot drift from
//! what the service does. `service/src/openapi.json` is a copy for readers
//! and tools (client generators, schemathesis); a test fails when it is
//! not what the code generates.

use std::sync::{Arc, OnceLock};

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    Components, Content, HeaderBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder,
    SecurityRequirement, Type,
};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::handlers;
use crate::state::AppState;

/// The checked-in copy, for those who want the document without building
/// the router (`tests/docs.rs` checks the service API page against it).
pub const OPENAPI: &str = include_str!("openapi.json");

const DESCRIPTION: &str = "Submit scoring jobs (TOML configs), watch them, stop them and swap \
their model versions. Reads (GET) are open and never show secrets; every other method needs \
`Authorization: Bearer <token>` with a token given to `scorestream serve` (--token-file or \
SCORESTREAM_API_TOKENS). Request bodies are limited (1 MiB by default, --max-body-bytes); \
larger ones get 413, at once when their Content-Length says so, and a body must arrive in full \
within --body-timeout (30 s) or gets 408. Connections are closed when their headers do not \
arrive within --header-timeout or they sit idle for --idle-timeout.";

#[derive(OpenApi)]
#[openapi(info(title = "scorestream service API", version = "1", description = DESCRIPTION))]
pub(crate) struct ApiDoc;

/// The document as served at `/openapi.json` and checked in: generated on
/// first use, then the same bytes for every request.
pub(crate) fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = routes().into_openapi();
        Layers.modify(&mut doc);
        // Only string-keyed maps and plain values: serializing cannot fail.
        let mut json = doc.to_pretty_json().expect("the OpenAPI document as JSON");
        json.push('\n');
        json
    })
}

/// Every route, each at the path and method of its handler's
/// `#[utoipa::path]`, with the document's entry for it: the one list both
/// the router and the document are made from. One `routes!` per path
/// (`routes!` would put every handler it names on every path it names).
pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::healthz))
        .routes(routes!(handlers::readyz))
        .routes(routes!(handlers::metrics))
        .routes(routes!(handlers::openapi))
        .routes(routes!(handlers::list_jobs, handlers::submit_job))
        .routes(routes!(handlers::dry_run))
        .routes(routes!(handlers::job_status, handlers::delete_job))
        .routes(routes!(handlers::stop_job))
        .routes(routes!(handlers::start_job))
        .routes(routes!(handlers::swap_model))
}

const BEARER: &str = "bearer";
const UNAUTHORIZED: &str = "unauthorized";
const TOO_LARGE: &str = "tooLarge";
const BODY_TIMEOUT: &str = "bodyTimeout";

/// What the layers around every handler answer (`api::router`), added to
/// each operation they apply to instead of being repeated on every
/// handler: `authenticate` wants a bearer token for everything but reads,
/// and `read_body` holds every body to its size and time limits.
struct Layers;

impl Modify for Layers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let responses = [
            (
                UNAUTHORIZED,
                "No bearer token, or one the service does not know.",
            ),
            (
                TOO_LARGE,
                "The body is larger than the service accepts (refused before it is read when \
                 Content-Length says so); the connection is closed.",
            ),
            (
                BODY_TIMEOUT,
                "The body did not arrive in full within --body-timeout; the connection is closed.",
            ),
        ];
        for (name, description) in responses {
            let error = Content::new(Some(Ref::from_schema_name("Error")));
            let mut response = ResponseBuilder::new()
                .description(description)
                .content("application/json", error);
            if name == UNAUTHORIZED {
                let scheme = HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer`"))
                    .build();
                response = response.header("WWW-Authenticate", scheme);
            }
            components
                .responses
                .insert(name.into(), RefOr::T(response.build()));
        }
        let answer = |name: &str| RefOr::Ref(Ref::from_response_name(name));
        for item in doc.paths.paths.values_mut() {
            // Every method but GET and HEAD, as `authenticate` decides.
            let guarded = [
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
                &mut item.options,
                &mut item.trace,
            ];
            for op in guarded.into_iter().flatten() {
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                let responses = &mut op.responses.responses;
                responses.insert("401".into(), answer(UNAUTHORIZED));
                if op.request_body.is_some() {
                    responses.insert("408".into(), answer(BODY_TIMEOUT));
                    responses.insert("413".into(), answer(TOO_LARGE));
                }
            }
        }
    }
}
