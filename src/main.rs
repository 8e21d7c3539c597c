//! The `customer360` binary: parses the command line once and runs the command.

use anyhow::Context;
use clap::Parser;

use customer360::config::{
    AppConfig, Bus, Cli, Command, CommonConfig, DemoConfig, PoolConfig, SeedConfig, SegmentsAction,
};
use customer360::domain::roles::Role;
use customer360::http::auth::JwtKeys;
use customer360::redis_link::RedisLink;
use customer360::startup::Application;
use customer360::{db, seed, simulate, telemetry};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            let app = Application::build(AppConfig {
                common: cli.common,
                serve,
                bus: Bus::Redis,
            })
            .await?;
            tracing::info!(port = app.port(), "customer360 listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            db::url::ensure_database(&cli.common.database_url).await?;
            let applied = db::migrations::run(&cli.common.database_url).await?;
            if applied.is_empty() {
                println!("the schema is current; no migration to apply");
            } else {
                println!(
                    "applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                );
            }
        }
        Command::Seed(config) => {
            let report = seed::run(&cli.common, &config).await?;
            println!(
                "seeded {} customers ({} rows) in {:.1} s",
                report.customers,
                report.rows,
                report.elapsed.as_secs_f64()
            );
        }
        Command::Token(token) => {
            // The server refuses a token with an empty `sub` or `name`, or an expired one.
            anyhow::ensure!(!token.name.trim().is_empty(), "--name must not be empty");
            anyhow::ensure!(token.ttl_hours > 0, "--ttl-hours must be at least 1");
            let id = token
                .id
                .unwrap_or_else(|| token.name.to_lowercase().replace(' ', "."));
            anyhow::ensure!(!id.trim().is_empty(), "--id must not be empty");
            let jwt = JwtKeys::new(&cli.common.jwt_secret)
                .issue(
                    &id,
                    &token.name,
                    token.role,
                    chrono::Duration::hours(i64::from(token.ttl_hours)),
                )
                .context("cannot sign the token")?;
            println!("{jwt}");
        }
        Command::Segments(segments) => match segments.action {
            SegmentsAction::Recompute => {
                let url = &cli.common.database_url;
                db::url::ensure_database(url).await?;
                db::migrations::run(url).await?;
                let client = db::url::connect_raw(url).await?;
                let report =
                    customer360::derived::segment_pass::run(&client, chrono::Utc::now()).await?;
                println!(
                    "segmented {} customers in {:.1} s: {} automatic assignments added, {} removed",
                    report.customers,
                    report.elapsed.as_secs_f64(),
                    report.added,
                    report.removed
                );
            }
        },
        Command::Simulate(sim) => {
            // SIGINT or SIGTERM ends the run early, and what was written is still reported:
            // listened for from here on, the setup included.
            let stop = customer360::startup::stop_signal()
                .context("cannot listen for SIGINT and SIGTERM")?;
            db::url::ensure_database(&cli.common.database_url).await?;
            db::migrations::run(&cli.common.database_url).await?;
            let pool = db::pool::build_pool(&cli.common.database_url, &simulation_pool())?;
            let report = simulate::run(
                &pool,
                sim.rate,
                std::time::Duration::from_secs(sim.duration),
                sim.seed,
                async move {
                    stop.await;
                },
            )
            .await?;
            println!(
                "wrote {} changes in {:.1} s: {} orders, {} order status changes, {} loyalty movements, {} tickets ({} changed nothing, {} failed)",
                report.total(),
                report.elapsed.as_secs_f64(),
                report.orders,
                report.status_changes,
                report.loyalty,
                report.tickets,
                report.unchanged,
                report.failed
            );
        }
        Command::Demo(demo) => run_demo(cli.common, demo).await?,
    }
    Ok(())
}

/// A small pool: the simulator writes one change at a time.
fn simulation_pool() -> PoolConfig {
    PoolConfig {
        db_pool_size: 2,
        db_pool_wait_ms: 2_000,
        db_connect_timeout_ms: 3_000,
        db_statement_timeout_ms: 5_000,
    }
}

async fn run_demo(common: CommonConfig, demo: DemoConfig) -> anyhow::Result<()> {
    if seed::customer_count(&common.database_url).await? == 0 {
        let config = SeedConfig {
            customers: demo.customers,
            seed: demo.seed,
            reset: false,
            anchor: None,
            quiet: false,
        };
        let report = seed::run(&common, &config).await?;
        println!(
            "seeded {} demo customers in {:.1} s",
            report.customers,
            report.elapsed.as_secs_f64()
        );
    }
    let keys = JwtKeys::new(&common.jwt_secret);
    let database_url = common.database_url.clone();
    let bus = demo_bus(&common.redis_url, &demo.serve.redis_prefix).await;
    let app = Application::build(AppConfig {
        common,
        serve: demo.serve,
        bus,
    })
    .await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    println!("\ncustomer360 demo is running at {base}");
    println!("  health:  {base}/readyz    API description: {base}/api/openapi.json");
    println!(
        "  live:    {}/ws?token=<token>  then send {{\"type\":\"subscribe\",\"customer_id\":7}}",
        base.replace("http://", "ws://")
    );
    println!("  tokens (12 h), one per role:");
    for role in Role::ALL {
        let name = format!("Demo {}", role.as_str());
        let token = keys.issue(
            &format!("demo-{role}"),
            &name,
            role,
            chrono::Duration::hours(12),
        )?;
        println!("    {role:<9} {token}");
    }
    println!(
        "  try:     curl -H \"Authorization: Bearer <token>\" {base}/api/admin/customers/7/360\n"
    );
    // Gentle platform traffic, so a newcomer sees dashboards move.
    let pool = db::pool::build_pool(&database_url, &simulation_pool())?;
    actix_web::rt::spawn(async move {
        if let Err(e) = simulate::run(
            &pool,
            DEMO_RATE,
            std::time::Duration::from_secs(24 * 3600),
            7,
            std::future::pending(),
        )
        .await
        {
            tracing::warn!(error = %format!("{e:#}"), "demo simulation stopped");
        }
    });
    println!("  simulating the platform at {DEMO_RATE} changes/s (orders, loyalty, tickets)\n");
    app.run_until_stopped().await?;
    Ok(())
}

/// Redis when it answers; otherwise, as DESIGN asks of `demo`, one node on an in-process bus
/// and cache, said loudly (`serve` never falls back: it retries Redis and /readyz names it).
async fn demo_bus(redis_url: &str, prefix: &str) -> Bus {
    let answer = match RedisLink::new(redis_url, prefix) {
        Ok(link) => tokio::time::timeout(std::time::Duration::from_secs(2), link.ping())
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    match answer {
        Ok(()) => Bus::Redis,
        Err(e) => {
            let url = db::url::redact(redis_url);
            tracing::warn!(redis = %url, error = %e, "Redis does not answer: the demo runs single-node on an in-process bus and cache");
            eprintln!(
                "\n!!! Redis does not answer at {url} ({e}).\n\
                 !!! This demo runs SINGLE-NODE on an IN-PROCESS bus and cache: no other node sees its\n\
                 !!! changes. Start Redis and restart the demo to run as `serve` does.\n"
            );
            Bus::InProcess
        }
    }
}

/// Changes per second the demo writes in the background.
const DEMO_RATE: f64 = 2.0;
