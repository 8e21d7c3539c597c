//! The outbox relay: one leader per cluster (a Postgres advisory lock held on a dedicated
//! connection; when the leader dies its session ends, the lock is freed and another node takes
//! over within `LEADER_RETRY`). Woken by LISTEN/NOTIFY, with polling as a fallback, it publishes
//! pending `change_events` in sequence order to `{prefix}:customer:{id}`, bumps the customers'
//! view-cache generations, then marks the events published and records its progress in one
//! short transaction, so while Redis is down nothing is marked and the backlog goes out when it
//! returns (at least once: a batch published but not marked goes out again). The read takes no
//! row locks, since the leader is the only writer of `published_at`, and no transaction stays
//! open across the derived wait or the Redis round trip. Customers whose data feeds derived
//! state are recomputed by the derived worker first, while it keeps up: a hub reloading for
//! the change then finds the derived rows in the same snapshot (and their events as already
//! shown), one reload and one delta where there were two.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use crate::derived::event_feeds_derived_state;
use crate::derived::worker::DerivedWorker;
use crate::realtime::event::{ChangeEvent, channel};
use crate::redis_link::RedisLink;
use crate::view::cache;

/// Advisory lock key of the relay's leadership ("c360rly").
const RELAY_LOCK: i64 = 0x0063_3336_3072_6c79;
/// How often a follower asks for leadership.
pub const LEADER_RETRY: Duration = Duration::from_millis(1_000);
/// The longest a pending event waits when a notification was missed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Events published per transaction.
const BATCH: i64 = 500;
/// Polls look for pending events from this far below the highest sequence number published
/// (the pending index keeps entries of published events until vacuum, and a scan from the
/// start walks them all)…
const SEQ_SLACK: i64 = 1_000;
/// …and this often over the whole index, for a transaction that drew its sequence numbers
/// long before it committed: late, but never lost.
const FULL_SCAN: Duration = Duration::from_secs(1);
/// Backoff bounds while Postgres or Redis is down.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a batch waits for its customers' derived state before it is published anyway
/// (the derived rows then follow as changes of their own).
const DERIVED_WAIT: Duration = Duration::from_millis(50);
/// Generation keys outlive any cache entry by far.
const GENERATION_TTL_SECS: i64 = 24 * 3600;

pub struct OutboxRelay {
    pub database_url: String,
    pub redis: Arc<RedisLink>,
    pub redis_prefix: String,
    pub node_id: String,
    pub derived: DerivedWorker,
}

impl OutboxRelay {
    /// Runs forever: leads when it can, follows otherwise, survives outages.
    pub async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.lead().await {
                Ok(()) => backoff = MIN_BACKOFF,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "outbox relay interrupted; retrying");
                    metrics::counter!("outbox_relay_interruptions_total").increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn lead(&self) -> anyhow::Result<()> {
        let (mut client, mut connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        let (wake_tx, mut wake) = mpsc::channel::<()>(1);
        let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
        // The connection object yields notifications; it must be polled for the client to work.
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        let _ = wake_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = closed_tx.send(());
        });

