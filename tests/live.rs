//! Live push end to end: real WebSocket clients (tokio-tungstenite) against the real server,
//! Postgres and Redis. Writes made with plain SQL reach every watching dashboard as deltas that,
//! applied to the snapshot, give exactly what GET …/360 returns.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{OwnRedis, TestApp, spawn_app, spawn_app_in_process, spawn_app_with, start_node};
use customer360::domain::roles::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, role: Role) -> Ws {
    connect_to(app, &app.address, role).await
}

async fn connect_to(app: &TestApp, address: &str, role: Role) -> Ws {
    let url = format!(
        "{}/ws?token={}",
        address.replace("http://", "ws://"),
        app.token(role)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The next JSON frame, skipping control frames and presence updates.
async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let frame = next_raw(ws).await;
        if frame["type"] != "presence" {
            return frame;
        }
    }
}

/// The next JSON frame of any type.
async fn next_raw<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("stream open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("JSON frame");
        }
    }
}

/// The next frame of a type, skipping others (deltas of customers already watched, say).
async fn next_of<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    kind: &str,
) -> Value {
    loop {
        let frame = next_raw(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// The close frame the server ends the connection with, within `within`; every text frame
/// before it is handed to `before`.
async fn close_frame(ws: &mut Ws, within: Duration, mut before: impl FnMut(&str)) -> CloseFrame {
    tokio::time::timeout(within, async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(close)) => return close,
                Ok(Message::Text(text)) => before(text.as_str()),
                _ => {}
            }
        }
        None
    })
    .await
    .expect("closed in time")
    .expect("a close frame with a status")
}

/// Subscribes to customer `id` and waits for its snapshot: the view and version the client
/// then holds.
async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    id: i64,
) -> (Value, u64) {
    send(ws, json!({"type": "subscribe", "customer_id": id})).await;
    let snapshot = next_of(ws, "snapshot").await;
    let version = snapshot["version"].as_u64().expect("version");
    (snapshot["view"].clone(), version)
}

/// Twenty notes of 1,500 bytes each: a snapshot of about 30 kB.
async fn add_long_notes(sql: &tokio_postgres::Client, id: i64) {
    sql.execute(
        "INSERT INTO customer_notes (customer_id, author_id, author_name, body)
         SELECT $1, 'admin-1', 'A', repeat(chr(97 + n % 26), 1500) FROM generate_series(1, 20) n",
        &[&id],
    )
    .await
    .expect("long notes");
}

/// A customer with nothing but a name, an email and maybe a phone.
async fn bare_customer(
    sql: &tokio_postgres::Client,
    name: &str,
    email: &str,
    phone: Option<&str>,
) -> i64 {
    sql.query_one(
        "INSERT INTO customers (name, email, phone) VALUES ($1, $2, $3) RETURNING id",
        &[&name, &email, &phone],
    )
    .await
    .expect("customer")
    .get(0)
}

/// A customer with a phone and one delivered order, 40 days old.
async fn customer(app: &TestApp) -> i64 {
    let sql = app.db.sql().await;
    let id = bare_customer(
        &sql,
        "Live One",
        "live@example.com",
        Some("+1 555 010 9999"),
    )
    .await;
    sql.execute(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
         VALUES ($1, 'L-0', 'delivered', 1000, 1000, now() - interval '40 days')",
        &[&id],
    )
    .await
    .expect("order");
    id
}

/// Waits until the derived worker has recorded the customer's health (its rows are written in
/// one transaction) and the relay has published every change event of the customer.
async fn derived_state_published(sql: &tokio_postgres::Client, id: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = sql
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM customer_health_scores WHERE customer_id = $1),
                        NOT EXISTS (SELECT 1 FROM change_events WHERE customer_id = $1 AND published_at IS NULL)",
                &[&id],
            )
            .await
            .expect("derived state");
        if row.get::<_, bool>(0) && row.get::<_, bool>(1) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "customer {id}'s derived state was not published within 10 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Applies deltas until the held view shows what `done` looks for and equals GET …/360 for
