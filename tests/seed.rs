//! `seed` against a real database: deterministic, consistent with the triggers' rules and the
//! derived worker's, refusing to mix data sets.

mod common;

use chrono::NaiveDate;
use common::TestDb;
use customer360::config::{CommonConfig, SeedConfig};

fn configs(db: &TestDb, customers: u32, seed: u64, reset: bool) -> (CommonConfig, SeedConfig) {
    (
        CommonConfig {
            database_url: db.url.clone(),
            redis_url: common::REDIS_URL.into(),
            jwt_secret: common::JWT_SECRET.into(),
        },
        SeedConfig {
            customers,
            seed,
            reset,
            anchor: NaiveDate::from_ymd_opt(2026, 11, 1),
            quiet: true,
        },
    )
}

/// A digest of every seeded table's content, in id order.
async fn fingerprint(db: &TestDb) -> Vec<(String, String)> {
    let sql = db.sql().await;
    let mut out = Vec::new();
    for table in [
        "customers",
        "orders",
        "order_items",
        "loyalty_accounts",
        "loyalty_transactions",
        "referrals",
        "marketing_consents",
        "campaigns",
        "campaign_events",
        "support_tickets",
        "web_sessions",
        "category_views",
        "customer_notes",
        "customer_tag_assignments",
        "customer_segment_assignments",
        // updated_at is the time of the load, not data.
        "(SELECT customer_id, lifetime_value_cents, order_count, first_order_at, last_order_at, avg_order_value_cents FROM customer_stats)",
    ] {
        let digest: String = sql
            .query_one(&format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"), &[])
            .await
            .expect("digest")
            .get(0);
        out.push((table.to_owned(), digest));
    }
    out
}

#[actix_web::test]
async fn same_seed_gives_the_same_data_and_a_different_seed_does_not() {
    let (a, b, c) = (
        TestDb::create().await,
        TestDb::create().await,
        TestDb::create().await,
    );
    for (db, seed) in [(&a, 11), (&b, 11), (&c, 12)] {
        let (common, config) = configs(db, 300, seed, false);
        let report = customer360::seed::run(&common, &config)
            .await
            .expect("seed");
        assert_eq!(report.customers, 300);
        assert!(
            report.rows > 300 * 20,
            "realistic volume: {} rows",
            report.rows
        );
    }
    let (fa, fb, fc) = (
        fingerprint(&a).await,
        fingerprint(&b).await,
        fingerprint(&c).await,
    );
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
}

#[actix_web::test]
async fn refuses_a_non_empty_database_unless_reset() {
    let db = TestDb::create().await;
    let (common, config) = configs(&db, 50, 1, false);
    customer360::seed::run(&common, &config)
        .await
        .expect("first seed");
    let err = customer360::seed::run(&common, &config)
        .await
        .expect_err("second seed refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("already holds 50 customers") && message.contains("--reset"),
        "{message}"
    );

    // A seed of no customers still wrote the catalogue: a second seed is refused the same way.
    let empty = TestDb::create().await;
    let (common_empty, none) = configs(&empty, 0, 1, false);
    customer360::seed::run(&common_empty, &none)
        .await
        .expect("a seed of no customers");
    let (_, some) = configs(&empty, 3, 1, false);
    let message = format!(
        "{:#}",
        customer360::seed::run(&common_empty, &some)
            .await
            .expect_err("refused")
    );
    assert!(
        message.contains("catalogue rows") && message.contains("--reset"),
        "{message}"
    );

    let (common, config) = configs(&db, 80, 2, true);
    customer360::seed::run(&common, &config)
        .await
        .expect("reset seed");
    let sql = db.sql().await;
    let n: i64 = sql
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 80);
    // Sequences continue after the seeded ids: a platform insert does not collide.
    sql.batch_execute(
        "INSERT INTO customers (name, email) VALUES ('After Seed', 'after@example.com')",
    )
    .await
    .expect("insert after seed");
}

