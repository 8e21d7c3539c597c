//! The full automatic-segment pass (`customer360 segments recompute`): RFM quintiles over the
//! whole customer base, then every customer's automatic segments, merged set-wise so that a
//! customer whose segments did not change gets no write (and no change event). Manual
//! assignments are never touched.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{Jsonb, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::SinkExt;

use crate::db::prepared::prepared;
use crate::domain::segments::{self, Quintiles, SegmentFacts, cut_points};

#[derive(diesel::QueryableByName)]
struct ThresholdRow {
    #[diesel(sql_type = Nullable<Jsonb>)]
    quintiles: Option<serde_json::Value>,
}

/// The quintiles of the last full pass (neutral ones before the first).
pub async fn current_quintiles(mut conn: &AsyncPgConnection) -> QueryResult<Quintiles> {
    let row: ThresholdRow = prepared(
        "SELECT (SELECT quintiles FROM segment_thresholds) AS quintiles",
        vec![],
    )
    .get_result(&mut conn)
    .await?;
    Ok(row
        .quintiles
        .and_then(|q| serde_json::from_value(q).ok())
        .unwrap_or_else(super::neutral_quintiles))
}

#[derive(Debug)]
pub struct PassReport {
    pub customers: usize,
    pub added: u64,
    pub removed: u64,
    pub elapsed: Duration,
}

/// Runs the pass over a plain connection (it streams with COPY) as of `now`, which the
/// assignments it adds carry as their time.
pub async fn run(
    client: &tokio_postgres::Client,
    now: DateTime<Utc>,
) -> anyhow::Result<PassReport> {
    let started = Instant::now();
    let rows = client
        .query(
            "SELECT c.id, c.created_at, s.last_order_at, s.order_count::bigint, s.lifetime_value_cents
             FROM customers c JOIN customer_stats s ON s.customer_id = c.id",
            &[],
        )
        .await
        .context("reading customer_stats")?;
    let facts: Vec<(i64, SegmentFacts)> = rows
        .iter()
        .map(|r| {
            let created: DateTime<Utc> = r.get(1);
            let last: Option<DateTime<Utc>> = r.get(2);
            (
                r.get(0),
                SegmentFacts {
                    days_since_signup: (now - created).num_days().max(0),
                    days_since_last_order: last.map(|t| (now - t).num_days().max(0)),
                    order_count: r.get(3),
                    lifetime_value_cents: r.get(4),
                },
            )
        })
        .collect();
    let buyers: Vec<&SegmentFacts> = facts
        .iter()
        .map(|(_, f)| f)
        .filter(|f| f.order_count > 0)
        .collect();
    let quintiles = Quintiles {
        recency_days: cut_points(
            buyers
                .iter()
                .filter_map(|f| f.days_since_last_order)
                .map(|d| d as f64)
                .collect(),
        ),
        frequency: cut_points(buyers.iter().map(|f| f.order_count as f64).collect()),
        monetary_cents: cut_points(
            buyers
                .iter()
                .map(|f| f.lifetime_value_cents as f64)
                .collect(),
        ),
    };

    client
        .batch_execute("CREATE TEMP TABLE IF NOT EXISTS wanted_segments (customer_id BIGINT, name TEXT); TRUNCATE wanted_segments")
        .await?;
    let mut data = String::with_capacity(facts.len() * 24);
    for (id, f) in &facts {
        for name in segments::automatic_segments(f, &quintiles) {
            data.push_str(&format!("{id}\t{}\n", name.replace('\\', "\\\\")));
        }
    }
    let sink = client
        .copy_in::<_, bytes::Bytes>("COPY wanted_segments (customer_id, name) FROM STDIN")
        .await?;
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await?;
    sink.finish().await?;
    // Temporary tables are never auto-analyzed; without statistics the merge below plans as a
    // nested loop over both sides.
    client.batch_execute("CREATE INDEX IF NOT EXISTS wanted_segments_key ON wanted_segments (customer_id, name); ANALYZE wanted_segments").await?;

    let quintiles_json = serde_json::to_value(&quintiles)?;
    client
        .execute(
            "INSERT INTO segment_thresholds (id, quintiles, computed_at) VALUES (true, $1, now())
             ON CONFLICT (id) DO UPDATE SET quintiles = EXCLUDED.quintiles, computed_at = EXCLUDED.computed_at",
            &[&quintiles_json],
        )
        .await?;
    let removed = client
        .execute(
            "DELETE FROM customer_segment_assignments a USING customer_segments s
             WHERE a.segment_id = s.id AND a.source = 'auto' AND s.kind = 'automatic'
               AND NOT EXISTS (SELECT 1 FROM wanted_segments w WHERE w.customer_id = a.customer_id AND w.name = s.name)",
            &[],
        )
        .await?;
    let added = client
        .execute(
            "INSERT INTO customer_segment_assignments (customer_id, segment_id, source, assigned_at)
             SELECT w.customer_id, s.id, 'auto', $1 FROM wanted_segments w
             JOIN customer_segments s ON s.name = w.name AND s.kind = 'automatic'
             ON CONFLICT (customer_id, segment_id) DO NOTHING",
            &[&now],
        )
        .await?;
    Ok(PassReport {
        customers: facts.len(),
        added,
        removed,
        elapsed: started.elapsed(),
    })
}
