//! `DashboardSession`: one actor per WebSocket. It owns the connection's bounded outgoing queue
//! (`outgoing`), which hubs fill without waiting, so a client that stops reading costs at most
//! `--ws-queue` frames of memory. Client frames are parsed here: bad ones get an `error` frame
//! and the session stays usable.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, ProtocolError};
use bytestring::ByteString;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::watch;

use crate::db::DbPool;
use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::realtime::hub::Join;
use crate::realtime::outgoing::{Closer, Ending, OutFrame, Outgoing};
use crate::realtime::protocol::{self, ClientMessage, ErrorCode, MAX_SUBSCRIPTIONS};
use crate::realtime::registry::{ActivityFor, HubRegistry, ResyncFor, Unwatch, Watch, Watched};

/// How often the server pings: often enough for proxies that drop connections idle for 60 s,
/// rarely enough that 10,000 idle sessions cost little (a ping and its pong are two frames and
/// two wake-ups each; every 5 s they were 10–15 % of the server's work in `fanout`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// A client silent (no frame, no pong) this long is disconnected: three missed pings.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// How actix-ws words a fragmented message over `max_continuation_size`.
const CONTINUATION_OVERFLOW: &str = "Exceeded maximum continuation size";

pub struct DashboardSession {
    id: u64,
    admin: AuthAdmin,
    registry: Addr<HubRegistry>,
    pool: DbPool,
    out: Outgoing,
    /// Taken when the session stops.
    closer: Option<Closer>,
    subscriptions: HashSet<i64>,
    /// Customers asked for whose existence is being checked: they count against
    /// `MAX_SUBSCRIPTIONS` already, or a burst of subscribes would all pass the limit before
    /// the first check came back. Each holds the `since` of the latest subscribe, which the
    /// check's answer serves.
    checking: HashMap<i64, Option<protocol::Since>>,
    heard: Instant,
    owed: OwedPongs,
    /// How the connection will end.
    ending: Ending,
}

/// Pongs that found the queue full, queued as soon as it has room: a client that stopped
/// reading for a while must not take a missing pong for a dead server once it reads again. One
/// of each kind however many pings came meanwhile (a ping frame's echoes the latest, as RFC 6455,
/// 5.5.3, allows).
#[derive(Default)]
struct OwedPongs {
    /// The answer to a WebSocket ping frame.
    websocket: Option<OutFrame>,
    /// The answer to the protocol's `{"type":"ping"}` (browsers cannot send ping frames).
    protocol: Option<OutFrame>,
    /// When both are owed the kinds take turns, so a stream of one cannot hold up the other.
    protocol_first: bool,
    /// A wait for room in the queue is running.
    waiting: bool,
}

impl OwedPongs {
    fn next(&mut self) -> Option<OutFrame> {
        self.protocol_first = !self.protocol_first;
        if self.protocol_first {
            self.protocol.take().or_else(|| self.websocket.take())
        } else {
            self.websocket.take().or_else(|| self.protocol.take())
        }
    }

    fn any(&self) -> bool {
        self.websocket.is_some() || self.protocol.is_some()
    }
}

impl DashboardSession {
    /// Starts the session: it reads the client's frames from `stream`, writes to `out`, and
    /// ends the connection with `closer` when it stops, or with 1001 Going Away once
    /// `shutdown` turns true.
    pub fn start(
        admin: AuthAdmin,
        registry: Addr<HubRegistry>,
        pool: DbPool,
        (out, closer): (Outgoing, Closer),
        mut shutdown: watch::Receiver<bool>,
        stream: AggregatedMessageStream,
    ) -> Addr<DashboardSession> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        DashboardSession::create(move |ctx| {
            ctx.add_stream(stream);
            let going_away = async move {
                // A server that goes away without saying so (its sender dropped) leaves the
                // session to end some other way.
                if shutdown.wait_for(|down| *down).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            ctx.spawn(
                actix::fut::wrap_future::<_, Self>(going_away).map(|(), act, ctx| {
                    act.stop_with(Ending::GoingAway, ctx);
                }),
            );
            DashboardSession {
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                admin,
                registry,
                pool,
                out,
                closer: Some(closer),
                subscriptions: HashSet::new(),
                checking: HashMap::new(),
                heard: Instant::now(),
                owed: OwedPongs::default(),
                ending: Ending::Plain,
            }
        })
    }

    /// Queues `pong`, or owes it in `slot` while the queue is full. A pong of the kind already
    /// owed replaces it rather than overtaking it.
    fn answer(
        &mut self,
        pong: OutFrame,
        slot: fn(&mut OwedPongs) -> &mut Option<OutFrame>,
        ctx: &mut Context<Self>,
    ) {
        let owed = slot(&mut self.owed);
        if owed.is_some() {
            *owed = Some(pong);
        } else if let Err(TrySendError::Full(pong)) = self.out.try_send(pong) {
            *owed = Some(pong);
            self.wait_for_room(ctx);
        }
    }

