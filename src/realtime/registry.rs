//! `HubRegistry`: the node's map from customer to `CustomerHub`. All joins and leaves go
//! through it, so it alone counts a hub's sessions, starts hubs on the first join, and retires
//! them a grace period after the last leave (a hub that stopped itself could lose a join
//! already on its way). It forwards the bus's events to the hubs without ever waiting.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use crate::db::DbPool;
use crate::domain::masking::Masking;
use crate::realtime::event::ChangeEvent;
use crate::realtime::hub::{self, CustomerHub};
use crate::realtime::redis_bus::{RedisBus, Unsubscribe};
use crate::redis_link::RedisLink;

/// How long a hub outlives its last session (a page reload should not rebuild it).
pub const GRACE: Duration = Duration::from_secs(5);

struct Entry {
    hub: Addr<CustomerHub>,
    /// The sessions watching, by id: a session that subscribes again is still one session,
    /// so its one unsubscribe lets the hub retire.
    sessions: HashSet<u64>,
    missed: Arc<AtomicBool>,
}

pub struct HubRegistry {
    pool: DbPool,
    redis: Arc<RedisLink>,
    /// This process, in presence entries.
    node: String,
    bus: Option<Addr<RedisBus>>,
    redis_url: String,
    redis_prefix: String,
    hubs: HashMap<i64, Entry>,
    /// Whether the bus is connected, so hubs hear every event. While it is not, a hub's view
    /// may miss changes: HTTP reads go to PostgreSQL instead, and a hub joined by a session
    /// reloads (its new session gets the held view, then what changed).
    bus_up: bool,
    /// Threads the hubs run on, one per core: a hub's diffing and serialising is the hot path
    /// of every change, and one thread would cap a node at one core.
    arbiters: Vec<actix::Arbiter>,
}

impl HubRegistry {
    pub fn new(
        pool: DbPool,
        redis: Arc<RedisLink>,
        redis_url: &str,
        redis_prefix: &str,
    ) -> HubRegistry {
        HubRegistry {
            pool,
            redis,
            node: uuid::Uuid::new_v4().simple().to_string(),
            bus: None,
            bus_up: false,
            redis_url: redis_url.to_owned(),
            redis_prefix: redis_prefix.to_owned(),
            hubs: HashMap::new(),
            arbiters: Vec::new(),
        }
    }

    fn hub(&mut self, customer_id: i64) -> Option<&mut Entry> {
        let bus = self.bus.clone()?;
        let arbiter = self
            .arbiters
            .get(customer_id.rem_euclid(self.arbiters.len().max(1) as i64) as usize)?
            .handle();
        Some(self.hubs.entry(customer_id).or_insert_with(|| {
            let missed = Arc::new(AtomicBool::new(false));
            let presence =
                hub::PresenceState::new(self.redis.clone(), &self.redis_prefix, &self.node);
            let hub = CustomerHub::new(
                customer_id,
                self.pool.clone(),
                bus,
                presence,
                missed.clone(),
            );
            let hub = CustomerHub::start_in_arbiter(&arbiter, move |_| hub);
            Entry {
                hub,
                sessions: HashSet::new(),
                missed,
            }
        }))
    }

    /// Sends to a hub without waiting; a full mailbox makes it recompute everything instead.
    fn tell<M>(entry: &Entry, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        CustomerHub: Handler<M>,
    {
        if entry.hub.try_send(msg).is_err() {
            entry.missed.store(true, Ordering::Release);
            metrics::counter!("registry_hub_overflows_total").increment(1);
        }
    }
}

impl Actor for HubRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(8192);
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        self.arbiters = (0..threads).map(|_| actix::Arbiter::new()).collect();
        self.bus = Some(
            RedisBus::new(
                &self.redis_url,
                &self.redis_prefix,
                ctx.address(),
                self.redis.embedded().cloned(),
            )
            .start(),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

/// A session subscribes to a customer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub customer_id: i64,
    pub join: hub::Join,
}

impl Handler<Watch> for HubRegistry {
    type Result = ();
    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        let bus_up = self.bus_up;
        if let Some(entry) = self.hub(msg.customer_id) {
            entry.sessions.insert(msg.join.session_id);
            HubRegistry::tell(entry, msg.join);
            if !bus_up {
                HubRegistry::tell(entry, hub::RecomputeAll);
            }
        }
    }
}

/// A session stops watching a customer (unsubscribe or disconnect).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub customer_id: i64,
    pub session_id: u64,
}