/// the role (or 20 s pass); how many `slow_consumer` notices came meanwhile.
async fn converge<S: AsyncRead + AsyncWrite + Unpin>(
    app: &TestApp,
    ws: &mut WebSocketStream<S>,
    role: Role,
    id: i64,
    view: &mut Value,
    version: &mut u64,
    done: impl Fn(&Value) -> bool,
) -> usize {
    let mut notices = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if done(view) {
            let expected = app
                .get(&format!("/api/admin/customers/{id}/360"), role)
                .await
                .json();
            if *view == expected {
                return notices;
            }
        }
        let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), next(ws)).await else {
            continue;
        };
        match frame["type"].as_str() {
            Some("delta") => {
                assert_eq!(frame["base_version"], *version, "no gap: {frame}");
                let patch: json_patch::Patch =
                    serde_json::from_value(frame["patch"].clone()).expect("RFC 6902 patch");
                json_patch::patch(view, &patch).expect("patch applies");
                *version = frame["version"].as_u64().expect("version");
                // Empty only for a recompute after the bus reconnected (events may have been missed).
                assert!(frame["causes"].is_array(), "{frame}");
            }
            Some("error") if frame["code"] == "slow_consumer" => notices += 1,
            Some("snapshot") => {
                *view = frame["view"].clone();
                *version = frame["version"].as_u64().expect("version");
            }
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
    let expected = app
        .get(&format!("/api/admin/customers/{id}/360"), role)
        .await
        .json();
    let differing: Vec<&String> = expected
        .as_object()
        .map(|e| {
            e.iter()
                .filter(|(k, v)| view.get(k.as_str()) != Some(*v))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    assert!(
        done(view),
        "the dashboard never showed the change (version {version}, differing slices {differing:?})"
    );
    assert!(
        differing.is_empty(),
        "the dashboard never converged: slices {differing:?} differ"
    );
    notices
}

#[actix_web::test]
async fn snapshots_then_deltas_converge_to_the_http_view_per_role() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let mut clients = Vec::new();
    for role in [Role::Admin, Role::Marketing] {
        let mut ws = connect(&app, role).await;
        send(&mut ws, json!({"type": "subscribe", "customer_id": id})).await;
        let snapshot = next(&mut ws).await;
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        assert_eq!(snapshot["customer_id"], id);
        let version = snapshot["version"].as_u64().expect("version");
        clients.push((role, ws, snapshot["view"].clone(), version));
    }
    assert_eq!(
        clients[1].2["profile"]["email"], "l***@example.com",
        "marketing gets a masked snapshot"
    );

    let sql = app.db.sql().await;
    sql.batch_execute(&format!(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ({id}, 'L-1', 'paid', 2500, 2500);
         INSERT INTO support_tickets (customer_id, subject) VALUES ({id}, 'Where is L-1?');
         INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility) VALUES ({id}, 'admin-1', 'A', 'secret', 'private');
         UPDATE customers SET phone = '+1 555 010 1234' WHERE id = {id};"
    ))
    .await
    .expect("platform writes");
    for (role, ws, view, version) in &mut clients {
        converge(&app, ws, *role, id, view, version, |v| {
            v["support"]["open"] == 1
                && v["profile"]["phone"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("1234"))
        })
        .await;
        assert_eq!(view["orders"]["items"][0]["order_number"], "L-1");
    }
    assert_eq!(
        clients[0].2["notes"]["total"], 1,
        "admins see private notes"
    );
    assert_eq!(
        clients[1].2["notes"]["total"], 0,
        "others' private notes never reach marketing"
    );
    assert_eq!(clients[1].2["profile"]["phone"], "***-1234");
    let metrics = app.get_raw("/metrics", None).await.text();
    assert!(
        metrics.contains(r#"view_360_served_total{source="hub"}"#),
        "GET …/360 was served from the live hub"
    );
}

/// A platform merging duplicate accounts moves rows to another customer: the dashboards of
/// both customers follow, the one it left as much as the one it joined.
#[actix_web::test]
async fn rows_moved_to_another_customer_leave_one_dashboard_and_reach_the_other() {
    let app = spawn_app().await;
    let from = customer(&app).await;
    let sql = app.db.sql().await;
    let to = bare_customer(&sql, "Live Two", "two@example.com", None).await;
    sql.execute(
        "INSERT INTO support_tickets (customer_id, subject) VALUES ($1, 'Where is L-0?')",
        &[&from],
    )
    .await
    .expect("ticket");
    let mut watchers = Vec::new();
    for id in [from, to] {
        let mut ws = connect(&app, Role::Admin).await;
        let (view, version) = subscribe(&mut ws, id).await;
        watchers.push((id, ws, view, version));
    }
    assert_eq!(watchers[0].2["orders"]["items"][0]["order_number"], "L-0");
    assert_eq!(watchers[0].2["support"]["open"], 1);

    sql.batch_execute(&format!(
        "BEGIN;
         UPDATE orders SET customer_id = {to} WHERE customer_id = {from};
         UPDATE order_items SET customer_id = {to} WHERE customer_id = {from};
         UPDATE support_tickets SET customer_id = {to} WHERE customer_id = {from};
         COMMIT;"
    ))
    .await
    .expect("rows moved");
    let shows_moved =
        |v: &Value| v["orders"]["items"][0]["order_number"] == "L-0" && v["support"]["open"] == 1;
    let (id, ws, view, version) = &mut watchers[0];
    converge(&app, ws, Role::Admin, *id, view, version, |v| {
        v["orders"]["items"].as_array().is_some_and(Vec::is_empty) && v["support"]["open"] == 0
    })
    .await;
    let (id, ws, view, version) = &mut watchers[1];
    converge(&app, ws, Role::Admin, *id, view, version, shows_moved).await;
}

/// The platform renames catalog rows in SQL (a campaign, a tag, a segment, a product category):
/// every dashboard showing one of them follows, though no row of the customer changed.
#[actix_web::test]
async fn catalog_renames_reach_the_dashboards_that_show_them() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    sql.batch_execute(&format!(
        "INSERT INTO product_categories (name) VALUES ('Catalog Shoes');
         INSERT INTO order_items (order_id, customer_id, category_id, product_name, quantity, unit_price_cents)
             SELECT o.id, {id}, c.id, 'Boot', 1, 1000 FROM orders o, product_categories c
             WHERE o.customer_id = {id} AND c.name = 'Catalog Shoes';
         INSERT INTO campaigns (name, channel) VALUES ('Catalog Spring', 'email');
         INSERT INTO campaign_events (campaign_id, customer_id, event_type)
             SELECT id, {id}, 'sent' FROM campaigns WHERE name = 'Catalog Spring';
         INSERT INTO customer_tags (name, color, created_by) VALUES ('catalog-vip', '#000000', 'x');
         INSERT INTO customer_tag_assignments (customer_id, tag_id, assigned_by, assigned_by_name)
             SELECT {id}, id, 'x', 'X' FROM customer_tags WHERE name = 'catalog-vip';
         INSERT INTO customer_segments (name, kind) VALUES ('Catalog Picked', 'manual');
         INSERT INTO customer_segment_assignments (customer_id, segment_id, source, assigned_by)
             SELECT {id}, id, 'manual', 'x' FROM customer_segments WHERE name = 'Catalog Picked';"
    ))
    .await
    .expect("catalog rows");
    let mut ws = connect(&app, Role::Admin).await;
    let (mut view, mut version) = subscribe(&mut ws, id).await;
    let names = |v: &Value| {
        let of = |list: &Value, key: &str| -> Vec<String> {
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x[key].as_str().map(str::to_owned))
                // The derived worker's automatic segments come and go beside ours.
                .filter(|name| name.to_lowercase().starts_with("catalog"))
                .collect()
        };
        [
            of(&v["analytics"]["categories"], "category"),
            of(&v["marketing"]["recent_campaigns"], "name"),
            of(&v["tags"], "name"),
            of(&v["segments"], "name"),
        ]
    };
    // Category, campaign, tag and segment names, one of each.
    let shows = |v: &Value, expected: [&str; 4]| names(v) == expected.map(|n| vec![n.to_owned()]);
    // The fixture's own changes may still be on their way: wait for all of them first.
    converge(
        &app,
        &mut ws,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| {
            shows(
                v,
                [
                    "Catalog Shoes",
                    "Catalog Spring",
                    "catalog-vip",
                    "Catalog Picked",
                ],
            )
        },
    )
    .await;

    sql.batch_execute(
        "UPDATE product_categories SET name = 'Catalog Footwear' WHERE name = 'Catalog Shoes';
         UPDATE campaigns SET name = 'Catalog Spring Sale' WHERE name = 'Catalog Spring';
         UPDATE customer_tags SET name = 'catalog-VIP', color = '#ff0000' WHERE name = 'catalog-vip';
         UPDATE customer_segments SET name = 'Catalog Hand Picked' WHERE name = 'Catalog Picked';",
    )
    .await
    .expect("renames");
    converge(
        &app,
        &mut ws,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| {
            shows(
                v,
                [
                    "Catalog Footwear",
                    "Catalog Spring Sale",
                    "catalog-VIP",
                    "Catalog Hand Picked",
                ],
            ) && v["tags"][0]["color"] == "#ff0000"
        },
    )
    .await;
}

