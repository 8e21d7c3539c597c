//! Search against the real database: every result matches the query and every filter, and
//! every matching customer is found across pages, for generated data and queries.

mod common;

use std::collections::BTreeSet;

use common::{TestApp, spawn_app};
use customer360::db::search::{self, After, Breadth, Filter, Sort};
use customer360::domain::roles::Role;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use proptest::prelude::*;
use serde_json::{Value, json};

const NAMES: [&str; 6] = [
    "Ann Lee",
    "Anna Berg",
    "Bob Stone",
    "Zoë Pérez",
    "Joanne Li",
    "Leeann Ross",
];

#[derive(Debug, Clone)]
struct Person {
    name: &'static str,
    phone: Option<String>,
    ltv: i64,
    orders: i64,
}

fn person() -> impl Strategy<Value = Person> {
    (
        0..NAMES.len(),
        proptest::option::of(1000u32..9999),
        0i64..5,
        0i64..5,
    )
        .prop_map(|(n, phone, orders, size)| Person {
            name: NAMES[n],
            phone: phone.map(|p| format!("+1 (555) 01{}-{p}", p % 10)),
            ltv: orders * size * 1000,
            orders,
        })
}

async fn all_pages(app: &TestApp, role: Role, query: &str, limit: i64) -> (Vec<Value>, i64) {
    let mut items = Vec::new();
    let mut path = format!("/api/admin/customers/search?{query}&limit={limit}");
    let mut total = -1;
    for _ in 0..200 {
        let page = app.get(&path, role).await.json();
        total = page["total"].as_i64().unwrap_or(-1);
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => {
                path = format!("/api/admin/customers/search?{query}&limit={limit}&cursor={c}")
            }
            None => break,
        }
    }
    (items, total)
}

