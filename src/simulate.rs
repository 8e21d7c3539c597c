//! `customer360 simulate`: acts as the commerce platform, writing order, loyalty and ticket
//! changes straight into Postgres (plain SQL through the pool, not the admin API) at a steady
//! rate, so the outbox, relay and live dashboards see real traffic.

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::db::DbPool;
use crate::db::prepared::{bind, prepared};
use crate::domain::loyalty::tier_for_lifetime_points;

/// What a run wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SimulationReport {
    pub orders: u64,
    pub status_changes: u64,
    pub loyalty: u64,
    pub tickets: u64,
    /// Writes that found nothing to change: a customer id missing from the range, a customer
    /// outside the loyalty programme, no open order to advance.
    pub unchanged: u64,
    pub failed: u64,
    /// From the first write to the end of the last one (or the stop).
    pub elapsed: Duration,
}

impl SimulationReport {
    pub fn total(&self) -> u64 {
        self.orders + self.status_changes + self.loyalty + self.tickets
    }
}

#[derive(diesel::QueryableByName)]
struct Bounds {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    lo: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    hi: Option<i64>,
}

/// The mix: (weight, change). Orders dominate, as on a real shop.
const MIX: [(u32, Change); 4] = [
    (55, Change::Order),
    (20, Change::Status),
    (15, Change::Loyalty),
    (10, Change::Ticket),
];

/// One kind of platform write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Order,
    Status,
    Loyalty,
    Ticket,
}

