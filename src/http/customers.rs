//! `/api/admin/customers/{id}/…`: the whole 360 view and each slice on its own, permission
//! checked and masked for the caller's role.

use actix::Addr;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;

use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::errors::{ApiError, Problem};
use crate::realtime::registry::{HubRegistry, LiveView};
use crate::startup::AppState;
use crate::view::cursor::{self, Cursor};
use crate::view::timeline::{KINDS, TimelineQuery};
use crate::view::{
    self, CustomerView, analytics, cache, loyalty, marketing, orders, support, timeline,
};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// 404 naming the customer unless it exists (pipelined when called beside other queries).
pub async fn ensure_customer(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
) -> Result<(), ApiError> {
    let found: Count = diesel::sql_query("SELECT count(*) AS n FROM customers WHERE id = $1")
        .bind::<BigInt, _>(customer_id)
        .get_result(&mut conn)
        .await?;
    if found.n == 0 {
        Err(not_found(customer_id))
    } else {
        Ok(())
    }
}

/// Loads one slice of an existing customer: the existence check and the slice's query are
/// pipelined on one connection; 404 when there is no such customer.
async fn load_slice<T>(
    state: &AppState,
    customer_id: i64,
    load: impl AsyncFnOnce(&AsyncPgConnection) -> diesel::QueryResult<T>,
) -> Result<T, ApiError> {
    let conn = state.pool.get().await?;
    let (_, slice) = futures_util::try_join!(ensure_customer(&conn, customer_id), async {
        load(&conn).await.map_err(ApiError::from)
    })?;
    Ok(slice)
}

fn not_found(customer_id: i64) -> ApiError {
    ApiError::not_found(format!("customer {customer_id} does not exist"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<String>,
}

impl PageParams {
    pub fn parse(&self) -> Result<(Cursor, i64), ApiError> {
        let after = self
            .cursor
            .as_deref()
            .map(Cursor::decode)
            .transpose()?
            .unwrap_or_else(Cursor::start);
        Ok((
            after,
            cursor::limit(parse_int("limit", self.limit.as_deref())?)?,
        ))
    }
}

fn parse_int(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::validation(field, format!("{field} must be an integer, got '{v}'"))
            })
        })
        .transpose()
}

/// ISO 8601 instant or date (a date means its midnight, UTC), in the years 1 to 9999.
pub fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    let instant = match DateTime::parse_from_rfc3339(value) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()),
    };
    match instant {
        Some(t) if cursor::within_years(&t) => Ok(t),
        Some(_) => Err(ApiError::validation(
            field,
            format!("{field} must lie between the years 1 and 9999, got '{value}'"),
        )),
        None => Err(ApiError::validation(
            field,
            format!(
                "{field} must be an ISO 8601 date (2026-11-24) or date-time with an offset \
                 (2026-11-24T19:00:00Z), got '{value}'"
            ),
        )),
    }
}

type Id = web::Path<i64>;

