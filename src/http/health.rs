//! Liveness and readiness: `/healthz` answers while the process runs; `/readyz` answers 200
//! only when Postgres and Redis both do, and otherwise 503 naming the one that is down (a
//! `demo` running on its in-process bus says so in place of Redis).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::http::errors::{ApiError, ErrorKind};
use crate::startup::AppState;

/// A readiness probe must answer quickly even when a dependency hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Postgres and Redis both answer"),
    (status = 503, description = "A dependency is down; `checks` says which", body = crate::http::errors::Problem,
        content_type = "application/problem+json")))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (postgres, redis) =
        futures_util::future::join(check_postgres(&state), check_redis(&state)).await;
    let describe = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("down: {e}"),
    };
    let redis_state = match state.redis.embedded() {
        Some(_) => "in-process (single node, no Redis)".to_owned(),
        None => describe(&redis),
    };
    let checks = json!({"postgres": describe(&postgres), "redis": redis_state});
    let down: Vec<&str> = [("postgres", &postgres), ("redis", &redis)]
        .into_iter()
        .filter(|(_, r)| r.is_err())
        .map(|(name, _)| name)
        .collect();
    if down.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({"status": "ready", "checks": checks})));
    }
    Err(ApiError::new(
        ErrorKind::Unavailable,
        format!("not ready: {} unavailable", down.join(" and ")),
    )
    .with("down", down)
    .with("checks", checks))
}

async fn check_postgres(state: &AppState) -> Result<(), String> {
    let check = async {
        let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

async fn check_redis(state: &AppState) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, state.redis.ping())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())
}
