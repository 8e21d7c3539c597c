//! `GET /api/admin/customers/compare?ids=1,2[,3]`: two or three customers side by side —
//! metrics, health and churn, with the differences made explicit, and which segments and tags
//! they share or hold alone.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::errors::{ApiError, Problem};
use crate::startup::AppState;
use crate::view::{insights, labels, profile};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CompareParams {
    /// Two or three customer ids, comma-separated.
    pub ids: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    /// Per customer: id, name, email (masked per role), metrics, health score, churn level.
    pub customers: Vec<Value>,
    /// Per measure: each customer's value, who is highest, and the gap to every other one
    /// (absolute and as a percentage of the lower value).
    pub differences: Vec<Value>,
    pub segments: Value,
    pub tags: Value,
}

fn parse_ids(raw: Option<&str>) -> Result<Vec<i64>, ApiError> {
    let raw = raw.unwrap_or("");
    let ids: Vec<i64> = raw
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::validation("ids", format!("'{s}' is not a customer id")))
        })
        .collect::<Result<_, _>>()?;
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    if distinct.len() != ids.len() {
        return Err(ApiError::validation(
            "ids",
            "ids name a customer twice: compare two or three different customers",
        ));
    }
    if !(2..=3).contains(&ids.len()) {
        return Err(ApiError::validation(
            "ids",
            format!(
                "compare two or three different customers, got {}",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}

/// What a pair of values says: difference and percentage of the lower one (null when it is 0).
fn gap(high: f64, low: f64) -> Value {
    json!({"difference": high - low, "percent": (low != 0.0).then(|| ((high - low) / low.abs() * 1000.0).round() / 10.0)})
}

fn overlap(sets: &[(i64, BTreeSet<String>)]) -> Value {
    let shared: BTreeSet<String> = sets
        .iter()
        .map(|(_, s)| s.clone())
        .reduce(|a, b| a.intersection(&b).cloned().collect())
        .unwrap_or_default();
    let own: Vec<Value> = sets
        .iter()
        .map(|(id, s)| json!({"customer_id": id, "only": s.difference(&shared).cloned().collect::<Vec<_>>()}))
        .collect();
    json!({"shared": shared, "own": own})
}

async fn one(
    conn: &AsyncPgConnection,
    id: i64,
) -> diesel::QueryResult<(
    profile::Profile,
    insights::Facts,
    Vec<labels::AssignedSegment>,
    Vec<labels::AssignedTag>,
)> {
    futures_util::try_join!(
        profile::load(conn, id),
        insights::load_facts(conn, id, Utc::now()),
        labels::load_segments(conn, id),
        labels::load_tags(conn, id),
    )
}

#[utoipa::path(get, path = "/api/admin/customers/compare", tag = "customers", security(("bearer" = [])),
    params(CompareParams),
    responses((status = 200, body = Comparison), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn compare(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    q: web::Query<CompareParams>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let ids = parse_ids(q.ids.as_deref())?;
    let conn = state.pool.get().await?;
    let loaded = futures_util::future::join_all(ids.iter().map(|id| one(&conn, *id))).await;
    let now = Utc::now();
    let masking = admin.masking();
    let mut customers = Vec::new();
    let mut measures: Vec<(i64, Vec<(&'static str, f64)>)> = Vec::new();
    let (mut segment_sets, mut tag_sets) = (Vec::new(), Vec::new());
    for (id, result) in ids.iter().zip(loaded) {
        let (profile, facts, segments, tags) = result.map_err(|e| match e {
            diesel::result::Error::NotFound => {
                ApiError::not_found(format!("customer {id} does not exist"))
            }
            other => other.into(),
        })?;
        let d = insights::derive(&facts, now);
        let m = &d.metrics;
        measures.push((
            *id,
            vec![
                ("lifetime_value_cents", m.lifetime_value_cents as f64),
                ("order_count", m.order_count as f64),
                (
                    "average_order_value_cents",
                    m.average_order_value_cents as f64,
                ),
                ("orders_per_month", m.orders_per_month.unwrap_or(0.0)),
                ("refund_rate", m.refund_rate),
                ("health_score", f64::from(d.health.score)),
                ("churn_points", f64::from(d.churn.points)),
            ],
        ));
        let profile = profile.masked(masking);
        customers.push(json!({
            "id": id, "name": profile.name, "email": profile.email, "metrics": m,
            "health": {"score": d.health.score, "factors": d.health.factors},
            "churn": {"level": d.churn.level, "reasons": d.churn.reasons},
        }));
        segment_sets.push((
            *id,
            segments
                .into_iter()
                .map(|s| s.name)
                .collect::<BTreeSet<_>>(),
        ));
        tag_sets.push((
            *id,
            tags.into_iter().map(|t| t.name).collect::<BTreeSet<_>>(),
        ));
    }
    let differences = measures[0]
        .1
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let values: Vec<(i64, f64)> = measures.iter().map(|(id, m)| (*id, m[i].1)).collect();
            let (top_id, top) = values.iter().copied().fold((values[0].0, f64::MIN), |acc, v| if v.1 > acc.1 { v } else { acc });
            let all_equal = values.iter().all(|(_, v)| *v == top);
            let gaps: Vec<Value> = values
                .iter()
                .filter(|(id, _)| *id != top_id)
                .map(|(id, v)| json!({"customer_id": id, "behind_highest": gap(top, *v)}))
                .collect();
            json!({
                "measure": name,
                "values": values.iter().map(|(id, v)| json!({"customer_id": id, "value": v})).collect::<Vec<_>>(),
                "highest": if all_equal { Value::Null } else { json!(top_id) },
                "gaps": gaps,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(Comparison {
        customers,
        differences,
        segments: overlap(&segment_sets),
        tags: overlap(&tag_sets),
    }))
}
