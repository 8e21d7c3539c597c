//! Building and running the server: `Application::build(config)` prepares the database
//! (creates it if missing, migrates), builds the pool and the Redis link once, binds the
//! listener; `port()` tells where; `run_until_stopped()` serves until SIGTERM/SIGINT, then
//! closes every WebSocket with 1001 Going Away and lets in-flight requests finish.

use std::any::Any;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use actix_web::dev::Server;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{
    App, HttpMessage, HttpServer, body::MessageBody, dev::ServiceRequest, dev::ServiceResponse, web,
};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::config::{AppConfig, Bus, DEV_JWT_SECRET};
use crate::db::{self, DbPool};
use crate::derived;
use crate::http::{self, auth::JwtKeys};
use crate::realtime::outbox_relay::OutboxRelay;
use crate::realtime::registry::HubRegistry;
use crate::redis_link::RedisLink;
use actix::Actor;

/// What every handler can reach.
pub struct AppState {
    pub pool: DbPool,
    pub redis: Arc<RedisLink>,
    /// Outbound frames a WebSocket may have queued (`--ws-queue`).
    pub ws_queue: usize,
    /// Turns true when the server begins to shut down: every WebSocket then closes with 1001
    /// Going Away, so dashboards reconnect at once instead of waiting out the shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Signs search cursors.
    pub cursor_key: crate::http::search::CursorKey,
    /// The longest an admin request may take (`--request-timeout-ms`).
    pub request_timeout: Duration,
}

pub struct Application {
    port: u16,
    server: Server,
    shutdown: Arc<watch::Sender<bool>>,
}

/// Stops a running [`Application`] as SIGTERM or SIGINT does.
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    shutdown: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    /// Tells every WebSocket the server is going away, stops accepting connections, and lets
    /// in-flight requests finish (within `--shutdown-timeout-secs`).
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        self.server.stop(true).await;
    }
}

impl Application {
    pub async fn build(config: AppConfig) -> anyhow::Result<Application> {
        let database_url = &config.common.database_url;
        if db::url::ensure_database(database_url).await? {
            tracing::info!(database = %db::url::redact(database_url), "created the missing database");
        }
        let applied = db::migrations::run(database_url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
        if config.common.jwt_secret == DEV_JWT_SECRET {
            tracing::warn!(
                "C360_JWT_SECRET is not set: tokens are signed with the public development secret. \
                 Anyone can mint an admin token. Set C360_JWT_SECRET before exposing this server."
            );
        }
        let pool = db::pool::build_pool(database_url, &config.serve.pool)?;
        let redis = Arc::new(match config.bus {
            Bus::Redis => RedisLink::new(&config.common.redis_url, &config.serve.redis_prefix)?,
            Bus::InProcess => RedisLink::in_process(&config.serve.redis_prefix),
        });
        let (shutdown, shutdown_seen) = watch::channel(false);
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            redis: redis.clone(),
            ws_queue: config.serve.ws_queue.max(1),
            request_timeout: Duration::from_millis(config.serve.request_timeout_ms.max(1)),
            shutdown: shutdown_seen,
            cursor_key: crate::http::search::CursorKey::derive(&config.common.jwt_secret),
        });
        let keys = web::Data::new(JwtKeys::new(&config.common.jwt_secret));
        let registry = web::Data::new(
            HubRegistry::new(
                pool.clone(),
                redis.clone(),
                &config.common.redis_url,
                &config.serve.redis_prefix,
            )
            .start(),
        );
        // Installed before the first request, or that request's metrics go nowhere.
        crate::telemetry::metrics_handle();

        let listener = TcpListener::bind(config.serve.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (--bind): {e}", config.serve.bind))?;
        let port = listener.local_addr()?.port();

        actix_web::rt::spawn(crate::db::statistics::keep(pool.clone()));
        actix_web::rt::spawn(
            OutboxRelay {
                database_url: database_url.clone(),
                redis,
                redis_prefix: config.serve.redis_prefix.clone(),
                node_id: format!("pid{}:{port}", std::process::id()),
                derived: derived::worker::DerivedWorker::new(pool.clone()),
            }
            .run(),
        );
        let write_stall = Duration::from_millis(config.serve.write_stall_timeout_ms);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(http::metrics::record))
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(keys.clone())
                .app_data(registry.clone())
                .configure(http::configure)
        })
        .on_connect(move |conn, _| limit_write_stall(conn, write_stall))
        .shutdown_timeout(config.serve.shutdown_timeout_secs)
        // Signals are ours (`run_until_stopped`): WebSockets are told first.
        .disable_signals()
        .h1_write_buffer_size(http::sliced_body::PULL_BELOW)
        // A frame written while an earlier one awaits its ACK would otherwise wait for it: up
        // to the client's 40 ms delayed ACK, on every push after the first.
        .tcp_nodelay(true)
        .listen(listener)?;
        if config.serve.workers > 0 {
            server = server.workers(config.serve.workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            shutdown: Arc::new(shutdown),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Serves until SIGTERM or SIGINT (or [`StopHandle::stop`]), then stops as `stop` does; a
    /// second signal stops at once, without waiting for in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = self.stop_handle();
        actix_web::rt::spawn(async move {
            match stop_signal() {
                // Awaited outside the macro, whose fields are not evaluated when it is off.
                Ok(first) => {
                    let signal = first.await;
                    tracing::info!(signal, "stopping");
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for stop signals; stop with SIGKILL");
                    return;
                }
            }
            let graceful = stop.clone();
            actix_web::rt::spawn(async move { graceful.stop().await });
            if let Ok(second) = stop_signal() {
                let signal = second.await;
                tracing::warn!(
                    signal,
                    "stopping now, without waiting for in-flight requests"
                );
                stop.server.stop(false).await;
            }
        });
        self.server.await
    }
}

/// Listens for SIGTERM and SIGINT (Ctrl-C) from this call on (until then the signals keep
/// their default, which ends the process); the future completes at the first and names it.
pub fn stop_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        })
    }
}

/// Drops a connection whose written data stays unacknowledged for `timeout`. A client that
/// stops reading for good otherwise keeps it open: once its receive window is shut, the server
/// can neither finish writing to it nor get an error, and actix-http starts no shutdown timer
/// while data waits to be written.
fn limit_write_stall(conn: &dyn Any, timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    // TCP_USER_TIMEOUT is Linux's (the Dockerfile's target); elsewhere the system's own
    // retransmission limits are all there is.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(timeout)) {
        tracing::warn!(error = %e, "cannot limit how long writes to a connection may stall");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = tcp;
}

/// Returns the request id that tags this request's log lines as `x-request-id`, so a caller
/// can quote it.
async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let mut response = next.call(req).await?;
    if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}
