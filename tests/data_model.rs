//! The schema's own guarantees, exercised with plain SQL the way the commerce platform writes:
//! every customer-owned write becomes a change event, and customer_stats stays exact, also
//! under concurrent writers; and the server keeps the statistics of the tables it fills.

mod common;

use common::TestDb;
use proptest::prelude::*;

async fn new_customer(sql: &tokio_postgres::Client, email: &str) -> i64 {
    sql.query_one(
        "INSERT INTO customers (name, email) VALUES ('Test Customer', $1) RETURNING id",
        &[&email],
    )
    .await
    .expect("insert customer")
    .get(0)
}

#[actix_web::test]
async fn every_customer_table_emits_change_events() {
    let db = TestDb::create().await;
    let sql = db.sql().await;
    let c = new_customer(&sql, "events@example.com").await;
    sql.batch_execute(&format!(
        "INSERT INTO product_categories (name) VALUES ('Books');
         INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ({c}, 'T-1', 'paid', 1000, 1000);
         INSERT INTO order_items (order_id, customer_id, category_id, product_name, quantity, unit_price_cents)
             SELECT id, {c}, 1, 'Novel', 1, 1000 FROM orders WHERE order_number = 'T-1';
         INSERT INTO loyalty_accounts (customer_id, referral_code) VALUES ({c}, 'REF-{c}');
         INSERT INTO loyalty_transactions (customer_id, points, reason) VALUES ({c}, 10, 'test');
         INSERT INTO referrals (referrer_customer_id, referred_email) VALUES ({c}, 'friend@example.com');
         INSERT INTO marketing_consents (customer_id, channel, opted_in) VALUES ({c}, 'email', true);
         INSERT INTO campaigns (name, channel) VALUES ('C', 'email');
         INSERT INTO campaign_events (campaign_id, customer_id, event_type) SELECT id, {c}, 'sent' FROM campaigns;
         INSERT INTO email_outbox (customer_id, to_email, subject, body, queued_by) VALUES ({c}, 'x@example.com', 's', 'b', 'admin');
         INSERT INTO support_tickets (customer_id, subject) VALUES ({c}, 'Help');
         INSERT INTO web_sessions (customer_id, device, duration_seconds, page_views, source) VALUES ({c}, 'mobile', 60, 3, 'direct');
         INSERT INTO category_views (customer_id, category_id) VALUES ({c}, 1);
         INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ({c}, 'a', 'A', 'hello');
         INSERT INTO customer_tags (name, color, created_by) VALUES ('VIP', '#000000', 'a');
         INSERT INTO customer_tag_assignments (customer_id, tag_id, assigned_by, assigned_by_name) SELECT {c}, id, 'a', 'A' FROM customer_tags;
         INSERT INTO customer_segments (name, kind) VALUES ('Beta', 'manual');
         INSERT INTO customer_segment_assignments (customer_id, segment_id, source) SELECT {c}, id, 'manual' FROM customer_segments WHERE name = 'Beta';
         UPDATE customers SET phone = '+1 555 010 2030' WHERE id = {c};
         UPDATE orders SET status = 'shipped' WHERE order_number = 'T-1';
         DELETE FROM customer_notes WHERE customer_id = {c};"
    ))
    .await
    .expect("writes");
    let rows = sql
        .query("SELECT kind, op, count(*) FROM change_events WHERE customer_id = $1 GROUP BY 1, 2 ORDER BY 1, 2", &[&c])
        .await
        .expect("events");
    let got: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expect = |k: &str, o: &str, n: i64| (k.to_owned(), o.to_owned(), n);
    assert_eq!(
        got,
        vec![
            expect("loyalty", "created", 3),
            expect("marketing", "created", 3),
            expect("note", "created", 1),
            expect("note", "deleted", 1),
            expect("order", "created", 2),
            expect("order", "updated", 1),
            expect("profile", "created", 1),
            expect("profile", "updated", 1),
            expect("segment", "created", 1),
            expect("session", "created", 2),
            expect("tag", "created", 1),
            expect("ticket", "created", 1),
        ]
    );
    let order_event: (String, String) = sql
        .query_one(
            "SELECT e.entity_id, o.id::text FROM change_events e JOIN orders o ON o.order_number = 'T-1'
             WHERE e.kind = 'order' AND e.op = 'updated'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .expect("order event");
    assert_eq!(order_event.0, order_event.1, "entity_id names the order");
    let seqs: Vec<i64> = sql
        .query("SELECT seq FROM change_events ORDER BY at, seq", &[])
        .await
        .expect("seq")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq follows commit order within one session"
    );
}

#[actix_web::test]
async fn phone_digits_and_trigram_search_work() {
    let db = TestDb::create().await;
    let sql = db.sql().await;
    sql.batch_execute(
        "INSERT INTO customers (name, email, phone) VALUES ('Zoë Pérez', 'zoe@example.com', '+1 (555) 010-2030')",
    )
    .await
    .expect("insert");
    let row = sql
        .query_one(
            "SELECT phone_digits FROM customers WHERE name ILIKE '%pérez%'",
            &[],
        )
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), "15550102030");
}

#[derive(Debug, Clone)]
enum OrderOp {
    Insert {
        status: &'static str,
        total: i64,
        days_ago: i32,
    },
    SetStatus {
        index: usize,
        status: &'static str,
    },
    Delete {
        index: usize,
    },
}

const STATUSES: [&str; 6] = [
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
];

