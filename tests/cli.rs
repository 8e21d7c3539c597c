//! The `customer360` binary as an operator uses it: token, migrate on a missing database, serve
//! stopping cleanly on SIGTERM, and demo without Redis.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PG_URL, TestDb};
use customer360::db::url::DatabaseUrl;
use customer360::domain::roles::Role;
use customer360::http::auth::JwtKeys;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_customer360"));
    // The tests decide every setting; nothing leaks in from the developer's shell.
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "C360_JWT_SECRET",
        "C360_BIND",
        "C360_REDIS_PREFIX",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn help_shows_no_secret_from_the_environment() {
    let out = bin()
        .env("DATABASE_URL", "postgres://app:S3cretPw@db/x")
        .env("REDIS_URL", "redis://:R3disPw@cache:6379")
        .env("C360_JWT_SECRET", "Jwt5ecret")
        .args(["migrate", "--help"])
        .output()
        .expect("run help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("DATABASE_URL"), "{help}");
    for secret in ["S3cretPw", "R3disPw", "Jwt5ecret"] {
        assert!(!help.contains(secret), "{secret} shown: {help}");
    }
}

#[test]
fn token_prints_a_verifiable_jwt() {
    let out = bin()
        .args([
            "--jwt-secret",
            "cli-secret",
            "token",
            "--role",
            "analyst",
            "--name",
            "Al Analyst",
        ])
        .output()
        .expect("run token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let admin = JwtKeys::new("cli-secret")
        .verify(&token)
        .expect("valid token");
    assert_eq!(
        (admin.id.as_str(), admin.name.as_str(), admin.role),
        ("al.analyst", "Al Analyst", Role::Analyst)
    );

    let out = bin()
        .args(["token", "--role", "owner", "--name", "X"])
        .output()
        .expect("run token");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role 'owner'"));

    // No token the server would refuse: an empty name or one already expired.
    for (args, says) in [
        (
            ["--name", " ", "--ttl-hours", "1"],
            "--name must not be empty",
        ),
        (
            ["--name", "X", "--ttl-hours", "0"],
            "--ttl-hours must be at least 1",
        ),
    ] {
        let out = bin()
            .args(["token", "--role", "admin"])
            .args(args)
            .output()
            .expect("run token");
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn migrate_creates_a_missing_database_and_is_idempotent() {
    let name = format!("c360_test_cli_{}", uuid::Uuid::new_v4().simple());
    let url = DatabaseUrl::parse(PG_URL)
        .expect("url")
        .with_database(&name);
    let _cleanup = TestDb {
        name,
        url: url.clone(),
    };
    let out = bin()
        .args(["--database-url", &url, "migrate"])
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("applied ") && stdout.contains("migration"),
        "{stdout}"
    );
    let out = bin()
        .args(["--database-url", &url, "migrate"])
        .output()
        .expect("run migrate again");
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema is current"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// Waits until the server on `port` answers `/healthz` (30 s at most).
async fn wait_healthy(port: u16) {
    let client = awc::Client::default();
    let started = Instant::now();
    loop {
        if let Ok(resp) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && resp.status() == 200
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server never became healthy"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM and waits for the process to exit (20 s at most); its exit status.
async fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "the server ignored SIGTERM");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn serve_stops_cleanly_on_sigterm() {
    let db = TestDb::create().await;
    let port = free_port();
    let mut child = bin()
        .args([
            "--database-url",
            &db.url,
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    wait_healthy(port).await;
    let status = terminate(&mut child).await;
    assert!(status.success(), "exit status {status}");
}

/// `demo` with no Redis to reach says so loudly, and serves single-node on its in-process bus.
#[actix_web::test]
async fn demo_without_redis_says_so_and_serves_in_process() {
    let db = TestDb::create().await;
    let port = free_port();
    let mut child = bin()
        .args([
            "--database-url",
            &db.url,
            "--redis-url",
            // Nothing listens on port 1.
            "redis://127.0.0.1:1",
            "demo",
            "--customers",
            "20",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    wait_healthy(port).await;
    let ready = awc::Client::default()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json::<serde_json::Value>()
        .await
        .expect("readyz JSON");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(
        ready["checks"]["redis"]
            .as_str()
            .is_some_and(|s| s.contains("in-process")),
        "{ready}"
    );
    let status = terminate(&mut child).await;
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(status.success(), "exit status {status}: {stderr}");
    assert!(
        stderr.contains("Redis does not answer") && stderr.contains("IN-PROCESS"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn simulate_writes_platform_changes_at_the_rate_asked() {
    let db = TestDb::create().await;
    let common = customer360::config::CommonConfig {
        database_url: db.url.clone(),
        redis_url: common::REDIS_URL.into(),
        jwt_secret: common::JWT_SECRET.into(),
    };
    let seed = customer360::config::SeedConfig {
        customers: 30,
        seed: 1,
        reset: false,
        anchor: None,
        quiet: true,
    };
    customer360::seed::run(&common, &seed).await.expect("seed");
    let out = bin()
        .args([
            "--database-url",
            &db.url,
            "simulate",
            "--rate",
            "40",
            "--duration",
            "2",
        ])
        .output()
        .expect("run simulate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let written: u64 = stdout
        .strip_prefix("wrote ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        (60..=81).contains(&written),
        "about 80 changes in 2 s at 40/s: {stdout}"
    );
    let events: i64 = db
        .sql()
        .await
        .query_one("SELECT count(*) FROM change_events", &[])
        .await
        .expect("events")
        .get(0);
    assert!(
        events >= written as i64,
        "every platform write became a change event ({events} for {written})"
    );
}
