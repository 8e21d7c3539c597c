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
        // Row ids far from the ids their events name, so an event naming the wrong column fails.
        "SELECT setval('order_items_id_seq', 1000); SELECT setval('customer_tag_assignments_id_seq', 1000);
         INSERT INTO product_categories (name) VALUES ('Books');
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
    // Each table's event names its entity column: the order for an item, the channel for a
    // consent, the tag for an assignment, the customer for the profile.
    let entities = |kind: &'static str| {
        let sql = &sql;
        async move {
            sql.query(
                "SELECT entity_id FROM change_events WHERE customer_id = $1 AND kind = $2 AND op = 'created' ORDER BY seq",
                &[&c, &kind],
            )
            .await
            .expect("entities")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(entities("order").await, vec![order_event.1.clone(); 2]);
    assert_eq!(entities("profile").await, vec![c.to_string()]);
    assert!(entities("marketing").await.contains(&"email".to_owned()));
    let tag_id: i64 = sql
        .query_one("SELECT id FROM customer_tags", &[])
        .await
        .expect("tag")
        .get(0);
    assert_eq!(entities("tag").await, vec![tag_id.to_string()]);
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

/// One write of the commerce platform to `orders`, for two customers (0 and 1). Several run in
/// one transaction until a `Commit`, so the stats triggers' increments and their deferred
/// re-aggregation meet in every order.
#[derive(Debug, Clone)]
enum OrderOp {
    Insert {
        customer: usize,
        status: &'static str,
        total: i64,
        days_ago: i32,
    },
    SetStatus {
        index: usize,
        status: &'static str,
    },
    SetTotal {
        index: usize,
        total: i64,
    },
    Redate {
        index: usize,
        days_ago: i32,
    },
    /// To the other customer.
    Move {
        index: usize,
    },
    Delete {
        index: usize,
    },
    /// One UPDATE over all of a customer's orders that adds some to revenue and takes others
    /// from it: pending → paid → refunded → pending.
    Rotate {
        customer: usize,
    },
    /// One INSERT … ON CONFLICT DO UPDATE that gives an existing order `status` and adds a
    /// new order of the same customer with `new_status`: revenue added and taken in one
    /// statement when one is a revenue status and the other not.
    Upsert {
        index: usize,
        status: &'static str,
        new_status: &'static str,
        total: i64,
    },
    Commit,
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
    let status = || (0..6usize).prop_map(|s| STATUSES[s]);
    prop_oneof![
        4 => (0..2usize, status(), 0i64..100_000, 0i32..1000)
            .prop_map(|(customer, status, total, days_ago)| OrderOp::Insert { customer, status, total, days_ago }),
        2 => (0..50usize, status()).prop_map(|(index, status)| OrderOp::SetStatus { index, status }),
        1 => (0..50usize, 0i64..100_000).prop_map(|(index, total)| OrderOp::SetTotal { index, total }),
        1 => (0..50usize, 0i32..1000).prop_map(|(index, days_ago)| OrderOp::Redate { index, days_ago }),
        1 => (0..50usize).prop_map(|index| OrderOp::Move { index }),
        1 => (0..50usize).prop_map(|index| OrderOp::Delete { index }),
        2 => (0..2usize).prop_map(|customer| OrderOp::Rotate { customer }),
        2 => (0..50usize, status(), status(), 0i64..100_000)
            .prop_map(|(index, status, new_status, total)| OrderOp::Upsert { index, status, new_status, total }),
        2 => Just(OrderOp::Commit),
    ]
}

/// An order as the reference sees it.
#[derive(Debug, Clone)]
struct RefOrder {
    id: i64,
    customer: usize,
    status: &'static str,
    total: i64,
    days_ago: i32,
}

type Stats = (i64, i32, i64, Option<i32>, Option<i32>);

/// The reference: revenue orders are paid, shipped or delivered.
fn reference(orders: &[RefOrder], customer: usize) -> Stats {
    let revenue: Vec<_> = orders
        .iter()
        .filter(|o| o.customer == customer && matches!(o.status, "paid" | "shipped" | "delivered"))
        .collect();
    let ltv: i64 = revenue.iter().map(|o| o.total).sum();
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
        revenue.iter().map(|o| o.days_ago).max(),
        revenue.iter().map(|o| o.days_ago).min(),
    )
}

