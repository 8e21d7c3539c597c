//! `customer360 seed`: loads deterministic, realistic demo data with COPY. Row triggers are off
//! for the load (`session_replication_role = replica`): seeded history is not a stream of
//! changes, and customer_stats and customer_search are filled afterwards, each in one statement
//! computing what the triggers would have written; then the derived state the server would
//! have recorded (health and churn history, automatic segments).

mod catalog;
mod copy;
mod derived;
mod generator;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{CommonConfig, SeedConfig};
use crate::db;
use generator::{Batch, Generator};

/// Customers generated and loaded per round trip.
const CHUNK: u32 = 2_000;

const PROGRESS_TEMPLATE: &str =
    "{spinner} seeding [{bar:40}] {pos}/{len} customers, {per_sec}, eta {eta} {msg}";

/// Tables emptied by `--reset` (everything else cascades from them). Segments are not among
/// them: the automatic ones are part of the schema; manual ones are deleted separately.
const RESET_TABLES: &str = "customers, product_categories, campaigns, customer_tags, \
     change_events, audit_log, idempotency_keys, segment_thresholds";

/// Tables whose `id` sequence must continue after the explicit ids the seed wrote.
const SEQUENCED_TABLES: &[&str] = &[
    "customers",
    "product_categories",
    "orders",
    "order_items",
    "loyalty_transactions",
    "referrals",
    "campaigns",
    "campaign_events",
    "support_tickets",
    "web_sessions",
    "category_views",
    "customer_notes",
    "customer_tags",
    "customer_tag_assignments",
    "customer_segments",
    "customer_segment_assignments",
];

#[derive(Debug)]
pub struct SeedReport {
    pub customers: u32,
    pub rows: u64,
    pub elapsed: Duration,
}

/// How many customers the database holds (0 for a database that does not exist yet).
pub async fn customer_count(database_url: &str) -> anyhow::Result<i64> {
    db::url::ensure_database(database_url).await?;
    db::migrations::run(database_url).await?;
    let client = db::url::connect_raw(database_url).await?;
    Ok(client
        .query_one("SELECT count(*) FROM customers", &[])
        .await?
        .get(0))
}

pub async fn run(common: &CommonConfig, config: &SeedConfig) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let url = &common.database_url;
    db::url::ensure_database(url).await?;
    db::migrations::run(url).await?;
    let client = db::url::connect_raw(url).await?;
    client
        .batch_execute("SET session_replication_role = replica; SET synchronous_commit = off; SET client_min_messages = warning")
        .await
        .context("seeding switches row triggers off and needs a superuser (or SET privilege on session_replication_role)")?;

    // The catalogue counts too: seeded with explicit ids, it would collide with one left by an
    // earlier seed of no customers, or made through the API.
    let existing = client
        .query_one(
            "SELECT (SELECT count(*) FROM customers),
                    (SELECT count(*) FROM product_categories) + (SELECT count(*) FROM campaigns)
                      + (SELECT count(*) FROM customer_tags)",
            &[],
        )
        .await?;
    let (customers, catalogue): (i64, i64) = (existing.get(0), existing.get(1));
    if (customers > 0 || catalogue > 0) && !config.reset {
        let held = if customers > 0 {
            format!("{customers} customers")
        } else {
            format!("{catalogue} catalogue rows (categories, campaigns, tags) and no customers")
        };
        bail!(
            "database '{}' already holds {held}; seeding refuses to mix data sets. \
             Run `customer360 seed --reset …` to delete everything and seed again.",
            db::url::DatabaseUrl::parse(url)?.name()
        );
    }
    if config.reset {
        client
            .batch_execute(&format!(
                "TRUNCATE {RESET_TABLES} RESTART IDENTITY CASCADE; UPDATE outbox_relay_state SET published_seq = 0; \
                 DELETE FROM customer_segments WHERE kind = 'manual'"
            ))
            .await
            .context("reset failed")?;
    }

    let anchor = config.anchor.unwrap_or_else(|| Utc::now().date_naive());
    let mut generator = Generator::new(config.seed, anchor, config.customers);
    let mut rows = 0u64;
    for buf in generator.catalogue() {
        rows += buf.load(&client).await?;
    }

    let progress = if config.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::from(config.customers))
    };
    progress.set_style(
        ProgressStyle::with_template(PROGRESS_TEMPLATE)
            // unwrap: the template is a constant checked by the test suite.
            .unwrap()
            .progress_chars("=> "),
    );

    // Generation runs on a blocking thread while the previous chunk is loading, so Rust and
    // Postgres each keep one core busy.
    let total = config.customers;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut start = 0;
        while start < total {
            let end = (start + CHUNK).min(total);
            if tx.blocking_send(generator.customers(start..end)).is_err() {
                break;
            }
            start = end;
        }
    });
    while let Some(batch) = rx.recv().await {
        for buf in batch.bufs {
            rows += buf.load(&client).await?;
        }
        progress.inc(u64::from(batch.customers));
    }
    producer.await.context("data generation panicked")?;

    progress.set_message("computing customer stats");
    client
        .batch_execute(
            "INSERT INTO customer_stats (customer_id, lifetime_value_cents, order_count, first_order_at, \
                 last_order_at, avg_order_value_cents) \
             SELECT c.id, coalesce(r.lifetime_value_cents, 0), coalesce(r.order_count, 0), r.first_order_at, \
                 r.last_order_at, coalesce(r.avg_order_value_cents, 0) \
             FROM customers c LEFT JOIN customer_revenue r ON r.customer_id = c.id \
             ON CONFLICT (customer_id) DO NOTHING",
        )
        .await
        .context("computing customer_stats failed")?;
    client
        .batch_execute(
            "INSERT INTO customer_search (customer_id, name_lc, email_lc, phone_digits) \
             SELECT id, lower(name), lower(email), phone_digits FROM customers; \
             REINDEX TABLE customer_search",
        )
        .await
        // Trigram indexes filled row by row come out nearly twice the size of ones built in one
        // pass, and a broad search reads them whole: rebuilt, `q=example.co.uk` counts in 16 ms
        // instead of 23.
        .context("filling customer_search failed")?;
    for table in SEQUENCED_TABLES {
        client
            .batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
            ))
            .await?;
    }
    client
        .batch_execute(
            "SELECT setval(pg_get_serial_sequence('customer_segments', 'id'), greatest(100, max(id)) + 1, false) FROM customer_segments",
        )
        .await?;
    // After the sequences: the segment pass takes its ids from them.
    progress.set_message("recording health, churn and automatic segments");
    rows += derived::record(&client, url, anchor.and_time(NaiveTime::MIN).and_utc())
        .await
        .context("recording derived state failed")?;
    progress.set_message("analyzing");
    client.batch_execute("ANALYZE").await?;
    progress.finish_and_clear();
    Ok(SeedReport {
        customers: total,
        rows,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_template_parses() {
        assert!(indicatif::ProgressStyle::with_template(super::PROGRESS_TEMPLATE).is_ok());
    }
}