impl Handler<Unwatch> for HubRegistry {
    type Result = ();
    fn handle(&mut self, msg: Unwatch, ctx: &mut Context<Self>) {
        let Some(entry) = self.hubs.get_mut(&msg.customer_id) else {
            return;
        };
        entry.sessions.remove(&msg.session_id);
        HubRegistry::tell(
            entry,
            hub::Leave {
                session_id: msg.session_id,
            },
        );
        if entry.sessions.is_empty() {
            let customer_id = msg.customer_id;
            ctx.run_later(GRACE, move |act, _| {
                if act
                    .hubs
                    .get(&customer_id)
                    .is_some_and(|e| e.sessions.is_empty())
                    && let Some(entry) = act.hubs.remove(&customer_id)
                {
                    let _ = entry.hub.try_send(hub::Retire);
                    if let Some(bus) = &act.bus {
                        let _ = bus.try_send(Unsubscribe { customer_id });
                    }
                }
            });
        }
    }
}

/// A session asks its hub for a fresh snapshot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResyncFor {
    pub customer_id: i64,
    pub session_id: u64,
}

impl Handler<ResyncFor> for HubRegistry {
    type Result = ();
    fn handle(&mut self, msg: ResyncFor, _: &mut Context<Self>) {
        if let Some(entry) = self.hubs.get(&msg.customer_id) {
            HubRegistry::tell(
                entry,
                hub::Resync {
                    session_id: msg.session_id,
                },
            );
        }
    }
}

/// A session says what its viewer is doing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ActivityFor {
    pub customer_id: i64,
    pub session_id: u64,
    pub activity: crate::realtime::protocol::Activity,
}

impl Handler<ActivityFor> for HubRegistry {
    type Result = ();
    fn handle(&mut self, msg: ActivityFor, _: &mut Context<Self>) {
        if let Some(entry) = self.hubs.get(&msg.customer_id) {
            HubRegistry::tell(
                entry,
                hub::SetActivity {
                    session_id: msg.session_id,
                    activity: msg.activity,
                },
            );
        }
    }
}

/// Presence of a customer changed somewhere (announced on Redis).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceAnnounced {
    pub customer_id: i64,
}

impl Handler<PresenceAnnounced> for HubRegistry {
    type Result = ();
    fn handle(&mut self, msg: PresenceAnnounced, _: &mut Context<Self>) {
        if let Some(entry) = self.hubs.get(&msg.customer_id) {
            HubRegistry::tell(entry, hub::PresenceChanged);
        }
    }
}

/// An event from the bus.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch(pub ChangeEvent);

impl Handler<Dispatch> for HubRegistry {
    type Result = ();
    fn handle(&mut self, msg: Dispatch, _: &mut Context<Self>) {
        metrics::counter!("redis_bus_events_total").increment(1);
        if let Some(entry) = self.hubs.get(&msg.0.customer_id) {
            HubRegistry::tell(entry, hub::Events(vec![msg.0]));
        }
    }
}

/// The bus (re)connected: events may have been missed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecomputeEveryHub;

impl Handler<RecomputeEveryHub> for HubRegistry {
    type Result = ();
    fn handle(&mut self, _: RecomputeEveryHub, _: &mut Context<Self>) {
        self.bus_up = true;
        for entry in self.hubs.values() {
            HubRegistry::tell(entry, hub::RecomputeAll);
        }
    }
}

/// The bus lost its connection: hubs hear nothing until it is back.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BusDown;

impl Handler<BusDown> for HubRegistry {
    type Result = ();
    fn handle(&mut self, _: BusDown, _: &mut Context<Self>) {
        self.bus_up = false;
    }
}

/// Whether a hub here watches the customer: then the customer existed when its first session
/// subscribed, and a new session can join without asking PostgreSQL, which may be down.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Watched {
    pub customer_id: i64,
}

impl Handler<Watched> for HubRegistry {
    type Result = bool;
    fn handle(&mut self, msg: Watched, _: &mut Context<Self>) -> bool {
        self.hubs.contains_key(&msg.customer_id)
    }
}

/// The live view of a customer if a hub here holds a current one.
#[derive(Message)]
#[rtype(result = "Option<Value>")]
pub struct LiveView {
    pub customer_id: i64,
    pub masking: Masking,
}

impl Handler<LiveView> for HubRegistry {
    type Result = ResponseFuture<Option<Value>>;
    fn handle(&mut self, msg: LiveView, _: &mut Context<Self>) -> Self::Result {
        let hub = self
            .hubs
            .get(&msg.customer_id)
            .filter(|_| self.bus_up)
            .map(|e| e.hub.clone());
        Box::pin(async move {
            match hub {
                Some(hub) => hub
                    .send(hub::CurrentView {
                        masking: msg.masking,
                    })
                    .await
                    .ok()
                    .flatten(),
                None => None,
            }
        })
    }
}