const PLACED: &str = "date_trunc('day', now()) - make_interval(days => $4)";

async fn apply(
    sql: &tokio_postgres::Client,
    customers: [i64; 2],
    orders: &mut Vec<RefOrder>,
    op: &OrderOp,
    number: &str,
) {
    let pick = |index: usize| (!orders.is_empty()).then(|| index % orders.len());
    match *op {
        OrderOp::Insert {
            customer,
            status,
            total,
            days_ago,
        } => {
            let id: i64 = sql
                .query_one(
                    &format!(
                        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
                         VALUES ($1, $2, '{status}', $3, $3, {PLACED}) RETURNING id"
                    ),
                    &[&customers[customer], &number, &total, &days_ago],
                )
                .await
                .expect("insert order")
                .get(0);
            orders.push(RefOrder {
                id,
                customer,
                status,
                total,
                days_ago,
            });
        }
        OrderOp::SetStatus { index, status } => {
            if let Some(k) = pick(index) {
                sql.execute(
                    &format!("UPDATE orders SET status = '{status}' WHERE id = $1"),
                    &[&orders[k].id],
                )
                .await
                .expect("set status");
                orders[k].status = status;
            }
        }
        OrderOp::SetTotal { index, total } => {
            if let Some(k) = pick(index) {
                sql.execute(
                    "UPDATE orders SET total_cents = $2 WHERE id = $1",
                    &[&orders[k].id, &total],
                )
                .await
                .expect("set total");
                orders[k].total = total;
            }
        }
        OrderOp::Redate { index, days_ago } => {
            if let Some(k) = pick(index) {
                sql.execute(
                    "UPDATE orders SET placed_at = date_trunc('day', now()) - make_interval(days => $2) WHERE id = $1",
                    &[&orders[k].id, &days_ago],
                )
                .await
                .expect("redate");
                orders[k].days_ago = days_ago;
            }
        }
        OrderOp::Move { index } => {
            if let Some(k) = pick(index) {
                let to = 1 - orders[k].customer;
                sql.execute(
                    "UPDATE orders SET customer_id = $2 WHERE id = $1",
                    &[&orders[k].id, &customers[to]],
                )
                .await
                .expect("move");
                orders[k].customer = to;
            }
        }
        OrderOp::Delete { index } => {
            if let Some(k) = pick(index) {
                sql.execute("DELETE FROM orders WHERE id = $1", &[&orders[k].id])
                    .await
                    .expect("delete");
                orders.remove(k);
            }
        }
        OrderOp::Rotate { customer } => {
            sql.execute(
                "UPDATE orders SET status = CASE status WHEN 'pending' THEN 'paid'::order_status
                     WHEN 'paid' THEN 'refunded'::order_status WHEN 'refunded' THEN 'pending'::order_status
                     ELSE status END
                 WHERE customer_id = $1",
                &[&customers[customer]],
            )
            .await
            .expect("rotate");
            for o in orders.iter_mut().filter(|o| o.customer == customer) {
                o.status = match o.status {
                    "pending" => "paid",
                    "paid" => "refunded",
                    "refunded" => "pending",
                    other => other,
                };
            }
        }
        OrderOp::Upsert {
            index,
            status,
            new_status,
            total,
        } => {
            if let Some(k) = pick(index) {
                let customer = orders[k].customer;
                let rows = sql
                    .query(
                        &format!(
                            "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
                             SELECT $1::bigint, o.order_number, '{status}'::order_status, $3::bigint, $3::bigint, {PLACED} FROM orders o WHERE o.id = $2
                             UNION ALL
                             SELECT $1::bigint, $5::text, '{new_status}'::order_status, $3::bigint, $3::bigint, {PLACED}
                             ON CONFLICT (order_number) DO UPDATE SET status = EXCLUDED.status
                             RETURNING id"
                        ),
                        &[&customers[customer], &orders[k].id, &total, &0i32, &number],
                    )
                    .await
                    .expect("upsert");
                orders[k].status = status;
                let id = rows
                    .iter()
                    .map(|r| r.get::<_, i64>(0))
                    .find(|id| *id != orders[k].id)
                    .expect("the new order's id");
                orders.push(RefOrder {
                    id,
                    customer,
                    status: new_status,
                    total,
                    days_ago: 0,
                });
            }
        }
        OrderOp::Commit => {
            sql.batch_execute("COMMIT; BEGIN").await.expect("commit");
        }
    }
}

