//! The 360 read model through HTTP against the real Postgres and Redis: every slice, masking
//! per role, paging, timeline filters, private notes, cache invalidation by the outbox relay,
//! derived state, and properties of the timeline and profile over generated data.

mod common;

use std::time::Duration;

use common::{TestApp, spawn_app};
use customer360::domain::roles::Role;
use proptest::prelude::*;
use serde_json::{Value, json};

const SLICES: [&str; 13] = [
    "profile",
    "metrics",
    "orders",
    "loyalty",
    "marketing",
    "support",
    "timeline",
    "analytics",
    "health",
    "churn",
    "notes",
    "tags",
    "segments",
];

/// A customer with a little of everything; returns its id.
async fn customer_with_history(sql: &tokio_postgres::Client, email: &str) -> i64 {
    let id: i64 = sql
        .query_one(
            "INSERT INTO customers (name, email, phone, address_line, city, postal_code, country, birthday, created_at)
             VALUES ('Zoë Pérez', $1, '+1 (555) 010-2030', '1 Main St', 'Austin', '78701', 'US', '1990-05-04',
                     now() - interval '400 days') RETURNING id",
            &[&email],
        )
        .await
        .expect("customer")
        .get(0);
    sql.batch_execute(&format!(
        "INSERT INTO product_categories (name) VALUES ('Books') ON CONFLICT DO NOTHING;
         INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
           SELECT {id}, 'O{id}-' || g, CASE WHEN g % 10 = 0 THEN 'refunded' ELSE 'delivered' END::order_status,
                  1000 * g, 1000 * g, now() - (g * interval '9 days') FROM generate_series(1, 45) g;
         INSERT INTO order_items (order_id, customer_id, category_id, product_name, quantity, unit_price_cents)
           SELECT o.id, {id}, (SELECT id FROM product_categories WHERE name = 'Books'), 'Novel', 1, o.total_cents
           FROM orders o WHERE o.customer_id = {id};
         INSERT INTO loyalty_accounts (customer_id, tier, balance, lifetime_points, referral_code)
           VALUES ({id}, 'silver', 300, 1200, 'REF{id}');
         INSERT INTO loyalty_transactions (customer_id, points, reason, expires_at, created_at) VALUES
           ({id}, 1200, 'Orders', now() + interval '10 days', now() - interval '355 days'),
           ({id}, -900, 'Redeemed', NULL, now() - interval '20 days');
         INSERT INTO referrals (referrer_customer_id, referred_email, status) VALUES ({id}, 'friend@example.org', 'invited');
         INSERT INTO marketing_consents (customer_id, channel, opted_in) VALUES ({id}, 'email', true);
         INSERT INTO campaigns (name, channel, started_at) VALUES ('Spring', 'email', now() - interval '30 days');
         INSERT INTO campaign_events (campaign_id, customer_id, event_type, occurred_at)
           SELECT max(id), {id}, e::campaign_event_type, now() - interval '29 days' FROM campaigns, unnest(ARRAY['sent', 'opened']) e GROUP BY e;
         INSERT INTO support_tickets (customer_id, subject, status, priority, created_at, resolved_at, satisfaction) VALUES
           ({id}, 'Late parcel', 'resolved', 'high', now() - interval '50 days', now() - interval '49 days', 2),
           ({id}, 'Wrong size', 'open', 'normal', now() - interval '2 days', NULL, NULL);
         INSERT INTO web_sessions (customer_id, device, started_at, duration_seconds, page_views, source)
           VALUES ({id}, 'mobile', now() - interval '3 days', 300, 7, 'email');
         INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility) VALUES
           ({id}, 'admin-1', 'admin Tester', 'Public remark', 'public'),
           ({id}, 'admin-1', 'admin Tester', 'Secret remark', 'private');"
    ))
    .await
    .expect("history");
    id
}

