//! The WebSocket sessions of a run: each one a real client (tokio-tungstenite) with its own
//! admin token, watching one customer, reporting every snapshot and delta to the collector.
//! In reconnect mode a session keeps the view it holds, patch by patch, drops its connection
//! when told and resumes with `since`; in slow mode some stop reading after their snapshot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use customer360::db::DbPool;
use customer360::domain::masking::Masking;
use customer360::domain::roles::Role;
use futures_util::{SinkExt, StreamExt};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::collector::{Collector, Msg};
use crate::{Args, Mode, Plan};

/// Attempts to open a connection before a session gives up.
const CONNECT_ATTEMPTS: u32 = 5;

/// Who watches what: sessions go round-robin over the customers, and the sessions of one
/// customer belong to different admins of rotating roles.
pub fn plans(args: &Args, customers: &[i64], tokens: &[(String, Role, String)]) -> Vec<Plan> {
    let ws = args.url.replacen("http", "ws", 1);
    let ws = ws.trim_end_matches('/');
    let slow_every = if args.mode == Mode::Slow && args.slow_share > 0.0 {
        Some((1.0 / args.slow_share).round().max(1.0) as usize)
    } else {
        None
    };
    (0..args.sessions)
        .map(|i| {
            let round = i / customers.len();
            let admin = (i + round * 37) % tokens.len();
            let (viewer, role, token) = &tokens[admin];
            Plan {
                index: i as u32,
                customer: customers[i % customers.len()],
                viewer: viewer.clone(),
                role: *role,
                url: format!("{ws}/ws?token={token}"),
                slow: slow_every.is_some_and(|n| i % n == n - 1),
                keep_view: args.mode == Mode::Reconnect,
            }
        })
        .collect()
}

/// What the run learnt from its sessions.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SessionStats {
    pub reconnects: u64,
    /// Subscriptions the server asked to retry (`unavailable`), retried.
    pub retried_subscriptions: u64,
    pub resumed: u64,
    pub gaps: u64,
    pub slow_consumer_notices: u64,
    pub error_frames: u64,
    pub failed: u64,
    pub first_errors: Vec<String>,
}

/// Every session's held state after a reconnect run, compared with the database.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    pub sessions_checked: usize,
    pub matching: usize,
    pub mismatching: usize,
    pub examples: Vec<String>,
}

struct Shared {
    collector: Collector,
    ready: AtomicUsize,
    stats: Mutex<SessionStats>,
    connect: Semaphore,
}

struct Handle {
    plan: Plan,
    drop_now: Arc<Notify>,
    view: Arc<Mutex<Option<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

pub struct Fleet {
    shared: Arc<Shared>,
    sessions: Vec<Handle>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    pub fn start(plans: Vec<Plan>, collector: Collector, connect_concurrency: usize) -> Fleet {
        let shared = Arc::new(Shared {
            collector,
            ready: AtomicUsize::new(0),
            stats: Mutex::new(SessionStats::default()),
            connect: Semaphore::new(connect_concurrency),
        });
        let (stop, stopped) = watch::channel(false);
        let sessions = plans
            .into_iter()
            .map(|plan| {
                let drop_now = Arc::new(Notify::new());
                let view = Arc::new(Mutex::new(None));
                let task = tokio::spawn(run(
                    plan.clone(),
                    shared.clone(),
                    drop_now.clone(),
                    view.clone(),
                    stopped.clone(),
                ));
                Handle {
                    plan,
                    drop_now,
                    view,
                    task,
                }
            })
            .collect();
        Fleet {
            shared,
            sessions,
            stop,
        }
    }

