//! Planner statistics for the tables the server fills itself. They start empty, and a
//! connection caches its plans: a per-customer lookup planned while `change_events` was empty
//! stays a sequential scan of the whole table until its statistics are refreshed (measured:
//! 3 ms instead of 0.05 ms per hub reload after a few thousand changes). Autovacuum refreshes
//! them when it runs, but where it is off nothing does, so the server analyzes these tables
//! itself once they have changed as much as autovacuum's default analyze rule asks for.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::db::DbPool;

/// The outbox and the health and churn history: written only by this server's triggers and
/// derived worker, read per customer on every hub reload.
pub const TABLES: [&str; 3] = [
    "change_events",
    "customer_health_scores",
    "customer_churn_risks",
];
/// How often the tables' change counters are read.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// An ANALYZE waits this long at most for a vacuum holding the table, then tries next time.
const LOCK_TIMEOUT_MS: u32 = 100;

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = Text)]
    relname: String,
}

/// Analyzes those of `TABLES` changed by more than 50 rows plus 10 % since their last
/// analysis (autovacuum's default rule, so where it runs it has usually done this first).
/// Returns the tables analyzed.
pub async fn refresh_stale(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<String>> {
    let stale: Vec<Stale> = diesel::sql_query(
        "SELECT relname::text AS relname FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND relname = ANY($1)
           AND n_mod_since_analyze > 50 + 0.1 * n_live_tup",
    )
    .bind::<Array<Text>, _>(TABLES.to_vec())
    .load(conn)
    .await?;
    let mut analyzed = Vec::new();
    for table in stale {
        // The name came from `TABLES` through the filter above: no quoting needed.
        let sql = format!(
            "SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}; ANALYZE {}",
            table.relname
        );
        conn.transaction(async |conn| conn.batch_execute(&sql).await)
            .await?;
        analyzed.push(table.relname);
    }
    Ok(analyzed)
}

/// Runs forever; failures (Postgres away, a vacuum holding a table) are logged and retried on
/// the next check.
pub async fn keep(pool: DbPool) {
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let result = match pool.get().await {
            Ok(mut conn) => refresh_stale(&mut conn).await.map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(tables) => {
                for table in tables {
                    metrics::counter!("table_statistics_refreshed_total", "table" => table)
                        .increment(1);
                }
            }
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "table statistics check failed; retrying")
            }
        }
    }
}
