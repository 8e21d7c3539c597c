//! `RedisBus`: the node's one pub/sub connection. It SUBSCRIBEs and UNSUBSCRIBEs customer
//! channels as hubs start and stop, hands received events to the `HubRegistry`, and after a
//! reconnection (the connection manager resubscribes by itself) tells every hub to recompute,
//! since events may have been missed meanwhile. Malformed events are counted and logged. A
//! `demo` without Redis has it listen to the in-process stand-in instead (one node: every
//! message published in the process).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value as RedisValue};
use tokio::sync::{broadcast, mpsc};

use crate::embedded::{Embedded, Published};

use crate::realtime::event::{ChangeEvent, channel};
use crate::realtime::presence;
use crate::realtime::registry::{
    BusDown, Dispatch, HubRegistry, PresenceAnnounced, RecomputeEveryHub,
};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);

pub struct RedisBus {
    url: String,
    prefix: String,
    registry: Addr<HubRegistry>,
    manager: Option<ConnectionManager>,
    disconnected: bool,
    /// Single-node `demo` without Redis: messages come from the in-process stand-in.
    embedded: Option<Arc<Embedded>>,
}

impl RedisBus {
    pub fn new(
        url: &str,
        prefix: &str,
        registry: Addr<HubRegistry>,
        embedded: Option<Arc<Embedded>>,
    ) -> RedisBus {
        RedisBus {
            url: resp3(url),
            prefix: prefix.to_owned(),
            registry,
            manager: None,
            disconnected: false,
            embedded,
        }
    }

