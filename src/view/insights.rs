//! Health and churn: the facts they are computed from (one query), their computation by the
//! domain rules, their 90-day history, and recording a new history row when they change.

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{BigInt, Int2, Jsonb, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::{ChurnRiskLevel, LoyaltyTier, OrderStatus};
use crate::domain::churn::{self, ChurnInputs, ChurnRisk};
use crate::domain::health::{self, Factor, HealthInputs, HealthScore};
use crate::domain::metrics::{self, Metrics, OrderFact};
use crate::domain::segments::SegmentFacts;
use crate::view::{JsonRow, decode};

/// Everything health, churn, metrics and automatic segments are computed from.
#[derive(Debug, Clone, Deserialize)]
pub struct Facts {
    orders: Vec<(OrderStatus, i64, DateTime<Utc>)>,
    signed_up_at: Option<DateTime<Utc>>,
    open_rate: Option<f64>,
    unsubscribed: bool,
    sessions_30d: i64,
    open_tickets: i64,
    average_satisfaction: Option<f64>,
    tier: Option<LoyaltyTier>,
    loyalty_active_90d: bool,
}

const FACTS_SQL: &str = "SELECT jsonb_build_object(
    'orders', (SELECT coalesce(jsonb_agg(jsonb_build_array(status, total_cents, placed_at)), '[]')
        FROM orders WHERE customer_id = $1),
    'signed_up_at', (SELECT created_at FROM customers WHERE id = $1),
    'open_rate', (SELECT CASE WHEN count(DISTINCT campaign_id) FILTER (WHERE event_type = 'sent') = 0 THEN NULL
            ELSE (count(DISTINCT campaign_id) FILTER (WHERE event_type = 'opened'))::float8
                 / count(DISTINCT campaign_id) FILTER (WHERE event_type = 'sent') END
        FROM campaign_events WHERE customer_id = $1),
    'unsubscribed', EXISTS (SELECT 1 FROM campaign_events WHERE customer_id = $1 AND event_type = 'unsubscribed'),
    'sessions_30d', (SELECT count(*) FROM web_sessions WHERE customer_id = $1 AND started_at > $2 - interval '30 days'),
    'open_tickets', (SELECT count(*) FROM support_tickets WHERE customer_id = $1 AND status IN ('open', 'pending')),
    'average_satisfaction', (SELECT avg(satisfaction)::float8 FROM support_tickets WHERE customer_id = $1),
    'tier', (SELECT tier FROM loyalty_accounts WHERE customer_id = $1),
    'loyalty_active_90d', EXISTS (SELECT 1 FROM loyalty_transactions WHERE customer_id = $1 AND created_at > $2 - interval '90 days')
  ) AS data";

impl Facts {
    /// Null when the customer does not exist.
    pub fn signed_up_at(&self) -> Option<DateTime<Utc>> {
        self.signed_up_at
    }
}