#[actix_web::test]
async fn seeded_data_obeys_the_rules() {
    let db = TestDb::create().await;
    let (common, config) = configs(&db, 400, 5, false);
    customer360::seed::run(&common, &config)
        .await
        .expect("seed");
    let sql = db.sql().await;
    let check = |q: &'static str| {
        let sql = &sql;
        async move { sql.query_one(q, &[]).await.expect(q).get::<_, i64>(0) }
    };
    // customer_stats equals the aggregate recomputed from orders.
    assert_eq!(
        check(
            "SELECT count(*) FROM customer_stats s LEFT JOIN (
                 SELECT customer_id, sum(total_cents) AS ltv, count(*) AS n FROM orders
                 WHERE status IN ('paid','shipped','delivered') GROUP BY customer_id) o USING (customer_id)
             WHERE s.lifetime_value_cents <> coalesce(o.ltv, 0) OR s.order_count <> coalesce(o.n, 0)"
        )
        .await,
        0
    );
    assert_eq!(check("SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM customer_stats s WHERE s.customer_id = c.id)").await, 0);
    // Every customer is searchable by its lowercased name and email and its phone digits.
    assert_eq!(
        check(
            "SELECT count(*) FROM customers c LEFT JOIN customer_search s ON s.customer_id = c.id
             WHERE s.name_lc IS DISTINCT FROM lower(c.name) OR s.email_lc IS DISTINCT FROM lower(c.email)
                OR s.phone_digits IS DISTINCT FROM c.phone_digits"
        )
        .await,
        0
    );
    // Loyalty balances are their ledger's sum, never negative, lifetime = earned points.
    assert_eq!(
        check(
            "SELECT count(*) FROM loyalty_accounts a JOIN (
                 SELECT customer_id, sum(points) AS bal, sum(points) FILTER (WHERE points > 0) AS earned
                 FROM loyalty_transactions GROUP BY customer_id) l USING (customer_id)
             WHERE a.balance <> l.bal OR a.lifetime_points <> l.earned OR a.balance < 0"
        )
        .await,
        0
    );
    // Tiers follow lifetime points.
    assert_eq!(
        check(
            "SELECT count(*) FROM loyalty_accounts WHERE tier <> CASE
                 WHEN lifetime_points >= 20000 THEN 'platinum'::loyalty_tier WHEN lifetime_points >= 5000 THEN 'gold'
                 WHEN lifetime_points >= 1000 THEN 'silver' ELSE 'bronze' END"
        )
        .await,
        0
    );
    // Order totals add up, and nothing happens after the anchor.
    assert_eq!(check("SELECT count(*) FROM orders WHERE total_cents <> subtotal_cents - discount_cents + shipping_cents + tax_cents").await, 0);
    assert_eq!(check("SELECT count(*) FROM orders WHERE placed_at > '2026-11-01' OR placed_at < (SELECT created_at FROM customers WHERE id = customer_id)").await, 0);
    assert_eq!(check("SELECT count(*) FROM support_tickets WHERE satisfaction IS NOT NULL AND resolved_at IS NULL").await, 0);
    // Skewed order counts: the busiest tenth of customers places far more than a tenth of orders.
    let top_decile_share = check(
        "SELECT (100 * sum(n) FILTER (WHERE r <= 40) / sum(n))::bigint FROM (
             SELECT count(o.id) AS n, row_number() OVER (ORDER BY count(o.id) DESC) AS r
             FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id) x",
    )
    .await;
    assert!(
        top_decile_share >= 25,
        "top 10% of customers place {top_decile_share}% of orders"
    );
    // Seeded history is not a stream of changes.
    assert_eq!(check("SELECT count(*) FROM change_events").await, 0);

    // The derived state is the server's own: one health and one churn row per customer, some
    // automatic segments, and recomputing at the anchor finds nothing to write.
    assert_eq!(
        check("SELECT count(DISTINCT customer_id) FROM customer_health_scores").await,
        400
    );
    assert_eq!(
        check("SELECT count(*) FROM customer_health_scores").await,
        400
    );
    assert_eq!(
        check("SELECT count(*) FROM customer_churn_risks").await,
        400
    );
    assert!(
        check("SELECT count(*) FROM customer_segment_assignments WHERE source = 'auto'").await > 0
    );
    let derived_rows = "SELECT (SELECT count(*) FROM customer_health_scores) + (SELECT count(*) FROM customer_churn_risks)
                            + (SELECT count(*) FROM customer_segment_assignments)";
    let before = check(derived_rows).await;
    let anchor = chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc();
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&db.url)
            .await
            .expect("connect");
    for customer in 1..=400 {
        customer360::derived::recompute_customer(&mut conn, customer, anchor)
            .await
            .expect("recompute");
    }
    assert_eq!(check(derived_rows).await, before);
}
