//! The test harness: every test gets its own database, cloned from a migrated template (made
//! once per migration set, under an advisory lock so parallel test processes agree), and its
//! own Redis key prefix; `spawn_app` starts the real server on a random port against them.

#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::hash::{DefaultHasher, Hash, Hasher};

use actix_web::http::StatusCode;
use clap::Parser;
use customer360::config::{AppConfig, Bus, Cli, Command};
use customer360::db::url::{DatabaseUrl, connect_raw, quote_ident};
use customer360::domain::roles::Role;
use customer360::http::auth::JwtKeys;
use customer360::startup::{Application, StopHandle};
use serde_json::Value;

/// The server every test database lives on.
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const JWT_SECRET: &str = "test-secret";

/// Key of the advisory lock that serialises template creation ("c360tpl").
const TEMPLATE_LOCK: i64 = 0x63_3336_3074_706c;

/// A database of its own for one test, dropped (with any connections) when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

fn migrations_fingerprint() -> u64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for f in files {
        f.hash(&mut hasher);
        std::fs::read(&f).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

impl TestDb {
    pub async fn create() -> TestDb {
        let server = DatabaseUrl::parse(PG_URL).expect("unwrap: PG_URL is a constant");
        let template = format!("c360_tpl_{:016x}", migrations_fingerprint());
        let admin = connect_raw(PG_URL)
            .await
            .expect("PostgreSQL must run on 127.0.0.1:5432 for the tests");
        admin
            .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
            .await
            .expect("advisory lock");
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
            .await
            .expect("pg_database")
            .is_some();
        if !exists {
            // Migrate under a temporary name and rename on success, so a failed run leaves no
            // half-migrated template behind.
            let building = format!("{template}_building");
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&building)
                ))
                .await
                .expect("drop");
            admin
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&building)))
                .await
                .expect("create template");
            customer360::db::migrations::run(&server.with_database(&building))
                .await
                .expect("migrate template");
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    quote_ident(&building),
                    quote_ident(&template)
                ))
                .await
                .expect("rename template");
        }
        let name = format!("c360_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(&name),
                quote_ident(&template)
            ))
            .await
            .expect("create test database");
        admin
            .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
            .await
            .expect("unlock");
        TestDb {
            url: server.with_database(&name),
            name,
        }
    }

    /// A plain connection for arranging and inspecting data behind the app's back.
    pub async fn sql(&self) -> tokio_postgres::Client {
        connect_raw(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we could borrow; a short-lived runtime of its own
        // on another thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = connect_raw(PG_URL).await {
                    let _ = admin
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(&name)
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub redis_prefix: String,
    pub keys: JwtKeys,
    client: awc::Client,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts a problem+json error with this status and code; returns the document.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        body
    }
}

/// Starts the app against its own database and Redis prefix.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(REDIS_URL).await
}

/// Starts the app with a chosen Redis (tests of Redis outages point it elsewhere).
pub async fn spawn_app_with(redis_url: &str) -> TestApp {
    let _already = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    let db = TestDb::create().await;
    let redis_prefix = format!("c360test:{}", uuid::Uuid::new_v4().simple());
    let address = start_node(&db.url, redis_url, &redis_prefix, &[]).await;
    TestApp::new(address, db, redis_prefix)
}

/// Starts one more server against the same database and Redis prefix (a second node), with
/// extra `serve` flags.
pub async fn start_node(
    database_url: &str,
    redis_url: &str,
    redis_prefix: &str,
    extra: &[&str],
) -> String {
    start_stoppable_node(database_url, redis_url, redis_prefix, extra)
        .await
        .0
}

/// A node as `start_node` starts it, with the handle that stops it as SIGTERM would.
pub async fn start_stoppable_node(
    database_url: &str,
    redis_url: &str,
    redis_prefix: &str,
    extra: &[&str],
) -> (String, StopHandle) {
    start_node_on(Bus::Redis, database_url, redis_url, redis_prefix, extra).await
}

/// Starts the app against its own database on the in-process bus and cache, as `demo` runs
/// without Redis; its Redis URL names a port nothing listens on, so any use of Redis fails.
pub async fn spawn_app_in_process() -> TestApp {
    let db = TestDb::create().await;
    let redis_prefix = format!("c360test:{}", uuid::Uuid::new_v4().simple());
    let address = start_node_on(
        Bus::InProcess,
        &db.url,
        "redis://127.0.0.1:1",
        &redis_prefix,
        &[],
    )
    .await
    .0;
    TestApp::new(address, db, redis_prefix)
}

