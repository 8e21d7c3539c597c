//! The HTTP layer: one route table (`configure`), shared by `serve` and the tests, over one
//! file per resource.

pub mod auth;
pub mod customers;
pub mod errors;
pub mod health;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod tags;
pub mod ws;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::errors::ApiError;

/// Every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(input::MAX_BODY_BYTES))
        .app_data(web::PathConfig::default().error_handler(input::path_error))
        .app_data(web::QueryConfig::default().error_handler(input::query_error))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/api/openapi.json", web::get().to(openapi::openapi_json))
        .route("/ws", web::get().to(ws::connect))
        .service(
            web::scope("/api/admin")
                .route("/customers/{id}/360", web::get().to(customers::view_360))
                .route("/customers/{id}/orders", web::get().to(customers::orders))
                .route("/customers/{id}/loyalty", web::get().to(customers::loyalty))
                .route(
                    "/customers/{id}/marketing",
                    web::get().to(customers::marketing),
                )
                .route("/customers/{id}/support", web::get().to(customers::support))
                .route(
                    "/customers/{id}/timeline",
                    web::get().to(customers::timeline),
                )
                .route(
                    "/customers/{id}/analytics",
                    web::get().to(customers::analytics),
                )
                .route("/tags", web::get().to(tags::list))
                .route("/tags", web::post().to(tags::create)),
        )
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
