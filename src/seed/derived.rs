//! The seeded customers' derived state, as the server would have recorded it by the anchor:
//! each customer's health and churn as one history row, and their automatic segments (the
//! full segment pass). Without it health trends start empty, and every customer's first
//! change after a seed writes all three at once (more than half the deltas of a load run
//! on a fresh seed came from that).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::derived::segment_pass;
use crate::seed::copy::CopyBuf;
use crate::view::insights;

/// Customers whose facts are read in one pipelined round.
const ROUND: usize = 256;

/// Records it all at `at`; `client` has row triggers off, so none of it is a change event.
/// Returns the rows written.
pub async fn record(
    client: &tokio_postgres::Client,
    database_url: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let reader = AsyncPgConnection::establish(database_url).await?;
    let ids: Vec<i64> = client
        .query("SELECT id FROM customers ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut health = CopyBuf::new(
        "customer_health_scores",
        "customer_id, score, factors, computed_at",
    );
    let mut churn = CopyBuf::new(
        "customer_churn_risks",
        "customer_id, level, reasons, computed_at",
    );
    for round in ids.chunks(ROUND) {
        let facts = futures_util::future::try_join_all(
            round
                .iter()
                .map(|id| insights::load_facts(&reader, *id, at)),
        )
        .await?;
        for (id, f) in round.iter().zip(facts) {
            let d = insights::derive(&f, at);
            health
                .int(*id)
                .int(i64::from(d.health.score))
                .text(&serde_json::to_string(&d.health.factors)?)
                .ts(at);
            health.end_row();
            churn
                .int(*id)
                .text(d.churn.level.as_str())
                .text(&serde_json::to_string(&d.churn.reasons)?)
                .ts(at);
            churn.end_row();
        }
    }
    let mut rows = health.load(client).await? + churn.load(client).await?;
    // Stamped with the anchor, which keeps a seed reproducible.
    rows += segment_pass::run(client, at).await?.added;
    Ok(rows)
}