    /// Every message published in the process; a receiver that fell behind is told so, and
    /// then every hub recomputes, as after a reconnection.
    fn listen_in_process(&mut self, embedded: &Embedded, ctx: &mut Context<Self>) {
        let messages = futures_util::stream::unfold(embedded.subscribe(), |mut rx| async move {
            match rx.recv().await {
                Ok(message) => Some((InProcess::Message(message), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((InProcess::Missed, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        ctx.add_stream(messages);
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let (tx, rx) = mpsc::unbounded_channel::<PushInfo>();
        let url = self.url.clone();
        let connecting = async move {
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(CONNECT_TIMEOUT))
                .set_push_sender(tx)
                .set_automatic_resubscription();
            ConnectionManager::new_with_config(client, config).await
        };
        let mut rx = rx;
        ctx.add_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        ctx.spawn(
            connecting
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(manager) => {
                        act.manager = Some(manager);
                        tracing::info!("redis bus connected");
                        act.tell_registry(RecomputeEveryHub, ctx);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis bus cannot connect; retrying");
                        ctx.run_later(RECONNECT_BACKOFF, |act, ctx| act.connect(ctx));
                    }
                }),
        );
    }

    /// After a disconnection, ping until the manager has reconnected (and resubscribed), then
    /// have every hub recompute.
    fn watch_reconnection(&mut self, ctx: &mut Context<Self>) {
        let Some(mut manager) = self.manager.clone() else {
            return;
        };
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut manager).await };
        ctx.spawn(ping.into_actor(self).map(|result, act, ctx| match result {
            Ok(_) => {
                act.disconnected = false;
                tracing::info!("redis bus reconnected; recomputing every hub");
                metrics::counter!("redis_bus_reconnects_total").increment(1);
                act.tell_registry(RecomputeEveryHub, ctx);
            }
            Err(_) => {
                ctx.run_later(RECONNECT_BACKOFF, |act, ctx| act.watch_reconnection(ctx));
            }
        }));
    }

    /// Messages to the registry never wait and are never silently lost: if its mailbox is
    /// full, every hub is told to recompute once there is room again.
    fn tell_registry<M>(&mut self, msg: M, ctx: &mut Context<Self>)
    where
        M: Message<Result = ()> + Send + 'static,
        HubRegistry: Handler<M>,
    {
        if self.registry.try_send(msg).is_err() {
            metrics::counter!("redis_bus_registry_overflows_total").increment(1);
            ctx.run_later(RECONNECT_BACKOFF, |act, ctx| {
                act.tell_registry::<RecomputeEveryHub>(RecomputeEveryHub, ctx)
            });
        }
    }

    fn receive(&mut self, data: &[RedisValue], ctx: &mut Context<Self>) {
        let (Some(RedisValue::BulkString(chan)), Some(RedisValue::BulkString(payload))) =
            (data.first(), data.get(1))
        else {
            return malformed("message without channel and payload", "");
        };
        self.deliver(&String::from_utf8_lossy(chan), payload, ctx);
    }

    fn deliver(&mut self, chan: &str, payload: &[u8], ctx: &mut Context<Self>) {
        if let Some(customer_id) = chan
            .strip_prefix(&format!("{}:presence:", self.prefix))
            .and_then(|id| id.parse::<i64>().ok())
        {
            return self.tell_registry(PresenceAnnounced { customer_id }, ctx);
        }
        let Some(customer_id) = chan
            .strip_prefix(&format!("{}:customer:", self.prefix))
            .and_then(|id| id.parse::<i64>().ok())
        else {
            return malformed("unexpected channel", chan);
        };
        match serde_json::from_slice::<ChangeEvent>(payload) {
            Ok(event) if event.customer_id == customer_id => {
                self.tell_registry(Dispatch(event), ctx)
            }
            Ok(_) => malformed("event for another customer than its channel", chan),
            Err(e) => malformed(&format!("not a change event ({e})"), chan),
        }
    }
}

fn malformed(why: &str, chan: &str) {
    metrics::counter!("redis_bus_malformed_events_total").increment(1);
    tracing::warn!(channel = chan, why, "ignored a malformed event");
}

/// Pub/sub pushes need RESP3.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

impl Actor for RedisBus {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        match self.embedded.clone() {
            Some(embedded) => {
                self.listen_in_process(&embedded, ctx);
                // Connected from the start: the same message a connection to Redis sends.
                self.tell_registry(RecomputeEveryHub, ctx);
            }
            None => self.connect(ctx),
        }
    }
}

/// What the in-process stand-in hands the bus.
enum InProcess {
    Message(Published),
    Missed,
}

impl StreamHandler<InProcess> for RedisBus {
    fn handle(&mut self, item: InProcess, ctx: &mut Context<Self>) {
        match item {
            InProcess::Message(m) => self.deliver(&m.channel, m.payload.as_bytes(), ctx),
            InProcess::Missed => {
                metrics::counter!("in_process_bus_lagged_total").increment(1);
                self.tell_registry(RecomputeEveryHub, ctx);
            }
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl StreamHandler<PushInfo> for RedisBus {
    fn handle(&mut self, push: PushInfo, ctx: &mut Context<Self>) {
        match push.kind {
            PushKind::Message => self.receive(&push.data, ctx),
            PushKind::Disconnection if !self.disconnected => {
                self.disconnected = true;
                tracing::warn!("redis bus disconnected");
                self.tell_registry(BusDown, ctx);
                self.watch_reconnection(ctx);
            }
            _ => {}
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Start receiving a customer's events; answers once Redis confirmed the subscription.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Subscribe {
    pub customer_id: i64,
}

impl Handler<Subscribe> for RedisBus {
    type Result = ResponseFuture<Result<(), String>>;
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        if self.embedded.is_some() {
            // Every message in the process reaches the bus already.
            return Box::pin(std::future::ready(Ok(())));
        }
        let manager = self.manager.clone();
        let channels = [
            channel(&self.prefix, msg.customer_id),
            presence::channel(&self.prefix, msg.customer_id),
        ];
        Box::pin(async move {
            let mut manager = manager.ok_or_else(|| "redis is not connected".to_owned())?;
            manager
                .subscribe(&channels)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Stop receiving a customer's events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub customer_id: i64,
}

impl Handler<Unsubscribe> for RedisBus {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) -> Self::Result {
        let manager = self.manager.clone();
        let channels = [
            channel(&self.prefix, msg.customer_id),
            presence::channel(&self.prefix, msg.customer_id),
        ];
        Box::pin(async move {
            if let Some(mut manager) = manager
                && let Err(e) = manager.unsubscribe(&channels).await
            {
                tracing::debug!(error = %e, "unsubscribe failed");
            }
        })
    }
}
