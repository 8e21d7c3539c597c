//! The one configuration of the process: every command-line flag, each also readable from the
//! environment, parsed once in `main` and handed down. Nothing else reads the environment.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::roles::Role;

/// A number flag's parser that refuses values outside `min..=max`, naming the range: values
/// past what the server can use would otherwise panic, abort on allocation, or pass for an
/// outage (a pool of 0 connections).
fn within<T>(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: Send + Sync + 'static + std::error::Error + ToString,
{
    clap::builder::RangedU64ValueParser::<T>::new().range(min..=max)
}

/// `seed --anchor`: a day whose generated history, years before it and some days after it,
/// PostgreSQL can store; checked before anything is written.
fn anchor_date(s: &str) -> Result<chrono::NaiveDate, String> {
    use chrono::Datelike;
    let day: chrono::NaiveDate = s
        .trim()
        .parse()
        .map_err(|e| format!("expected a date as YYYY-MM-DD ({e})"))?;
    if !(1900..=9000).contains(&day.year()) {
        return Err(format!("the year must be 1900 to 9000, got {}", day.year()));
    }
    Ok(day)
}

/// The development JWT secret; `serve` warns loudly when it is still in use.
pub const DEV_JWT_SECRET: &str = "customer360-dev-secret-change-me";

#[derive(Debug, Parser)]
#[command(
    name = "customer360",
    version,
    about = "Customer 360 service for e-commerce admins"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP + WebSocket server; applies pending migrations on start.
    Serve(ServeConfig),
    /// Applies the embedded migrations and exits.
    Migrate,
    /// Loads deterministic, realistic demo data.
    Seed(SeedConfig),
    /// Prints a signed admin JWT for local use.
    Token(TokenConfig),
    /// Acts as the commerce platform: writes order, loyalty and ticket changes at a rate.
    Simulate(SimulateConfig),
    /// Automatic segments.
    Segments(SegmentsConfig),
    /// Migrates, seeds a modest data set when the database is empty, prints ready tokens and
    /// serves: the quickest way to see the product.
    Demo(DemoConfig),
}

/// Settings every command shares.
#[derive(Debug, Clone, Args)]
pub struct CommonConfig {
    /// PostgreSQL URL; the database it names is created when missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        // A URL may carry a password: `--help` must not print it.
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/customer360"
    )]
    pub database_url: String,
    /// Redis URL (pub/sub between nodes, read cache, presence).
    #[arg(
        long,
        env = "REDIS_URL",
        global = true,
        // A URL may carry a password: `--help` must not print it.
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// HS256 secret that signs and checks admin JWTs. The default is for local use only.
    #[arg(
        long,
        env = "C360_JWT_SECRET",
        global = true,
        hide_env_values = true,
        default_value = DEV_JWT_SECRET
    )]
    pub jwt_secret: String,
}

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "C360_BIND", default_value = "127.0.0.1:8360")]
    pub bind: SocketAddr,
    /// HTTP worker threads (0: one per core; at most 512, actix's limit).
    #[arg(long, env = "C360_WORKERS", default_value_t = 0, value_parser = within::<usize>(0, 512))]
    pub workers: usize,
    /// Prefix of every Redis key and channel this node uses, so several deployments (or tests)
    /// can share one Redis. The contract's channels are `c360:customer:{id}`.
    #[arg(long, env = "C360_REDIS_PREFIX", default_value = "c360")]
    pub redis_prefix: String,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "C360_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// Frames queued per WebSocket before the client counts as a slow consumer (its pending
    /// deltas stop, and it gets one fresh snapshot when it catches up).
    #[arg(long, env = "C360_WS_QUEUE", default_value_t = 256, value_parser = within::<usize>(1, 65_536))]
    pub ws_queue: usize,
    /// Milliseconds that data written to a client may stay unacknowledged (the client stopped
    /// reading for good, or the network path is gone) before its connection is dropped
    /// (`TCP_USER_TIMEOUT`). Without it, a client that never reads again keeps its connection,
    /// and what the server could not write to it, for as long as it stays connected. 0 keeps
    /// the system's default; at most 4294967295 (the socket option's range).
    #[arg(long, env = "C360_WRITE_STALL_TIMEOUT_MS", default_value_t = 60_000, value_parser = within::<u64>(0, u32::MAX as u64))]
    pub write_stall_timeout_ms: u64,
    /// Milliseconds an admin request may take before it is answered 503 (a PostgreSQL that
    /// hangs rather than refusing connections would otherwise hold it indefinitely); 100 to
    /// 3,600,000.
    #[arg(long, env = "C360_REQUEST_TIMEOUT_MS", default_value_t = 15_000, value_parser = within::<u64>(100, 3_600_000))]
    pub request_timeout_ms: u64,
    #[command(flatten)]
    pub pool: PoolConfig,
}