fn order_op() -> impl Strategy<Value = OrderOp> {
    prop_oneof![
        3 => (0..6usize, 0i64..100_000, 0i32..1000).prop_map(|(s, total, days_ago)| OrderOp::Insert { status: STATUSES[s], total, days_ago }),
        1 => (0..50usize, 0..6usize).prop_map(|(index, s)| OrderOp::SetStatus { index, status: STATUSES[s] }),
        1 => (0..50usize).prop_map(|index| OrderOp::Delete { index }),
    ]
}

/// The reference: revenue orders are paid, shipped or delivered.
fn reference(
    orders: &[(i64, &'static str, i64, i32)],
) -> (i64, i32, i64, Option<i32>, Option<i32>) {
    let revenue: Vec<_> = orders
        .iter()
        .filter(|o| matches!(o.1, "paid" | "shipped" | "delivered"))
        .collect();
    let ltv: i64 = revenue.iter().map(|o| o.2).sum();
    let n = revenue.len() as i32;
    let avg = if n == 0 {
        0
    } else {
        (ltv as f64 / f64::from(n)).round() as i64
    };
    // days_ago: the first order is the oldest (largest days_ago).
    (
        ltv,
        n,
        avg,
        revenue.iter().map(|o| o.3).max(),
        revenue.iter().map(|o| o.3).min(),
    )
}

#[test]
fn customer_stats_match_a_reference_for_any_order_history() {
    let rt = actix_web::rt::System::new();
    let db = rt.block_on(TestDb::create());
    let sql = rt.block_on(db.sql());
    let cases = std::cell::Cell::new(0u32);
    proptest!(ProptestConfig::with_cases(24), |(ops in proptest::collection::vec(order_op(), 1..25))| {
        cases.set(cases.get() + 1);
        let case = cases.get();
        rt.block_on(async {
            let c = new_customer(&sql, &format!("prop{case}@example.com")).await;
            let mut orders: Vec<(i64, &'static str, i64, i32)> = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                match op {
                    OrderOp::Insert { status, total, days_ago } => {
                        let id: i64 = sql.query_one(
                            &format!("INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
                                      VALUES ($1, $2, '{status}', $3, $3, date_trunc('day', now()) - make_interval(days => $4)) RETURNING id"),
                            &[&c, &format!("P{case}-{i}"), total, days_ago],
                        ).await.expect("insert order").get(0);
                        orders.push((id, status, *total, *days_ago));
                    }
                    OrderOp::SetStatus { index, status } if !orders.is_empty() => {
                        let k = index % orders.len();
                        sql.execute(&format!("UPDATE orders SET status = '{status}' WHERE id = $1"), &[&orders[k].0]).await.expect("update");
                        orders[k].1 = status;
                    }
                    OrderOp::Delete { index } if !orders.is_empty() => {
                        let k = index % orders.len();
                        sql.execute("DELETE FROM orders WHERE id = $1", &[&orders[k].0]).await.expect("delete");
                        orders.remove(k);
                    }
                    _ => {}
                }
            }
            let row = sql.query_one(
                "SELECT lifetime_value_cents, order_count, avg_order_value_cents,
                        (date_trunc('day', now())::date - first_order_at::date),
                        (date_trunc('day', now())::date - last_order_at::date)
                 FROM customer_stats WHERE customer_id = $1", &[&c]).await.expect("stats");
            let got: (i64, i32, i64, Option<i32>, Option<i32>) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            assert_eq!(got, reference(&orders), "ops: {ops:?}");
        });
    });
}

#[actix_web::test]
async fn customer_stats_stay_exact_under_concurrent_writers() {
    let db = TestDb::create().await;
    let sql = db.sql().await;
    let c = new_customer(&sql, "busy@example.com").await;
    let writers = 8;
    let per_writer = 25;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let url = db.url.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let conn = customer360::db::url::connect_raw(&url).await.expect("connect");
            for i in 0..per_writer {
                conn.execute(
                    "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, $2, 'paid', 100, 100)",
                    &[&c, &format!("W{w}-{i}")],
                )
                .await
                .expect("insert");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let row = sql
        .query_one(
            "SELECT order_count, lifetime_value_cents FROM customer_stats WHERE customer_id = $1",
            &[&c],
        )
        .await
        .expect("stats");
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, i64>(1)),
        (writers * per_writer, i64::from(writers * per_writer) * 100)
    );
}

#[actix_web::test]
async fn the_server_analyzes_its_own_tables_once_they_have_grown() {
    use customer360::db::statistics;
    use diesel_async::{AsyncConnection, AsyncPgConnection};

    let db = TestDb::create().await;
    let sql = db.sql().await;
    let customer = new_customer(&sql, "grown@example.com").await;
    sql.execute(
        "INSERT INTO change_events (customer_id, kind, op, entity_id)
         SELECT $1, 'order', 'created', n::text FROM generate_series(1, 500) n",
        &[&customer],
    )
    .await
    .expect("insert events");
    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    // Table counters reach pg_stat_user_tables within about a second of the commit.
    let mut analyzed = Vec::new();
    for _ in 0..100 {
        analyzed = statistics::refresh_stale(&mut conn).await.expect("refresh");
        if !analyzed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(analyzed, vec!["change_events".to_owned()]);
    let reltuples: f32 = sql
        .query_one(
            "SELECT reltuples FROM pg_class WHERE relname = 'change_events'",
            &[],
        )
        .await
        .expect("pg_class")
        .get(0);
    assert!(
        reltuples >= 500.0,
        "the planner now knows the rows: {reltuples}"
    );
    assert!(
        statistics::refresh_stale(&mut conn)
            .await
            .expect("refresh")
            .is_empty(),
        "fresh statistics are left alone"
    );
}