    /// Sends the owed pongs one by one, each as soon as the queue has room for it.
    fn wait_for_room(&mut self, ctx: &mut Context<Self>) {
        if self.owed.waiting {
            return;
        }
        self.owed.waiting = true;
        let out = self.out.clone();
        ctx.spawn(
            async move { out.reserve_owned().await.ok() }
                .into_actor(self)
                .map(|permit, act, ctx| {
                    act.owed.waiting = false;
                    // `None`: the queue closed, the session is ending.
                    let Some(permit) = permit else { return };
                    if let Some(pong) = act.owed.next() {
                        permit.send(pong);
                    }
                    if act.owed.any() {
                        act.wait_for_room(ctx);
                    }
                }),
        );
    }

    fn send(&self, frame: ByteString) {
        if self.out.try_send(OutFrame::text(&frame)).is_err() {
            metrics::counter!("ws_frames_dropped_total").increment(1);
        }
    }

    fn error(&self, code: ErrorCode, message: &str, customer_id: Option<i64>) {
        self.send(protocol::error_frame(code, message, customer_id));
    }

    fn handle_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let message = match protocol::parse(text) {
            Ok(m) => m,
            Err(refused) => {
                return self.error(ErrorCode::BadRequest, &refused.why, refused.customer_id);
            }
        };
        match message {
            ClientMessage::Ping => self.answer(
                OutFrame::text(&protocol::pong_frame()),
                |owed| &mut owed.protocol,
                ctx,
            ),
            ClientMessage::Subscribe { customer_id, since } => {
                self.subscribe(customer_id, since, ctx)
            }
            ClientMessage::Unsubscribe { customer_id } => {
                // Withdrawn while checked: the check's answer is then dropped.
                let withdrawn = self.checking.remove(&customer_id).is_some();
                if self.subscriptions.remove(&customer_id) {
                    self.unwatch(customer_id);
                } else if !withdrawn {
                    self.error(
                        ErrorCode::BadRequest,
                        "not subscribed to this customer",
                        Some(customer_id),
                    );
                }
            }
            ClientMessage::Resync { customer_id } => {
                if self.subscriptions.contains(&customer_id) {
                    self.tell(ResyncFor {
                        customer_id,
                        session_id: self.id,
                    });
                } else {
                    self.error(
                        ErrorCode::BadRequest,
                        "subscribe before asking for a resync",
                        Some(customer_id),
                    );
                }
            }
            ClientMessage::Presence {
                customer_id,
                activity,
            } => {
                if self.subscriptions.contains(&customer_id) {
                    self.tell(ActivityFor {
                        customer_id,
                        session_id: self.id,
                        activity,
                    });
                } else {
                    self.error(
                        ErrorCode::BadRequest,
                        "subscribe before sending presence",
                        Some(customer_id),
                    );
                }
            }
        }
    }

    fn subscribe(
        &mut self,
        customer_id: i64,
        since: Option<protocol::Since>,
        ctx: &mut Context<Self>,
    ) {
        if let Err(e) = self.admin.require(Permission::ViewCustomer) {
            return self.error(ErrorCode::Forbidden, e.detail(), Some(customer_id));
        }
        let watched = self.subscriptions.len()
            + self
                .checking
                .keys()
                .filter(|id| !self.subscriptions.contains(id))
                .count();
        if !self.subscriptions.contains(&customer_id)
            && !self.checking.contains_key(&customer_id)
            && watched >= MAX_SUBSCRIPTIONS
        {
            return self.error(
                ErrorCode::TooManySubscriptions,
                &format!("a session may watch at most {MAX_SUBSCRIPTIONS} customers"),
                Some(customer_id),
            );
        }
        if let Some(pending) = self.checking.get_mut(&customer_id) {
            // A check for this customer is under way; its answer serves this request too, with
            // the position the client gave last.
            *pending = since;
            return;
        }
        self.checking.insert(customer_id, since);
        let pool = self.pool.clone();
        let registry = self.registry.clone();
        let exists = async move {
            if registry
                .send(Watched { customer_id })
                .await
                .unwrap_or(false)
            {
                return Ok(true);
            }
            customer_exists(&pool, customer_id).await
        };
        ctx.spawn(exists.into_actor(self).map(move |result, act, _| {
            match (act.checking.remove(&customer_id), result) {
                (None, _) => {}
                (Some(since), Ok(true)) => {
                    if act.subscriptions.insert(customer_id) {
                        metrics::gauge!("ws_subscriptions").increment(1.0);
                    }
                    let join = Join {
                        session_id: act.id,
                        viewer_id: act.admin.id.clone(),
                        viewer_name: act.admin.name.clone(),
                        role: act.admin.role,
                        since,
                        out: act.out.clone(),
                    };
                    act.tell(Watch { customer_id, join });
                }
                (Some(_), Ok(false)) => act.error(
                    ErrorCode::NotFound,
                    &format!("customer {customer_id} does not exist"),
                    Some(customer_id),
                ),
                (Some(_), Err(e)) => act.error(ErrorCode::Unavailable, &e, Some(customer_id)),
            }
        }));
    }

    /// A token stays valid only until its `exp`, on a WebSocket as over HTTP: checked before
    /// every client frame is read, at every heartbeat, and at the moment of expiry when that
    /// falls before the next heartbeat ([`Self::close_at_expiry`]), so an expired session is
    /// closed at once and acts on nothing.
    fn stop_if_expired(&mut self, ctx: &mut Context<Self>) -> bool {
        let expired = self.admin.expired(chrono::Utc::now().timestamp());
        if expired {
            self.stop_with(Ending::Expired, ctx);
        }
        expired
    }

    /// An idle session is closed when its token expires, not up to a heartbeat later: called
    /// when the session starts and at each heartbeat, it sets a timer for an expiry that comes
    /// before the next beat.
    fn close_at_expiry(&self, ctx: &mut Context<Self>) {
        let left = self.admin.valid_for(chrono::Utc::now().timestamp_millis());
        if left <= HEARTBEAT_INTERVAL {
            // The timer runs on the monotonic clock and the expiry is wall-clock time: should
            // they disagree and the token still be valid, the timer is set again.
            ctx.run_later(left, |act, ctx| {
                if !act.stop_if_expired(ctx) {
                    act.close_at_expiry(ctx);
                }
            });
        }
    }

    fn stop_with(&mut self, ending: Ending, ctx: &mut Context<Self>) {
        self.ending = ending;
        ctx.stop();
    }

    fn unwatch(&self, customer_id: i64) {
        metrics::gauge!("ws_subscriptions").decrement(1.0);
        self.tell(Unwatch {
            customer_id,
            session_id: self.id,
        });
    }

    fn tell<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        HubRegistry: Handler<M>,
    {
        if self.registry.try_send(msg).is_err() {
            self.error(
                ErrorCode::Unavailable,
                "the server is overloaded; retry shortly",
                None,
            );
        }
    }
}