#[utoipa::path(get, path = "/api/admin/customers/{id}/360", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, body = CustomerView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn view_360(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    registry: web::Data<Addr<HubRegistry>>,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let id = id.into_inner();
    let masking = admin.masking();
    // A live hub on this node holds the current view: no Redis, no Postgres.
    let live = registry
        .send(LiveView {
            customer_id: id,
            masking,
        })
        .await
        .ok()
        .flatten();
    if let Some(live) = live {
        metrics::counter!("view_360_served_total", "source" => "hub").increment(1);
        let view: CustomerView = serde_json::from_value(live).map_err(ApiError::internal)?;
        let view = view.for_viewer(&admin.id, admin.role);
        return Ok(HttpResponse::Ok().json(view));
    }
    // The cache is an accelerator: when Redis is down the view comes from Postgres, and for a
    // moment after a failure the cache is not even tried.
    let paused = state.redis.cache_paused();
    let lookup = if paused {
        None
    } else {
        cache::get(&state.redis, id, masking)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "view cache unavailable"))
            .ok()
    };
    let cached = lookup.as_ref().and_then(|l| l.json.as_deref());
    let result = match cached {
        Some(_) => "hit",
        None if paused => "skipped",
        None => "miss",
    };
    metrics::counter!("view_cache_lookups_total", "result" => result).increment(1);
    let view: CustomerView = match cached {
        Some(json) => serde_json::from_str(json).map_err(ApiError::internal)?,
        None => {
            let mut conn = state.pool.get().await?;
            let view = view::load(&mut conn, id, masking, Utc::now())
                .await
                .map_err(|e| match e {
                    diesel::result::Error::NotFound => not_found(id),
                    other => other.into(),
                })?;
            if let Some(lookup) = lookup {
                let json = serde_json::to_string(&view).map_err(ApiError::internal)?;
                if let Err(e) =
                    cache::put(&state.redis, id, masking, lookup.generation, &json).await
                {
                    tracing::warn!(error = %e, "could not fill the view cache");
                }
            }
            view
        }
    };
    Ok(HttpResponse::Ok().json(view.for_viewer(&admin.id, admin.role)))
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/orders", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), PageParams),
    responses((status = 200, body = orders::OrdersSlice), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn orders(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: Id,
    q: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let (after, limit) = q.parse()?;
    let id = id.into_inner();
    let slice = load_slice(&state, id, async |conn: &AsyncPgConnection| {
        orders::load_page(conn, id, &after, limit).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(slice))
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/loyalty", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, body = loyalty::LoyaltySlice), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn loyalty(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let id = id.into_inner();
    let slice = load_slice(&state, id, async |conn: &AsyncPgConnection| {
        loyalty::load(conn, id, Utc::now()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(slice.masked(admin.masking())))
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/marketing", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, body = marketing::MarketingSlice), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn marketing(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let id = id.into_inner();
    let slice = load_slice(&state, id, async |conn: &AsyncPgConnection| {
        let (mut slice, segments) = futures_util::try_join!(
            marketing::load(conn, id),
            view::labels::load_segments(conn, id)
        )?;
        slice.segments = segments.into_iter().map(|s| s.name).collect();
        Ok(slice)
    })
    .await?;
    Ok(HttpResponse::Ok().json(slice))
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/support", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), PageParams),
    responses((status = 200, body = support::SupportSlice), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn support(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: Id,
    q: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let (after, limit) = q.parse()?;
    let id = id.into_inner();
    let slice = load_slice(&state, id, async |conn: &AsyncPgConnection| {
        support::load_page(conn, id, &after, limit).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(slice))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TimelineParams {
    /// Comma-separated kinds: order, loyalty, ticket, campaign, session, note, tag, segment, email.
    pub types: Option<String>,
    /// ISO 8601 date or date-time, inclusive.
    pub from: Option<String>,
    /// ISO 8601 date or date-time, exclusive.
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

impl TimelineParams {
    fn parse(&self, admin: &AuthAdmin) -> Result<TimelineQuery, ApiError> {
        let mut q = TimelineQuery::first_page(admin.role.can(Permission::SeeOthersPrivateNotes));
        q.viewer_id = admin.id.clone();
        if let Some(types) = self.types.as_deref().filter(|t| !t.trim().is_empty()) {
            let kinds: Vec<String> = types.split(',').map(|t| t.trim().to_owned()).collect();
            if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return Err(ApiError::validation(
                    "types",
                    format!(
                        "unknown event type '{bad}' (expected any of: {})",
                        KINDS.join(", ")
                    ),
                ));
            }
            q.kinds = kinds;
        }
        if let Some(from) = &self.from {
            q.from = parse_instant("from", from)?;
        }
        if let Some(to) = &self.to {
            q.to = parse_instant("to", to)?;
        }
        if q.from > q.to {
            return Err(ApiError::validation("from", "from must not be after to"));
        }
        let (after, limit) = PageParams {
            cursor: self.cursor.clone(),
            limit: self.limit.clone(),
        }
        .parse()?;
        q.after = after;
        q.limit = limit;
        Ok(q)
    }
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/timeline", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), TimelineParams),
    responses((status = 200, body = timeline::TimelinePage), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn timeline(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: Id,
    q: web::Query<TimelineParams>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let query = q.parse(&admin)?;
    let id = id.into_inner();
    let page = load_slice(&state, id, async |conn: &AsyncPgConnection| {
        timeline::load_page(conn, id, &query).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/analytics", tag = "customers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, body = analytics::Analytics), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn analytics(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let id = id.into_inner();
    let slice = load_slice(&state, id, async |conn: &AsyncPgConnection| {
        analytics::load(conn, id).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(slice))
}