#[test]
fn results_match_and_nothing_is_missed() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let sql = rt.block_on(app.db.sql());
    let round = std::cell::Cell::new(0);
    let config = ProptestConfig {
        cases: 10,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(people in proptest::collection::vec(person(), 1..15),
                         needle in proptest::sample::select(vec!["ann", "LEE", "pérez", "bob", "xyz", "", "EXAMPLE.com"]),
                         clv_min in proptest::option::of(0i64..12_000), orders_max in proptest::option::of(0i64..5),
                         sort in proptest::sample::select(vec!["relevance", "lifetime_value", "last_order", "name"]),
                         limit in 1i64..6)| {
        round.set(round.get() + 1);
        let tag = format!("r{}", round.get());
        rt.block_on(async {
            let mut ids = Vec::new();
            for (i, p) in people.iter().enumerate() {
                let id: i64 = sql
                    .query_one("INSERT INTO customers (name, email, phone) VALUES ($1, $2, $3) RETURNING id",
                        &[&p.name, &format!("{tag}-{i}@example.com"), &p.phone])
                    .await.expect("customer").get(0);
                for o in 0..p.orders {
                    sql.execute(
                        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, $2, 'paid', $3, $3)",
                        &[&id, &format!("{tag}-{i}-{o}"), &(p.ltv / p.orders.max(1))]).await.expect("order");
                }
                ids.push(id);
            }
            // Only this round's customers: a tag shared by them.
            let tag_id: i64 = sql.query_one("INSERT INTO customer_tags (name, color, created_by) VALUES ($1, '#000000', 't') RETURNING id", &[&tag])
                .await.expect("tag").get(0);
            for id in &ids {
                sql.execute("INSERT INTO customer_tag_assignments (customer_id, tag_id, assigned_by, assigned_by_name) VALUES ($1, $2, 't', 'T')", &[id, &tag_id])
                    .await.expect("tagged");
            }
            let encoded: String = needle.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
            // The tag by id, or by its name in another case.
            let tag_param = if round.get() % 2 == 0 { tag_id.to_string() } else { tag.to_uppercase() };
            let mut query = format!("tag={tag_param}&sort={sort}&q={encoded}");
            if let Some(v) = clv_min { query.push_str(&format!("&clv_min={v}")); }
            if let Some(v) = orders_max { query.push_str(&format!("&orders_max={v}")); }
            // The text matches the email only for roles shown it unmasked.
            let expected = |shown_pii: bool| -> BTreeSet<i64> {
                people.iter().enumerate().zip(&ids).filter(|((i, p), _)| {
                    let ltv = (p.ltv / p.orders.max(1)) * p.orders;
                    let needle = needle.to_lowercase();
                    let email = format!("{tag}-{i}@example.com");
                    (needle.is_empty() || p.name.to_lowercase().contains(&needle) || (shown_pii && email.contains(&needle)))
                        && clv_min.is_none_or(|m| ltv >= m)
                        && orders_max.is_none_or(|m| p.orders <= m)
                }).map(|(_, id)| *id).collect()
            };
            let (items, total) = all_pages(&app, Role::Admin, &query, limit).await;
            let got: Vec<i64> = items.iter().filter_map(|i| i["id"].as_i64()).collect();
            let unique: BTreeSet<i64> = got.iter().copied().collect();
            assert_eq!(unique.len(), got.len(), "no customer twice across pages");
            assert_eq!(unique, expected(true), "query {query}");
            assert_eq!(total, expected(true).len() as i64);
            let (masked, masked_total) = all_pages(&app, Role::Marketing, &query, limit).await;
            let masked: BTreeSet<i64> = masked.iter().filter_map(|i| i["id"].as_i64()).collect();
            assert_eq!(masked, expected(false), "query {query} as marketing");
            assert_eq!(masked_total, expected(false).len() as i64);
            // Pages concatenate in the order asked for: best score, highest lifetime value and
            // newest last order first (no orders last), names A–Z.
            for pair in items.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                let ordered = match sort {
                    "relevance" => a["score"].as_f64() >= b["score"].as_f64(),
                    "lifetime_value" => a["lifetime_value_cents"].as_i64() >= b["lifetime_value_cents"].as_i64(),
                    "last_order" => a["last_order_at"].as_str().unwrap_or("") >= b["last_order_at"].as_str().unwrap_or(""),
                    _ => a["name"].as_str().map(str::to_lowercase) <= b["name"].as_str().map(str::to_lowercase),
                };
                assert!(ordered, "{sort}: {a} then {b}");
            }
            for item in &items {
                let score = item["score"].as_f64().unwrap_or(-1.0);
                if needle.is_empty() {
                    assert_eq!(score, 0.0);
                } else {
                    assert!(score > 0.0 && score <= 1.0, "score {score}");
                }
            }
            // A handful of rows is estimated `Few` and scored in full; ranking a broad query from
            // each way's best rows must page out exactly the same ranking.
            if sort == "relevance" {
                let filter = Filter {
                    q: Some(needle.to_owned()),
                    q_matches_pii: true,
                    tag: Some(tag_id),
                    clv_min,
                    orders_max,
                    ..Filter::default()
                };
                let mut conn = AsyncPgConnection::establish(&app.db.url).await.expect("connect");
                let mut ranked = Vec::new();
                let mut after: Option<After> = None;
                loop {
                    let mut rows = search::page(&mut conn, &filter, Breadth::Many, Sort::Relevance, after.as_ref(), limit)
                        .await.expect("page ranked by arms");
                    let more = rows.len() as i64 > limit;
                    rows.truncate(limit as usize);
                    after = rows.last().map(|r| After { key: r.sort_key.clone(), id: r.id });
                    ranked.extend(rows);
                    if !more { break; }
                }
                let ids: Vec<i64> = ranked.iter().map(|r| r.id).collect();
                assert_eq!(ids, got, "query {query}");
                for (row, item) in ranked.iter().zip(&items) {
                    assert_eq!(Some(row.score), item["score"].as_f64(), "through JSON, the same number");
                }
            }
        });
    });
}

