//! Derived state, kept by the server rather than read from the platform: health and churn
//! history, and automatic segment membership. Recomputed per customer when their data changes
//! (`recompute_customer`, driven by the outbox relay) and for everyone by
//! `customer360 segments recompute` (`segment_pass`).

pub mod segment_pass;
pub mod worker;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::db::prepared::{bind, prepared};
use crate::domain::segments::{self, Quintiles};
use crate::view::{self, insights};

/// Whether a change event can alter health, churn or automatic segments. Notes, tags and
/// segment assignments cannot, nor can the health and churn history rows this module writes
/// itself (kind `profile`, but their entity is the history row, not the customer): that keeps
/// the recompute from triggering itself. Nor can a catalog row renamed (entity `campaign:12`,
/// `category:3`, migration 11): no score reads a name, and a popular campaign's rename would
/// otherwise recompute most customers.
pub fn event_feeds_derived_state(kind: &str, entity_id: &str, customer_id: i64) -> bool {
    if view::is_catalog_change(entity_id) {
        return false;
    }
    match kind {
        "order" | "loyalty" | "ticket" | "marketing" | "session" => true,
        "profile" => !view::is_derived_history(kind, entity_id, customer_id),
        _ => false,
    }
}

/// Recomputes one customer's health, churn and automatic segments from the database and
/// writes what changed, in one transaction whose statements are sent together. Manual segment
/// assignments are never touched.
///
/// The commit does not wait for the disk (`synchronous_commit = off`): every row written here
/// follows from the platform's data and is written again by the customer's next change, so a
/// crash that lost the last moments of it loses nothing that cannot be recomputed, and the
/// relay, which waits for this before publishing the change, is not held up by a WAL flush.
pub async fn recompute_customer(
    conn: &mut AsyncPgConnection,
    customer_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        // One customer's rows by index, whoever the customer: the connection's cached plans
        // fit every call (see `view::load_slices`).
        conn.batch_execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL plan_cache_mode = force_generic_plan",
        )
        .await?;
        let conn: &AsyncPgConnection = conn;
        let (facts, quintiles) = futures_util::try_join!(
            insights::load_facts(conn, customer_id, now),
            segment_pass::current_quintiles(conn)
        )?;
        if facts.signed_up_at().is_none() {
            // The customer is gone; their rows went with them.
            return Ok(());
        }
        let derived = insights::derive(&facts, now);
        let names: Vec<String> = segments::automatic_segments(&derived.segment_facts, &quintiles)
            .into_iter()
            .map(str::to_owned)
            .collect();
        futures_util::try_join!(
            insights::record(conn, customer_id, &derived),
            sync_automatic_segments(conn, customer_id, &names)
        )?;
        Ok(())
    })
    .await
}

/// Makes the customer's automatic assignments exactly `names`: adds the missing ones, removes
/// automatic ones no longer earned; rows with source `manual` are left alone.
async fn sync_automatic_segments(
    conn: &AsyncPgConnection,
    customer_id: i64,
    names: &[String],
) -> QueryResult<()> {
    let (mut c1, mut c2) = (conn, conn);
    futures_util::try_join!(
        prepared(
            "DELETE FROM customer_segment_assignments a USING customer_segments s
             WHERE a.segment_id = s.id AND a.customer_id = $1 AND a.source = 'auto' AND s.kind = 'automatic'
               AND NOT (s.name = ANY($2))",
            vec![
                bind::<BigInt, _>(customer_id),
                bind::<Array<Text>, _>(names.to_vec()),
            ],
        )
        .execute(&mut c1),
        prepared(
            "INSERT INTO customer_segment_assignments (customer_id, segment_id, source)
             SELECT $1, s.id, 'auto' FROM customer_segments s WHERE s.kind = 'automatic' AND s.name = ANY($2)
             ON CONFLICT (customer_id, segment_id) DO NOTHING",
            vec![
                bind::<BigInt, _>(customer_id),
                bind::<Array<Text>, _>(names.to_vec()),
            ],
        )
        .execute(&mut c2)
    )?;
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
