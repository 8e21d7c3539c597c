//! Notes, tags, segments and quick actions through HTTP against the real database: permissions,
//! validation, attribution, uniqueness, audit rows, idempotency and concurrent adjustments.

mod common;

use common::{TestApp, spawn_app};
use customer360::domain::roles::Role;
use proptest::prelude::*;
use serde_json::{Value, json};

async fn customer(app: &TestApp, email: &str, consent: bool, balance: i64) -> i64 {
    let sql = app.db.sql().await;
    let id: i64 = sql
        .query_one(
            "INSERT INTO customers (name, email) VALUES ('Cleo', $1) RETURNING id",
            &[&email],
        )
        .await
        .expect("customer")
        .get(0);
    sql.execute(
        "INSERT INTO marketing_consents (customer_id, channel, opted_in) VALUES ($1, 'email', $2)",
        &[&id, &consent],
    )
    .await
    .expect("consent");
    sql.execute(
        "INSERT INTO loyalty_accounts (customer_id, balance, lifetime_points, referral_code) VALUES ($1, $2, $2, 'R' || ($1::bigint)::text)",
        &[&id, &balance],
    )
    .await
    .expect("account");
    id
}

#[actix_web::test]
async fn notes_are_attributed_to_the_caller_and_private_ones_stay_private() {
    let app = spawn_app().await;
    let id = customer(&app, "notes@example.com", true, 0).await;
    let path = format!("/api/admin/customers/{id}/notes");
    let r = app
        .post_json(&path, Role::Support, &json!({"body": "Called about a refund", "author_id": "someone-else", "author_name": "Mallory"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let note = r.json();
    assert_eq!(
        (note["author_id"].as_str(), note["author_name"].as_str()),
        (Some("support-1"), Some("support Tester"))
    );
    app.post_json(
        &path,
        Role::Admin,
        &json!({"body": "Admin only", "visibility": "private"}),
    )
    .await;

    let admin_view = app.get(&path, Role::Admin).await.json();
    assert_eq!(admin_view["items"].as_array().map(Vec::len), Some(2));
    let support_view = app.get(&path, Role::Support).await.json();
    assert_eq!(support_view["items"].as_array().map(Vec::len), Some(1));

    app.post_json(&path, Role::Analyst, &json!({"body": "x"}))
        .await
        .problem(403, "forbidden");
    let r = app
        .post_json(&path, Role::Admin, &json!({"body": ""}))
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "body");
    let r = app
        .post_json(&path, Role::Admin, &json!({"body": "x".repeat(10_001)}))
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "body");
    // PostgreSQL cannot store a NUL: a 422 naming the field, not a 500.
    let r = app
        .post_json(&path, Role::Admin, &json!({"body": "a\u{0}b"}))
        .await;
    let problem = r.problem(422, "validation_failed");
    assert_eq!(problem["field"], "body");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("NUL")),
        "{problem}"
    );
    let r = app
        .post_json(
            &path,
            Role::Admin,
            &json!({"body": "x", "visibility": "secret"}),
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "visibility");
    app.post_json(
        "/api/admin/customers/999999/notes",
        Role::Admin,
        &json!({"body": "x"}),
    )
    .await
    .problem(404, "not_found");

    let note_id = note["id"].as_i64().expect("id");
    let pinned = app
        .post_json(&format!("{path}/{note_id}/pin"), Role::Support, &json!({}))
        .await
        .json();
    assert_eq!(pinned["pinned"], true);
    let unpinned = app
        .post_json(
            &format!("{path}/{note_id}/unpin"),
            Role::Support,
            &json!({}),
        )
        .await
        .json();
    assert_eq!(unpinned["pinned"], false);

    for i in 0..5 {
        app.post_json(&path, Role::Marketing, &json!({"body": format!("n{i}")}))
            .await;
    }
    let page = app
        .get(&format!("{path}?limit=3"), Role::Admin)
        .await
        .json();
    let cursor = page["next_cursor"].as_str().expect("more pages").to_owned();
    let rest = app
        .get(&format!("{path}?limit=10&cursor={cursor}"), Role::Admin)
        .await
        .json();
    assert_eq!(
        page["items"].as_array().map(Vec::len).unwrap_or(0)
            + rest["items"].as_array().map(Vec::len).unwrap_or(0),
        7
    );
}