/// Whether the customer exists. A pool that stays exhausted through a burst of subscriptions
/// (thousands of dashboards opening at once) is waited out a few times before the client is
/// told to retry.
async fn customer_exists(pool: &DbPool, customer_id: i64) -> Result<bool, String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let Ok(mut conn) = pool.get().await else {
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            continue;
        };
        let found: i64 = crate::db::schema::customers::table
            .filter(crate::db::schema::customers::id.eq(customer_id))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(|_| "the database is unavailable, retry shortly".to_owned())?;
        return Ok(found > 0);
    }
    Err("the database is unavailable, retry shortly".to_owned())
}

impl Actor for DashboardSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        metrics::gauge!("ws_sessions").increment(1.0);
        self.close_at_expiry(ctx);
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.stop_if_expired(ctx) {
                return;
            }
            act.close_at_expiry(ctx);
            if act.heard.elapsed() > CLIENT_TIMEOUT {
                tracing::debug!(session = act.id, "client timed out");
                ctx.stop();
                return;
            }
            // A full queue means the client is not reading; the ping waits for the next beat.
            let _ = act.out.try_send(OutFrame::ping());
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        for customer_id in std::mem::take(&mut self.subscriptions) {
            self.unwatch(customer_id);
        }
        if let Some(closer) = self.closer.take() {
            closer.close(self.ending);
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        metrics::gauge!("ws_sessions").decrement(1.0);
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for DashboardSession {
    fn handle(&mut self, msg: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.heard = Instant::now();
        if self.stop_if_expired(ctx) {
            return;
        }
        match msg {
            Ok(AggregatedMessage::Text(text)) => self.handle_text(&text, ctx),
            Ok(AggregatedMessage::Binary(_)) => self.error(
                ErrorCode::BadRequest,
                "binary frames are not supported; send JSON text",
                None,
            ),
            Ok(AggregatedMessage::Ping(bytes)) => {
                self.answer(OutFrame::pong(&bytes), |owed| &mut owed.websocket, ctx)
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            // A frame over the codec's limit, or a fragmented message over it: the client is
            // told why in the close frame. actix-ws reports the second only as an I/O error with
            // this text, as it reports any failure of the payload, so the text tells them apart
            // (the live tests pin it).
            Err(ProtocolError::Overflow) => self.stop_with(Ending::TooBig, ctx),
            Err(ProtocolError::Io(e)) if e.to_string() == CONTINUATION_OVERFLOW => {
                self.stop_with(Ending::TooBig, ctx)
            }
            Ok(AggregatedMessage::Close(_)) | Err(_) => ctx.stop(),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