#[actix_web::test]
async fn the_view_has_every_slice_and_masks_per_role() {
    let app = spawn_app().await;
    let id = customer_with_history(&app.db.sql().await, "zoe@example.com").await;

    let admin = app
        .get(&format!("/api/admin/customers/{id}/360"), Role::Admin)
        .await;
    assert_eq!(admin.status, 200, "{}", admin.text());
    let v = admin.json();
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = SLICES.to_vec();
    expected.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(v["profile"]["email"], "zoe@example.com");
    assert_eq!(v["profile"]["birthday"], "1990-05-04");
    assert_eq!(
        v["metrics"]["order_count"], 41,
        "refunded orders are not revenue"
    );
    assert_eq!(v["orders"]["total_count"], 45);
    assert_eq!(v["orders"]["status_counts"]["refunded"], 4);
    assert_eq!(v["orders"]["status_counts"]["pending"], 0);
    assert_eq!(v["loyalty"]["account"]["tier"], "silver");
    assert_eq!(v["loyalty"]["expiring_points_30d"], 300);
    assert_eq!(v["loyalty"]["expiry_warning"], true);
    assert_eq!(v["support"]["open"], 1);
    assert_eq!(v["marketing"]["open_rate"], 1.0);
    assert_eq!(v["analytics"]["heatmap"].as_array().map(Vec::len), Some(7));
    let score = v["health"]["score"].as_i64().expect("score");
    assert!((0..=100).contains(&score));
    assert!(
        ["low", "medium", "high", "critical"].contains(&v["churn"]["level"].as_str().unwrap_or(""))
    );
    assert!(v["churn"]["reasons"].as_array().is_some_and(|r| {
        r.iter()
            .any(|s| s.as_str().unwrap_or("").contains("unhappy"))
    }));
    assert_eq!(
        v["notes"]["items"].as_array().map(Vec::len),
        Some(2),
        "admins read every note"
    );

    for role in [Role::Marketing, Role::Analyst] {
        let m = app
            .get(&format!("/api/admin/customers/{id}/360"), role)
            .await
            .json();
        assert_eq!(m["profile"]["email"], "z***@example.com", "{role}");
        assert_eq!(m["profile"]["phone"], "***-2030");
        assert_eq!(
            m["profile"]["address"],
            json!({"line": "***", "city": "***", "postal_code": "***", "country": "US"})
        );
        assert_eq!(m["profile"]["birthday"], "***");
        assert_eq!(
            m["loyalty"]["referrals"][0]["referred_email"],
            "f***@example.org"
        );
        let text = m.to_string();
        assert!(
            !text.contains("zoe@example.com")
                && !text.contains("010-2030")
                && !text.contains("1 Main St")
        );
        assert!(
            !text.contains("Secret remark"),
            "others' private notes stay hidden"
        );
    }
    let support = app
        .get(&format!("/api/admin/customers/{id}/360"), Role::Support)
        .await
        .json();
    assert_eq!(support["profile"]["email"], "zoe@example.com");
    assert_eq!(support["notes"]["items"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn slice_routes_match_the_view_and_404_for_unknown_customers() {
    let app = spawn_app().await;
    let id = customer_with_history(&app.db.sql().await, "slices@example.com").await;
    let view = settled(&app, id).await;
    for slice in [
        "orders",
        "loyalty",
        "marketing",
        "support",
        "timeline",
        "analytics",
    ] {
        let r = app
            .get(&format!("/api/admin/customers/{id}/{slice}"), Role::Admin)
            .await;
        assert_eq!(r.status, 200, "{slice}: {}", r.text());
        assert_eq!(r.json(), view[slice], "{slice}");
        let missing = app
            .get(&format!("/api/admin/customers/999999/{slice}"), Role::Admin)
            .await;
        assert!(
            missing.problem(404, "not_found")["detail"]
                .as_str()
                .unwrap_or("")
                .contains("999999")
        );
    }
    app.get("/api/admin/customers/999999/360", Role::Admin)
        .await
        .problem(404, "not_found");
    let problem = app
        .get("/api/admin/customers/abc/360", Role::Admin)
        .await
        .problem(400, "bad_request");
    assert_eq!(
        problem["field"], "id",
        "the path parameter is named: {problem}"
    );
    app.get_raw(&format!("/api/admin/customers/{id}/360"), None)
        .await
        .problem(401, "unauthorized");
}

#[actix_web::test]
async fn orders_and_support_page_with_cursors() {
    let app = spawn_app().await;
    let id = customer_with_history(&app.db.sql().await, "pages@example.com").await;
    let mut seen = Vec::new();
    let mut path = format!("/api/admin/customers/{id}/orders?limit=20");
    let mut pages = 0;
    loop {
        let page = app.get(&path, Role::Analyst).await.json();
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|o| o["id"].as_i64().unwrap_or(0)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/admin/customers/{id}/orders?limit=20&cursor={c}"),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 45));
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 45, "no duplicates across pages");

    let r = app
        .get(
            &format!("/api/admin/customers/{id}/orders?limit=0"),
            Role::Admin,
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "limit");
    let r = app
        .get(
            &format!("/api/admin/customers/{id}/orders?limit=ten"),
            Role::Admin,
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "limit");
    let r = app
        .get(
            &format!("/api/admin/customers/{id}/support?cursor=zz"),
            Role::Admin,
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "cursor");
    let support = app
        .get(
            &format!("/api/admin/customers/{id}/support?limit=1"),
            Role::Admin,
        )
        .await
        .json();
    assert_eq!(support["tickets"][0]["is_open"], true);
    assert!(support["next_cursor"].is_string());
}

#[actix_web::test]
async fn timeline_filters_by_kind_and_date() {
    let app = spawn_app().await;
    let id = customer_with_history(&app.db.sql().await, "timeline@example.com").await;
    let r = app
        .get(
            &format!("/api/admin/customers/{id}/timeline?types=ticket,note&limit=100"),
            Role::Admin,
        )
        .await
        .json();
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds.len(), 4);
    assert!(kinds.iter().all(|k| *k == "ticket" || *k == "note"));
    for e in r["events"].as_array().expect("events") {
        for key in ["id", "title", "summary", "icon", "link", "at"] {
            assert!(e[key].is_string(), "{key} in {e}");
        }
    }
    let from = (chrono::Utc::now() - chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let r = app
        .get(
            &format!("/api/admin/customers/{id}/timeline?types=order&from={from}&limit=100"),
            Role::Admin,
        )
        .await
        .json();
    assert_eq!(
        r["events"].as_array().map(Vec::len),
        Some(3),
        "orders 9, 18 and 27 days ago"
    );

    let r = app
        .get(
            &format!("/api/admin/customers/{id}/timeline?types=order,gift"),
            Role::Admin,
        )
        .await;
    let body = r.problem(422, "validation_failed");
    assert_eq!(body["field"], "types");
    assert!(body["detail"].as_str().unwrap_or("").contains("gift"));
    let r = app
        .get(
            &format!("/api/admin/customers/{id}/timeline?from=yesterday"),
            Role::Admin,
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "from");
    let r = app
        .get(
            &format!("/api/admin/customers/{id}/timeline?from=2026-02-01&to=2026-01-01"),
            Role::Admin,
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "from");
    // Instants PostgreSQL cannot hold, in a parameter or in a hand-made cursor.
    use customer360::view::cursor::hex_encode;
    for (query, field) in [
        ("from=-5000-01-01".to_owned(), "from"),
        ("to=-200000-01-01".to_owned(), "to"),
        (
            format!("cursor={}", hex_encode("-8000000000000000000|order|1")),
            "cursor",
        ),
    ] {
        for list in ["timeline", "orders", "support", "notes"] {
            if list != "timeline" && field != "cursor" {
                continue;
            }
            let r = app
                .get(
                    &format!("/api/admin/customers/{id}/{list}?{query}"),
                    Role::Admin,
                )
                .await;
            assert_eq!(
                r.problem(422, "validation_failed")["field"],
                field,
                "{list}?{query}"
            );
        }
    }

    let notes_path = format!("/api/admin/customers/{id}/timeline?types=note");
    assert_eq!(
        app.get(&notes_path, Role::Admin).await.json()["events"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        app.get(&notes_path, Role::Support).await.json()["events"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// How many health history rows the derived worker has recorded for the customer.
async fn health_history_rows(sql: &tokio_postgres::Client, id: i64) -> i64 {
    sql.query_one(
        "SELECT count(*) FROM customer_health_scores WHERE customer_id = $1",
        &[&id],
    )
    .await
    .expect("health history")
    .get(0)
}

/// The view once the relay and the derived worker are done with the fixture: segments
/// assigned and two reads a moment apart agree.
async fn settled(app: &TestApp, id: i64) -> Value {
    let path = format!("/api/admin/customers/{id}/360");
    let mut last = eventually(app, &path, |v| {
        v["segments"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    for _ in 0..50 {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let now = app.get(&path, Role::Admin).await.json();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the view never settled");
}

async fn eventually(app: &TestApp, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = app.get(path, Role::Admin).await.json();
        if check(&last) {
            return last;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never true; last: {last}");
}

#[actix_web::test]
async fn plain_sql_writes_invalidate_the_cache_and_update_derived_state() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    let id = customer_with_history(&sql, "live@example.com").await;
    let path = format!("/api/admin/customers/{id}/360");
    // Let the relay and derived worker settle on the fixture, then read twice (cache filled).
    let settled = eventually(&app, &path, |v| {
        v["segments"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    assert_eq!(
        app.get(&path, Role::Admin).await.json()["orders"],
        settled["orders"]
    );

    sql.execute(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, 'LIVE-1', 'paid', 500, 500)",
        &[&id],
    )
    .await
    .expect("order");
    let v = eventually(&app, &path, |v| {
        v["orders"]["items"][0]["order_number"] == "LIVE-1"
    })
    .await;
    assert_eq!(v["metrics"]["order_count"], 42);
    let history = health_history_rows(&sql, id).await;
    assert!(history >= 1, "health history recorded on change");
    let published: i64 = sql
        .query_one("SELECT count(*) FROM change_events WHERE published_at IS NULL AND customer_id = $1 AND kind = 'order' AND entity_id <> ''", &[&id])
        .await
        .expect("pending")
        .get(0);
    assert!(published <= 1, "the relay keeps up");
}

#[actix_web::test]
async fn the_segment_pass_keeps_manual_assignments() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    let id = customer_with_history(&sql, "segments@example.com").await;
    sql.batch_execute(&format!(
        "INSERT INTO customer_segments (name, kind) VALUES ('Hand picked', 'manual');
         INSERT INTO customer_segment_assignments (customer_id, segment_id, source, assigned_by)
           SELECT {id}, id, 'manual', 'admin-1' FROM customer_segments WHERE name = 'Hand picked';"
    ))
    .await
    .expect("manual segment");
    for _ in 0..2 {
        customer360::derived::segment_pass::run(&sql, chrono::Utc::now())
            .await
            .expect("pass");
    }
    let rows = sql
        .query(
            "SELECT s.name, a.source::text FROM customer_segment_assignments a JOIN customer_segments s ON s.id = a.segment_id
             WHERE a.customer_id = $1 ORDER BY 1",
            &[&id],
        )
        .await
        .expect("segments");
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(
        got.contains(&("Hand picked".into(), "manual".into())),
        "{got:?}"
    );
    assert!(got.iter().any(|(_, source)| source == "auto"), "{got:?}");
    let thresholds: i64 = sql
        .query_one("SELECT count(*) FROM segment_thresholds", &[])
        .await
        .expect("t")
        .get(0);
    assert_eq!(thresholds, 1);
}

const KINDS_SQL: [&str; 5] = [
    "INSERT INTO orders (customer_id, order_number, subtotal_cents, total_cents, placed_at) VALUES ($1, 'P' || $3 || '-' || $2, 1, 1, $4)",
    "INSERT INTO support_tickets (customer_id, subject, created_at) VALUES ($1, 'S' || $2 || $3, $4)",
    "INSERT INTO customer_notes (customer_id, author_id, author_name, body, created_at) VALUES ($1, 'a', 'A', 'N' || $2 || $3, $4)",
    "INSERT INTO loyalty_transactions (customer_id, points, reason, created_at) VALUES ($1, 5, 'L' || $2 || $3, $4)",
    "INSERT INTO web_sessions (customer_id, device, duration_seconds, page_views, source, started_at) VALUES ($1, 'desktop', 1, 1, 'x' || $2 || $3, $4)",
];

/// The timeline is strictly ordered by (time desc, kind desc, id desc), and pages of any size
/// concatenate to the full list with no duplicate or gap — for any mix of events, ties included.
#[test]
fn timeline_pages_concatenate_to_the_whole_ordered_list() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let sql = rt.block_on(app.db.sql());
    let cases = std::cell::Cell::new(0);
    proptest!(ProptestConfig::with_cases(12), |(events in proptest::collection::vec((0..5usize, 0i64..6), 0..40), page in 1i64..9)| {
        cases.set(cases.get() + 1);
        rt.block_on(async {
            let id: i64 = sql.query_one("INSERT INTO customers (name, email) VALUES ('T', $1) RETURNING id",
                &[&format!("t{}@example.com", cases.get())]).await.expect("customer").get(0);
            let base = chrono::Utc::now() - chrono::Duration::days(1);
            for (i, (kind, minute)) in events.iter().enumerate() {
                let at = base + chrono::Duration::minutes(*minute);
                sql.execute(KINDS_SQL[*kind], &[&id, &(i as i64).to_string(), &cases.get().to_string(), &at]).await.expect("event");
            }
            // Only the generated kinds: the derived worker may add segment events meanwhile.
            let kinds = "order,ticket,note,loyalty,session";
            let all = app.get(&format!("/api/admin/customers/{id}/timeline?types={kinds}&limit=100"), Role::Admin).await.json();
            let all: Vec<Value> = all["events"].as_array().cloned().unwrap_or_default();
            assert_eq!(all.len(), events.len());
            let key = |e: &Value| (e["at"].as_str().unwrap_or("").to_owned(), e["kind"].as_str().unwrap_or("").to_owned(), e["entity_id"].as_i64().unwrap_or(0));
            for w in all.windows(2) {
                let (a, b) = (key(&w[0]), key(&w[1]));
                let (ta, tb) = (chrono::DateTime::parse_from_rfc3339(&a.0).expect("at"), chrono::DateTime::parse_from_rfc3339(&b.0).expect("at"));
                assert!((ta, &a.1, a.2) > (tb, &b.1, b.2), "strictly descending: {a:?} then {b:?}");
            }
            let mut paged = Vec::new();
            let mut path = format!("/api/admin/customers/{id}/timeline?types={kinds}&limit={page}");
            loop {
                let p = app.get(&path, Role::Admin).await.json();
                let chunk = p["events"].as_array().cloned().unwrap_or_default();
                assert!(chunk.len() as i64 <= page);
                paged.extend(chunk);
                match p["next_cursor"].as_str() {
                    Some(c) => path = format!("/api/admin/customers/{id}/timeline?types={kinds}&limit={page}&cursor={c}"),
                    None => break,
                }
            }
            assert_eq!(paged, all);
        });
    });
}

/// Every profile carries every field, nulls explicit, for any mix of missing data; masked
/// profiles keep the same keys.
#[test]
fn profiles_always_have_every_field() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let sql = rt.block_on(app.db.sql());
    let cases = std::cell::Cell::new(0);
    let fields = "[a-zA-Z0-9 ]{1,12}";
    proptest!(ProptestConfig::with_cases(16), |(phone in proptest::option::of("[0-9 ()+-]{0,15}"), line in proptest::option::of(fields),
                                                 city in proptest::option::of(fields), birthday in proptest::option::of(0i64..20_000))| {
        cases.set(cases.get() + 1);
        rt.block_on(async {
            let birthday = birthday.map(|d| chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default() + chrono::Duration::days(d));
            let id: i64 = sql.query_one(
                "INSERT INTO customers (name, email, phone, address_line, city, birthday) VALUES ('P', $1, $2, $3, $4, $5) RETURNING id",
                &[&format!("p{}@example.com", cases.get()), &phone, &line, &city, &birthday]).await.expect("customer").get(0);
            for role in [Role::Admin, Role::Analyst] {
                let v = app.get(&format!("/api/admin/customers/{id}/360"), role).await.json();
                let p = v["profile"].as_object().cloned().unwrap_or_default();
                let mut keys: Vec<&str> = p.keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(keys, ["address", "birthday", "created_at", "customer_since_days", "email", "id", "masked", "name", "phone"]);
                let address = p["address"].as_object().cloned().unwrap_or_default();
                assert_eq!(address.len(), 4);
                if role == Role::Admin {
                    assert_eq!(p["phone"].as_str().map(str::to_owned), phone.clone());
                    assert_eq!(address["line"].as_str().map(str::to_owned), line.clone());
                    assert_eq!(p["birthday"].as_str().map(str::to_owned), birthday.map(|b| b.to_string()));
                } else {
                    assert_eq!(p["phone"].is_null(), phone.is_none());
                    assert_eq!(p["birthday"].is_null(), birthday.is_none());
                }
            }
        });
    });
}

/// A hub reloading for one change must cover every change its snapshot shows that it has not
/// applied yet (the derived worker's rows, typically), loading their slices too, so that all of
/// them are causes of its one delta.
#[actix_web::test]
async fn a_reload_loads_the_slices_of_every_event_its_snapshot_shows_that_the_hub_lacks() {
    use customer360::domain::masking::Masking;
    use customer360::view::{self, Slice};
    use std::collections::HashSet;

    let db = common::TestDb::create().await;
    let sql = db.sql().await;
    let id: i64 = sql
        .query_one(
            "INSERT INTO customers (name, email) VALUES ('Cover Me', 'cover@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("customer")
        .get(0);
    let started = chrono::Utc::now() - chrono::Duration::minutes(1);
    sql.batch_execute(&format!(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents)
             VALUES ({id}, 'COV-1', 'paid', 1000, 1000);
         INSERT INTO customer_segments (name, kind) VALUES ('Covered', 'manual');
         INSERT INTO customer_segment_assignments (customer_id, segment_id, source)
             SELECT {id}, id, 'manual' FROM customer_segments WHERE name = 'Covered';"
    ))
    .await
    .expect("an order, then a segment assignment");
    let events = |kind: &'static str| {
        let sql = &sql;
        async move {
            sql.query(
                "SELECT event_id FROM change_events WHERE customer_id = $1 AND kind = $2",
                &[&id, &kind],
            )
            .await
            .expect("events")
            .iter()
            .map(|r| r.get::<_, uuid::Uuid>(0))
            .collect::<HashSet<_>>()
        }
    };
    let (orders, segments) = (events("order").await, events("segment").await);
    assert!(
        !orders.is_empty() && !segments.is_empty(),
        "the triggers emit both"
    );
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&db.url)
            .await
            .expect("connect");
    let order_slices = Slice::affected_by("order", "1", id);
    assert!(!order_slices.contains(&Slice::Segments));
    let load = async |conn: &mut diesel_async::AsyncPgConnection, known: &HashSet<uuid::Uuid>| {
        let reload = view::Reload {
            customer_id: id,
            masking: Masking::Clear,
            slices: order_slices,
            batch: &[],
            known,
            shown_timeline: None,
            now: chrono::Utc::now(),
            events_since: started,
        };
        view::load_slices(conn, &reload).await.expect("a reload")
    };

    // The hub knows only the order (its batch): the segment event it has not seen is covered.
    let (view, committed) = load(&mut conn, &orders).await;
    assert_eq!(view["segments"][0]["name"], "Covered", "{view:?}");
    assert!(view.contains_key("marketing"));
    let shown: HashSet<uuid::Uuid> = committed.iter().map(|c| c.event_id).collect();
    assert!(shown.is_superset(&segments) && shown.is_superset(&orders));

    // Everything already applied: only what was asked is loaded.
    let known: HashSet<uuid::Uuid> = shown;
    let (view, _) = load(&mut conn, &known).await;
    assert!(!view.contains_key("segments") && view.contains_key("orders"));
}

/// Changes handed to the derived worker while a customer's recomputation waits for its turn
/// join that recomputation (it has read nothing yet, so it covers them) instead of queueing one
/// each; once it has run, the next change gets a recomputation of its own.
#[actix_web::test]
async fn the_derived_worker_folds_repeats_into_the_recomputation_that_waits() {
    use customer360::config::PoolConfig;
    use customer360::derived::worker::DerivedWorker;
    let db = common::TestDb::create().await;
    let sql = db.sql().await;
    let a = customer_with_history(&sql, "fold-a@example.com").await;
    let b = customer_with_history(&sql, "fold-b@example.com").await;
    let pool = customer360::db::pool::build_pool(
        &db.url,
        &PoolConfig {
            db_pool_size: 2,
            db_pool_wait_ms: 2_000,
            db_connect_timeout_ms: 3_000,
            db_statement_timeout_ms: 5_000,
        },
    )
    .expect("pool");
    let worker = DerivedWorker::new(pool);

    // Nothing has run yet: the tasks start when this one first waits.
    let first = worker.recompute([a, a, b]);
    let second = worker.recompute([b, a]);
    assert_eq!(worker.pending(), 2, "one recomputation per customer");
    first.await;
    second.await;
    assert_eq!(worker.pending(), 0);
    for id in [a, b] {
        let recorded = health_history_rows(&sql, id).await;
        assert_eq!(recorded, 1, "customer {id}'s recomputation ran");
    }

    let third = worker.recompute([a]);
    assert_eq!(
        worker.pending(),
        1,
        "a change after the run gets a run of its own"
    );
    third.await;
    assert_eq!(worker.pending(), 0);
}

/// A hub's reload reads only the timeline kinds its changes touched and merges them into the
/// page it shows; the result must be the page read whole, also when a change moved an event
/// the page showed back in time (which the merge must decline: the page's end moved back).
#[actix_web::test]
async fn a_timeline_refreshed_in_part_is_the_page_read_whole() {
    use customer360::domain::masking::Masking;
    use customer360::view::{self, Committed, Slice};
    use std::collections::HashSet;

    let db = common::TestDb::create().await;
    let sql = db.sql().await;
    let id = customer_with_history(&sql, "refresh@example.com").await;
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&db.url)
            .await
            .expect("connect");
    let since = chrono::Utc::now();
    let reload = async |conn: &mut diesel_async::AsyncPgConnection,
                        batch: &[Committed],
                        shown: Option<&str>| {
        let mut slices: Vec<Slice> = match shown {
            Some(_) => batch
                .iter()
                .flat_map(|c| Slice::affected_by(&c.kind, &c.entity_id, id))
                .copied()
                .collect(),
            None => Slice::ALL.to_vec(),
        };
        slices.sort_by_key(|s| *s as u8);
        slices.dedup();
        let known: HashSet<uuid::Uuid> = batch.iter().map(|c| c.event_id).collect();
        let reload = view::Reload {
            customer_id: id,
            masking: Masking::Clear,
            slices: &slices,
            batch,
            known: &known,
            shown_timeline: shown,
            now: chrono::Utc::now(),
            events_since: since,
        };
        let (view, _) = view::load_slices(conn, &reload).await.expect("a reload");
        view["timeline"].clone()
    };
    let events_after = async |mark: chrono::DateTime<chrono::Utc>| -> Vec<Committed> {
        sql.query(
            "SELECT event_id, kind, op, entity_id, at FROM change_events
             WHERE customer_id = $1 AND at > $2 ORDER BY at",
            &[&id, &mark],
        )
        .await
        .expect("events")
        .iter()
        .map(|r| Committed {
            event_id: r.get(0),
            kind: r.get(1),
            op: r.get(2),
            entity_id: r.get(3),
            at: r.get(4),
        })
        .collect()
    };

    let shown = reload(&mut conn, &[], None).await;
    assert_eq!(shown["events"].as_array().map(Vec::len), Some(20));
    assert!(
        shown["next_cursor"].is_string(),
        "45 orders fill more than a page"
    );

    // New events of three kinds, created and updated: merged into the page shown.
    let mark = chrono::Utc::now();
    sql.batch_execute(&format!(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents)
             VALUES ({id}, 'NEW-1', 'paid', 4200, 4200);
         UPDATE orders SET status = 'shipped' WHERE customer_id = {id} AND order_number = 'O{id}-1';
         INSERT INTO loyalty_transactions (customer_id, points, reason) VALUES ({id}, 42, 'Order NEW-1');
         INSERT INTO support_tickets (customer_id, subject) VALUES ({id}, 'Where is NEW-1?');"
    ))
    .await
    .expect("changes");
    let batch = events_after(mark).await;
    assert!(batch.iter().all(|c| c.op == "created" || c.op == "updated"));
    let shown_text = shown.to_string();
    let refreshed = reload(&mut conn, &batch, Some(&shown_text)).await;
    let whole = reload(&mut conn, &[], None).await;
    assert_eq!(refreshed, whole);
    assert_eq!(whole["events"][0]["title"], "Ticket: Where is NEW-1?");
    assert!(
        whole["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("shipped")))),
        "the update in place shows: {whole}"
    );

    // An order the page shows moved back in time: the page read whole, not a merge.
    let shown_text = whole.to_string();
    let mark = chrono::Utc::now();
    sql.batch_execute(&format!(
        "UPDATE orders SET placed_at = now() - interval '3000 days'
         WHERE customer_id = {id} AND order_number = 'NEW-1'"
    ))
    .await
    .expect("a moved order");
    let batch = events_after(mark).await;
    assert_eq!(batch.len(), 1);
    let refreshed = reload(&mut conn, &batch, Some(&shown_text)).await;
    let whole = reload(&mut conn, &[], None).await;
    assert_eq!(refreshed, whole);
    assert!(
        whole["events"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["title"] != "Order NEW-1")),
        "the moved order left the page: {whole}"
    );
}