#[actix_web::test]
async fn tags_are_assigned_once_and_removed_once() {
    let app = spawn_app().await;
    let id = customer(&app, "tags@example.com", true, 0).await;
    let tag = app
        .post_json(
            "/api/admin/tags",
            Role::Marketing,
            &json!({"name": "VIP", "color": "#eab308"}),
        )
        .await
        .json();
    let tag_id = tag["id"].as_i64().expect("tag id");
    // A search's `tag` reads a number as an id, so no tag may be named by one.
    for name in ["3", " -12 ", "+7"] {
        let r = app
            .post_json(
                "/api/admin/tags",
                Role::Admin,
                &json!({"name": name, "color": "#eab308"}),
            )
            .await;
        assert_eq!(
            r.problem(422, "validation_failed")["field"],
            "name",
            "{name}"
        );
    }
    let path = format!("/api/admin/customers/{id}/tags");
    assert_eq!(
        app.post_json(&path, Role::Support, &json!({"tag_id": tag_id}))
            .await
            .status,
        201
    );
    app.post_json(&path, Role::Admin, &json!({"tag_id": tag_id}))
        .await
        .problem(409, "conflict");
    app.post_json(&path, Role::Analyst, &json!({"tag_id": tag_id}))
        .await
        .problem(403, "forbidden");
    let r = app
        .post_json(&path, Role::Admin, &json!({"tag_id": 424242}))
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "tag_id");
    let view = app
        .get(&format!("/api/admin/customers/{id}/360"), Role::Admin)
        .await
        .json();
    assert_eq!(view["tags"][0]["name"], "VIP");
    let delete = app
        .delete(&format!("{path}/{tag_id}"), Role::Marketing)
        .await;
    assert_eq!(delete.status, 204);
    app.delete(&format!("{path}/{tag_id}"), Role::Marketing)
        .await
        .problem(404, "not_found");
    let missing = app
        .delete(
            &format!("/api/admin/customers/999999/tags/{tag_id}"),
            Role::Marketing,
        )
        .await
        .problem(404, "not_found");
    assert_eq!(
        missing["detail"], "customer 999999 does not exist",
        "{missing}"
    );
}

#[actix_web::test]
async fn segments_are_listed_and_assigned_by_hand() {
    let app = spawn_app().await;
    let id = customer(&app, "segments@example.com", true, 0).await;
    let sql = app.db.sql().await;
    let manual: i64 = sql
        .query_one("INSERT INTO customer_segments (name, kind) VALUES ('Beta testers', 'manual') RETURNING id", &[])
        .await
        .expect("segment")
        .get(0);
    let path = format!("/api/admin/customers/{id}/segments");
    assert_eq!(
        app.post_json(&path, Role::Marketing, &json!({"segment_id": manual}))
            .await
            .status,
        201
    );
    app.post_json(&path, Role::Marketing, &json!({"segment_id": manual}))
        .await
        .problem(409, "conflict");
    app.post_json(&path, Role::Support, &json!({"segment_id": manual}))
        .await
        .problem(403, "forbidden");
    let r = app
        .post_json(&path, Role::Admin, &json!({"segment_id": 1}))
        .await;
    assert!(
        r.problem(422, "validation_failed")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("automatic")
    );
    let list = app.get("/api/admin/segments", Role::Analyst).await.json();
    let beta = list
        .as_array()
        .and_then(|l| l.iter().find(|s| s["id"] == manual))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (beta["members"].as_i64(), beta["kind"].as_str()),
        (Some(1), Some("manual"))
    );
    assert!(list.as_array().is_some_and(|l| {
        l.iter()
            .any(|s| s["name"] == "Champions" && s["rule"].is_object())
    }));
    customer360::derived::segment_pass::run(&sql, chrono::Utc::now())
        .await
        .expect("pass");
    let still: i64 = sql
        .query_one("SELECT count(*) FROM customer_segment_assignments WHERE customer_id = $1 AND segment_id = $2", &[&id, &manual])
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        still, 1,
        "the automatic pass never removes a manual assignment"
    );
    assert_eq!(
        app.delete(&format!("{path}/{manual}"), Role::Admin)
            .await
            .status,
        204
    );
    app.delete(&format!("{path}/{manual}"), Role::Admin)
        .await
        .problem(404, "not_found");
}