#[test]
fn customer_stats_match_a_reference_for_any_order_history() {
    let rt = actix_web::rt::System::new();
    let db = rt.block_on(TestDb::create());
    let sql = rt.block_on(db.sql());
    let cases = std::cell::Cell::new(0u32);
    proptest!(ProptestConfig::with_cases(64), |(ops in proptest::collection::vec(order_op(), 1..30))| {
        cases.set(cases.get() + 1);
        let case = cases.get();
        rt.block_on(async {
            // A failed case leaves its transaction open; the shrunk cases after it start clean.
            sql.batch_execute("ROLLBACK").await.expect("rollback");
            let customers = [
                new_customer(&sql, &format!("prop{case}a@example.com")).await,
                new_customer(&sql, &format!("prop{case}b@example.com")).await,
            ];
            let mut orders = Vec::new();
            sql.batch_execute("BEGIN").await.expect("begin");
            for (i, op) in ops.iter().enumerate() {
                apply(&sql, customers, &mut orders, op, &format!("P{case}-{i}")).await;
            }
            sql.batch_execute("COMMIT").await.expect("commit");
            for (customer, id) in customers.iter().enumerate() {
                let row = sql.query_one(
                    "SELECT lifetime_value_cents, order_count, avg_order_value_cents,
                            (date_trunc('day', now())::date - first_order_at::date),
                            (date_trunc('day', now())::date - last_order_at::date)
                     FROM customer_stats WHERE customer_id = $1", &[id]).await.expect("stats");
                let got: Stats = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                assert_eq!(got, reference(&orders, customer), "customer {customer}, ops: {ops:?}");
            }
        });
    });
}

/// The case the deferred re-aggregation exists for: one statement refunds orders (removals,
/// re-aggregated) and pays another of the same customer (an addition, an increment). Were the
/// re-aggregation to run at the statement's end, it would count the paid order and the
/// increment after it would count it again. A refund on either side of the payment makes a
/// removal come first whichever way the statement visits the rows.
#[actix_web::test]
async fn a_statement_that_adds_and_takes_revenue_counts_each_order_once() {
    let db = TestDb::create().await;
    let sql = db.sql().await;
    let c = new_customer(&sql, "both@example.com").await;
    sql.batch_execute(&format!(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES
             ({c}, 'B-1', 'paid', 100, 100), ({c}, 'B-2', 'pending', 50, 50), ({c}, 'B-3', 'paid', 70, 70);
         UPDATE orders SET status = CASE status WHEN 'pending' THEN 'paid'::order_status
             ELSE 'refunded'::order_status END WHERE customer_id = {c};"
    ))
    .await
    .expect("writes");
    let row = sql
        .query_one(
            "SELECT order_count, lifetime_value_cents, avg_order_value_cents FROM customer_stats WHERE customer_id = $1",
            &[&c],
        )
        .await
        .expect("stats");
    assert_eq!(
        (
            row.get::<_, i32>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (1, 50, 50)
    );
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
                let insert = format!(
                    "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ({c}, 'W{w}-{i}', 'paid', 100, 100)"
                );
                // Every second order refunds the one before in its transaction: increments and
                // re-aggregations of one customer interleave across transactions.
                let batch = if i % 2 == 1 {
                    format!("BEGIN; {insert}; UPDATE orders SET status = 'refunded' WHERE order_number = 'W{w}-{}'; COMMIT", i - 1)
                } else {
                    insert
                };
                conn.batch_execute(&batch).await.expect("write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let kept = writers * (per_writer - per_writer / 2);
    let row = sql
        .query_one(
            "SELECT order_count, lifetime_value_cents FROM customer_stats WHERE customer_id = $1",
            &[&c],
        )
        .await
        .expect("stats");
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, i64>(1)),
        (kept, i64::from(kept) * 100)
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
