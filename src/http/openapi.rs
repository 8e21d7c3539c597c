//! The OpenAPI 3 document of every route, served at `/api/openapi.json`.

use actix_web::HttpResponse;
use std::collections::HashMap;

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::{
    actions, compare, customers, export, health, labels, metrics, notes, search, tags, ws,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "customer360", description = "Customer 360 service for e-commerce admins"),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi_json,
        customers::view_360,
        customers::orders,
        customers::loyalty,
        customers::marketing,
        customers::support,
        customers::timeline,
        customers::analytics,
        tags::list,
        tags::create,
        ws::connect,
        notes::list,
        notes::create,
        notes::pin,
        notes::unpin,
        labels::assign_tag,
        labels::remove_tag,
        labels::list_segments,
        labels::assign_segment,
        labels::remove_segment,
        actions::email,
        actions::ticket,
        actions::loyalty_adjustment,
        search::search,
        compare::compare,
        export::export,
    ),
    components(schemas(crate::http::errors::Problem)),
    modifiers(&BearerAuth, &ResponseDescriptions),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Each method of a path, with its operation where it has one.
fn operations(item: &mut PathItem) -> [(&'static str, &mut Option<Operation>); 8] {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
        ("TRACE", &mut item.trace),
    ]
}

/// The methods each route pattern takes, as this document lists them (HEAD is not listed; see
/// `http::METHODS`). `tests/foundation.rs::head_goes_wherever_get_does_but_for_the_websocket_and_export`
/// tries every documented GET path against the route table.
pub fn methods_by_path() -> HashMap<String, Vec<String>> {
    let mut doc = ApiDoc::openapi();
    doc.paths
        .paths
        .iter_mut()
        .map(|(pattern, item)| {
            let taken = operations(item)
                .into_iter()
                .filter(|(_, operation)| operation.is_some())
                .map(|(method, _)| method.to_owned())
                .collect();
            (pattern.clone(), taken)
        })
        .collect()
}

/// OpenAPI 3 requires a description on every response. Ours name the status (and the problem
/// body where there is one), so responses declared without one get the status's reason.
struct ResponseDescriptions;

impl Modify for ResponseDescriptions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations(item) {
                let Some(operation) = operation else { continue };
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = status
                            .parse::<u16>()
                            .ok()
                            .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("Response")
                            .to_owned();
                    }
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