pub async fn load_facts(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Facts> {
    decode(
        prepared(
            FACTS_SQL,
            vec![bind::<BigInt, _>(customer_id), bind::<Timestamptz, _>(now)],
        )
        .get_result::<JsonRow>(&mut conn)
        .await?,
    )
}

/// What follows from the facts.
#[derive(Debug, Clone)]
pub struct Derived {
    pub metrics: Metrics,
    pub health: HealthScore,
    pub churn: ChurnRisk,
    pub segment_facts: SegmentFacts,
}

pub fn derive(f: &Facts, now: DateTime<Utc>) -> Derived {
    let orders: Vec<OrderFact> = f
        .orders
        .iter()
        .map(|(status, total_cents, placed_at)| OrderFact {
            status: *status,
            total_cents: *total_cents,
            placed_at: *placed_at,
        })
        .collect();
    let m = metrics::compute(&orders, now);
    let days_since_signup = f.signed_up_at.map_or(0, |t| (now - t).num_days().max(0));
    let health = health::compute(&HealthInputs {
        days_since_last_order: m.days_since_last_order,
        orders_last_365_days: m.orders_last_365_days,
        lifetime_value_cents: m.lifetime_value_cents,
        campaign_open_rate: f.open_rate,
        sessions_last_30_days: f.sessions_30d,
        open_tickets: f.open_tickets,
        average_satisfaction: f.average_satisfaction,
        loyalty_tier: f.tier,
        loyalty_active_last_90_days: f.loyalty_active_90d,
    });
    let churn = churn::assess(&ChurnInputs {
        days_since_signup,
        days_since_last_order: m.days_since_last_order,
        median_days_between_orders: m.median_days_between_orders,
        orders_last_90_days: m.orders_last_90_days,
        orders_previous_90_days: m.orders_previous_90_days,
        open_tickets: f.open_tickets,
        average_satisfaction: f.average_satisfaction,
        unsubscribed: f.unsubscribed,
    });
    let segment_facts = SegmentFacts {
        days_since_signup,
        days_since_last_order: m.days_since_last_order,
        order_count: m.order_count,
        lifetime_value_cents: m.lifetime_value_cents,
    };
    Derived {
        metrics: m,
        health,
        churn,
        segment_facts,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrendPoint {
    pub at: DateTime<Utc>,
    pub score: i16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthSlice {
    pub score: i16,
    pub factors: Vec<Factor>,
    /// Recorded scores of the last 90 days, oldest first.
    pub trend: Vec<TrendPoint>,
    /// The score now minus the oldest score of the last 90 days.
    pub change_90d: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChurnSlice {
    pub level: ChurnRiskLevel,
    pub points: u32,
    pub reasons: Vec<String>,
}

pub type History = Vec<TrendPoint>;

const HISTORY_SQL: &str =
    "SELECT coalesce(jsonb_agg(jsonb_build_object('at', computed_at, 'score', score)
        ORDER BY computed_at, id), '[]') AS data
    FROM customer_health_scores WHERE customer_id = $1 AND computed_at > $2 - interval '90 days'";

pub async fn load_history(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<History> {
    decode(
        prepared(
            HISTORY_SQL,
            vec![bind::<BigInt, _>(customer_id), bind::<Timestamptz, _>(now)],
        )
        .get_result::<JsonRow>(&mut conn)
        .await?,
    )
}

impl HealthSlice {
    pub fn new(d: &Derived, history: &History) -> HealthSlice {
        HealthSlice {
            score: d.health.score,
            factors: d.health.factors.clone(),
            trend: history.clone(),
            change_90d: history
                .iter()
                .next()
                .map(|oldest| d.health.score - oldest.score),
        }
    }
}

impl ChurnSlice {
    pub fn new(d: &Derived) -> ChurnSlice {
        ChurnSlice {
            level: d.churn.level,
            points: d.churn.points,
            reasons: d.churn.reasons.clone(),
        }
    }
}

/// Appends health and churn history rows when they differ from the latest recorded ones, so
/// the history holds every change and nothing else.
pub async fn record(conn: &AsyncPgConnection, customer_id: i64, d: &Derived) -> QueryResult<()> {
    let factors = serde_json::to_value(&d.health.factors)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let reasons = serde_json::to_value(&d.churn.reasons)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let (mut c1, mut c2) = (conn, conn);
    futures_util::try_join!(
        prepared(
            "INSERT INTO customer_health_scores (customer_id, score, factors)
         SELECT $1, $2, $3 WHERE NOT EXISTS (
             SELECT 1 FROM (SELECT score FROM customer_health_scores WHERE customer_id = $1
                            ORDER BY computed_at DESC, id DESC LIMIT 1) l WHERE l.score = $2)",
            vec![
                bind::<BigInt, _>(customer_id),
                bind::<Int2, _>(d.health.score),
                bind::<Jsonb, _>(factors),
            ],
        )
        .execute(&mut c1),
        prepared(
            "INSERT INTO customer_churn_risks (customer_id, level, reasons)
         SELECT $1, $2::churn_risk_level, $3 WHERE NOT EXISTS (
             SELECT 1 FROM (SELECT level, reasons FROM customer_churn_risks WHERE customer_id = $1
                            ORDER BY computed_at DESC, id DESC LIMIT 1) l
             WHERE l.level = $2::churn_risk_level AND l.reasons = $3)",
            vec![
                bind::<BigInt, _>(customer_id),
                bind::<Text, _>(d.churn.level.as_str()),
                bind::<Jsonb, _>(reasons),
            ],
        )
        .execute(&mut c2)
    )?;
    Ok(())
}
