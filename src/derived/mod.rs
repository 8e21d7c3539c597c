//! Derived state, kept by the server rather than read from the platform: health and churn
//! history, and automatic segment membership. Recomputed per customer when their data changes
//! (`recompute_customer`, driven by the outbox relay) and for everyone by
//! `customer360 segments recompute` (`segment_pass`).

pub mod segment_pass;
pub mod worker;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::{bind, prepared};
use crate::domain::segments::{self, Quintiles};
use crate::view::{self, insights};

/// Whether a change event can alter health, churn or automatic segments. Notes, tags and
/// segment assignments cannot, nor can the health and churn history rows this module writes
/// itself (kind `profile`, but their entity is the history row, not the customer): that keeps
/// the recompute from triggering itself.
pub fn event_feeds_derived_state(kind: &str, entity_id: &str, customer_id: i64) -> bool {
    match kind {
        "order" | "loyalty" | "ticket" | "marketing" | "session" => true,
        "profile" => !view::is_derived_history(kind, entity_id, customer_id),
        _ => false,
    }
}

/// Recomputes one customer's health, churn and automatic segments from the database and
/// writes what changed. Manual segment assignments are never touched.
pub async fn recompute_customer(
    conn: &mut AsyncPgConnection,
    customer_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let facts = insights::load_facts(conn, customer_id, now).await?;
    if facts.signed_up_at().is_none() {
        // The customer is gone; their rows went with them.
        return Ok(());
    }
    let derived = insights::derive(&facts, now);
    insights::record(conn, customer_id, &derived).await?;
    let quintiles = segment_pass::current_quintiles(conn).await?;
    let names: Vec<String> = segments::automatic_segments(&derived.segment_facts, &quintiles)
        .into_iter()
        .map(str::to_owned)
        .collect();
    sync_automatic_segments(conn, customer_id, &names).await
}

/// Makes the customer's automatic assignments exactly `names`: adds the missing ones, removes
/// automatic ones no longer earned; rows with source `manual` are left alone.
async fn sync_automatic_segments(
    conn: &mut AsyncPgConnection,
    customer_id: i64,
    names: &[String],
) -> QueryResult<()> {
    prepared(
        "DELETE FROM customer_segment_assignments a USING customer_segments s
         WHERE a.segment_id = s.id AND a.customer_id = $1 AND a.source = 'auto' AND s.kind = 'automatic'
           AND NOT (s.name = ANY($2))",
        vec![
            bind::<BigInt, _>(customer_id),
            bind::<Array<Text>, _>(names.to_vec()),
        ],
    )
    .execute(conn)
    .await?;
    prepared(
        "INSERT INTO customer_segment_assignments (customer_id, segment_id, source)
         SELECT $1, s.id, 'auto' FROM customer_segments s WHERE s.kind = 'automatic' AND s.name = ANY($2)
         ON CONFLICT (customer_id, segment_id) DO NOTHING",
        vec![
            bind::<BigInt, _>(customer_id),
            bind::<Array<Text>, _>(names.to_vec()),
        ],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The quintiles to use when none have been computed yet: everything scores 3.
pub fn neutral_quintiles() -> Quintiles {
    Quintiles {
        recency_days: [0.0; 4],
        frequency: [0.0; 4],
        monetary_cents: [0.0; 4],
    }
}
