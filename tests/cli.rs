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

/// The URL of a database that does not exist yet, and what drops it once a test made it.
fn missing_database() -> (String, TestDb) {
    let name = format!("c360_test_cli_{}", uuid::Uuid::new_v4().simple());
    let url = DatabaseUrl::parse(PG_URL)
        .expect("url")
        .with_database(&name);
    (url.clone(), TestDb { name, url })
}

#[test]
fn migrate_creates_a_missing_database_and_is_idempotent() {
    let (url, _cleanup) = missing_database();
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
    let (written, _, unchanged, failed) = simulate_report(&stdout);
    assert!(
        (60..=80).contains(&(written + unchanged + failed)),
        "about 80 writes in 2 s at 40/s: {stdout}"
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

/// The numbers in a `simulate` report line: (written, seconds, changed nothing, failed).
fn simulate_report(stdout: &str) -> (u64, f64, u64, u64) {
    let number = |after: &str, end: &str| -> String {
        stdout
            .split_once(after)
            .and_then(|(_, rest)| rest.split_once(end))
            .map(|(n, _)| n.trim().to_owned())
            .unwrap_or_else(|| panic!("no number after {after:?}: {stdout}"))
    };
    let parse = |s: String| s.parse::<u64>().unwrap_or_else(|_| panic!("{s}: {stdout}"));
    let secs = number(" changes in ", " s:");
    (
        parse(number("wrote ", " changes")),
        secs.parse().unwrap_or_else(|_| panic!("{secs}: {stdout}")),
        parse(number("tickets (", " changed nothing")),
        parse(number("changed nothing, ", " failed")),
    )
}

/// Writes that change nothing (ids missing from the customers' range) are counted apart, a
/// rate too low for the duration writes once and stops on time, and SIGINT ends a run with
/// its report.
#[actix_web::test]
async fn simulate_reports_only_what_landed_and_stops_when_told() {
    let db = TestDb::create().await;
    let sql = db.sql().await;
    // Two customers with nearly every id between them missing.
    sql.batch_execute(
        "INSERT INTO customers (id, name, email) VALUES (1, 'Near', 'near@example.com'),
                                                        (1000000, 'Far', 'far@example.com')",
    )
    .await
    .expect("customers");
    let events = async || -> i64 {
        sql.query_one("SELECT count(*) FROM change_events", &[])
            .await
            .expect("events")
            .get(0)
    };
    let simulate = |rate: &str, duration: &str| {
        let mut cmd = bin();
        cmd.args([
            "--database-url",
            &db.url,
            "simulate",
            "--rate",
            rate,
            "--duration",
            duration,
        ]);
        cmd
    };
    let before = events().await;
    let out = simulate("40", "1").output().expect("run simulate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (written, _, unchanged, failed) = simulate_report(&stdout);
    // No write is scheduled past the second; one that falls behind on a busy machine is not
    // made up.
    assert!(
        (30..=40).contains(&(written + unchanged + failed)),
        "{stdout}"
    );
    assert!(unchanged > 30, "most ids are missing: {stdout}");
    assert!(
        events().await - before >= written as i64,
        "each change reported emitted its event: {stdout}"
    );

    let out = simulate("0.2", "1").output().expect("run simulate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (written, secs, unchanged, failed) = simulate_report(&stdout);
    assert_eq!(written + unchanged + failed, 1, "{stdout}");
    assert!(
        secs < 1.0,
        "no write is scheduled past the duration: {stdout}"
    );

    // A run that ends early on SIGTERM (SIGINT alike) still reports; the far customer goes, so
    // every write lands.
    sql.batch_execute("DELETE FROM customers WHERE id = 1000000")
        .await
        .expect("delete");
    let mut child = KillOnDrop(
        simulate("20", "600")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn simulate"),
    );
    // Once it writes, it listens for the signal (it waits for it between writes).
    let (started, deadline) = (events().await, Instant::now() + Duration::from_secs(30));
    while events().await == started {
        assert!(Instant::now() < deadline, "simulate wrote nothing");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let status = terminate(&mut child.0).await;
    let mut stdout = String::new();
    std::io::Read::read_to_string(
        &mut child.0.stdout.take().expect("piped stdout"),
        &mut stdout,
    )
    .expect("read stdout");
    assert!(status.success(), "{status}: {stdout}");
    let (written, secs, _, _) = simulate_report(&stdout);
    assert!(written > 0, "{stdout}");
    assert!(secs < 600.0, "{stdout}");
}

/// A child process that a failing test does not leave running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `simulate` and `segments recompute` create the database they are pointed at, as `--help`
/// says of every command.
#[test]
fn simulate_and_segments_create_a_missing_database() {
    for command in [
        &["simulate", "--duration", "1"][..],
        &["segments", "recompute"],
    ] {
        let (url, _cleanup) = missing_database();
        let out = bin()
            .args(["--database-url", &url])
            .args(command)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("does not exist"), "{command:?}: {stderr}");
        if command[0] == "simulate" {
            assert!(stderr.contains("no customers to simulate"), "{stderr}");
        } else {
            assert!(out.status.success(), "{stderr}");
        }
    }
}

/// Settings the server cannot use are refused at the start, naming the flag, rather than
/// panicking, aborting, or passing for an outage.
#[test]
fn out_of_range_settings_are_refused_naming_the_flag() {
    for (args, flag) in [
        (&["serve", "--workers", "513"][..], "--workers"),
        (&["serve", "--db-pool-size", "0"], "--db-pool-size"),
        (&["serve", "--db-pool-size", "100000000"], "--db-pool-size"),
        (
            &["demo", "--ws-queue", "18446744073709551615"],
            "--ws-queue",
        ),
        (
            &["serve", "--request-timeout-ms", "0"],
            "--request-timeout-ms",
        ),
        (
            &["serve", "--db-statement-timeout-ms", "99999999999"],
            "--db-statement-timeout-ms",
        ),
        (&["seed", "--anchor", "9999-12-31"], "--anchor"),
        (&["seed", "--anchor", "0001-01-01"], "--anchor"),
        (
            &["simulate", "--duration", "18446744073709551615"],
            "--duration",
        ),
        (&["demo", "--customers", "0"], "--customers"),
    ] {
        let out = bin().args(args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A Redis URL that does not parse, and a listen address in use, are named.
#[actix_web::test]
async fn bad_addresses_are_named() {
    let db = TestDb::create().await;
    let out = bin()
        .args([
            "--database-url",
            &db.url,
            "--redis-url",
            "notaurl",
            "serve",
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--redis-url"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = taken.local_addr().expect("address").to_string();
    let out = bin()
        .args([
            "--database-url",
            &db.url,
            "--redis-url",
            common::REDIS_URL,
            "serve",
            "--bind",
            &address,
        ])
        .output()
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address} (--bind)")),
        "{stderr}"
    );
}