#[actix_web::test]
async fn quick_actions_check_consent_audit_and_show_in_the_view() {
    let app = spawn_app().await;
    let opted_out = customer(&app, "out@example.com", false, 0).await;
    let r = app
        .post_json(
            &format!("/api/admin/customers/{opted_out}/actions/email"),
            Role::Marketing,
            &json!({"subject": "Hi", "body": "Hello"}),
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "consent");

    let id = customer(&app, "in@example.com", true, 100).await;
    let r = app
        .post_json(
            &format!("/api/admin/customers/{id}/actions/email"),
            Role::Marketing,
            &json!({"subject": "Hi", "body": "Hello"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json()["to"],
        "i***@example.com",
        "marketing sees the address masked"
    );
    let r = app
        .post_json(
            &format!("/api/admin/customers/{id}/actions/ticket"),
            Role::Support,
            &json!({"subject": "Broken zip", "priority": "high"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.post_json(
        &format!("/api/admin/customers/{id}/actions/ticket"),
        Role::Marketing,
        &json!({"subject": "x"}),
    )
    .await
    .problem(403, "forbidden");
    let r = app
        .post_json(
            &format!("/api/admin/customers/{id}/actions/ticket"),
            Role::Support,
            &json!({"subject": "x", "priority": "whenever"}),
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "priority");

    let adjust = format!("/api/admin/customers/{id}/actions/loyalty-adjustment");
    let r = app
        .post_json(
            &adjust,
            Role::Support,
            &json!({"points": 950, "reason": "Goodwill"}),
        )
        .await
        .json();
    assert_eq!(
        (r["balance"].as_i64(), r["tier"].as_str()),
        (Some(1050), Some("silver"))
    );
    let r = app
        .post_json(
            &adjust,
            Role::Admin,
            &json!({"points": -2000, "reason": "Too much"}),
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "points");
    let r = app
        .post_json(&adjust, Role::Admin, &json!({"points": 5}))
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "reason");
    let r = app
        .post_json(
            &adjust,
            Role::Admin,
            &json!({"points": 5, "reason": "\u{0}"}),
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "reason");
    app.post_json(
        &adjust,
        Role::Marketing,
        &json!({"points": 5, "reason": "x"}),
    )
    .await
    .problem(403, "forbidden");

    let view = app
        .get(&format!("/api/admin/customers/{id}/360"), Role::Admin)
        .await
        .json();
    assert_eq!(view["marketing"]["recent_emails"][0]["subject"], "Hi");
    assert_eq!(view["support"]["tickets"][0]["subject"], "Broken zip");
    assert_eq!(view["loyalty"]["account"]["balance"], 1050);
    let kinds: Vec<&str> = view["timeline"]["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default();
    for kind in ["email", "ticket", "loyalty"] {
        assert!(kinds.contains(&kind), "{kind} in the timeline: {kinds:?}");
    }
    let audits: i64 = app
        .db
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM audit_log WHERE customer_id = $1 AND action LIKE 'action.%'",
            &[&id],
        )
        .await
        .expect("audit")
        .get(0);
    assert_eq!(audits, 3, "one audit row per successful action");
}

#[actix_web::test]
async fn an_idempotency_key_applies_once() {
    let app = spawn_app().await;
    let id = customer(&app, "idem@example.com", true, 0).await;
    let path = format!("/api/admin/customers/{id}/actions/loyalty-adjustment");
    let body = json!({"points": 25, "reason": "Retry me"});
    let send = |key: &'static str, body: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            let req = app
                .client_post(&path, Role::Support)
                .insert_header(("Idempotency-Key", key));
            app.send_json(req, &body).await
        }
    };
    let (a, b) = futures_util::join!(send("k-1", body.clone()), send("k-1", body.clone()));
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (201, 201));
    assert_eq!(a.json(), b.json(), "the retry returns the first response");
    let again = send("k-1", body.clone()).await;
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    // Unknown fields are ignored, so they do not make a retry another request.
    let padded = send(
        "k-1",
        json!({"reason": "Retry me", "points": 25, "client_version": "3.1"}),
    )
    .await;
    assert_eq!(
        padded.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    let other = send("k-1", json!({"points": 26, "reason": "Retry me"})).await;
    assert_eq!(
        other.problem(422, "validation_failed")["field"],
        "Idempotency-Key"
    );
    let balance: i64 = app
        .db
        .sql()
        .await
        .query_one(
            "SELECT balance FROM loyalty_accounts WHERE customer_id = $1",
            &[&id],
        )
        .await
        .expect("balance")
        .get(0);
    assert_eq!(balance, 25, "applied once");
}

#[actix_web::test]
async fn concurrent_adjustments_all_apply_exactly() {
    let app = spawn_app().await;
    let id = customer(&app, "busy@example.com", true, 1000).await;
    let path = format!("/api/admin/customers/{id}/actions/loyalty-adjustment");
    let requests = (0..20).map(|i| {
        let (app, path) = (&app, path.clone());
        async move {
            let points = if i % 2 == 0 { 30 } else { -10 };
            app.post_json(
                &path,
                if i % 3 == 0 {
                    Role::Admin
                } else {
                    Role::Support
                },
                &json!({"points": points, "reason": format!("r{i}")}),
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| s.as_u16() == 201), "{statuses:?}");
    let sql = app.db.sql().await;
    let row = sql
        .query_one(
            "SELECT a.balance, (SELECT sum(points) FROM loyalty_transactions WHERE customer_id = $1)::bigint FROM loyalty_accounts a WHERE customer_id = $1",
            &[&id],
        )
        .await
        .expect("balance");
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (1000 + 10 * 30 - 10 * 10, 200)
    );
}

/// Tag uniqueness under any sequence of assigns and removes from several admins, and a loyalty
/// balance that always equals the ledger and never drops below zero.
#[test]
fn tags_stay_unique_and_balances_match_the_ledger() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let (tag_a, tag_b) = rt.block_on(async {
        let a = app
            .post_json(
                "/api/admin/tags",
                Role::Admin,
                &json!({"name": "A", "color": "#000000"}),
            )
            .await
            .json()["id"]
            .as_i64()
            .unwrap_or(0);
        let b = app
            .post_json(
                "/api/admin/tags",
                Role::Admin,
                &json!({"name": "B", "color": "#ffffff"}),
            )
            .await
            .json()["id"]
            .as_i64()
            .unwrap_or(0);
        (a, b)
    });
    let round = std::cell::Cell::new(0);
    let config = ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec((any::<bool>(), any::<bool>(), 0..3usize, -400i32..400), 1..25))| {
        round.set(round.get() + 1);
        rt.block_on(async {
            let id = customer(&app, &format!("p{}@example.com", round.get()), true, 50).await;
            let roles = [Role::Admin, Role::Support, Role::Marketing];
            let mut expected_balance = 50i64;
            for (assign, first_tag, who, points) in &ops {
                let tag = if *first_tag { tag_a } else { tag_b };
                if *assign {
                    let s = app.post_json(&format!("/api/admin/customers/{id}/tags"), roles[*who], &json!({"tag_id": tag})).await.status.as_u16();
                    assert!(s == 201 || s == 409, "{s}");
                } else {
                    let s = app.delete(&format!("/api/admin/customers/{id}/tags/{tag}"), roles[*who]).await.status.as_u16();
                    assert!(s == 204 || s == 404, "{s}");
                }
                if *points != 0 {
                    let r = app.post_json(&format!("/api/admin/customers/{id}/actions/loyalty-adjustment"), Role::Support, &json!({"points": points, "reason": "prop"})).await;
                    if expected_balance + i64::from(*points) >= 0 {
                        assert_eq!(r.status.as_u16(), 201);
                        expected_balance += i64::from(*points);
                    } else {
                        assert_eq!(r.status.as_u16(), 422);
                    }
                }
            }
            let sql = app.db.sql().await;
            let dupes: i64 = sql.query_one("SELECT count(*) FROM (SELECT tag_id FROM customer_tag_assignments WHERE customer_id = $1 GROUP BY tag_id HAVING count(*) > 1) d", &[&id]).await.expect("dupes").get(0);
            assert_eq!(dupes, 0);
            let row = sql.query_one("SELECT a.balance, 50 + coalesce((SELECT sum(points) FROM loyalty_transactions WHERE customer_id = $1), 0)::bigint FROM loyalty_accounts a WHERE customer_id = $1", &[&id]).await.expect("ledger");
            let (balance, ledger): (i64, i64) = (row.get(0), row.get(1));
            assert_eq!((balance, ledger), (expected_balance, expected_balance));
            assert!(balance >= 0);
        });
    });
}

/// Whatever the body claims, the stored author is the caller.
#[test]
fn notes_are_always_attributed_to_the_caller() {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(spawn_app());
    let id = rt.block_on(customer(&app, "attribution@example.com", true, 0));
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(role in proptest::sample::select(vec![Role::Admin, Role::Support, Role::Marketing]),
                         claimed_id in "\\PC{0,20}", claimed_name in "\\PC{0,20}", body in "[a-zA-Z0-9 ]{1,40}")| {
        rt.block_on(async {
            let r = app
                .post_json(&format!("/api/admin/customers/{id}/notes"), role,
                    &json!({"body": body, "author_id": claimed_id, "author_name": claimed_name, "created_by": claimed_id}))
                .await;
            if body.trim().is_empty() {
                r.problem(422, "validation_failed");
                return;
            }
            let note = r.json();
            let stored: (String, String) = app.db.sql().await
                .query_one("SELECT author_id, author_name FROM customer_notes WHERE id = $1", &[&note["id"].as_i64().unwrap_or(0)])
                .await
                .map(|row| (row.get(0), row.get(1)))
                .expect("note");
            assert_eq!(stored, (format!("{}-1", role.as_str()), format!("{} Tester", role.as_str())));
        });
    });
}