/// Others' private notes take no place on a viewer's page: with more private notes by an admin
/// than a page holds, every role still sees its own first page of the timeline (as the
/// timeline route gives it) and its own notes and count, from Postgres, from the live hub and
/// over the WebSocket, before and after a change.
#[actix_web::test]
async fn others_private_notes_take_no_place_on_a_viewers_page() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    sql.batch_execute(&format!(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
             SELECT {id}, 'P-' || g, 'delivered', 100, 100, now() - interval '30 days' + g * interval '1 minute'
             FROM generate_series(1, 30) g;
         INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility, created_at)
             SELECT {id}, 'admin-1', 'admin Tester', 'secret ' || g, 'private', now() - interval '1 day' + g * interval '1 minute'
             FROM generate_series(1, 25) g;
         INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility, created_at)
             SELECT {id}, 'marketing-1', 'marketing Tester', 'mine ' || g, 'private', now() - interval '2 days' + g * interval '1 minute'
             FROM generate_series(1, 2) g;
         INSERT INTO customer_notes (customer_id, author_id, author_name, body, created_at)
             VALUES ({id}, 'support-1', 'support Tester', 'for everyone', now() - interval '3 days');"
    ))
    .await
    .expect("events and notes");
    derived_state_published(&sql, id).await;
    let roles = [
        (Role::Analyst, 1),
        (Role::Support, 1),
        (Role::Marketing, 3),
        (Role::Admin, 28),
    ];
    let timeline_path = format!("/api/admin/customers/{id}/timeline");
    let view_path = format!("/api/admin/customers/{id}/360");
    let check = |view: &Value, timeline: &Value, role: Role, notes: usize| {
        assert_eq!(view["timeline"], *timeline, "{role:?}'s timeline");
        assert_eq!(
            view["timeline"]["events"].as_array().map(Vec::len),
            Some(20),
            "{role:?}: a full page"
        );
        assert_eq!(view["notes"]["total"], notes, "{role:?}'s notes");
        assert_eq!(
            view["notes"]["items"].as_array().map(Vec::len),
            Some(notes),
            "{role:?}'s notes"
        );
        assert!(
            view["timeline"].get("private").is_none() && view["notes"].get("private").is_none(),
            "{role:?}: nothing held apart leaves the server"
        );
    };
    // From Postgres (and the read cache), before any hub exists.
    for (role, notes) in roles {
        let timeline = app.get(&timeline_path, role).await.json();
        check(
            &app.get(&view_path, role).await.json(),
            &timeline,
            role,
            notes,
        );
    }
    // From the live hub, over the WebSocket and HTTP.
    let mut watchers = Vec::new();
    for (role, notes) in roles {
        let mut ws = connect(&app, role).await;
        let (view, version) = subscribe(&mut ws, id).await;
        let timeline = app.get(&timeline_path, role).await.json();
        check(&view, &timeline, role, notes);
        check(
            &app.get(&view_path, role).await.json(),
            &timeline,
            role,
            notes,
        );
        watchers.push((role, notes, ws, view, version));
    }
    // Another admin's private note written with an order, in one transaction (so one delta,
    // most likely): the analyst's delta shows the order and does not name the note.
    let note_id: i64 = sql
        .query_one(
            "WITH o AS (INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents)
                        VALUES ($1, 'BATCH-1', 'paid', 100, 100))
             INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility)
             VALUES ($1, 'admin-1', 'admin Tester', 'secret beside an order', 'private') RETURNING id",
            &[&id],
        )
        .await
        .expect("order and private note")
        .get(0);
    let (_, _, analyst, view, version) = &mut watchers[0];
    let mut named = Vec::new();
    while view["orders"]["items"][0]["order_number"] != "BATCH-1" {
        let frame = next(analyst).await;
        assert_eq!(frame["type"], "delta", "{frame}");
        assert_eq!(frame["base_version"], *version, "no gap: {frame}");
        let patch: json_patch::Patch =
            serde_json::from_value(frame["patch"].clone()).expect("RFC 6902 patch");
        json_patch::patch(view, &patch).expect("patch applies");
        *version = frame["version"].as_u64().expect("version");
        named.extend(frame["causes"].as_array().into_iter().flatten().cloned());
    }
    let note_entity = note_id.to_string();
    assert!(
        !named
            .iter()
            .any(|c| c["kind"] == "note" && c["entity_id"] == note_entity.as_str()),
        "the analyst was told of another admin's private note: {named:?}"
    );
    // A new private note of the admin moves nobody else's page; a public one moves everyone's.
    for (body, visibility) in [("secret 26", "private"), ("news for all", "public")] {
        let r = app
            .post_json(
                &format!("/api/admin/customers/{id}/notes"),
                Role::Admin,
                &json!({"body": body, "visibility": visibility}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    for (role, notes, ws, view, version) in &mut watchers {
        let notes = *notes + if *role == Role::Admin { 3 } else { 1 };
        converge(&app, ws, *role, id, view, version, |v| {
            v["timeline"]["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e["summary"] == "news for all"))
        })
        .await;
        let timeline = app.get(&timeline_path, *role).await.json();
        check(view, &timeline, *role, notes);
    }
}

/// `demo` without Redis: one node on the in-process bus and cache (its Redis URL names a port
/// nothing listens on). /readyz says so; dashboards get their snapshot, each other's presence
/// and every change as a delta; the 360 route reads through the in-process cache.
#[actix_web::test]
async fn without_redis_one_node_runs_on_its_in_process_bus() {
    let app = spawn_app_in_process().await;
    let ready = app.get_raw("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(
        ready.json()["checks"]["redis"]
            .as_str()
            .is_some_and(|s| s.contains("in-process")),
        "{}",
        ready.text()
    );
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    derived_state_published(&sql, id).await;
    let view_path = format!("/api/admin/customers/{id}/360");
    let unwatched = app.get(&view_path, Role::Analyst).await.json();
    assert_eq!(app.get(&view_path, Role::Analyst).await.json(), unwatched);

    let mut admin = connect(&app, Role::Admin).await;
    let (mut view, mut version) = subscribe(&mut admin, id).await;
    assert_eq!(view["profile"]["name"], "Live One");
    let mut support = connect(&app, Role::Support).await;
    subscribe(&mut support, id).await;
    let viewers = presence_until(&mut admin, |v| v.len() == 2).await;
    assert_eq!(viewers[1]["role"], "support", "{viewers:?}");

    let r = app
        .post_json(
            &format!("/api/admin/customers/{id}/notes"),
            Role::Support,
            &json!({"body": "heard without Redis"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    converge(
        &app,
        &mut admin,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| v["notes"]["items"][0]["body"] == "heard without Redis",
    )
    .await;
}

/// A snapshot several times the size of the slices the server writes it in (so that no
/// connection's write buffer outgrows its first 8 KiB) arrives whole, and the session stays live.
#[actix_web::test]
async fn a_snapshot_larger_than_the_write_slices_arrives_whole_and_deltas_follow() {
    use customer360::http::sliced_body::SLICE;
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    add_long_notes(&sql, id).await;
    let mut ws = connect(&app, Role::Admin).await;
    send(&mut ws, json!({"type": "subscribe", "customer_id": id})).await;
    let snapshot = next(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let size = snapshot.to_string().len();
    assert!(
        size > 2 * SLICE,
        "the snapshot ({size} bytes) spans three slices or more"
    );
    let mut view = snapshot["view"].clone();
    let mut version = snapshot["version"].as_u64().expect("version");
    // The derived worker may still be recording the fixture's health: converge, then compare.
    converge(
        &app,
        &mut ws,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| v["notes"]["total"] == 20,
    )
    .await;

    sql.execute(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents)
         VALUES ($1, 'BIG-1', 'paid', 4200, 4200)",
        &[&id],
    )
    .await
    .expect("order");
    converge(
        &app,
        &mut ws,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| v["orders"]["items"][0]["order_number"] == "BIG-1",
    )
    .await;
}

#[actix_web::test]
async fn bad_frames_get_error_frames_and_the_session_stays_usable() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let mut ws = connect(&app, Role::Analyst).await;
    ws.send(Message::text("{not json")).await.expect("send");
    let e = next(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("bad_request"))
    );
    send(&mut ws, json!({"type": "dance"})).await;
    assert!(
        next(&mut ws).await["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown message type")
    );
    ws.send(Message::text(format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    )))
    .await
    .expect("send");
    assert!(
        next(&mut ws).await["message"]
            .as_str()
            .unwrap_or("")
            .contains("exceeds")
    );
    send(
        &mut ws,
        json!({"type": "subscribe", "customer_id": 987_654}),
    )
    .await;
    let e = next(&mut ws).await;
    assert_eq!(
        (e["code"].as_str(), e["customer_id"].as_i64()),
        (Some("not_found"), Some(987_654))
    );
    send(&mut ws, json!({"type": "unsubscribe", "customer_id": id})).await;
    assert_eq!(next(&mut ws).await["code"], "bad_request");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");
    send(&mut ws, json!({"type": "subscribe", "customer_id": id})).await;
    assert_eq!(next(&mut ws).await["type"], "snapshot");

    // A message in several frames (RFC 6455, 5.4) is read whole.
    let whole = json!({"type": "ping"}).to_string();
    let (head, tail) = whole.split_at(5);
    ws.send(Message::Frame(Frame::message(
        head.as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .expect("send");
    ws.send(Message::Frame(Frame::message(
        tail.as_bytes().to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .expect("send");
    // The customer's derived state may still be landing, so a delta can come first.
    let mut frame = next(&mut ws).await;
    while frame["type"] == "delta" {
        frame = next(&mut ws).await;
    }
    assert_eq!(frame["type"], "pong", "{frame}");

    // Over 1 MiB, one frame or several: closed with 1009 and why.
    for fragmented in [false, true] {
        let mut ws = connect(&app, Role::Analyst).await;
        let big = "x".repeat(1024 * 1024 + 10);
        if fragmented {
            let (head, tail) = big.split_at(600 * 1024);
            for (part, opcode, last) in [(head, Data::Text, false), (tail, Data::Continue, true)] {
                ws.send(Message::Frame(Frame::message(
                    part.as_bytes().to_vec(),
                    OpCode::Data(opcode),
                    last,
                )))
                .await
                .expect("send");
            }
        } else {
            ws.send(Message::text(big)).await.expect("send");
        }
        let close = close_frame(&mut ws, Duration::from_secs(10), |_| {}).await;
        assert_eq!(u16::from(close.code), 1009, "fragmented: {fragmented}");
        assert!(close.reason.contains("1 MiB"), "{close:?}");
    }
}

/// The server's own WebSocket framing (`realtime::outgoing`): a ping is answered with a pong
/// carrying its payload, and a close is answered with a close, after which the stream ends.
#[actix_web::test]
async fn websocket_pings_are_answered_and_a_close_closes() {
    let app = spawn_app().await;
    let mut ws = connect(&app, Role::Analyst).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("send");
    let pong = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a frame within 10 s")
        .expect("stream open")
        .expect("frame");
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");
    ws.send(Message::Close(None)).await.expect("send");
    let mut closed = false;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("the server closes within 10 s")
    {
        match frame {
            Ok(Message::Close(_)) => closed = true,
            Ok(other) => panic!("nothing but a close after a close, got {other:?}"),
            Err(_) => break,
        }
    }
    assert!(closed, "the server answered the close with a close");
}

/// A session that subscribes to a customer twice still counts once: after its one
/// unsubscribe the hub retires (and leaves the customer's Redis channel) once its grace is
/// over. Counted twice, the hub lived on for good.
#[actix_web::test]
async fn a_hub_retires_after_a_session_that_subscribed_twice_leaves() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let channel = format!("{}:customer:{id}", app.redis_prefix);
    let client = redis::Client::open(common::REDIS_URL).expect("redis url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let mut listeners = async || {
        redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async::<(String, i64)>(&mut redis)
            .await
            .expect("numsub")
            .1
    };
    let mut ws = connect(&app, Role::Admin).await;
    subscribe(&mut ws, id).await;
    subscribe(&mut ws, id).await;
    assert_eq!(
        listeners().await,
        1,
        "the hub listens for the customer's events"
    );
    send(&mut ws, json!({"type": "unsubscribe", "customer_id": id})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while listeners().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hub never retired after its only session left"
        );
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

#[actix_web::test]
async fn at_most_twenty_subscriptions() {
    let app = spawn_app().await;
    let sql = app.db.sql().await;
    sql.batch_execute("INSERT INTO customers (name, email) SELECT 'C' || g, 'c' || g || '@example.com' FROM generate_series(1, 21) g")
        .await
        .expect("customers");
    let ids: Vec<i64> = sql
        .query("SELECT id FROM customers ORDER BY id", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut ws = connect(&app, Role::Support).await;
    for id in &ids[..20] {
        send(&mut ws, json!({"type": "subscribe", "customer_id": id})).await;
        assert_eq!(next_of(&mut ws, "snapshot").await["customer_id"], *id);
    }
    send(
        &mut ws,
        json!({"type": "subscribe", "customer_id": ids[20]}),
    )
    .await;
    assert_eq!(
        next_of(&mut ws, "error").await["code"],
        "too_many_subscriptions"
    );

    // A burst of subscribes, sent before any is answered, is held to the same limit.
    sql.batch_execute("INSERT INTO customers (name, email) SELECT 'D' || g, 'd' || g || '@example.com' FROM generate_series(1, 5) g")
        .await
        .expect("more customers");
    let mut burst = connect(&app, Role::Support).await;
    let all: Vec<i64> = sql
        .query("SELECT id FROM customers ORDER BY id", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &all {
        send(&mut burst, json!({"type": "subscribe", "customer_id": id})).await;
    }
    let (mut snapshots, mut refused) = (BTreeSet::new(), 0);
    while snapshots.len() + refused < all.len() {
        let frame = next(&mut burst).await;
        match frame["type"].as_str() {
            Some("snapshot") => {
                snapshots.insert(frame["customer_id"].as_i64().expect("customer id"));
            }
            Some("error") => {
                assert_eq!(frame["code"], "too_many_subscriptions", "{frame}");
                refused += 1;
            }
            _ => {}
        }
    }
    assert_eq!((snapshots.len(), refused), (20, all.len() - 20));
}

#[actix_web::test]
async fn reconnecting_with_since_replays_or_resnapshots() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    // The frames below are read one by one: the fixture's derived rows must not interleave
    // deltas of their own.
    derived_state_published(&sql, id).await;
    let mut watcher = connect(&app, Role::Admin).await;
    send(
        &mut watcher,
        json!({"type": "subscribe", "customer_id": id}),
    )
    .await;
    let snapshot = next(&mut watcher).await;
    let epoch = snapshot["epoch"].as_str().expect("epoch").to_owned();
    let since_version = snapshot["version"].as_u64().expect("version");

    sql.execute("INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ($1, 'x', 'X', 'missed')", &[&id])
        .await
        .expect("note");
    let delta = next(&mut watcher).await;
    assert_eq!(delta["type"], "delta");

    // A client that repeats its subscribe, the second time with its position, before the
    // first was answered is served from that position. Both frames leave in one write, so the
    // second arrives while the first's check is under way.
    let mut back = connect(&app, Role::Admin).await;
    for frame in [
        json!({"type": "subscribe", "customer_id": id}),
        json!({"type": "subscribe", "customer_id": id, "since": {"epoch": epoch, "version": since_version}}),
    ] {
        back.feed(Message::text(frame.to_string()))
            .await
            .expect("send");
    }
    back.flush().await.expect("send");
    let replayed = next(&mut back).await;
    assert_eq!(
        replayed["type"], "delta",
        "missed deltas are replayed: {replayed}"
    );
    assert_eq!(replayed["base_version"], since_version);

    let mut stranger = connect(&app, Role::Admin).await;
    send(&mut stranger, json!({"type": "subscribe", "customer_id": id, "since": {"epoch": "another-epoch", "version": 3}})).await;
    assert_eq!(
        next(&mut stranger).await["type"],
        "snapshot",
        "an unknown epoch gets a snapshot"
    );
    send(&mut stranger, json!({"type": "resync", "customer_id": id})).await;
    assert_eq!(next(&mut stranger).await["type"], "snapshot");

    // The customer's only dashboard drops (a page reload) and misses a change: coming back
    // within the hub's grace it resumes from the delta it missed, not a whole snapshot.
    let alone = bare_customer(&sql, "Lone Watch", "lone@example.com", None).await;
    derived_state_published(&sql, alone).await;
    let mut lone = connect(&app, Role::Admin).await;
    send(
        &mut lone,
        json!({"type": "subscribe", "customer_id": alone}),
    )
    .await;
    let snapshot = next_of(&mut lone, "snapshot").await;
    let epoch = snapshot["epoch"].as_str().expect("epoch").to_owned();
    let since_version = snapshot["version"].as_u64().expect("version");
    drop(lone);
    sql.execute("INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ($1, 'x', 'X', 'missed while away')", &[&alone])
        .await
        .expect("note");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let mut reloaded = connect(&app, Role::Admin).await;
    send(&mut reloaded, json!({"type": "subscribe", "customer_id": alone, "since": {"epoch": epoch, "version": since_version}})).await;
    let resumed = next(&mut reloaded).await;
    assert_eq!(
        (resumed["type"].as_str(), resumed["base_version"].as_u64()),
        (Some("delta"), Some(since_version)),
        "the missed delta, not a snapshot: {resumed}"
    );

    // Watched again, the projection's grace starts afresh when it is next left: a second reload
    // long after the first resumes too, even with nothing changed in between.
    let version = resumed["version"].as_u64().expect("version");
    actix_web::rt::time::sleep(Duration::from_secs(6)).await;
    drop(reloaded);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect(&app, Role::Admin).await;
    send(&mut again, json!({"type": "subscribe", "customer_id": alone, "since": {"epoch": epoch, "version": version}})).await;
    sql.execute("INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ($1, 'x', 'X', 'after the second reload')", &[&alone])
        .await
        .expect("note");
    let next_frame = next(&mut again).await;
    assert_eq!(
        (
            next_frame["type"].as_str(),
            next_frame["base_version"].as_u64()
        ),
        (Some("delta"), Some(version)),
        "resumed, not a snapshot: {next_frame}"
    );
}

#[actix_web::test]
async fn the_upgrade_needs_a_valid_token() {
    let app = spawn_app().await;
    let url = format!(
        "{}/ws?token=nonsense",
        app.address.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    // Without any token the 401 says where a WebSocket client puts one.
    let url = format!("{}/ws", app.address.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 401);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("?token="), "{body}");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("request");
    let protocol = format!("bearer, {}", app.token(Role::Analyst));
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    let (_, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("token in the subprotocol works");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap_or("")),
        Some("bearer")
    );
}

#[actix_web::test]
async fn two_nodes_share_every_change() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let node_b = start_node(&app.db.url, common::REDIS_URL, &app.redis_prefix, &[]).await;
    let mut on_a = connect(&app, Role::Support).await;
    let mut on_b = connect_to(&app, &node_b, Role::Admin).await;
    let (mut view_a, mut version_a) = subscribe(&mut on_a, id).await;
    let (mut view_b, mut version_b) = subscribe(&mut on_b, id).await;
    let note = app
        .post_json_at(
            &node_b,
            &format!("/api/admin/customers/{id}/notes"),
            Role::Admin,
            &json!({"body": "written on node B"}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text());
    app.db
        .sql()
        .await
        .execute(
            "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, 'TWO-1', 'paid', 100, 100)",
            &[&id],
        )
        .await
        .expect("order by plain SQL");
    let both =
        |v: &Value| v["notes"]["total"] == 1 && v["orders"]["items"][0]["order_number"] == "TWO-1";
    converge(
        &app,
        &mut on_a,
        Role::Support,
        id,
        &mut view_a,
        &mut version_a,
        both,
    )
    .await;
    converge(
        &app,
        &mut on_b,
        Role::Admin,
        id,
        &mut view_b,
        &mut version_b,
        both,
    )
    .await;
    assert_eq!(view_a["notes"]["items"][0]["body"], "written on node B");
    assert_eq!(view_b["orders"]["items"][0]["order_number"], "TWO-1");
}

#[actix_web::test]
async fn dashboards_converge_after_redis_restarts_mid_stream() {
    let mut redis = OwnRedis::new();
    redis.start();
    let app = spawn_app_with(&redis.url()).await;
    let id = customer(&app).await;
    let mut ws = connect(&app, Role::Admin).await;
    let (mut view, mut version) = subscribe(&mut ws, id).await;

    redis.stop();
    let sql = app.db.sql().await;
    for i in 0..5 {
        sql.execute(
            "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, $2, 'paid', 100, 100)",
            &[&id, &format!("OUTAGE-{i}")],
        )
        .await
        .expect("writes while redis is down");
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile reads come from PostgreSQL, not from the hub, which hears nothing.
    let during = app
        .get(&format!("/api/admin/customers/{id}/360"), Role::Admin)
        .await;
    assert_eq!(during.status, 200, "{}", during.text());
    assert_eq!(
        during.json()["orders"]["items"][0]["order_number"],
        "OUTAGE-4"
    );
    redis.start();
    converge(
        &app,
        &mut ws,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| v["orders"]["items"][0]["order_number"] == "OUTAGE-4",
    )
    .await;
    let mut pending = i64::MAX;
    for _ in 0..100 {
        pending = sql
            .query_one(
                "SELECT count(*) FROM change_events WHERE published_at IS NULL AND kind = 'order'",
                &[],
            )
            .await
            .expect("pending")
            .get(0);
        if pending == 0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0, "the backlog is published once redis returns");
}

/// The next presence frame whose viewers satisfy `check`.
async fn presence_until(ws: &mut Ws, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    loop {
        let frame = next_of(ws, "presence").await;
        let viewers = frame["viewers"].as_array().cloned().unwrap_or_default();
        if check(&viewers) {
            return viewers;
        }
    }
}

#[actix_web::test]
async fn presence_is_shared_across_nodes_joins_and_leaves() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let node_b = start_node(&app.db.url, common::REDIS_URL, &app.redis_prefix, &[]).await;
    let mut ann = connect(&app, Role::Admin).await;
    send(&mut ann, json!({"type": "subscribe", "customer_id": id})).await;
    let alone = presence_until(&mut ann, |v| v.len() == 1).await;
    assert_eq!(
        (alone[0]["admin_id"].as_str(), alone[0]["activity"].as_str()),
        (Some("admin-1"), Some("viewing"))
    );

    let mut bob = connect_to(&app, &node_b, Role::Support).await;
    send(&mut bob, json!({"type": "subscribe", "customer_id": id})).await;
    let both = presence_until(&mut ann, |v| v.len() == 2).await;
    assert!(both.iter().any(|v| v["admin_id"] == "support-1"
        && v["name"] == "support Tester"
        && v["role"] == "support"));

    send(
        &mut bob,
        json!({"type": "presence", "customer_id": id, "activity": "typing_note"}),
    )
    .await;
    presence_until(&mut ann, |v| {
        v.iter()
            .any(|x| x["admin_id"] == "support-1" && x["activity"] == "typing_note")
    })
    .await;

    // The same admin in a second tab is still one viewer: typing while any tab is, viewing
    // once the typing tab has gone.
    let mut bob_again = connect(&app, Role::Support).await;
    send(
        &mut bob_again,
        json!({"type": "subscribe", "customer_id": id}),
    )
    .await;
    next_of(&mut bob_again, "snapshot").await;
    let one_each = |v: &[Value]| {
        let admins: std::collections::BTreeSet<_> =
            v.iter().map(|x| x["admin_id"].to_string()).collect();
        assert_eq!(admins.len(), v.len(), "one entry per admin: {v:?}");
    };
    // The new tab is told who is there although the list did not change.
    let seen = presence_until(&mut bob_again, |v| {
        one_each(v);
        !v.is_empty()
    })
    .await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    bob.close(None).await.expect("close");
    presence_until(&mut ann, |v| {
        one_each(v);
        v.iter()
            .any(|x| x["admin_id"] == "support-1" && x["activity"] == "viewing")
    })
    .await;

    bob_again.close(None).await.expect("close");
    presence_until(&mut ann, |v| v.len() == 1).await;
}

#[actix_web::test]
async fn external_producers_are_heard_and_malformed_events_counted() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let mut ws = connect(&app, Role::Admin).await;
    let (mut view, mut version) = subscribe(&mut ws, id).await;
    // Let the hub settle on the fixture's own events first.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    let client = redis::Client::open(common::REDIS_URL).expect("redis url");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let channel = format!("{}:customer:{id}", app.redis_prefix);
    for payload in [
        "{not json",
        r#"{"event_id":"6f1c1f8e-1d2b-4a39-9a7e-2f5d7c1e9b10","customer_id":999,"kind":"order","op":"created","entity_id":"1","at":"2026-11-24T19:00:00Z"}"#,
    ] {
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload)
            .query_async::<i64>(&mut redis)
            .await
            .expect("publish");
    }
    // A change the outbox never saw (written with the relay's triggers bypassed), then an
    // external producer's event: the hub must pick it up from that event alone.
    let sql = app.db.sql().await;
    sql.batch_execute(&format!(
        "SET session_replication_role = replica;
         INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ({id}, 'EXT-1', 'paid', 100, 100);
         SET session_replication_role = origin;"
    ))
    .await
    .expect("silent write");
    let external = json!({"event_id": uuid::Uuid::new_v4(), "customer_id": id, "kind": "gift_card", "op": "created",
        "entity_id": "g-1", "at": chrono::Utc::now(), "source": "external"});
    redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(external.to_string())
        .query_async::<i64>(&mut redis)
        .await
        .expect("publish");
    converge(
        &app,
        &mut ws,
        Role::Admin,
        id,
        &mut view,
        &mut version,
        |v| v["orders"]["items"][0]["order_number"] == "EXT-1",
    )
    .await;
    let metrics = app.get_raw("/metrics", None).await.text();
    let malformed = metrics
        .lines()
        .find(|l| l.starts_with("redis_bus_malformed_events_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        malformed >= 2.0,
        "malformed events are counted: {malformed}"
    );
}

/// Fifty notes, then sixty rewrites of all of them 30 ms apart, the last starting "round 59 ".
/// Each rewrite to 9 kB per note is a delta of about half a megabyte: thirty megabytes in all,
/// more than the socket buffers and the connection's write buffer hold, so the queue of a
/// client that does not read fills up.
async fn flood_with_note_rewrites(sql: &tokio_postgres::Client, id: i64) {
    sql.execute(
        "INSERT INTO customer_notes (customer_id, author_id, author_name, body)
         SELECT $1, 'w', 'Writer', 'note ' || g FROM generate_series(1, 50) g",
        &[&id],
    )
    .await
    .expect("notes");
    for round in 0..60 {
        sql.execute(
            "UPDATE customer_notes SET body = $2 || repeat('x', 9000), updated_at = now() WHERE customer_id = $1",
            &[&id, &format!("round {round} ")],
        )
        .await
        .expect("rewrite");
        actix_web::rt::time::sleep(Duration::from_millis(30)).await;
    }
}

/// An admin's WebSocket to `node` over a socket with a 4 KiB receive buffer, so that a client
/// that stops reading shuts its window after a few kilobytes.
async fn connect_with_tiny_window(
    app: &TestApp,
    node: &str,
) -> WebSocketStream<tokio::net::TcpStream> {
    let port: u16 = node
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("tcp");
    let url = format!("ws://127.0.0.1:{port}/ws?token={}", app.token(Role::Admin));
    tokio_tungstenite::client_async(url, stream)
        .await
        .expect("websocket")
        .0
}

/// A node whose sessions queue at most `queue` frames, and an admin subscribed to customer
/// `id` on it over a tiny receive window, holding its snapshot: the node, the socket, and the
/// view and version it holds.
async fn subscriber_on_small_queue(
    app: &TestApp,
    id: i64,
    queue: usize,
) -> (String, WebSocketStream<tokio::net::TcpStream>, (Value, u64)) {
    let node = start_node(
        &app.db.url,
        common::REDIS_URL,
        &app.redis_prefix,
        &["--ws-queue", &queue.to_string()],
    )
    .await;
    let mut ws = connect_with_tiny_window(app, &node).await;
    let held = subscribe(&mut ws, id).await;
    (node, ws, held)
}

#[actix_web::test]
async fn a_slow_consumer_gets_a_fresh_snapshot_and_others_are_unaffected() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    // A client with a tiny receive window that stops reading after its snapshot.
    let (node, mut slow, (mut slow_view, mut slow_version)) =
        subscriber_on_small_queue(&app, id, 4).await;

    let mut brisk = connect_to(&app, &node, Role::Admin).await;
    let (mut brisk_view, mut brisk_version) = subscribe(&mut brisk, id).await;

    flood_with_note_rewrites(&app.db.sql().await, id).await;
    let last = |v: &Value| {
        v["notes"]["items"][0]["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("round 59 "))
    };
    converge(
        &app,
        &mut brisk,
        Role::Admin,
        id,
        &mut brisk_view,
        &mut brisk_version,
        last,
    )
    .await;
    // Reading again, the slow client is told it fell behind and catches up through one fresh
    // snapshot. Its own notice proves the overflow: the slow-consumer metric is shared with
    // other tests running at the same time.
    let notices = converge(
        &app,
        &mut slow,
        Role::Admin,
        id,
        &mut slow_view,
        &mut slow_version,
        last,
    )
    .await;
    assert!(notices >= 1, "the silent client was marked slow");
}

/// A WebSocket lives no longer than its token: when it expires the session closes with 1008
/// and a reason, as an HTTP request with that token gets a 401; a session that sends nothing
/// is closed then too, not at the next heartbeat (15 s after it opened).
#[actix_web::test]
async fn a_session_ends_when_its_token_expires() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let token = app
        .keys
        .issue(
            "short-1",
            "Short Lived",
            Role::Admin,
            chrono::Duration::seconds(1),
        )
        .expect("token");
    let url = format!(
        "{}/ws?token={token}",
        app.address.replace("http://", "ws://")
    );
    let mut ws = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0;
    subscribe(&mut ws, id).await;
    // `exp` is at most a second away and verification allows 5 s of clock skew, so the close
    // is due within 7 s; the first heartbeat would come at 15 s.
    let close = close_frame(&mut ws, Duration::from_secs(11), |_| {}).await;
    assert_eq!(u16::from(close.code), 1008, "{close:?}");
    assert!(close.reason.contains("expired"), "{close:?}");
}

/// A server that shuts down tells every dashboard first, with 1001 Going Away, so clients
/// reconnect at once instead of holding a connection that then drops without a word; and the
/// shutdown then needs no grace period for them.
#[actix_web::test]
async fn a_shutdown_closes_dashboards_with_going_away() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let (node, stop) = common::start_stoppable_node(
        &app.db.url,
        common::REDIS_URL,
        &app.redis_prefix,
        &["--shutdown-timeout-secs", "120"],
    )
    .await;
    let mut ws = connect_to(&app, &node, Role::Admin).await;
    subscribe(&mut ws, id).await;
    let stopped = actix_web::rt::spawn(async move { stop.stop().await });
    // Long before the 120 s grace period.
    let close = close_frame(&mut ws, Duration::from_secs(20), |_| {}).await;
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    assert!(close.reason.contains("shutting down"), "{close:?}");
    tokio::time::timeout(Duration::from_secs(20), stopped)
        .await
        .expect("with its dashboards gone the server stops without waiting out its grace")
        .expect("the stop task");
}

/// Pings that arrive while the client's queue is full, a WebSocket ping frame and the
/// protocol's `{"type":"ping"}`, are answered once the client reads again: dropped, a missing
/// pong would look like a dead server to the client.
#[actix_web::test]
async fn pings_that_find_the_queue_full_are_answered_later() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let (_, mut slow, _) = subscriber_on_small_queue(&app, id, 2).await;
    // Once the socket buffers are full the queue cannot drain, so it stays full for as long as
    // the client does not read.
    flood_with_note_rewrites(&app.db.sql().await, id).await;

    slow.send(Message::Ping(b"owed".to_vec().into()))
        .await
        .expect("ping sent");
    send(&mut slow, json!({"type": "ping"})).await;
    // Time for the server to handle both pings while the queue is still full, before reading
    // makes room.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let (mut websocket, mut protocol, mut slow_notice) = (false, false, false);
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while !(websocket && protocol && slow_notice) {
            let Some(frame) = slow.next().await else {
                break;
            };
            match frame.expect("the connection stays usable") {
                Message::Pong(p) if p.as_ref() == b"owed" => websocket = true,
                Message::Text(t) => {
                    let frame: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                    protocol |= frame == json!({"type": "pong"});
                    slow_notice |= frame["type"] == "error" && frame["code"] == "slow_consumer";
                }
                _ => {}
            }
        }
    })
    .await;
    // The notice proves that this session's queue overflowed (the metric is shared with other
    // tests running at the same time); it comes once the queue is empty, after the pongs.
    assert!(slow_notice, "the silent client's queue filled");
    assert!(
        websocket,
        "the ping frame sent while the queue was full got its pong once the client read again"
    );
    assert!(
        protocol,
        "the protocol ping sent while the queue was full got its pong once the client read again"
    );
}

/// A client that stops reading for good loses its connection once data written to it has
/// waited unacknowledged for the write-stall timeout. Nothing else would end it: the server can
/// neither finish writing to a shut receive window nor get an error from it.
#[actix_web::test]
async fn a_client_that_never_reads_again_is_disconnected() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    // A snapshot of about 30 kB: far more than the client's receive window.
    add_long_notes(&sql, id).await;
    let node = start_node(
        &app.db.url,
        common::REDIS_URL,
        &app.redis_prefix,
        &["--write-stall-timeout-ms", "1000"],
    )
    .await;
    let mut silent = connect_with_tiny_window(&app, &node).await;
    send(&mut silent, json!({"type": "subscribe", "customer_id": id})).await;
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;

    // The server has dropped the connection: what the client sends now is answered with a
    // reset, and reading ends in an error or the end of the stream instead of waiting.
    let _ = silent.send(Message::Ping(Vec::new().into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = silent.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the connection was still open after 14 s");
}

#[actix_web::test]
async fn relay_leadership_moves_when_the_leader_dies() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    start_node(&app.db.url, common::REDIS_URL, &app.redis_prefix, &[]).await;
    let sql = app.db.sql().await;
    let pending = || async {
        sql.query_one(
            "SELECT count(*) FROM change_events WHERE published_at IS NULL",
            &[],
        )
        .await
        .expect("pending")
        .get::<_, i64>(0)
    };
    let drained = || async {
        for _ in 0..100 {
            if pending().await == 0 {
                return true;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(drained().await, "a leader publishes");
    let leader: Option<String> = sql
        .query_one("SELECT leader FROM outbox_relay_state", &[])
        .await
        .expect("state")
        .get(0);
    assert!(leader.is_some());
    // Kill the leader's session: its advisory lock goes with it.
    let killed: i64 = sql
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(killed, 1, "exactly one relay leads");
    sql.execute(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, 'AFTER-FAILOVER', 'paid', 1, 1)",
        &[&id],
    )
    .await
    .expect("order");
    assert!(drained().await, "another relay took over and published");
}

#[actix_web::test]
async fn collaboration_writes_reach_other_dashboards_masked_per_role() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    sql.execute("INSERT INTO marketing_consents (customer_id, channel, opted_in) VALUES ($1, 'email', true)", &[&id]).await.expect("consent");
    sql.execute("INSERT INTO loyalty_accounts (customer_id, balance, lifetime_points, referral_code) VALUES ($1, 100, 100, 'LIVE')", &[&id])
        .await
        .expect("account");
    let segment: i64 = sql
        .query_one("INSERT INTO customer_segments (name, kind) VALUES ('Hand picked', 'manual') RETURNING id", &[])
        .await
        .expect("segment")
        .get(0);
    let tag = app
        .post_json(
            "/api/admin/tags",
            Role::Admin,
            &json!({"name": "Watched", "color": "#111111"}),
        )
        .await
        .json();

    // A (admin) writes while watching; B (support) and a marketing admin watch.
    let mut watchers = Vec::new();
    for role in [Role::Support, Role::Marketing, Role::Admin] {
        let mut ws = connect(&app, role).await;
        send(&mut ws, json!({"type": "subscribe", "customer_id": id})).await;
        let s = next_of(&mut ws, "snapshot").await;
        watchers.push((
            role,
            ws,
            s["view"].clone(),
            s["version"].as_u64().unwrap_or(0),
        ));
    }
    let base = format!("/api/admin/customers/{id}");
    let writes = [
        (format!("{base}/notes"), json!({"body": "A writes a note"})),
        (format!("{base}/tags"), json!({"tag_id": tag["id"]})),
        (format!("{base}/segments"), json!({"segment_id": segment})),
        (
            format!("{base}/actions/email"),
            json!({"subject": "Thanks", "body": "Thank you"}),
        ),
        (
            format!("{base}/actions/ticket"),
            json!({"subject": "Follow up"}),
        ),
        (
            format!("{base}/actions/loyalty-adjustment"),
            json!({"points": 40, "reason": "Sorry"}),
        ),
    ];
    for (path, body) in &writes {
        let r = app.post_json(path, Role::Admin, body).await;
        assert!(r.status.is_success(), "{path}: {}", r.text());
    }
    let everything = |v: &Value| {
        v["notes"]["items"][0]["body"] == "A writes a note"
            && v["tags"][0]["name"] == "Watched"
            && v["segments"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["name"] == "Hand picked"))
            && v["marketing"]["recent_emails"][0]["subject"] == "Thanks"
            && v["support"]["tickets"][0]["subject"] == "Follow up"
            && v["loyalty"]["account"]["balance"] == 140
    };
    for (role, ws, view, version) in &mut watchers {
        converge(&app, ws, *role, id, view, version, everything).await;
    }
    assert_eq!(
        watchers[1].2["profile"]["email"], "l***@example.com",
        "marketing's dashboard stays masked"
    );
    assert_eq!(watchers[0].2["profile"]["email"], "live@example.com");
}

#[actix_web::test]
async fn an_event_committed_long_after_its_sequence_number_is_still_published() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
    let mut late = app.db.sql().await;
    let pending = |subject: &'static str| {
        let sql = &sql;
        async move {
            sql.query_one(
                "SELECT count(*) FROM change_events e JOIN support_tickets t ON t.id::text = e.entity_id
                 WHERE e.kind = 'ticket' AND e.published_at IS NULL AND t.subject LIKE $1",
                &[&subject],
            )
            .await
            .expect("pending")
            .get::<_, i64>(0)
        }
    };
    // The late transaction draws its sequence number first…
    let tx = late.transaction().await.expect("begin");
    tx.execute(
        "INSERT INTO support_tickets (customer_id, subject) VALUES ($1, 'late one')",
        &[&id],
    )
    .await
    .expect("late insert");
    // …then far more events than the relay's window commit and go out…
    sql.execute(
        "INSERT INTO support_tickets (customer_id, subject)
         SELECT $1, 'crowd ' || g FROM generate_series(1, 2500) g",
        &[&id],
    )
    .await
    .expect("crowd");
    let published = |subject: &'static str| async move {
        for _ in 0..150 {
            if pending(subject).await == 0 {
                return true;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(published("crowd %").await, "the crowd is published");
    // …and only then the late one commits: it must still be published.
    tx.commit().await.expect("commit");
    assert!(
        published("late one").await,
        "the late event is published (by the relay's periodic full scan)"
    );
}

/// A customer a hub here already watches is joined from the hub's view, as DESIGN asks of a
/// new session, so it works while PostgreSQL is down; a customer nobody watches is `unavailable`.
#[actix_web::test]
async fn a_watched_customer_is_joined_while_postgres_is_down() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let other = bare_customer(
        &app.db.sql().await,
        "Not Watched",
        "other@example.com",
        None,
    )
    .await;
    derived_state_published(&app.db.sql().await, id).await;
    let mut first = connect(&app, Role::Admin).await;
    let (view, _) = subscribe(&mut first, id).await;

    let admin = customer360::db::url::connect_raw(common::PG_URL)
        .await
        .expect("connect");
    let cut = |allow: bool| {
        format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS {allow}; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
            app.db.name
        )
    };
    admin.batch_execute(&cut(false)).await.expect("cut");
    let mut second = connect(&app, Role::Admin).await;
    let (joined, _) = subscribe(&mut second, id).await;
    assert_eq!(joined["profile"], view["profile"]);
    send(
        &mut second,
        json!({"type": "subscribe", "customer_id": other}),
    )
    .await;
    let refused = next_of(&mut second, "error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["customer_id"].as_i64()),
        (Some("unavailable"), Some(other)),
        "{refused}"
    );
    admin.batch_execute(&cut(true)).await.expect("restore");
}
