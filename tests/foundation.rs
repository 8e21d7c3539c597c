//! The HTTP skeleton against the real Postgres and Redis: auth, permissions, problem+json
//! errors, input limits, health, metrics and the OpenAPI document.

mod common;

use common::{OwnRedis, TestApp, spawn_app, spawn_app_with};
use customer360::domain::roles::Role;
use serde_json::json;

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.get_raw("/healthz", None).await;
    assert_eq!(r.status, 200);
    let r = app.get_raw("/readyz", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["checks"], json!({"postgres": "ok", "redis": "ok"}));
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

#[actix_web::test]
async fn admin_routes_need_a_valid_token() {
    let app = spawn_app().await;
    let missing = app.get_raw("/api/admin/tags", None).await;
    let body = missing.problem(401, "unauthorized");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Authorization")
    );
    assert_eq!(
        missing.header("www-authenticate").as_deref(),
        Some("Bearer")
    );

    app.get_raw("/api/admin/tags", Some("Basic dXNlcjpwYXNz"))
        .await
        .problem(401, "unauthorized");
    let malformed = app
        .get_raw("/api/admin/tags", Some("Bearer not-a-jwt"))
        .await;
    assert!(
        malformed.problem(401, "unauthorized")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("malformed")
    );

    let expired = app
        .keys
        .issue("a", "A", Role::Admin, chrono::Duration::minutes(-10))
        .expect("sign");
    let r = app
        .get_raw("/api/admin/tags", Some(&format!("Bearer {expired}")))
        .await;
    assert!(
        r.problem(401, "unauthorized")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")
    );

    let forged = customer360::http::auth::JwtKeys::new("another-secret")
        .issue("a", "A", Role::Admin, chrono::Duration::hours(1))
        .expect("sign");
    let r = app
        .get_raw("/api/admin/tags", Some(&format!("Bearer {forged}")))
        .await;
    assert!(
        r.problem(401, "unauthorized")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("signature")
    );

    for role in Role::ALL {
        assert_eq!(app.get("/api/admin/tags", role).await.status, 200, "{role}");
    }
}

#[actix_web::test]
async fn forbidden_names_the_missing_permission() {
    let app = spawn_app().await;
    for role in [Role::Analyst, Role::Support] {
        let r = app
            .post_json(
                "/api/admin/tags",
                role,
                &json!({"name": "VIP", "color": "#eab308"}),
            )
            .await;
        let body = r.problem(403, "forbidden");
        assert_eq!(body["permission"], "create_tags");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(role.as_str())
        );
    }
    let count = app
        .db
        .sql()
        .await
        .query_one("SELECT count(*) FROM customer_tags", &[])
        .await
        .expect("count");
    assert_eq!(count.get::<_, i64>(0), 0, "a refused request wrote nothing");
}

/// A role without the permission hears 403 whatever its body or query holds: they are judged
/// only for those allowed to send them.
#[actix_web::test]
async fn forbidden_comes_before_any_complaint_about_the_body_or_query() {
    let app = spawn_app().await;
    let customer = "/api/admin/customers/1";
    let routes = [
        ("/api/admin/tags".to_owned(), Role::Support, "create_tags"),
        (format!("{customer}/notes"), Role::Analyst, "write_notes"),
        (format!("{customer}/tags"), Role::Analyst, "assign_tags"),
        (
            format!("{customer}/segments"),
            Role::Support,
            "assign_segments",
        ),
        (
            format!("{customer}/actions/email"),
            Role::Analyst,
            "send_email",
        ),
        (
            format!("{customer}/actions/ticket"),
            Role::Marketing,
            "create_ticket",
        ),
        (
            format!("{customer}/actions/loyalty-adjustment"),
            Role::Marketing,
            "adjust_loyalty",
        ),
    ];
    let bodies: [(&str, &[u8]); 4] = [
        ("application/json", b"{\"unexpected\": true}"),
        ("application/json", b"{not json"),
        (
            "application/json",
            b"{\"body\": \"a\\u0000b\", \"tag_id\": \"seven\"}",
        ),
        ("text/plain", b"hello"),
    ];
    for (path, role, permission) in &routes {
        for (content_type, body) in bodies {
            let r = app.post_raw(path, *role, content_type, body.to_vec()).await;
            let problem = r.problem(403, "forbidden");
            assert_eq!(problem["permission"], *permission, "{path} {body:?}");
        }
    }
    for query in ["format=xls", "format=pdf&format=csv", ""] {
        let r = app
            .get(&format!("{customer}/export?{query}"), Role::Marketing)
            .await;
        let problem = r.problem(403, "forbidden");
        assert_eq!(problem["permission"], "export", "{query}");
    }
}