    pub fn ready_count(&self) -> usize {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Waits until every session holds its first snapshot (or failed), at most `max`.
    pub async fn wait_ready(&self, max: Duration) {
        let deadline = Instant::now() + max;
        let mut last_print = Instant::now();
        while Instant::now() < deadline {
            let ready = self.ready_count();
            let failed = lock(&self.shared.stats).failed as usize;
            if ready + failed >= self.sessions.len() {
                return;
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                eprintln!("  {ready}/{} sessions ready", self.sessions.len());
                last_print = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Drops `share` of the sessions, spread over a window around `middle` of the writes.
    pub fn schedule_drops(&self, share: f64, middle: Duration, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd40f);
        let mut chosen: Vec<&Handle> = self.sessions.iter().filter(|h| !h.plan.slow).collect();
        chosen.shuffle(&mut rng);
        let count = (chosen.len() as f64 * share).round() as usize;
        for handle in chosen.into_iter().take(count) {
            let at = middle.mul_f64(rng.random_range(0.5..1.5));
            let notify = handle.drop_now.clone();
            tokio::spawn(async move {
                tokio::time::sleep(at).await;
                notify.notify_one();
            });
        }
    }

    /// Compares the view every session holds with the database's view for the same viewer,
    /// once deliveries have gone quiet. A session still differing after three looks fails.
    pub async fn verify(&self, pool: &DbPool) -> anyhow::Result<Verification> {
        let collector = &self.shared.collector;
        let mut pending: Vec<&Handle> = self.sessions.iter().collect();
        let mut examples = Vec::new();
        for attempt in 0..3 {
            collector
                .quiesce(Duration::from_secs(2), Duration::from_secs(30))
                .await;
            let mut still = Vec::new();
            let mut conn = pool.get().await?;
            let now = Utc::now();
            let mut cache: std::collections::HashMap<(i64, String, Role), Value> =
                std::collections::HashMap::new();
            for h in pending {
                let key = (h.plan.customer, h.plan.viewer.clone(), h.plan.role);
                if !cache.contains_key(&key) {
                    let view = customer360::view::load(
                        &mut conn,
                        h.plan.customer,
                        Masking::for_role(h.plan.role),
                        now,
                    )
                    .await?
                    .for_viewer(&h.plan.viewer, h.plan.role);
                    // Through JSON text, as the wire carries it: both sides then went through
                    // the same float parsing, and only real differences remain.
                    cache.insert(
                        key.clone(),
                        serde_json::from_str(&serde_json::to_string(&view)?)?,
                    );
                }
                let expected = &cache[&key];
                let held = lock(&h.view);
                if held.as_ref() != Some(expected) {
                    if attempt == 2 && examples.len() < 5 {
                        examples.push(describe(h, held.as_ref(), expected));
                    }
                    still.push(h);
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
        }
        Ok(Verification {
            sessions_checked: self.sessions.len(),
            matching: self.sessions.len() - pending.len(),
            mismatching: pending.len(),
            examples,
        })
    }

    pub async fn stop(self) -> SessionStats {
        let _ = self.stop.send(true);
        for h in self.sessions {
            let _ = h.task.await;
        }
        lock(&self.shared.stats).clone()
    }
}

fn describe(h: &Handle, held: Option<&Value>, expected: &Value) -> String {
    let difference = match held {
        Some(held) => first_difference(held, expected, String::new()),
        None => "no view held".to_owned(),
    };
    format!(
        "session {} ({} as {}) on customer {}: {difference}",
        h.plan.index, h.plan.viewer, h.plan.role, h.plan.customer,
    )
}

/// The first place two views differ, as a JSON pointer with both values.
fn first_difference(held: &Value, expected: &Value, at: String) -> String {
    match (held, expected) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(w, v, format!("{at}/{k}")),
                    None => return format!("{at}/{k} missing"),
                }
            }
            format!("{at}: held has extra keys")
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .map_or_else(String::new, |(i, (x, y))| {
                first_difference(x, y, format!("{at}/{i}"))
            }),
        _ => format!("{at}: held {held}, database {expected}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking session task cannot leave these plain values half-written.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fields of a server frame the run needs; serde skips the rest (the patch, the view)
/// without building it.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    epoch: Option<String>,
    version: Option<u64>,
    base_version: Option<u64>,
    #[serde(default)]
    causes: Vec<CauseRef>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct CauseRef {
    event_id: uuid::Uuid,
}

/// Where a session stands in its customer's stream.
#[derive(Default)]
struct Position {
    epoch: Option<String>,
    version: u64,
}

async fn run(
    plan: Plan,
    shared: Arc<Shared>,
    drop_now: Arc<Notify>,
    view: Arc<Mutex<Option<Value>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut position = Position::default();
    let mut first = true;
    loop {
        let Some(mut ws) = connect(&plan, &shared).await else {
            shared.collector.send(Msg::Gone {
                session: plan.index,
            });
            return;
        };
        let since = position
            .epoch
            .as_ref()
            .map(|e| json!({"epoch": e, "version": position.version}));
        let subscribe = json!({"type": "subscribe", "customer_id": plan.customer, "since": since});
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            lock(&shared.stats).failed += 1;
            return;
        }
        if !first {
            lock(&shared.stats).reconnects += 1;
        }
        let mut resumed_pending = !first;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
                _ = drop_now.notified() => {
                    // An abrupt drop: no close frame, as when a network path dies.
                    drop(ws);
                    let pause = rand::rng().random_range(200..2_000);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    break;
                }
                frame = ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            record_error(&shared, &plan, "the server closed the connection");
                            shared.collector.send(Msg::Gone { session: plan.index });
                            return;
                        }
                        Some(Ok(_)) => continue,
                    };
                    let at = Instant::now();
                    let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
                        record_error(&shared, &plan, "unparsable frame");
                        continue;
                    };
                    match frame.kind.as_str() {
                        "snapshot" => {
                            position.epoch = frame.epoch;
                            position.version = frame.version.unwrap_or(0);
                            if plan.keep_view {
                                let full: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                                *lock(&view) = full.get("view").cloned();
                            }
                            if first {
                                first = false;
                                shared.ready.fetch_add(1, Ordering::AcqRel);
                            }
                            resumed_pending = false;
                            shared.collector.send(Msg::Snapshot { session: plan.index, at });
                            if plan.slow {
                                // Hold the connection and never read again.
                                let _ = stop.changed().await;
                                return;
                            }
                        }
                        "delta" => {
                            if resumed_pending {
                                lock(&shared.stats).resumed += 1;
                                resumed_pending = false;
                            }
                            if frame.epoch != position.epoch || frame.base_version != Some(position.version) {
                                lock(&shared.stats).gaps += 1;
                                let resync = json!({"type": "resync", "customer_id": plan.customer});
                                let _ = ws.send(Message::text(resync.to_string())).await;
                                continue;
                            }
                            position.version = frame.version.unwrap_or(position.version);
                            if plan.keep_view {
                                apply_patch(&view, text.as_str());
                            }
                            let causes = frame.causes.into_iter().map(|c| c.event_id).collect();
                            shared.collector.send(Msg::Delta { session: plan.index, causes, at });
                        }
                        "error" if frame.code.as_deref() == Some("unavailable") => {
                            // What a dashboard does when told to retry: wait, subscribe again.
                            lock(&shared.stats).retried_subscriptions += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            if ws.send(Message::text(subscribe.to_string())).await.is_err() {
                                break;
                            }
                        }
                        "error" => {
                            let code = frame.code.unwrap_or_default();
                            let slow = code == "slow_consumer";
                            {
                                let mut stats = lock(&shared.stats);
                                stats.error_frames += 1;
                                stats.slow_consumer_notices += u64::from(slow);
                            }
                            if !slow {
                                let message = frame.message.unwrap_or_default();
                                record_error(&shared, &plan, &format!("{code} {message}"));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn apply_patch(view: &Mutex<Option<Value>>, text: &str) {
    let Ok(full) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Ok(patch) = serde_json::from_value::<json_patch::Patch>(full["patch"].clone()) else {
        return;
    };
    if let Some(v) = lock(view).as_mut() {
        // A patch that does not apply leaves the view wrong; the verification will say so.
        let _ = json_patch::patch(v, &patch);
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(plan: &Plan, shared: &Shared) -> Option<Ws> {
    // unwrap: the semaphore is never closed.
    let _permit = shared.connect.acquire().await.expect("connect semaphore");
    let mut last = String::new();
    for attempt in 0..CONNECT_ATTEMPTS {
        match tokio_tungstenite::connect_async(plan.url.as_str()).await {
            Ok((ws, _)) => return Some(ws),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    lock(&shared.stats).failed += 1;
    record_error(shared, plan, &format!("could not connect: {last}"));
    None
}

fn record_error(shared: &Shared, plan: &Plan, what: &str) {
    let mut stats = lock(&shared.stats);
    if stats.first_errors.len() < 10 {
        stats
            .first_errors
            .push(format!("session {}: {what}", plan.index));
    }
}
