//! `GET /api/admin/customers/{id}/export?format=pdf|csv`: a customer's record for the exporter's
//! role, as a download, with an audit row (who, customer, format, size, duration).

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use diesel::ExpressionMethods;
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use serde_json::json;

use crate::db::schema::audit_log;
use crate::domain::roles::Permission;
use crate::export::{self, Exporter};
use crate::http::auth::AuthAdmin;
use crate::http::errors::{ApiError, Problem};
use crate::http::input::query_problem;
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportParams {
    /// pdf or csv.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/export", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), ExportParams),
    responses((status = 200, description = "The file (application/pdf or text/csv)"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::Export)?;
    // Parsed only now, so that a role that may not export hears 403 whatever it asked for.
    let q = web::Query::<ExportParams>::from_query(req.query_string()).map_err(query_problem)?;
    let started = Instant::now();
    let format = match q.format.as_deref().map(str::trim) {
        Some("pdf") => "pdf",
        Some("csv") => "csv",
        other => {
            return Err(ApiError::validation(
                "format",
                format!("format must be pdf or csv, got {:?}", other.unwrap_or("")),
            ));
        }
    };
    let customer_id = id.into_inner();
    let exporter = Exporter {
        id: admin.id.clone(),
        name: admin.name.clone(),
        role: admin.role,
        at: Utc::now(),
    };
    let data = {
        let mut conn = state.pool.get().await?;
        export::gather(&mut conn, customer_id, exporter)
            .await
            .map_err(|e| match e {
                diesel::result::Error::NotFound => {
                    ApiError::not_found(format!("customer {customer_id} does not exist"))
                }
                other => other.into(),
            })?
    };
    let exported_at = data.exporter.at;
    let content_type = match format {
        "pdf" => "application/pdf",
        _ => "text/csv; charset=utf-8",
    };
    // Rendering is CPU work (a large PDF, or one embedding the CJK font, takes hundreds of
    // milliseconds): done on a blocking thread, so the worker that also drives WebSockets is
    // not held up, and with no pooled connection held meanwhile.
    let bytes = web::block(move || match format {
        "pdf" => export::pdf::render(&data),
        _ => export::csv::render(&data),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut conn = state.pool.get().await?;
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_id.eq(&admin.id),
            audit_log::actor_name.eq(&admin.name),
            audit_log::actor_role.eq(admin.role.as_str()),
            audit_log::action.eq(format!("export.{format}")),
            audit_log::customer_id.eq(customer_id),
            audit_log::details
                .eq(json!({"format": format, "bytes": bytes.len(), "duration_ms": duration_ms})),
        ))
        .execute(&mut conn)
        .await?;
    let filename = format!(
        "customer-{customer_id}-{}.{format}",
        exported_at.format("%Y%m%d-%H%M%S")
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(bytes))
}
