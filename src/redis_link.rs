//! The node's Redis connection for commands (cache, presence, publishing): connected lazily and
//! re-connected by the redis crate's `ConnectionManager`, so a Redis that is down at start-up or
//! restarts later only makes the calls that need it fail (503) until it answers again. Or,
//! for a `demo` that found no Redis, the in-process stand-in (`Embedded`) that each caller uses
//! instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use crate::embedded::Embedded;

/// How long one connection attempt or one command may take before it counts as "down".
const REDIS_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long the view cache is left alone after it failed: each try while Redis is down costs
/// a reconnect attempt (an uncached 360 read took 140 ms instead of 9).
const CACHE_PAUSE: Duration = Duration::from_secs(1);

pub struct RedisLink {
    /// None when the link is in process: there is no Redis to connect to.
    client: Option<redis::Client>,
    manager: Mutex<Option<ConnectionManager>>,
    prefix: String,
    embedded: Option<Arc<Embedded>>,
    /// Until when the view cache is skipped after a failure (`cache_failed`).
    cache_paused_until: std::sync::Mutex<Option<Instant>>,
}

impl RedisLink {
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<RedisLink> {
        Ok(RedisLink {
            client: Some(redis::Client::open(url).map_err(|e| {
                anyhow::anyhow!(
                    "--redis-url is not a Redis URL such as redis://127.0.0.1:6379 ({e})"
                )
            })?),
            manager: Mutex::new(None),
            prefix: prefix.to_owned(),
            embedded: None,
            cache_paused_until: std::sync::Mutex::new(None),
        })
    }

    /// A link that never contacts Redis: everything goes through an in-process stand-in.
    pub fn in_process(prefix: &str) -> RedisLink {
        RedisLink {
            client: None,
            manager: Mutex::new(None),
            prefix: prefix.to_owned(),
            embedded: Some(Arc::new(Embedded::default())),
            cache_paused_until: std::sync::Mutex::new(None),
        }
    }

    /// The in-process stand-in, when this link has one instead of Redis.
    pub fn embedded(&self) -> Option<&Arc<Embedded>> {
        self.embedded.as_ref()
    }

    /// The key or channel `name` under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{}", self.prefix, name)
    }

    /// A connection to run commands on; the first call (and any after a failed first
    /// connect) opens it.
    pub async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let Some(client) = &self.client else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis: this link is in process",
            )));
        };
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    /// Whether the view cache is to be skipped: it failed less than `CACHE_PAUSE` ago.
    pub fn cache_paused(&self) -> bool {
        self.cache_paused_until
            .lock()
            .map(|until| until.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }

    /// The view cache failed with `error`: when Redis is out of reach (not, say, full), the
    /// cache is skipped for `CACHE_PAUSE`.
    pub fn cache_failed(&self, error: &redis::RedisError) {
        let unreachable = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal();
        if unreachable && let Ok(mut until) = self.cache_paused_until.lock() {
            *until = Some(Instant::now() + CACHE_PAUSE);
        }
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        if self.embedded.is_some() {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
    }
}