#[actix_web::test]
async fn tags_are_created_once_ignoring_case() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/api/admin/tags",
            Role::Marketing,
            &json!({"name": "  Big Spender ", "color": "#3b82f6"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let tag = r.json();
    assert_eq!(tag["name"], "Big Spender");
    assert_eq!(tag["created_by"], "marketing-1");

    let dup = app
        .post_json(
            "/api/admin/tags",
            Role::Admin,
            &json!({"name": "big spender", "color": "#000000"}),
        )
        .await;
    assert_eq!(dup.problem(409, "conflict")["field"], "name");

    let list = app.get("/api/admin/tags", Role::Analyst).await.json();
    assert_eq!(
        list,
        json!([{
            "id": tag["id"], "name": "Big Spender", "color": "#3b82f6", "created_by": "marketing-1",
            "created_at": tag["created_at"], "customer_count": 0
        }])
    );
}

#[actix_web::test]
async fn bad_input_is_named_never_a_500() {
    let app = spawn_app().await;
    let post = |body: &'static str| {
        app.post_raw(
            "/api/admin/tags",
            Role::Admin,
            "application/json",
            body.as_bytes().to_vec(),
        )
    };

    let r = post(r#"{"name": "x", "#).await;
    assert_eq!(r.problem(400, "bad_request")["field"], "body");

    let r = post(r##"{"color": "#ffffff"}"##).await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "name");

    let r = post(r#"{"name": "x", "color": 12}"#).await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "color");

    let r = post(r#"{"name": "x", "color": "blue"}"#).await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "color");

    let r = post(r##"{"name": "   ", "color": "#ffffff"}"##).await;
    assert_eq!(r.problem(422, "validation_failed")["field"], "name");

    let r = app
        .post_raw(
            "/api/admin/tags",
            Role::Admin,
            "text/plain",
            b"name=x".to_vec(),
        )
        .await;
    r.problem(415, "unsupported_media_type");

    let huge = format!(
        r##"{{"name": "x", "color": "#ffffff", "pad": "{}"}}"##,
        "a".repeat(1024 * 1024 + 10)
    );
    let r = app
        .post_raw(
            "/api/admin/tags",
            Role::Admin,
            "application/json",
            huge.into_bytes(),
        )
        .await;
    r.problem(413, "payload_too_large");

    let r = app.get("/api/admin/nothing-here", Role::Admin).await;
    r.problem(404, "not_found");
    // A path that exists, with a method it does not take: 405 saying which it takes.
    for (path, allow) in [
        ("/api/admin/tags", "GET, HEAD, POST"),
        ("/api/admin/customers/1/360", "GET, HEAD"),
        ("/api/admin/customers/1/export", "GET"),
    ] {
        let r = app.delete(path, Role::Admin).await;
        assert_eq!(r.header("allow").as_deref(), Some(allow), "{path}");
        let problem = r.problem(405, "method_not_allowed");
        assert_eq!(
            problem["allow"],
            json!(allow.split(", ").collect::<Vec<_>>())
        );
    }
}

/// HEAD goes wherever GET does but for `/ws` and export, and every 405's `Allow` says so: each
/// GET path of the OpenAPI document is tried against the route table.
#[actix_web::test]
async fn head_goes_wherever_get_does_but_for_the_websocket_and_export() {
    let app = spawn_app().await;
    let doc = app.get_raw("/api/openapi.json", None).await.json();
    let paths = doc["paths"].as_object().expect("paths");
    let get_only = ["/ws", "/api/admin/customers/{id}/export"];
    let mut tried = 0;
    for pattern in paths
        .iter()
        .filter(|(_, item)| item.get("get").is_some())
        .map(|(pattern, _)| pattern)
    {
        let path = pattern
            .split('/')
            .map(|part| if part.starts_with('{') { "1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let head = app.request_raw("HEAD", &path).await;
        // No route takes PATCH: the 405 lists what the path takes.
        let allow = app.request_raw("PATCH", &path).await.header("allow");
        let allow = allow.unwrap_or_default();
        let methods: Vec<&str> = allow.split(", ").collect();
        if get_only.contains(&pattern.as_str()) {
            assert_eq!(head.status.as_u16(), 405, "HEAD {pattern}");
            assert_eq!(head.header("allow").as_deref(), Some("GET"), "{pattern}");
            assert!(!methods.contains(&"HEAD"), "{pattern}: {allow}");
        } else {
            assert!(
                ![404, 405].contains(&head.status.as_u16()),
                "HEAD {pattern}: {}",
                head.status
            );
            assert!(methods.contains(&"HEAD"), "{pattern}: {allow}");
        }
        tried += 1;
    }
    assert!(tried >= 15, "only {tried} GET paths in the document");

    // The GET's status and headers, with a token too.
    for (path, role) in [("/healthz", None), ("/api/admin/tags", Some(Role::Admin))] {
        let (get, head) = (
            app.request_as("GET", path, role).await,
            app.request_as("HEAD", path, role).await,
        );
        assert_eq!(
            (head.status, get.status.as_u16()),
            (get.status, 200),
            "{path}"
        );
        for name in ["content-type", "content-length"] {
            assert_eq!(head.header(name), get.header(name), "{path} {name}");
        }
        assert!(get.header("content-length").is_some(), "{path}");
    }
}

#[actix_web::test]
async fn metrics_report_routes_and_the_pool() {
    let app = spawn_app().await;
    app.get("/api/admin/tags", Role::Admin).await;
    app.get_raw("/api/admin/tags", None).await;
    let metrics = app.get_raw("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/api/admin/tags""#)
            && l.contains(r#"status="401""#)),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "latency is a histogram"
    );
    assert!(
        text.lines().any(|l| l.starts_with("db_pool_max_size ")),
        "{text}"
    );
    // Methods a client invents are one label, not one series each.
    for invented in ["MFOOBAR", "MBAZQUX"] {
        app.request_raw(invented, "/healthz").await;
    }
    let text = app.get_raw("/metrics", None).await.text();
    assert!(
        !text.contains("MFOOBAR") && !text.contains("MBAZQUX"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains(r#"method="other""#)),
        "{text}"
    );
}

#[actix_web::test]
async fn openapi_documents_every_route() {
    let app = spawn_app().await;
    let doc = app.get_raw("/api/openapi.json", None).await.json();
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/openapi.json", "get"),
        ("/api/admin/tags", "get"),
        ("/api/admin/tags", "post"),
        ("/api/admin/customers/{id}/360", "get"),
        ("/api/admin/customers/{id}/orders", "get"),
        ("/api/admin/customers/{id}/loyalty", "get"),
        ("/api/admin/customers/{id}/marketing", "get"),
        ("/api/admin/customers/{id}/support", "get"),
        ("/api/admin/customers/{id}/timeline", "get"),
        ("/api/admin/customers/{id}/analytics", "get"),
        ("/api/admin/customers/{id}/notes", "get"),
        ("/api/admin/customers/{id}/notes", "post"),
        ("/api/admin/customers/{id}/tags", "post"),
        ("/api/admin/customers/{id}/tags/{tag_id}", "delete"),
        ("/api/admin/segments", "get"),
        ("/api/admin/customers/{id}/segments", "post"),
        ("/api/admin/customers/{id}/segments/{segment_id}", "delete"),
        ("/api/admin/customers/{id}/actions/email", "post"),
        ("/api/admin/customers/{id}/actions/ticket", "post"),
        (
            "/api/admin/customers/{id}/actions/loyalty-adjustment",
            "post",
        ),
        ("/ws", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // OpenAPI 3 requires a description on every response and unique operation ids.
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                operation_ids.insert(id),
                "operationId {id:?} repeats at {method} {path}"
            );
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
}

async fn readiness_until(app: &TestApp, status: u16) -> serde_json::Value {
    for _ in 0..100 {
        let r = app.get_raw("/readyz", None).await;
        if r.status.as_u16() == status {
            return r.json();
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {status}");
}

#[actix_web::test]
async fn readiness_follows_redis_down_and_up_without_restart() {
    let mut redis = OwnRedis::new();
    let app = spawn_app_with(&redis.url()).await;

    let down = app.get_raw("/readyz", None).await;
    let body = down.problem(503, "unavailable");
    assert_eq!(body["down"], json!(["redis"]));
    assert_eq!(body["checks"]["postgres"], "ok");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("redis")
    );

    // Reads go on from PostgreSQL, and for a moment after the cache failed it is not tried.
    let id: i64 = app
        .db
        .sql()
        .await
        .query_one(
            "INSERT INTO customers (name, email) VALUES ('No Cache', 'nocache@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("customer")
        .get(0);
    for _ in 0..2 {
        let r = app
            .get(&format!("/api/admin/customers/{id}/360"), Role::Admin)
            .await;
        assert_eq!(r.json()["profile"]["email"], "nocache@example.com");
    }
    let metrics = app.get_raw("/metrics", None).await.text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("view_cache_lookups_total{") && l.contains(r#"result="skipped""#)
        ),
        "{metrics}"
    );

    redis.start();
    readiness_until(&app, 200).await;

    redis.stop();
    let body = readiness_until(&app, 503).await;
    assert_eq!(body["down"], json!(["redis"]));

    redis.start();
    readiness_until(&app, 200).await;
}

#[actix_web::test]
async fn readiness_follows_postgres_down_and_up_without_restart() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/admin/tags", Role::Admin).await.status, 200);

    // Take the database away (every connection cut, the name gone), then give it back.
    let admin = customer360::db::url::connect_raw(common::PG_URL)
        .await
        .expect("connect");
    let away = format!("{}_away", app.db.name);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            app.db.name, app.db.name
        ))
        .await
        .expect("cut connections");
    admin
        .batch_execute(&format!("ALTER DATABASE {} RENAME TO {away}", app.db.name))
        .await
        .expect("rename away");

    let body = readiness_until(&app, 503).await;
    assert_eq!(body["down"], json!(["postgres"]));
    app.get("/api/admin/tags", Role::Admin)
        .await
        .problem(503, "unavailable");

    admin
        .batch_execute(&format!("ALTER DATABASE {away} RENAME TO {}", app.db.name))
        .await
        .expect("rename back");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            app.db.name
        ))
        .await
        .expect("allow");
    readiness_until(&app, 200).await;
    assert_eq!(app.get("/api/admin/tags", Role::Admin).await.status, 200);
}

/// A PostgreSQL that stops answering without refusing connections (here a lock another
/// transaction holds, with the statement timeout longer than the request's) gets the request a
/// 503 naming it at the request's deadline, not a request held open; once PostgreSQL answers
/// again, so does the node.
#[actix_web::test]
async fn a_request_postgres_does_not_answer_gets_503_at_its_deadline() {
    let app = spawn_app().await;
    let node = common::start_node(
        &app.db.url,
        common::REDIS_URL,
        &app.redis_prefix,
        &[
            "--request-timeout-ms",
            "1000",
            "--db-statement-timeout-ms",
            "60000",
        ],
    )
    .await;
    let sql = app.db.sql().await;
    let id: i64 = sql
        .query_one(
            "INSERT INTO customers (name, email) VALUES ('Held Up', 'held@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("customer")
        .get(0);
    let path = format!("/api/admin/customers/{id}/notes");
    sql.batch_execute("BEGIN; LOCK TABLE customer_notes IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    // The lock goes only after this answer: without a deadline the request would hang.
    let problem = app
        .get_at(&node, &path, Role::Admin)
        .await
        .problem(503, "unavailable");
    assert_eq!(problem["dependency"], "postgres", "{problem}");
    sql.batch_execute("COMMIT").await.expect("unlock");
    assert_eq!(app.get_at(&node, &path, Role::Admin).await.status, 200);
}