/// Writes `rate` changes per second for `duration` (both bounded by the caller), spread over
/// the existing customers, or until `stop` completes; no write is scheduled past the end, so
/// a rate below one per `duration` writes once.
pub async fn run(
    pool: &DbPool,
    rate: f64,
    duration: Duration,
    seed: u64,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<SimulationReport> {
    // Below one change per 1,000 s the interval outgrows what an instant can add.
    anyhow::ensure!(
        (0.001..=10_000.0).contains(&rate),
        "--rate must be 0.001 to 10000 changes per second"
    );
    let mut conn = pool.get().await?;
    let bounds: Bounds = diesel::sql_query("SELECT min(id) AS lo, max(id) AS hi FROM customers")
        .get_result(&mut conn)
        .await?;
    drop(conn);
    let (Some(lo), Some(hi)) = (bounds.lo, bounds.hi) else {
        anyhow::bail!("there are no customers to simulate; run `customer360 seed` first");
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut report = SimulationReport::default();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = tokio::time::Instant::now();
    let (mut next, end) = (started, started + duration);
    let mut stop = std::pin::pin!(stop);
    while next < end && tokio::time::Instant::now() < end {
        tokio::select! {
            // The stop first: the sleep is often ready at once.
            biased;
            () = &mut stop => break,
            () = tokio::time::sleep_until(next) => {}
        }
        next += interval;
        let customer = rng.random_range(lo..=hi);
        let (change, amount) = pick(&mut rng);
        let mut conn = match pool.get().await {
            Ok(c) => c,
            Err(_) => {
                report.failed += 1;
                continue;
            }
        };
        match write(&mut conn, change, customer, amount).await {
            // Every row a change writes emits a change event.
            Ok(emitted) if emitted.is_empty() => report.unchanged += 1,
            Ok(_) => match change {
                Change::Order => report.orders += 1,
                Change::Status => report.status_changes += 1,
                Change::Loyalty => report.loyalty += 1,
                Change::Ticket => report.tickets += 1,
            },
            Err(e) => {
                report.failed += 1;
                tracing::debug!(error = %e, "simulated change failed");
            }
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The `limit` lowest customer ids: the customers a load run watches and writes to.
pub async fn first_customers(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> diesel::QueryResult<Vec<i64>> {
    let rows: Vec<Id> = diesel::sql_query("SELECT id FROM customers ORDER BY id LIMIT $1")
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// A change drawn from the platform's mix, with an amount in cents.
pub fn pick(rng: &mut impl Rng) -> (Change, i64) {
    let total: u32 = MIX.iter().map(|(w, _)| w).sum();
    let mut ticket = rng.random_range(0..total);
    let change = MIX
        .iter()
        .find(|(w, _)| {
            if ticket < *w {
                true
            } else {
                ticket -= w;
                false
            }
        })
        .map_or(Change::Order, |(_, c)| *c);
    (change, rng.random_range(500..40_000i64))
}

#[derive(diesel::QueryableByName)]
struct Emitted {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: uuid::Uuid,
}

/// Writes one change in its own transaction and returns the change events it emitted (none
/// when there was nothing to change, e.g. no open order to advance), so a load generator can
/// follow each one to the dashboards.
pub async fn write(
    conn: &mut AsyncPgConnection,
    change: Change,
    customer: i64,
    amount: i64,
) -> diesel::QueryResult<Vec<uuid::Uuid>> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        apply(conn, change, customer, amount).await?;
        // This transaction's own rows: `at` bounds the index range, xmin names the writer.
        let emitted: Vec<Emitted> = prepared(
            "SELECT event_id FROM change_events
             WHERE customer_id = $1 AND at >= now() AND xmin::text::bigint = txid_current() % 4294967296",
            vec![bind::<BigInt, _>(customer)],
        )
        .load(conn)
        .await?;
        Ok(emitted.into_iter().map(|e| e.event_id).collect())
    })
    .await
}

async fn apply(
    conn: &mut AsyncPgConnection,
    change: Change,
    customer: i64,
    amount: i64,
) -> diesel::QueryResult<()> {
    match change {
            Change::Order => {
                prepared(
                    "WITH o AS (
                         INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, channel)
                         SELECT id, 'SIM-' || nextval('orders_id_seq'), 'paid', $2, $2, 'web' FROM customers WHERE id = $1
                         RETURNING id, customer_id, total_cents)
                     INSERT INTO order_items (order_id, customer_id, category_id, product_name, quantity, unit_price_cents)
                     SELECT o.id, o.customer_id, (SELECT min(id) FROM product_categories), 'Simulated item', 1, o.total_cents
                     FROM o WHERE EXISTS (SELECT 1 FROM product_categories)",
                    vec![bind::<BigInt, _>(customer), bind::<BigInt, _>(amount)],
                )
                .execute(conn)
                .await?;
                earn(conn, customer, (amount / 100) as i32, "Simulated order").await
            }
            // Platforms ship recent orders; one of those is on the dashboard's first page.
            Change::Status => prepared(
                "UPDATE orders SET status = CASE status WHEN 'pending' THEN 'paid'::order_status
                     WHEN 'paid' THEN 'shipped'::order_status ELSE 'delivered'::order_status END, updated_at = now()
                 WHERE id = (SELECT id FROM (SELECT id, status, placed_at FROM orders WHERE customer_id = $1
                                             ORDER BY placed_at DESC, id DESC LIMIT $2) recent
                             WHERE status IN ('pending', 'paid', 'shipped') ORDER BY placed_at DESC LIMIT 1)",
                vec![
                    bind::<BigInt, _>(customer),
                    bind::<BigInt, _>(crate::view::cursor::DEFAULT_LIMIT),
                ],
            )
            .execute(conn)
            .await
            .map(drop),
            Change::Loyalty => earn(conn, customer, (amount / 200) as i32, "Simulated bonus").await,
            Change::Ticket => prepared(
                "INSERT INTO support_tickets (customer_id, subject, priority)
                 SELECT id, $2, 'normal' FROM customers WHERE id = $1",
                vec![
                    bind::<BigInt, _>(customer),
                    bind::<Text, _>("Where is my parcel? (simulated)"),
                ],
            )
            .execute(conn)
            .await
            .map(drop),
        }
}

/// A ledger row and the account it moves, when the customer is in the programme; the tier
/// follows the domain rule.
async fn earn(
    conn: &mut AsyncPgConnection,
    customer: i64,
    points: i32,
    reason: &str,
) -> diesel::QueryResult<()> {
    use crate::db::schema::{loyalty_accounts as la, loyalty_transactions as lt};
    use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
    let points = points.max(1);
    let lifetime: Option<i64> = la::table
        .find(customer)
        .select(la::lifetime_points)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let Some(lifetime) = lifetime else {
        return Ok(());
    };
    let lifetime = lifetime + i64::from(points);
    diesel::update(la::table.find(customer))
        .set((
            la::balance.eq(la::balance + i64::from(points)),
            la::lifetime_points.eq(lifetime),
            la::tier.eq(tier_for_lifetime_points(lifetime)),
            la::updated_at.eq(chrono::Utc::now()),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(lt::table)
        .values((
            lt::customer_id.eq(customer),
            lt::points.eq(points),
            lt::reason.eq(reason),
            lt::expires_at.eq(Some(chrono::Utc::now() + chrono::Duration::days(365))),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