/// The Postgres pool's size and timeouts (deadpool waits forever unless told otherwise).
#[derive(Debug, Clone, Args)]
pub struct PoolConfig {
    /// Most connections the pool opens (1 to 1,000).
    #[arg(long, env = "C360_DB_POOL_SIZE", default_value_t = 16, value_parser = within::<usize>(1, 1_000))]
    pub db_pool_size: usize,
    /// Milliseconds a request waits for a free connection before it gets 503 (1 to 3,600,000).
    #[arg(long, env = "C360_DB_POOL_WAIT_MS", default_value_t = 2_000, value_parser = within::<u64>(1, 3_600_000))]
    pub db_pool_wait_ms: u64,
    /// Milliseconds to open a new connection (also bounds its recycling check; 1 to 3,600,000).
    #[arg(long, env = "C360_DB_CONNECT_TIMEOUT_MS", default_value_t = 3_000, value_parser = within::<u64>(1, 3_600_000))]
    pub db_connect_timeout_ms: u64,
    /// `statement_timeout` set on every pooled connection, in milliseconds (0: none; at most
    /// 2147483647, PostgreSQL's limit).
    #[arg(long, env = "C360_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5_000, value_parser = within::<u64>(0, i32::MAX as u64))]
    pub db_statement_timeout_ms: u64,
}

impl PoolConfig {
    pub fn wait_timeout(&self) -> Duration {
        Duration::from_millis(self.db_pool_wait_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.db_connect_timeout_ms)
    }
}

/// Settings of `seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedConfig {
    /// How many customers to create.
    #[arg(long, env = "C360_SEED_CUSTOMERS", default_value_t = 1_000)]
    pub customers: u32,
    /// Random seed; the same seed and anchor date give the same data.
    #[arg(long, env = "C360_SEED", default_value_t = 360)]
    pub seed: u64,
    /// Empty every table first (otherwise a non-empty database is refused).
    #[arg(long, env = "C360_SEED_RESET", default_value_t = false)]
    pub reset: bool,
    /// The day the data is generated relative to (YYYY-MM-DD, UTC); defaults to today, so
    /// recency looks natural. Pass it explicitly to reproduce a data set byte for byte.
    #[arg(long, env = "C360_SEED_ANCHOR", value_parser = anchor_date)]
    pub anchor: Option<chrono::NaiveDate>,
    /// Hide the progress bar (for scripts and tests).
    #[arg(long, env = "C360_SEED_QUIET", default_value_t = false)]
    pub quiet: bool,
}

/// Settings of `token`.
#[derive(Debug, Clone, Args)]
pub struct TokenConfig {
    /// admin, support, marketing or analyst.
    #[arg(long, env = "C360_TOKEN_ROLE")]
    pub role: Role,
    /// The admin's display name (shown in presence, notes and audit rows).
    #[arg(long, env = "C360_TOKEN_NAME")]
    pub name: String,
    /// The admin's id (the JWT `sub`); defaults to the name in lower case.
    #[arg(long, env = "C360_TOKEN_ID")]
    pub id: Option<String>,
    /// Hours until the token expires.
    #[arg(long, env = "C360_TOKEN_TTL_HOURS", default_value_t = 12)]
    pub ttl_hours: u32,
}

/// Settings of `simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateConfig {
    /// Changes per second (0.001 to 10,000).
    #[arg(long, env = "C360_SIMULATE_RATE", default_value_t = 10.0)]
    pub rate: f64,
    /// How long to run, in seconds (1 to 31,536,000, a year).
    #[arg(long, env = "C360_SIMULATE_DURATION", default_value_t = 60, value_parser = within::<u64>(1, 31_536_000))]
    pub duration: u64,
    /// Random seed of the choices.
    #[arg(long, env = "C360_SEED", default_value_t = 360)]
    pub seed: u64,
}

/// `segments …`
#[derive(Debug, Clone, Args)]
pub struct SegmentsConfig {
    #[command(subcommand)]
    pub action: SegmentsAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SegmentsAction {
    /// Recomputes RFM quintiles and every customer's automatic segments (manual assignments
    /// are never touched).
    Recompute,
}

/// Settings of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoConfig {
    /// Customers to seed when the database is empty (1 to 10,000,000).
    #[arg(long, env = "C360_DEMO_CUSTOMERS", default_value_t = 2_000, value_parser = within::<u32>(1, 10_000_000))]
    pub customers: u32,
    /// Random seed of the demo data.
    #[arg(long, env = "C360_SEED", default_value_t = 360)]
    pub seed: u64,
    #[command(flatten)]
    pub serve: ServeConfig,
}

/// Everything `serve` (and the tests' `spawn_app`) needs.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub common: CommonConfig,
    pub serve: ServeConfig,
    pub bus: Bus,
}

/// Where change events travel and the read cache and presence live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// Redis at `--redis-url`: what `serve` always uses, retrying while Redis is down.
    Redis,
    /// This process alone: a single-node `demo` that found no Redis.
    InProcess,
}
