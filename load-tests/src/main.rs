//! c360-load: the load generator load testers run against customer360 (see
//! load-tests/README.md). It opens WebSocket sessions over a set of customers with tokens of
//! every role, writes platform changes straight into Postgres at a rate (as `customer360
//! simulate` does), and times every delivery from the writing transaction's commit to the
//! delta's arrival at each session that watches the customer.

mod collector;
mod machine;
mod plot;
mod report;
mod server;
mod session;
mod writer;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use customer360::config::{DEV_JWT_SECRET, PoolConfig};
use customer360::domain::roles::Role;
use customer360::http::auth::JwtKeys;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// S sessions over C customers, changes at R/s for D seconds; latency of every delivery.
    Propagation,
    /// Like a Socket.IO fan-out benchmark: many sessions per customer, M changes at R/s;
    /// reports deliveries per server CPU-second.
    Fanout,
    /// Drops a share of the sessions mid-run; they resume, and every session must end holding
    /// exactly the database's view.
    Reconnect,
    /// A share of the sessions stops reading; the server's memory must stay bounded and the
    /// other sessions' latency must not move.
    Slow,
}

#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "c360-load", version, about = "Load generator for customer360")]
pub struct Args {
    /// Scenario.
    #[arg(long, value_enum, default_value = "propagation")]
    pub mode: Mode,
    /// The server's base URL; only loopback addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8360")]
    pub url: String,
    /// The server's database (the platform writes go there); loopback only.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/customer360"
    )]
    #[serde(skip)]
    pub database_url: String,
    /// The server's JWT secret, to sign the sessions' tokens.
    #[arg(long, env = "C360_JWT_SECRET", default_value = DEV_JWT_SECRET)]
    #[serde(skip)]
    pub jwt_secret: String,
    /// WebSocket sessions.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Customers they watch (the lowest ids in the database), round-robin.
    #[arg(long, default_value_t = 2_000)]
    pub customers: usize,
    /// Platform changes per second.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Number of changes to write (fanout's M); the default is rate × duration.
    #[arg(long)]
    pub events: Option<u64>,
    /// Share of sessions dropped and resumed mid-run (reconnect).
    #[arg(long, default_value_t = 0.2)]
    pub drop_share: f64,
    /// Share of sessions that stop reading after their snapshot (slow).
    #[arg(long, default_value_t = 0.1)]
    pub slow_share: f64,
    /// Distinct admins behind the sessions; roles rotate admin, support, marketing, analyst.
    #[arg(long, default_value_t = 200)]
    pub admins: usize,
    /// Sessions connecting at the same time while the run sets up.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Writing transactions in flight at most.
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// A delivery not received within this many seconds of its commit counts as lost.
    #[arg(long, default_value_t = 10)]
    pub loss_timeout: u64,
    /// The server's process id, for its RSS and CPU time; looked up by name when omitted.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Folder for the JSON report and the SVG plot.
    #[arg(long, default_value = "load-tests/reports")]
    #[serde(skip)]
    pub out: PathBuf,
    /// Fanout's target: delta frames per server CPU-second to reach. The default is the issue's
    /// figure for a plain Socket.IO fan-out; `node load-tests/socketio/bench.js` measures
    /// Socket.IO on this machine, to compare with side by side.
    #[arg(long, default_value_t = 80_000.0)]
    pub per_cpu_second_target: f64,
    /// Seed of the change mix and of the choice of customers.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=20_000).contains(&self.sessions),
            "--sessions must be 1–20000"
        );
        anyhow::ensure!(
            self.customers >= 1 && self.customers <= self.sessions,
            "--customers must be 1–sessions"
        );
        anyhow::ensure!(
            self.rate > 0.0 && self.rate <= 5_000.0,
            "--rate must be in (0, 5000]"
        );
        anyhow::ensure!(
            (1..=3_600).contains(&self.duration),
            "--duration must be 1–3600 s"
        );
        anyhow::ensure!(
            self.events.is_none_or(|e| (1..=1_000_000).contains(&e)),
            "--events must be 1–1000000"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.drop_share) && (0.0..1.0).contains(&self.slow_share),
            "--drop-share and --slow-share are shares (0–1)"
        );
        anyhow::ensure!(
            self.admins >= 4,
            "--admins must be at least 4 (one per role)"
        );
        anyhow::ensure!((1..=256).contains(&self.writers), "--writers must be 1–256");
        anyhow::ensure!(
            self.per_cpu_second_target > 0.0 && self.per_cpu_second_target.is_finite(),
            "--per-cpu-second-target must be a positive number"
        );
        anyhow::ensure!(
            (1..=1024).contains(&self.connect_concurrency),
            "--connect-concurrency must be 1–1024"
        );
        for (flag, url) in [("--url", &self.url), ("--database-url", &self.database_url)] {
            anyhow::ensure!(
                is_loopback(url),
                "{flag} must point at 127.0.0.1, ::1 or localhost: a load run targets this machine only"
            );
        }
        Ok(())
    }

    /// Changes the run writes.
    pub fn total_changes(&self) -> u64 {
        self.events
            .unwrap_or((self.rate * self.duration as f64).round() as u64)
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// A failed run (a missed target included) prints its error chain and exits with status 1,
/// without the stack trace that returning the error from `main` prints under `RUST_BACKTRACE=1`:
/// the summary above it is the report.
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let outcome = args.validate().and_then(|()| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(run(args))
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let server = server::Server::find(args.server_pid)?;
    let baseline = server.sample()?;
    let pool = customer360::db::pool::build_pool(
        &args.database_url,
        &PoolConfig {
            db_pool_size: args.writers + 1,
            db_pool_wait_ms: 10_000,
            db_connect_timeout_ms: 5_000,
            db_statement_timeout_ms: 10_000,
        },
    )?;
    let customers = {
        let mut conn = pool.get().await.context("connecting to the database")?;
        customer360::simulate::first_customers(&mut conn, args.customers as i64).await?
    };
    anyhow::ensure!(
        customers.len() == args.customers,
        "the database holds {} customers; --customers asks for {} (seed more first)",
        customers.len(),
        args.customers
    );

    let keys = JwtKeys::new(&args.jwt_secret);
    let tokens: Vec<(String, Role, String)> = (0..args.admins)
        .map(|a| {
            let role = Role::ALL[a % Role::ALL.len()];
            let id = format!("load-admin-{a}");
            let token = keys.issue(
                &id,
                &format!("Load {role} {a}"),
                role,
                chrono::Duration::hours(6),
            )?;
            Ok((id, role, token))
        })
        .collect::<anyhow::Result<_>>()?;
    let plans = session::plans(&args, &customers, &tokens);
    let (collector, collected) = collector::start(&plans, args.loss_timeout);

    eprintln!(
        "c360-load {:?}: {} sessions over {} customers, {} changes at {}/s; server pid {}",
        args.mode,
        plans.len(),
        customers.len(),
        args.total_changes(),
        args.rate,
        server.pid
    );
    let sampler = server::Sampler::start(server.clone());
    let connect_started = Instant::now();
    let fleet = session::Fleet::start(plans, collector.clone(), args.connect_concurrency);
    fleet.wait_ready(Duration::from_secs(300)).await;
    let connected = fleet.ready_count();
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    eprintln!("{connected} sessions hold their snapshot after {connect_seconds:.1} s");
    // Let the server settle (initial loads, presence) before measuring the idle footprint.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.sample()?;
    let machine_idle = machine::CpuSample::now()?;

    let started = Instant::now();
    collector.start_clock(started);
    if args.mode == Mode::Reconnect {
        fleet.schedule_drops(
            args.drop_share,
            Duration::from_secs(args.duration) / 2,
            args.seed,
        );
    }
    let written = writer::run(&args, &pool, &customers, collector.clone()).await;
    let write_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} changes in {write_seconds:.1} s; waiting for the last deliveries",
        written.written
    );
    collector
        .drain(Duration::from_secs(args.loss_timeout))
        .await;
    let busy = server.sample()?;
    let machine_busy = machine::CpuSample::now()?;
    let measured_seconds = started.elapsed().as_secs_f64();
    let samples = sampler.stop().await;

    let verification = if args.mode == Mode::Reconnect {
        Some(fleet.verify(&pool).await?)
    } else {
        None
    };
    let sessions = fleet.stop().await;
    let outcome = collected.finish(collector).await;
    let report = report::Report::new(
        &args,
        report::Inputs {
            connected,
            connect_seconds,
            write_seconds,
            baseline,
            idle,
            busy,
            machine: (machine_idle, machine_busy),
            measured_seconds,
            samples: samples.clone(),
            written,
            sessions,
            verification,
        },
        &outcome,
    )
    .with_pid(server.pid);
    report.print();
    let (json, svg) = report.write(&args.out, &outcome, &samples)?;
    eprintln!("report: {}\nplot:   {}", json.display(), svg.display());
    report.verdict()
}

/// One planned session: who it is and what it watches.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: u32,
    pub customer: i64,
    pub viewer: String,
    pub role: Role,
    pub url: String,
    /// Stops reading after its snapshot (slow mode).
    pub slow: bool,
    /// Keeps the view it holds, patch by patch (reconnect mode).
    pub keep_view: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fanout_target_must_be_a_positive_number() {
        for bad in ["0", "-5", "NaN", "inf"] {
            let flag = format!("--per-cpu-second-target={bad}");
            let args = Args::parse_from(["c360-load", flag.as_str()]);
            assert!(args.validate().is_err(), "{bad} is refused");
        }
        let args = Args::parse_from(["c360-load", "--per-cpu-second-target", "36320"]);
        assert!(args.validate().is_ok());
        assert_eq!(args.per_cpu_second_target, 36_320.0);
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        for url in [
            "http://127.0.0.1:8360",
            "ws://localhost/ws",
            "postgres://postgres@127.0.0.1:5432/customer360",
            "http://[::1]:8360/",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.5:8360",
            "postgres://u@db.example.com/x",
            "http://127.0.0.1.example.com",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