#[actix_web::test]
async fn phone_digits_order_numbers_and_bad_parameters() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    let id: i64 = sql
        .query_one("INSERT INTO customers (name, email, phone) VALUES ('Dial Tone', 'dial@example.com', '+1 (555) 010-2030') RETURNING id", &[])
        .await
        .expect("customer")
        .get(0);
    sql.execute("INSERT INTO orders (customer_id, order_number, subtotal_cents, total_cents) VALUES ($1, 'WEB-778899', 1, 1)", &[&id])
        .await
        .expect("order");
    for q in [
        "5550102030",
        "555.010.2030",
        "010-2030",
        "dial@example",
        "WEB-778899",
    ] {
        let page = app
            .get(&format!("/api/admin/customers/search?q={q}"), Role::Support)
            .await
            .json();
        assert_eq!(page["items"][0]["id"], id, "q={q}");
    }
    // Roles shown PII masked find by name and order number, and learn nothing from a phone or
    // an email they are not shown.
    let page = app
        .get("/api/admin/customers/search?q=WEB-778899", Role::Analyst)
        .await
        .json();
    assert_eq!(page["items"][0]["id"], id);
    assert_eq!(
        page["items"][0]["email"], "d***@example.com",
        "masked for analysts"
    );
    for role in [Role::Analyst, Role::Marketing] {
        for q in ["5550102030", "010-2030", "dial@example.com", "dial@"] {
            let page = app
                .get(&format!("/api/admin/customers/search?q={q}"), role)
                .await
                .json();
            assert_eq!(page["total"], 0, "{role:?}: q={q}");
        }
    }
    let none = app
        .get("/api/admin/customers/search?q=WEB-7788", Role::Admin)
        .await
        .json();
    assert_eq!(none["total"], 0, "order numbers match exactly");
    for (query, field) in [
        ("clv_min=10&clv_max=5", "clv_min"),
        ("orders_min=3&orders_max=1", "orders_min"),
        ("tier=diamond", "tier"),
        ("signup_from=yesterday", "signup_from"),
        // Dates PostgreSQL cannot hold.
        ("signup_from=-5000-01-01", "signup_from"),
        ("last_order_to=-200000-01-01", "last_order_to"),
        ("signup_to=10000-01-01T00:00:00Z", "signup_to"),
        (
            "last_order_from=2026-02-01&last_order_to=2026-01-01",
            "last_order_from",
        ),
        ("clv_max=lots", "clv_max"),
        ("sort=random", "sort"),
        ("limit=500", "limit"),
        ("cursor=nothex", "cursor"),
        ("segment=Nobody%20Is%20Here", "segment"),
        ("tag=999999999", "tag"),
    ] {
        let r = app
            .get(&format!("/api/admin/customers/search?{query}"), Role::Admin)
            .await;
        assert_eq!(
            r.problem(422, "validation_failed")["field"],
            field,
            "{query}"
        );
    }
}

