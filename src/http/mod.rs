//! The HTTP layer: one route table (`configure`), shared by `serve` and the tests, over one
//! file per resource.

pub mod actions;
pub mod auth;
pub mod compare;
pub mod customers;
pub mod deadline;
pub mod errors;
pub mod export;
pub mod health;
pub mod input;
pub mod labels;
pub mod metrics;
pub mod notes;
pub mod openapi;
pub mod search;
pub mod sliced_body;
pub mod tags;
pub mod ws;

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::{HttpRequest, HttpResponse, guard, web};

use crate::http::errors::ApiError;

/// Every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(input::MAX_BODY_BYTES))
        .app_data(web::PathConfig::default().error_handler(input::path_error))
        .app_data(web::QueryConfig::default().error_handler(input::query_error))
        .route("/healthz", get().to(health::healthz))
        .route("/readyz", get().to(health::readyz))
        .route("/metrics", get().to(metrics::metrics))
        .route("/api/openapi.json", get().to(openapi::openapi_json))
        .route("/ws", web::get().to(ws::connect))
        .service(
            web::scope("/api/admin")
                .wrap(actix_web::middleware::from_fn(input::reject_nul_in_query))
                .wrap(actix_web::middleware::from_fn(deadline::within_deadline))
                .route("/customers/search", get().to(search::search))
                .route("/customers/compare", get().to(compare::compare))
                .route("/customers/{id}/export", web::get().to(export::export))
                .route("/customers/{id}/360", get().to(customers::view_360))
                .route("/customers/{id}/orders", get().to(customers::orders))
                .route("/customers/{id}/loyalty", get().to(customers::loyalty))
                .route("/customers/{id}/marketing", get().to(customers::marketing))
                .route("/customers/{id}/support", get().to(customers::support))
                .route("/customers/{id}/timeline", get().to(customers::timeline))
                .route("/customers/{id}/analytics", get().to(customers::analytics))
                .route("/customers/{id}/notes", get().to(notes::list))
                .route("/customers/{id}/notes", web::post().to(notes::create))
                .route(
                    "/customers/{id}/notes/{note_id}/pin",
                    web::post().to(notes::pin),
                )
                .route(
                    "/customers/{id}/notes/{note_id}/unpin",
                    web::post().to(notes::unpin),
                )
                .route("/customers/{id}/tags", web::post().to(labels::assign_tag))
                .route(
                    "/customers/{id}/tags/{tag_id}",
                    web::delete().to(labels::remove_tag),
                )
                .route(
                    "/customers/{id}/segments",
                    web::post().to(labels::assign_segment),
                )
                .route(
                    "/customers/{id}/segments/{segment_id}",
                    web::delete().to(labels::remove_segment),
                )
                .route("/segments", get().to(labels::list_segments))
                .route(
                    "/customers/{id}/actions/email",
                    web::post().to(actions::email),
                )
                .route(
                    "/customers/{id}/actions/ticket",
                    web::post().to(actions::ticket),
                )
                .route(
                    "/customers/{id}/actions/loyalty-adjustment",
                    web::post().to(actions::loyalty_adjustment),
                )
                .route("/tags", get().to(tags::list))
                .route("/tags", web::post().to(tags::create)),
        )
        .default_service(web::to(not_found));
}

/// A route for GET and for HEAD with it (RFC 9110, 9.3.2): probes and caches send HEAD, and
/// actix-http answers a HEAD with the GET's headers and no body.
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The GET routes that take no HEAD: a HEAD cannot upgrade to a WebSocket, and an export is
/// audited as delivered, which a HEAD's would not be.
const GET_ONLY: [&str; 2] = ["/ws", "/api/admin/customers/{id}/export"];

/// The methods each route pattern takes, built once: the OpenAPI document's, and HEAD wherever
/// GET is (`get`), but for `GET_ONLY`.
static METHODS: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(|| {
    let mut methods = openapi::methods_by_path();
    for (pattern, taken) in methods.iter_mut() {
        if GET_ONLY.contains(&pattern.as_str()) {
            continue;
        }
        if let Some(at) = taken.iter().position(|m| m == "GET") {
            taken.insert(at + 1, "HEAD".to_owned());
        }
    }
    methods
});

/// 405 with the methods it takes for a path that exists, else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allow: Vec<String> = req
        .resource_map()
        .match_pattern(req.path())
        .and_then(|pattern| METHODS.get(&pattern).cloned())
        .unwrap_or_default();
    if allow.is_empty() {
        return Err(ApiError::not_found(format!(
            "no route for {} {}",
            req.method(),
            req.path()
        )));
    }
    Err(ApiError::method_not_allowed(
        req.method().as_str(),
        req.path(),
        &allow,
    ))
}
