//! Property "update propagation": for any generated sequence of changes across customers and
//! any set of sessions and roles, every session ends holding exactly the view GET …/360 returns
//! for its role after the last change, and no session ever receives data of a customer it did
//! not subscribe to.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{TestApp, spawn_app};
use customer360::domain::roles::Role;
use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Clone, Copy)]
enum Change {
    Order,
    Ticket,
    PublicNote,
    PrivateNote,
    Loyalty,
    Phone,
}

const WRITES: [(Change, &str); 6] = [
    (
        Change::Order,
        "INSERT INTO orders (customer_id, order_number, status, subtotal_cents, total_cents) VALUES ($1, 'P-' || $2, 'paid', 1000, 1000)",
    ),
    (
        Change::Ticket,
        "INSERT INTO support_tickets (customer_id, subject) VALUES ($1, 'Help ' || $2)",
    ),
    (
        Change::PublicNote,
        "INSERT INTO customer_notes (customer_id, author_id, author_name, body) VALUES ($1, 'support-1', 'S', 'public ' || $2)",
    ),
    (
        Change::PrivateNote,
        "INSERT INTO customer_notes (customer_id, author_id, author_name, body, visibility) VALUES ($1, 'admin-1', 'A', 'private ' || $2, 'private')",
    ),
    (
        Change::Loyalty,
        "INSERT INTO loyalty_transactions (customer_id, points, reason) VALUES ($1, 10, 'bonus ' || $2)",
    ),
    (
        Change::Phone,
        "UPDATE customers SET phone = '+1 555 01' || $2 || ' 77' WHERE id = $1",
    ),
];

fn change() -> impl Strategy<Value = Change> {
    proptest::sample::select(WRITES.iter().map(|(c, _)| *c).collect::<Vec<_>>())
}

struct Dashboard {
    role: Role,
    ws: Ws,
    subscribed: HashSet<i64>,
    views: HashMap<i64, (Value, u64)>,
}

impl Dashboard {
    async fn open(app: &TestApp, role: Role, customers: &[i64]) -> Dashboard {
        let url = format!(
            "{}/ws?token={}",
            app.address.replace("http://", "ws://"),
            app.token(role)
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let mut d = Dashboard {
            role,
            ws,
            subscribed: customers.iter().copied().collect(),
            views: HashMap::new(),
        };
        for id in customers {
            d.ws.send(Message::text(
                json!({"type": "subscribe", "customer_id": id}).to_string(),
            ))
            .await
            .expect("send");
        }
        d
    }

    /// Applies one frame; panics on data of a customer this session did not subscribe to.
    fn apply(&mut self, frame: Value) {
        let kind = frame["type"].as_str().unwrap_or("");
        if kind == "pong" {
            return;
        }
        let id = frame["customer_id"]
            .as_i64()
            .expect("every data frame names its customer");
        assert!(
            self.subscribed.contains(&id),
            "{:?} received {kind} for customer {id} it never subscribed to",
            self.role
        );
        match kind {
            "snapshot" => {
                self.views.insert(
                    id,
                    (
                        frame["view"].clone(),
                        frame["version"].as_u64().unwrap_or(0),
                    ),
                );
            }
            "delta" => {
                let (view, version) = self.views.get_mut(&id).expect("a delta follows a snapshot");
                assert_eq!(frame["base_version"], *version, "no gap");
                let patch: json_patch::Patch =
                    serde_json::from_value(frame["patch"].clone()).expect("patch");
                json_patch::patch(view, &patch).expect("patch applies");
                *version = frame["version"].as_u64().unwrap_or(0);
            }
            "presence" => {}
            other => panic!("unexpected frame {other}: {frame}"),
        }
    }

    /// Reads frames until every subscribed view equals GET …/360 for this role.
    async fn settle(&mut self, app: &TestApp) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut all_equal = self.views.len() == self.subscribed.len();
            if all_equal {
                for id in &self.subscribed {
                    let expected = app
                        .get(&format!("/api/admin/customers/{id}/360"), self.role)
                        .await
                        .json();
                    if self.views.get(id).map(|(v, _)| v) != Some(&expected) {
                        all_equal = false;
                        break;
                    }
                }
            }
            if all_equal {
                return;
            }
            assert!(Instant::now() < deadline, "{:?} never converged", self.role);
            if let Ok(Some(Ok(Message::Text(text)))) =
                tokio::time::timeout(Duration::from_millis(200), self.ws.next()).await
            {
                self.apply(serde_json::from_str(text.as_str()).expect("JSON"));
            }
        }
    }
}

#[test]
fn every_session_ends_with_the_http_view_of_its_role() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let sql = rt.block_on(app.db.sql());
    let round = std::cell::Cell::new(0u32);
    let config = ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(changes in proptest::collection::vec((0..3usize, change()), 1..12),
                         picks in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 3), 3))| {
        round.set(round.get() + 1);
        rt.block_on(async {
            let mut customers = Vec::new();
            for i in 0..3 {
                let id: i64 = sql
                    .query_one("INSERT INTO customers (name, email, phone) VALUES ('P', $1, '+1 555 0100 000') RETURNING id",
                        &[&format!("p{}-{i}@example.com", round.get())])
                    .await
                    .expect("customer")
                    .get(0);
                customers.push(id);
            }
            let mut dashboards = Vec::new();
            for (role, pick) in [Role::Admin, Role::Support, Role::Marketing].into_iter().zip(&picks) {
                let mine: Vec<i64> = customers.iter().zip(pick).filter(|(_, p)| **p).map(|(c, _)| *c).collect();
                let mine = if mine.is_empty() { vec![customers[0]] } else { mine };
                dashboards.push(Dashboard::open(&app, role, &mine).await);
            }
            for (i, (who, what)) in changes.iter().enumerate() {
                let sql_text = WRITES.iter().find(|(c, _)| std::mem::discriminant(c) == std::mem::discriminant(what)).map(|(_, s)| *s).unwrap_or("");
                sql.execute(sql_text, &[&customers[*who], &format!("{}{i}", round.get())]).await.expect("change");
            }
            for d in &mut dashboards {
                d.settle(&app).await;
            }
        });
    });
}