#[actix_web::test]
async fn relevance_ranks_exact_then_word_starts_then_shorter_matches_and_follows_renames() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    let mut ids = Vec::new();
    for (name, email) in [
        ("Ashlee Moss", "am@example.com"),
        ("Lee", "l@example.com"),
        ("Ann Lee", "al@example.com"),
        ("Bo Smith", "lee.bo@example.com"),
    ] {
        let id: i64 = sql
            .query_one(
                "INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING id",
                &[&name, &email],
            )
            .await
            .expect("customer")
            .get(0);
        ids.push(id);
    }
    let found = |page: &Value| -> Vec<(i64, f64)> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        (
                            i["id"].as_i64().unwrap_or(0),
                            i["score"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let page = app
        .get("/api/admin/customers/search?q=LEE", Role::Admin)
        .await
        .json();
    let ranked = found(&page);
    // "Lee" is exact (1); "Ann Lee" has a word starting with it (0.2 + 0.6·3/7 + 0.2);
    // lee.bo@… starts with it (0.2 + 0.6·3/18 + 0.2); "Ashlee Moss" only contains it.
    assert_eq!(
        ranked.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![ids[1], ids[2], ids[3], ids[0]]
    );
    assert_eq!(ranked[0].1, 1.0);
    assert!((ranked[1].1 - (0.4 + 0.6 * 3.0 / 7.0)).abs() < 1e-9);
    assert!((ranked[3].1 - (0.2 + 0.6 * 3.0 / 11.0)).abs() < 1e-9);
    assert_eq!(page["total"], 4);

    // The search copy follows renames and new emails.
    sql.execute(
        "UPDATE customers SET name = 'Ashley Moss', email = 'ASA@Example.com' WHERE id = $1",
        &[&ids[0]],
    )
    .await
    .expect("rename");
    let page = app
        .get("/api/admin/customers/search?q=lee", Role::Admin)
        .await
        .json();
    assert_eq!(page["total"], 3);
    assert!(!found(&page).iter().any(|(id, _)| *id == ids[0]));
    let page = app
        .get("/api/admin/customers/search?q=asa%40", Role::Admin)
        .await
        .json();
    assert_eq!(found(&page).first().map(|f| f.0), Some(ids[0]));

    // Later pages repeat the total their first page counted: a customer added while paging
    // does not shift it (a new first page counts them).
    let first = app
        .get("/api/admin/customers/search?q=lee&limit=2", Role::Admin)
        .await
        .json();
    assert_eq!(first["total"], 3);
    sql.execute(
        "INSERT INTO customers (name, email) VALUES ('Lee Park', 'lp@example.com')",
        &[],
    )
    .await
    .expect("customer added while paging");
    let cursor = first["next_cursor"].as_str().unwrap_or_default();
    let second = app
        .get(
            &format!("/api/admin/customers/search?q=lee&limit=2&cursor={cursor}"),
            Role::Admin,
        )
        .await
        .json();
    assert_eq!(second["total"], 3);
    assert_eq!(found(&second).len(), 2);
    let again = app
        .get("/api/admin/customers/search?q=lee&limit=2", Role::Admin)
        .await
        .json();
    assert_eq!(again["total"], 4);
}

#[actix_web::test]
async fn compare_two_or_three_customers() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    let mut ids = Vec::new();
    for (i, spent) in [3000i64, 1000, 1000].iter().enumerate() {
        let id: i64 = sql
            .query_one(
                "INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING id",
                &[&format!("C{i}"), &format!("c{i}@example.com")],
            )
            .await
            .expect("customer")
            .get(0);
        sql.execute("INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, $2, 'paid', $3, $3)", &[&id, &format!("CMP-{i}"), spent])
            .await
            .expect("order");
        ids.push(id);
    }
    sql.batch_execute(&format!(
        "INSERT INTO customer_tags (name, color, created_by) VALUES ('Both', '#000000', 't'), ('Mine', '#ffffff', 't');
         INSERT INTO customer_tag_assignments (customer_id, tag_id, assigned_by, assigned_by_name)
           SELECT c, t.id, 't', 'T' FROM unnest(ARRAY[{a}, {b}]) c, customer_tags t WHERE t.name = 'Both';
         INSERT INTO customer_tag_assignments (customer_id, tag_id, assigned_by, assigned_by_name)
           SELECT {a}, id, 't', 'T' FROM customer_tags WHERE name = 'Mine';",
        a = ids[0],
        b = ids[1]
    ))
    .await
    .expect("tags");
    let c = app
        .get(
            &format!("/api/admin/customers/compare?ids={},{}", ids[0], ids[1]),
            Role::Marketing,
        )
        .await
        .json();
    assert_eq!(c["customers"].as_array().map(Vec::len), Some(2));
    assert_eq!(c["customers"][0]["email"], "c***@example.com");
    let ltv = c["differences"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["measure"] == "lifetime_value_cents"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ltv["highest"], ids[0]);
    assert_eq!(
        ltv["gaps"][0]["behind_highest"],
        json!({"difference": 2000.0, "percent": 200.0})
    );
    assert_eq!(c["tags"]["shared"], json!(["Both"]));
    assert_eq!(
        c["tags"]["own"][0],
        json!({"customer_id": ids[0], "only": ["Mine"]})
    );
    let three = app
        .get(
            &format!(
                "/api/admin/customers/compare?ids={},{},{}",
                ids[0], ids[1], ids[2]
            ),
            Role::Admin,
        )
        .await
        .json();
    let orders = three["differences"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["measure"] == "order_count"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        orders["highest"],
        Value::Null,
        "equal values have no highest"
    );

    for ids_param in [
        format!("{}", ids[0]),
        format!("{},{},{},1", ids[0], ids[1], ids[2]),
        format!("{},{}", ids[0], ids[0]),
        "a,b".to_owned(),
        String::new(),
    ] {
        let r = app
            .get(
                &format!("/api/admin/customers/compare?ids={ids_param}"),
                Role::Admin,
            )
            .await;
        let problem = r.problem(422, "validation_failed");
        assert_eq!(problem["field"], "ids", "{ids_param}");
        if ids_param == format!("{},{}", ids[0], ids[0]) {
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("twice")),
                "a repeated id is named as such: {problem}"
            );
        }
    }
    app.get(
        &format!("/api/admin/customers/compare?ids={},999999", ids[0]),
        Role::Admin,
    )
    .await
    .problem(404, "not_found");
}

