//! Tagging customers and assigning segments by hand: `POST|DELETE
//! /api/admin/customers/{id}/tags[/{tag_id}]`, `GET /api/admin/segments`, `POST|DELETE
//! /api/admin/customers/{id}/segments[/{segment_id}]`. A second assignment of the same tag or
//! segment is a 409 (the row is unique per customer); removing what is not assigned is a 404.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::enums::{AssignmentSource, SegmentKind};
use crate::db::schema::{
    customer_segment_assignments, customer_segments, customer_tag_assignments, customer_tags,
};
use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::customers::ensure_customer;
use crate::http::errors::{ApiError, Problem};
use crate::http::input::Body;
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AssignTag {
    pub tag_id: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AssignSegment {
    pub segment_id: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub customer_id: i64,
    pub id: i64,
    pub assigned_by: Option<String>,
    pub assigned_at: DateTime<Utc>,
}

fn conflict_on_unique(e: DieselError, what: String) -> ApiError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::conflict(what)
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            ApiError::validation("id", "no such tag or segment")
        }
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/api/admin/customers/{id}/tags", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")), request_body = AssignTag,
    responses((status = 201, body = Assignment),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already tagged", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn assign_tag(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: Body<AssignTag>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::AssignTags)?;
    let (customer_id, tag_id) = (id.into_inner(), body?.0.tag_id);
    let mut conn = state.pool.get().await?;
    ensure_customer(&conn, customer_id).await?;
    let known: i64 = customer_tags::table
        .filter(customer_tags::id.eq(tag_id))
        .count()
        .get_result(&mut conn)
        .await?;
    if known == 0 {
        return Err(ApiError::validation(
            "tag_id",
            format!("there is no tag {tag_id}"),
        ));
    }
    let at: DateTime<Utc> = diesel::insert_into(customer_tag_assignments::table)
        .values((
            customer_tag_assignments::customer_id.eq(customer_id),
            customer_tag_assignments::tag_id.eq(tag_id),
            customer_tag_assignments::assigned_by.eq(&admin.id),
            customer_tag_assignments::assigned_by_name.eq(&admin.name),
        ))
        .returning(customer_tag_assignments::assigned_at)
        .get_result(&mut conn)
        .await
        .map_err(|e| {
            conflict_on_unique(
                e,
                format!("customer {customer_id} already has tag {tag_id}"),
            )
        })?;
    Ok(HttpResponse::Created().json(Assignment {
        customer_id,
        id: tag_id,
        assigned_by: Some(admin.id),
        assigned_at: at,
    }))
}

#[utoipa::path(delete, path = "/api/admin/customers/{id}/tags/{tag_id}", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), ("tag_id" = i64, Path, description = "Tag id")),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, description = "Not assigned", body = Problem, content_type = "application/problem+json")))]
pub async fn remove_tag(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::AssignTags)?;
    let (customer_id, tag_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let removed = diesel::delete(
        customer_tag_assignments::table
            .filter(customer_tag_assignments::customer_id.eq(customer_id))
            .filter(customer_tag_assignments::tag_id.eq(tag_id)),
    )
    .execute(&mut conn)
    .await?;
    if removed == 0 {
        // A customer that does not exist is the better answer than an assignment it lacks.
        ensure_customer(&conn, customer_id).await?;
        return Err(ApiError::not_found(format!(
            "customer {customer_id} does not have tag {tag_id}"
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentSummary {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub kind: SegmentKind,
    /// The rule of an automatic segment; null for manual ones.
    pub rule: Option<serde_json::Value>,
    pub members: i64,
}

#[utoipa::path(get, path = "/api/admin/segments", tag = "collaboration", security(("bearer" = [])),
    responses((status = 200, body = Vec<SegmentSummary>)))]
pub async fn list_segments(
    admin: AuthAdmin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let mut conn = state.pool.get().await?;
    let rows: Vec<(
        i64,
        String,
        String,
        SegmentKind,
        Option<serde_json::Value>,
        i64,
    )> = customer_segments::table
        .left_join(customer_segment_assignments::table)
        .group_by(customer_segments::id)
        .select((
            customer_segments::id,
            customer_segments::name,
            customer_segments::description,
            customer_segments::kind,
            customer_segments::rule,
            diesel::dsl::count(customer_segment_assignments::id.nullable()),
        ))
        .order((customer_segments::kind.asc(), customer_segments::id.asc()))
        .load(&mut conn)
        .await?;
    let segments: Vec<SegmentSummary> = rows
        .into_iter()
        .map(
            |(id, name, description, kind, rule, members)| SegmentSummary {
                id,
                name,
                description,
                kind,
                rule,
                members,
            },
        )
        .collect();
    Ok(HttpResponse::Ok().json(segments))
}

#[utoipa::path(post, path = "/api/admin/customers/{id}/segments", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")), request_body = AssignSegment,
    responses((status = 201, body = Assignment),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already in the segment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or automatic segment", body = Problem, content_type = "application/problem+json")))]
pub async fn assign_segment(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: Body<AssignSegment>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::AssignSegments)?;
    let (customer_id, segment_id) = (id.into_inner(), body?.0.segment_id);
    let mut conn = state.pool.get().await?;
    ensure_customer(&conn, customer_id).await?;
    let kind: Option<SegmentKind> = customer_segments::table
        .filter(customer_segments::id.eq(segment_id))
        .select(customer_segments::kind)
        .first(&mut conn)
        .await
        .optional()?;
    match kind {
        None => {
            return Err(ApiError::validation(
                "segment_id",
                format!("there is no segment {segment_id}"),
            ));
        }
        Some(SegmentKind::Automatic) => {
            return Err(ApiError::validation(
                "segment_id",
                format!("segment {segment_id} is automatic: the segment pass decides its members"),
            ));
        }
        Some(SegmentKind::Manual) => {}
    }
    let at: DateTime<Utc> = diesel::insert_into(customer_segment_assignments::table)
        .values((
            customer_segment_assignments::customer_id.eq(customer_id),
            customer_segment_assignments::segment_id.eq(segment_id),
            customer_segment_assignments::source.eq(AssignmentSource::Manual),
            customer_segment_assignments::assigned_by.eq(&admin.id),
        ))
        .returning(customer_segment_assignments::assigned_at)
        .get_result(&mut conn)
        .await
        .map_err(|e| {
            conflict_on_unique(
                e,
                format!("customer {customer_id} is already in segment {segment_id}"),
            )
        })?;
    Ok(HttpResponse::Created().json(Assignment {
        customer_id,
        id: segment_id,
        assigned_by: Some(admin.id),
        assigned_at: at,
    }))
}

#[utoipa::path(delete, path = "/api/admin/customers/{id}/segments/{segment_id}", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), ("segment_id" = i64, Path, description = "Segment id")),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, description = "No manual assignment", body = Problem, content_type = "application/problem+json")))]
pub async fn remove_segment(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::AssignSegments)?;
    let (customer_id, segment_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let removed = diesel::delete(
        customer_segment_assignments::table
            .filter(customer_segment_assignments::customer_id.eq(customer_id))
            .filter(customer_segment_assignments::segment_id.eq(segment_id))
            .filter(customer_segment_assignments::source.eq(AssignmentSource::Manual)),
    )
    .execute(&mut conn)
    .await?;
    if removed == 0 {
        // A customer that does not exist is the better answer than an assignment it lacks.
        ensure_customer(&conn, customer_id).await?;
        return Err(ApiError::not_found(format!(
            "customer {customer_id} has no manual assignment to segment {segment_id}"
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}