        loop {
            let leader: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&RELAY_LOCK])
                .await?
                .get(0);
            if leader {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(LEADER_RETRY) => {}
                _ = &mut closed => anyhow::bail!("connection closed while following"),
            }
        }
        // Published events leave dead entries in the pending index until vacuum; a plain
        // index scan marks them dead as it passes (a bitmap scan never does), so every later
        // poll skips them instead of re-reading thousands of heap pages.
        client
            .batch_execute("SET enable_bitmapscan = off; LISTEN c360_change_events")
            .await?;
        client
            .execute(
                "UPDATE outbox_relay_state SET leader = $1, updated_at = now()",
                &[&self.node_id],
            )
            .await?;
        tracing::info!(node = %self.node_id, "leading the outbox relay");
        metrics::gauge!("outbox_relay_leader").set(1.0);

        let statements = Statements::prepare(&client).await?;
        let mut backoff = MIN_BACKOFF;
        let mut floor = 0;
        let mut full_scan = tokio::time::Instant::now();
        let result = loop {
            let from = if full_scan.elapsed() >= FULL_SCAN {
                full_scan = tokio::time::Instant::now();
                0
            } else {
                floor
            };
            match self.publish_batch(&mut client, &statements, from).await {
                Ok((n, highest)) => {
                    floor = floor.max(highest - SEQ_SLACK);
                    backoff = MIN_BACKOFF;
                    if n as i64 == BATCH {
                        continue;
                    }
                }
                Err(RelayError::Redis(e)) => {
                    tracing::warn!(error = %e, "redis unavailable; outbox backlog kept until it returns");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Err(RelayError::Postgres(e)) => break Err(e.into()),
            }
            tokio::select! {
                _ = wake.recv() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = &mut closed => break Err(anyhow::anyhow!("connection closed while leading")),
            }
        };
        metrics::gauge!("outbox_relay_leader").set(0.0);
        result
    }

    /// Publishes up to `BATCH` pending events numbered above `from`; returns how many, and
    /// the highest sequence number published.
    async fn publish_batch(
        &self,
        client: &mut tokio_postgres::Client,
        statements: &Statements,
        from: i64,
    ) -> Result<(usize, i64), RelayError> {
        let rows = client.query(&statements.pending, &[&BATCH, &from]).await?;
        if rows.is_empty() {
            return Ok((0, 0));
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            seqs.push(row.get::<_, i64>(0));
            events.push(ChangeEvent {
                event_id: row.get(1),
                customer_id: row.get(2),
                kind: row.get(3),
                op: row.get(4),
                entity_id: row.get(5),
                at: row.get::<_, DateTime<Utc>>(6),
                source: "outbox".to_owned(),
            });
        }
        let derived: BTreeSet<i64> = events
            .iter()
            .filter(|e| event_feeds_derived_state(&e.kind, &e.entity_id, e.customer_id))
            .map(|e| e.customer_id)
            .collect();
        if !derived.is_empty() {
            let wait = self.derived.keeping_up();
            let done = self.derived.recompute(derived);
            if !wait {
                metrics::counter!("outbox_derived_not_waited_total").increment(1);
            } else if tokio::time::timeout(DERIVED_WAIT, done).await.is_err() {
                metrics::counter!("outbox_derived_wait_expired_total").increment(1);
            }
        }
        self.publish(&events).await.map_err(RelayError::Redis)?;
        let last = seqs.iter().copied().max().unwrap_or(0);
        let tx = client.transaction().await?;
        tx.execute(&statements.mark_published, &[&seqs]).await?;
        tx.execute(&statements.progress, &[&last, &(seqs.len() as i64)])
            .await?;
        tx.commit().await?;
        metrics::counter!("outbox_events_published_total").increment(seqs.len() as u64);
        Ok((events.len(), last))
    }

    /// One pipeline: every event on its customer's channel, then each customer's cache
    /// generation bumped and cached views dropped.
    async fn publish(&self, events: &[ChangeEvent]) -> redis::RedisResult<()> {
        let messages = events.iter().map(|e| {
            // unwrap: a struct of strings, numbers and a timestamp always serialises.
            let payload = serde_json::to_string(e).unwrap();
            (channel(&self.redis_prefix, e.customer_id), payload)
        });
        let customers: BTreeSet<i64> = events.iter().map(|e| e.customer_id).collect();
        if let Some(local) = self.redis.embedded() {
            for (channel, payload) in messages {
                local.publish(channel, payload);
            }
            for customer in customers {
                local.incr_ex(
                    &cache::generation_key(&self.redis, customer),
                    Duration::from_secs(GENERATION_TTL_SECS as u64),
                );
                local.del(&cache::view_keys(&self.redis, customer));
            }
            return Ok(());
        }
        let mut conn = self.redis.connection().await?;
        let mut pipe = redis::pipe();
        for (channel, payload) in messages {
            pipe.publish(channel, payload).ignore();
        }
        for customer in customers {
            let generation = cache::generation_key(&self.redis, customer);
            pipe.incr(&generation, 1).ignore();
            pipe.expire(&generation, GENERATION_TTL_SECS).ignore();
            pipe.del(cache::view_keys(&self.redis, customer).to_vec())
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await
    }
}

/// The relay's statements, prepared once per leadership rather than parsed and planned for
/// every batch.
struct Statements {
    pending: tokio_postgres::Statement,
    mark_published: tokio_postgres::Statement,
    progress: tokio_postgres::Statement,
}

impl Statements {
    async fn prepare(client: &tokio_postgres::Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            pending: client
                .prepare(
                    "SELECT seq, event_id, customer_id, kind, op, entity_id, at FROM change_events
                     WHERE published_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1",
                )
                .await?,
            mark_published: client
                .prepare("UPDATE change_events SET published_at = now() WHERE seq = ANY($1)")
                .await?,
            progress: client
                .prepare(
                    "UPDATE outbox_relay_state SET published_seq = greatest(published_seq, $1),
                         published_total = published_total + $2, updated_at = now()",
                )
                .await?,
        })
    }
}

enum RelayError {
    Postgres(tokio_postgres::Error),
    Redis(redis::RedisError),
}

impl From<tokio_postgres::Error> for RelayError {
    fn from(e: tokio_postgres::Error) -> RelayError {
        RelayError::Postgres(e)
    }
}