/// A segment deleted while an admin pages through its members: the next page names the
/// segment that is gone (422), rather than paging on over every customer.
#[actix_web::test]
async fn a_segment_deleted_mid_paging_is_a_422_naming_it() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    sql.batch_execute(
        "INSERT INTO customers (name, email) VALUES ('Page One', 'p1@example.com'),
             ('Page Two', 'p2@example.com'), ('Page Three', 'p3@example.com');
         INSERT INTO customer_segments (name, kind) VALUES ('Paged', 'manual');
         INSERT INTO customer_segment_assignments (customer_id, segment_id, source, assigned_by)
           SELECT c.id, s.id, 'manual', 'admin-1' FROM customers c, customer_segments s
           WHERE s.name = 'Paged' AND c.email LIKE 'p_@example.com';",
    )
    .await
    .expect("a segment of three");
    let first = app
        .get(
            "/api/admin/customers/search?segment=paged&limit=1",
            Role::Admin,
        )
        .await
        .json();
    assert_eq!(first["total"], 3, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    sql.execute("DELETE FROM customer_segments WHERE name = 'Paged'", &[])
        .await
        .expect("segment deleted");
    let next = app
        .get(
            &format!("/api/admin/customers/search?segment=paged&limit=1&cursor={cursor}"),
            Role::Admin,
        )
        .await;
    let problem = next.problem(422, "validation_failed");
    assert_eq!(problem["field"], "segment");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("paged")),
        "{problem}"
    );
}

/// A cursor pages on only the search that issued it: reused with another sort its key is not a
/// value of that sort (Postgres refused it with a 500), with another text or role its total
/// would be another search's, and a hand-made one is refused (cursors are signed).
#[actix_web::test]
async fn a_cursor_serves_only_the_search_that_issued_it() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    sql.batch_execute(
        "INSERT INTO customers (name, email) VALUES ('Page One', 'p1@example.com'),
             ('Page Two', 'p2@example.com'), ('Page Three', 'p3@example.com');",
    )
    .await
    .expect("three customers");
    let search = |query: String, role: Role| {
        let app = &app;
        async move {
            app.get(&format!("/api/admin/customers/search?{query}"), role)
                .await
        }
    };
    let first = search("q=page&sort=name&limit=1".into(), Role::Admin)
        .await
        .json();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = search(
        format!("q=page&sort=name&limit=1&cursor={cursor}"),
        Role::Admin,
    )
    .await
    .json();
    assert_eq!(next["total"], 3, "the same search pages on: {next}");
    for (query, role) in [
        (
            format!("q=page&sort=lifetime_value&limit=1&cursor={cursor}"),
            Role::Admin,
        ),
        (
            format!("q=page&sort=last_order&limit=1&cursor={cursor}"),
            Role::Admin,
        ),
        (
            format!("q=page&sort=relevance&limit=1&cursor={cursor}"),
            Role::Admin,
        ),
        (
            format!("q=one&sort=name&limit=1&cursor={cursor}"),
            Role::Admin,
        ),
        // Marketing's text matches fewer fields: another search.
        (
            format!("q=page&sort=name&limit=1&cursor={cursor}"),
            Role::Marketing,
        ),
    ] {
        let problem = search(query.clone(), role)
            .await
            .problem(422, "validation_failed");
        assert_eq!(problem["field"], "cursor", "{query}");
    }
    let hex = |raw: &str| -> String { raw.bytes().map(|b| format!("{b:02x}")).collect() };
    for forged in [
        hex("0123456789abcdef|page two|1|-7"),
        hex("0123456789abcdef|page two|1|3"),
        hex("page two|1|3"),
        hex("0123456789abcdef|page\u{0}|1|3"),
        // Shaped like a signed cursor, but not signed by this server.
        hex(&format!("0123456789abcdef|page two|1|3|{}", "0".repeat(32))),
    ] {
        let problem = search(
            format!("q=page&sort=name&limit=1&cursor={forged}"),
            Role::Admin,
        )
        .await
        .problem(422, "validation_failed");
        assert_eq!(problem["field"], "cursor", "{forged}");
    }
    // A NUL is no text Postgres can hold: refused naming the parameter, in queries and bodies.
    for query in ["q=a%00b", "tag=a%00b", "segment=%00"] {
        let field = query.split('=').next().unwrap_or_default();
        let problem = search(query.to_owned(), Role::Admin)
            .await
            .problem(422, "validation_failed");
        assert_eq!(problem["field"], field, "{query}");
    }
    // Who asks is checked first, as for every other mistake.
    app.get_raw("/api/admin/customers/search?q=a%00b", None)
        .await
        .problem(401, "unauthorized");
}