async fn start_node_on(
    bus: Bus,
    database_url: &str,
    redis_url: &str,
    redis_prefix: &str,
    extra: &[&str],
) -> (String, StopHandle) {
    let mut args = vec![
        "customer360",
        "--database-url",
        database_url,
        "--redis-url",
        redis_url,
        "--jwt-secret",
        JWT_SECRET,
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--redis-prefix",
        redis_prefix,
        "--db-pool-size",
        "4",
        "--db-pool-wait-ms",
        "1000",
    ];
    args.extend_from_slice(extra);
    let cli = Cli::try_parse_from(args).expect("test arguments parse");
    let Command::Serve(serve) = cli.command else {
        unreachable!("the arguments name serve")
    };
    let app = Application::build(AppConfig {
        common: cli.common,
        serve,
        bus,
    })
    .await
    .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = app.stop_handle();
    actix_web::rt::spawn(app.run_until_stopped());
    (address, stop)
}

/// A Redis server of the test's own on a free port, so stopping it disturbs no other test.
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn new() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        OwnRedis { port, child: None }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestApp {
    fn new(address: String, db: TestDb, redis_prefix: String) -> TestApp {
        TestApp {
            address,
            db,
            redis_prefix,
            keys: JwtKeys::new(JWT_SECRET),
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
        }
    }

    pub fn token(&self, role: Role) -> String {
        let name = format!("{} Tester", role.as_str());
        self.keys
            .issue(
                &format!("{}-1", role.as_str()),
                &name,
                role,
                chrono::Duration::hours(1),
            )
            .expect("sign")
    }

    async fn send(&self, req: awc::ClientRequest, body: Option<Vec<u8>>) -> TestResponse {
        let result = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        };
        let mut resp = result.unwrap_or_else(|e| panic!("request failed: {e}"));
        let body = resp
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .expect("read body")
            .to_vec();
        TestResponse {
            status: resp.status(),
            headers: resp.headers().clone(),
            body,
        }
    }

    pub async fn get_raw(&self, path: &str, auth: Option<&str>) -> TestResponse {
        let mut req = self.client.get(format!("{}{path}", self.address));
        if let Some(a) = auth {
            req = req.insert_header(("Authorization", a));
        }
        self.send(req, None).await
    }
    /// A request with any method, standard or not, and no token.
    pub async fn request_raw(&self, method: &str, path: &str) -> TestResponse {
        self.request_as(method, path, None).await
    }

    /// A request with any method, with the token of `role` if one is given.
    pub async fn request_as(&self, method: &str, path: &str, role: Option<Role>) -> TestResponse {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("a method token");
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(role) = role {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.token(role))));
        }
        self.send(req, None).await
    }
    pub async fn get(&self, path: &str, role: Role) -> TestResponse {
        self.get_at(&self.address, path, role).await
    }

    /// A GET to another node (`base`) with this app's token for `role`.
    pub async fn get_at(&self, base: &str, path: &str, role: Role) -> TestResponse {
        let req = self
            .client
            .get(format!("{base}{path}"))
            .insert_header(("Authorization", format!("Bearer {}", self.token(role))));
        self.send(req, None).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        role: Role,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        let req = self
            .client
            .post(format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {}", self.token(role))))
            .insert_header(("Content-Type", content_type));
        self.send(req, Some(body)).await
    }

    pub async fn delete(&self, path: &str, role: Role) -> TestResponse {
        let req = self
            .client
            .delete(format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {}", self.token(role))));
        self.send(req, None).await
    }

    /// A POST request to finish with `send_json` (for extra headers).
    pub fn client_post(&self, path: &str, role: Role) -> awc::ClientRequest {
        self.client
            .post(format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {}", self.token(role))))
            .insert_header(("Content-Type", "application/json"))
    }

    pub async fn send_json(&self, req: awc::ClientRequest, body: &Value) -> TestResponse {
        self.send(req, Some(body.to_string().into_bytes())).await
    }

    /// POST JSON to another node of the same deployment.
    pub async fn post_json_at(
        &self,
        base: &str,
        path: &str,
        role: Role,
        body: &Value,
    ) -> TestResponse {
        let req = self
            .client
            .post(format!("{base}{path}"))
            .insert_header(("Authorization", format!("Bearer {}", self.token(role))))
            .insert_header(("Content-Type", "application/json"));
        self.send(req, Some(body.to_string().into_bytes())).await
    }

    pub async fn post_json(&self, path: &str, role: Role, body: &Value) -> TestResponse {
        self.post_raw(
            path,
            role,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }
}

impl Drop for TestApp {
    /// The app's Redis keys go with it (cache generations would otherwise linger for a day).
    fn drop(&mut self) {
        let pattern = format!("{}:*", self.redis_prefix);
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(REDIS_URL) else {
                return;
            };
            let Ok(mut conn) = client.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        })
        .join();
    }
}
