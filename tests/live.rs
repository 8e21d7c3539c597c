//! Live push end to end: real WebSocket clients (tokio-tungstenite) against the real server,
//! Postgres and Redis. Writes made with plain SQL reach every watching dashboard as deltas that,
//! applied to the snapshot, give exactly what GET …/360 returns.

mod common;

use std::time::Duration;

use common::{TestApp, spawn_app};
use customer360::domain::roles::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, role: Role) -> Ws {
    let url = format!(
        "{}/ws?token={}",
        app.address.replace("http://", "ws://"),
        app.token(role)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The next JSON frame, skipping control frames.
async fn next(ws: &mut Ws) -> Value {
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
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

async fn customer(app: &TestApp) -> i64 {
    let sql = app.db.sql().await;
    let id: i64 = sql
        .query_one(
            "INSERT INTO customers (name, email, phone) VALUES ('Live One', 'live@example.com', '+1 555 010 9999') RETURNING id",
            &[],
        )
        .await
        .expect("customer")
        .get(0);
    sql.execute(
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents, placed_at)
         VALUES ($1, 'L-0', 'delivered', 1000, 1000, now() - interval '40 days')",
        &[&id],
    )
    .await
    .expect("order");
    id
}

/// Applies deltas until the held view equals GET …/360 for the role (or 10 s pass).
async fn converge(
    app: &TestApp,
    ws: &mut Ws,
    role: Role,
    id: i64,
    view: &mut Value,
    version: &mut u64,
) {
    for _ in 0..50 {
        let expected = app
            .get(&format!("/api/admin/customers/{id}/360"), role)
            .await
            .json();
        if *view == expected {
            return;
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
                assert!(frame["causes"].as_array().is_some_and(|c| !c.is_empty()));
            }
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
    assert_eq!(*view, expected, "the dashboard never converged");
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
        converge(&app, ws, *role, id, view, version).await;
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
}

#[actix_web::test]
async fn reconnecting_with_since_replays_or_resnapshots() {
    let app = spawn_app().await;
    let id = customer(&app).await;
    let sql = app.db.sql().await;
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

    let mut back = connect(&app, Role::Admin).await;
    send(&mut back, json!({"type": "subscribe", "customer_id": id, "since": {"epoch": epoch, "version": since_version}})).await;
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
    let url = format!("{}/ws", app.address.replace("http://", "ws://"));
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
