//! `CustomerHub`: one actor per customer watched from this node. It holds the customer's view,
//! recomputes the slices a batch of change events affects (events arriving meanwhile join the
//! next batch), diffs each projection against what its sessions hold, and sends one serialised
//! delta per projection to every session of it — through each session's bounded queue, never
//! waiting: a full queue marks the session stale, and it gets one fresh snapshot once there is
//! room again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;

use crate::db::DbPool;
use crate::domain::masking::Masking;
use crate::domain::roles::Role;
use crate::realtime::event::ChangeEvent;
use crate::realtime::held::{self, DiffCache, Projection, Renderer, Slices};
use crate::realtime::outgoing::{OutFrame, Outgoing};
use crate::realtime::presence::{self, Viewer};
use crate::realtime::projection::{ProjectionKey, private_authors_in};
use crate::realtime::protocol::{self, Activity, Cause, ErrorCode, Since};
use crate::realtime::redis_bus::{RedisBus, Subscribe};
use crate::realtime::registry::GRACE;
use crate::redis_link::RedisLink;
use crate::view::{self, Slice};

/// How often a hub looks, when nothing else wakes it, for stale sessions, a failed
/// subscription and events it may have missed (its mailbox overflowed). Every tick wakes the
/// hub's thread: at 250 ms, 2,000 idle hubs cost a twentieth of a core (load-tests/README.md).
const TICK: Duration = Duration::from_secs(1);
/// While a session is stale or the subscription is not confirmed, the next look comes this soon.
const SOON: Duration = Duration::from_millis(250);
/// Least time between two presence syncs of a hub while viewers keep coming and going.
const PRESENCE_SETTLE: Duration = Duration::from_millis(250);
/// Wait before retrying a failed recompute.
const RETRY: Duration = Duration::from_millis(500);
/// Longest a reload waits for a pooled connection: longer than a request's wait
/// (`--db-pool-wait-ms`), because a reload that gives up loses its place in the pool's queue
/// and comes back after `RETRY`. Under an overload, waiting costs less than failing.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How far before the previous load a load looks for committed events: a writing transaction
/// stamps its events when it writes them, and may commit a little later.
const COMMIT_MARGIN: Duration = Duration::from_secs(10);
/// How long an applied event is remembered, so its late or repeated arrival is ignored.
const APPLIED_MEMORY: Duration = Duration::from_secs(60);

struct Member {
    key: ProjectionKey,
    viewer: Viewer,
    out: Outgoing,
    /// The queue overflowed: deltas stop until a fresh snapshot got through.
    stale: bool,
    /// Has been sent the viewers list (a second tab of an admin already shown joins without
    /// changing it, and must still be told who is there).
    told_presence: bool,
}

pub struct CustomerHub {
    customer_id: i64,
    /// Names this hub's life; each projection's epoch extends it with the projection's build
    /// number, so a projection dropped and built again never reuses a version.
    epoch: String,
    builds: u64,
    pool: DbPool,
    bus: Addr<RedisBus>,
    presence: PresenceState,
    subscribed: bool,
    /// The whole view with personal data in clear; None until first loaded.
    clear: Option<Slices>,
    /// Who wrote the private notes the view shows (each needs a projection of their own).
    private_authors: BTreeSet<String>,
    projections: HashMap<ProjectionKey, Projection>,
    /// When each projection no session watches lost its last one.
    unwatched: HashMap<ProjectionKey, Instant>,
    members: HashMap<u64, Member>,
    waiting: Vec<Join>,
    pending: Vec<ChangeEvent>,
    pending_all: bool,
    recomputing: bool,
    /// A look within `SOON` is scheduled.
    looking_soon: bool,
    /// Set by the registry when an event could not be queued here: recompute everything.
    missed: Arc<AtomicBool>,
    /// Events whose effects the view already shows (seen in a loaded snapshot), with when.
    applied: HashMap<uuid::Uuid, Instant>,
    /// When the last successful load started.
    loaded_at: Option<chrono::DateTime<Utc>>,
}

/// This hub's part in presence: where to write, what it last showed, what changed since.
pub struct PresenceState {
    pub redis: Arc<RedisLink>,
    pub prefix: String,
    /// Distinguishes this process's sessions from other nodes' in the shared hash.
    pub node: String,
    shown: Vec<Viewer>,
    gone: Vec<String>,
    changed: bool,
    syncing: bool,
    /// Someone asked for a sync while one was running.
    again: bool,
}

impl PresenceState {
    pub fn new(redis: Arc<RedisLink>, prefix: &str, node: &str) -> PresenceState {
        PresenceState {
            redis,
            prefix: prefix.to_owned(),
            node: node.to_owned(),
            shown: Vec::new(),
            gone: Vec::new(),
            changed: false,
            syncing: false,
            again: false,
        }
    }
}

impl CustomerHub {
    pub fn new(
        customer_id: i64,
        pool: DbPool,
        bus: Addr<RedisBus>,
        presence: PresenceState,
        missed: Arc<AtomicBool>,
    ) -> CustomerHub {
        CustomerHub {
            customer_id,
            epoch: uuid::Uuid::new_v4().simple().to_string(),
            builds: 0,
            pool,
            bus,
            presence,
            subscribed: false,
            clear: None,
            private_authors: BTreeSet::new(),
            projections: HashMap::new(),
            unwatched: HashMap::new(),
            members: HashMap::new(),
            waiting: Vec::new(),
            pending: Vec::new(),
            pending_all: true,
            recomputing: false,
            looking_soon: false,
            missed,
            applied: HashMap::new(),
            loaded_at: None,
        }
    }

    /// The SUBSCRIBE must be confirmed before the view is read, or a change between the read
    /// and the subscription would be missed.
    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let request = self.bus.send(Subscribe {
            customer_id: self.customer_id,
        });
        ctx.spawn(request.into_actor(self).map(|result, act, ctx| match result {
            Ok(Ok(())) => {
                act.subscribed = true;
                act.pending_all = true;
                act.schedule(ctx);
            }
            Ok(Err(e)) => {
                tracing::debug!(customer = act.customer_id, error = %e, "subscription failed; retrying");
                act.look_soon_if_waiting(ctx);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis bus unreachable");
                act.look_soon_if_waiting(ctx);
            }
        }));
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.recomputing {
            return;
        }
        // Before the check for pending work: events lost to a full mailbox leave none behind,
        // and the periodic look must still notice them.
        if self.missed.swap(false, Ordering::AcqRel) {
            self.pending_all = true;
        }
        if !self.pending_all && self.pending.is_empty() {
            return;
        }
        let slices: Vec<Slice> = if self.pending_all || self.clear.is_none() {
            Slice::ALL.to_vec()
        } else {
            let mut s: Vec<Slice> = self
                .pending
                .iter()
                .flat_map(|e| {
                    Slice::affected_by(&e.kind, &e.entity_id, e.customer_id)
                        .iter()
                        .copied()
                })
                .collect();
            s.sort_by_key(|x| *x as u8);
            s.dedup();
            s
        };
        let causes: Vec<ChangeEvent> = std::mem::take(&mut self.pending);
        let was_all = std::mem::take(&mut self.pending_all);
        // Events whose slices this load need not cover: shown already, or its own batch.
        let known: HashSet<uuid::Uuid> = self
            .applied
            .keys()
            .chain(causes.iter().map(|e| &e.event_id))
            .copied()
            .collect();
        // The batch as the reload sees it, and the page to refresh in part: none after missed
        // events, whose changes are unknown.
        let batch: Vec<view::Committed> = causes.iter().map(view::Committed::from).collect();
        let shown_timeline: Option<Arc<str>> = match &self.clear {
            Some(clear) if !was_all => clear.get(Slice::Timeline.name()).cloned(),
            _ => None,
        };
        self.recomputing = true;
        let pool = self.pool.clone();
        let customer_id = self.customer_id;
        let started = Utc::now();
        let margin = chrono::Duration::from_std(COMMIT_MARGIN).unwrap_or_default();
        let events_since = self.loaded_at.unwrap_or(started) - margin;
        let load = async move {
            let began = Instant::now();
            let timeouts = deadpool::managed::Timeouts {
                wait: Some(POOL_WAIT),
                ..pool.timeouts()
            };
            let mut conn = pool
                .timeout_get(&timeouts)
                .await
                .map_err(|e| e.to_string())?;
            let reload = view::Reload {
                customer_id,
                masking: Masking::Clear,
                slices: &slices,
                batch: &batch,
                known: &known,
                shown_timeline: shown_timeline.as_deref(),
                now: started,
                events_since,
            };
            let (view, committed) = view::load_slices(&mut conn, &reload)
                .await
                .map_err(|e| e.to_string())?;
            // What came back, which can be more than was asked (loaders share queries).
            let loaded: Vec<Slice> = Slice::ALL
                .into_iter()
                .filter(|s| view.contains_key(s.name()))
                .collect();
            metrics::histogram!("hub_reload_seconds").record(began.elapsed().as_secs_f64());
            Ok::<_, String>((view, loaded, committed))
        };
        ctx.spawn(load.into_actor(self).map(move |result, act, ctx| {
            act.recomputing = false;
            match result {
                Ok((view, loaded, committed)) => {
                    act.loaded_at = Some(started);
                    let arrived: Vec<chrono::DateTime<Utc>> = causes.iter().map(|c| c.at).collect();
                    let began = Instant::now();
                    let causes = act.causes(causes, &loaded, committed);
                    act.apply(view, &causes);
                    metrics::histogram!("hub_apply_seconds").record(began.elapsed().as_secs_f64());
                    let now = Utc::now();
                    for at in arrived {
                        // From the writing statement to the delta queued for the sessions.
                        let age = (now - at).to_std().unwrap_or_default();
                        metrics::histogram!("change_to_delta_seconds").record(age.as_secs_f64());
                    }
                    // Sessions admitted now that the view is loaded show up in presence.
                    if act.presence.changed {
                        act.sync_presence(ctx);
                    }
                    act.look_soon_if_waiting(ctx);
                }
                Err(e) => {
                    tracing::warn!(customer = act.customer_id, error = %e, "recompute failed; retrying");
                    metrics::counter!("hub_recompute_failures_total").increment(1);
                    // The same slices again: nothing of this load was applied.
                    act.pending.extend(causes);
                    act.pending_all |= was_all;
                    ctx.run_later(RETRY, |act, ctx| act.schedule(ctx));
                    return;
                }
            }
            act.schedule(ctx);
        }));
    }

    /// The causes of a load: its batch, and the other events the snapshot showed whose every
    /// affected slice was loaded. All of them count as applied from now on.
    fn causes(
        &mut self,
        batch: Vec<ChangeEvent>,
        loaded: &[Slice],
        committed: Vec<view::Committed>,
    ) -> Vec<Cause> {
        let now = Instant::now();
        self.applied
            .retain(|_, at| now.duration_since(*at) < APPLIED_MEMORY);
        let mut causes: Vec<Cause> = batch.into_iter().map(Cause::from).collect();
        for c in committed {
            if !self.applied.contains_key(&c.event_id)
                && !causes.iter().any(|x| x.event_id == c.event_id)
                && Slice::affected_by(&c.kind, &c.entity_id, self.customer_id)
                    .iter()
                    .all(|s| loaded.contains(s))
            {
                causes.push(Cause::from(c));
            }
        }
        for c in &causes {
            self.applied.insert(c.event_id, now);
        }
        let applied = &self.applied;
        self.pending.retain(|e| !applied.contains_key(&e.event_id));
        causes
    }

    fn apply(&mut self, values: serde_json::Map<String, Value>, causes: &[Cause]) {
        metrics::counter!("hub_recomputes_total").increment(1);
        let clear = self.clear.get_or_insert_with(Slices::new);
        held::store_clear(clear, &values);
        if values.contains_key("notes") || values.contains_key("timeline") {
            let mut authors = BTreeSet::new();
            for name in ["notes", "timeline"] {
                match values.get(name) {
                    Some(slice) => private_authors_in(slice, &mut authors),
                    None => {
                        if let Some(Ok(slice)) =
                            clear.get(name).map(|t| serde_json::from_str::<Value>(t))
                        {
                            private_authors_in(&slice, &mut authors);
                        }
                    }
                }
            }
            self.private_authors = authors;
        }
        let moved = self.move_members();
        let mut cache = DiffCache::default();
        let mut frames: Vec<(ProjectionKey, ByteString)> = Vec::new();
        let Some(clear) = self.clear.as_ref() else {
            return;
        };
        let mut renderer = Renderer::new(clear, &values);
        for (key, projection) in &mut self.projections {
            if moved.contains(key) {
                continue;
            }
            let rendered = match renderer.render(key) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(customer = self.customer_id, error = %e, "rendering a projection failed");
                    continue;
                }
            };
            let update = projection.update(rendered, &values, &mut cache);
            if update.ops.is_empty() {
                continue;
            }
            projection.version += 1;
            // A note event names a note: sessions whose notes it did not change (another
            // admin's private note) are not told of it, even beside other changes.
            let told: Vec<Cause>;
            let causes = if update.notes_changed || !causes.iter().any(|c| c.kind == "note") {
                causes
            } else {
                told = causes
                    .iter()
                    .filter(|c| c.kind != "note")
                    .cloned()
                    .collect();
                &told
            };
            let frame = protocol::delta_frame(
                self.customer_id,
                &projection.epoch,
                projection.version,
                &update.ops,
                causes,
            );
            projection.record(frame.clone());
            frames.push((key.clone(), frame));
        }
        for (key, frame) in frames {
            let frame = OutFrame::text(&frame);
            for member in self
                .members
                .values_mut()
                .filter(|m| m.key == key && !m.stale)
            {
                deliver(member, &frame);
            }
        }
        let waiting = std::mem::take(&mut self.waiting);
        for join in waiting {
            self.admit(join);
        }
    }

    /// Viewers whose own private notes appeared in (or left) the view change projection; each
    /// gets a snapshot of the new one. Returns the projections built from the current view.
    fn move_members(&mut self) -> HashSet<ProjectionKey> {
        let moves: Vec<(u64, ProjectionKey)> = self
            .members
            .iter()
            .filter_map(|(id, m)| {
                let key = ProjectionKey::for_viewer(
                    &m.viewer.admin_id,
                    m.viewer.role,
                    &self.private_authors,
                );
                (key != m.key).then_some((*id, key))
            })
            .collect();
        let mut built = HashSet::new();
        for (id, key) in moves {
            if !self.projections.contains_key(&key) {
                if self.projection(&key).is_none() {
                    continue;
                }
                built.insert(key.clone());
            }
            let frame = self.snapshot_of(&key);
            if let (Some(member), Some(frame)) = (self.members.get_mut(&id), frame) {
                self.unwatched.remove(&key);
                member.key = key;
                member.stale = false;
                deliver(member, &OutFrame::text(&frame));
            }
        }
        self.drop_unwatched();
        built
    }

    /// Forgets projections no session has watched for [`GRACE`] (kept up to date meanwhile): a
    /// client that comes back sooner (a page reload, a dropped network) resumes with `since`
    /// from the deltas it missed instead of a whole snapshot.
    fn drop_unwatched(&mut self) {
        let now = Instant::now();
        let (members, unwatched) = (&self.members, &mut self.unwatched);
        self.projections.retain(|key, _| {
            if members.values().any(|m| &m.key == key) {
                unwatched.remove(key);
                return true;
            }
            let since = match unwatched.get(key) {
                Some(since) => *since,
                None => {
                    unwatched.insert(key.clone(), now);
                    now
                }
            };
            now.duration_since(since) < GRACE
        });
        let projections = &self.projections;
        self.unwatched
            .retain(|key, _| projections.contains_key(key));
    }

    fn projection(&mut self, key: &ProjectionKey) -> Option<&mut Projection> {
        if !self.projections.contains_key(key) {
            let clear = self.clear.as_ref()?;
            self.builds += 1;
            let epoch = format!("{}-{}", self.epoch, self.builds);
            match Projection::build(key, clear, epoch) {
                Ok(p) => {
                    self.projections.insert(key.clone(), p);
                }
                Err(e) => {
                    tracing::error!(customer = self.customer_id, error = %e, "building a projection failed");
                    return None;
                }
            }
        }
        self.projections.get_mut(key)
    }

    fn snapshot_of(&mut self, key: &ProjectionKey) -> Option<ByteString> {
        let customer_id = self.customer_id;
        self.projection(key).map(|p| p.snapshot(customer_id))
    }

    /// A session joins once the view is loaded: missed deltas if it can resume, else a snapshot.
    fn admit(&mut self, join: Join) {
        if self.clear.is_none() {
            self.waiting.push(join);
            return;
        }
        let key = ProjectionKey::for_viewer(&join.viewer_id, join.role, &self.private_authors);
        // Watched again: its grace starts afresh when it is next left.
        self.unwatched.remove(&key);
        let replay: Option<Vec<ByteString>> = self.projection(&key).and_then(|p| {
            let since = join.since.as_ref().filter(|s| s.epoch == p.epoch)?;
            if since.version > p.version {
                return None;
            }
            let oldest_base = p.history.front().map_or(p.version, |(v, _)| v - 1);
            (since.version >= oldest_base).then(|| {
                p.history
                    .iter()
                    .filter(|(v, _)| *v > since.version)
                    .map(|(_, f)| f.clone())
                    .collect()
            })
        });
        let viewer = Viewer {
            admin_id: join.viewer_id.clone(),
            name: join.viewer_name.clone(),
            role: join.role,
            activity: Activity::Viewing,
            since: Utc::now(),
        };
        let mut member = Member {
            key: key.clone(),
            viewer,
            out: join.out,
            stale: false,
            told_presence: false,
        };
        match replay {
            Some(frames) => {
                metrics::counter!("hub_resumes_total").increment(1);
                for frame in frames {
                    deliver(&mut member, &OutFrame::text(&frame));
                }
            }
            None => match self.snapshot_of(&key) {
                Some(frame) => deliver(&mut member, &OutFrame::text(&frame)),
                None => {
                    let _ = member.out.try_send(OutFrame::text(&protocol::error_frame(
                        ErrorCode::Unavailable,
                        "the view could not be prepared",
                        Some(self.customer_id),
                    )));
                    return;
                }
            },
        }
        self.members.insert(join.session_id, member);
        self.presence.changed = true;
    }

    fn field(&self, session_id: u64) -> String {
        format!("{}:{session_id}", self.presence.node)
    }

    /// Writes this hub's viewers, reads everyone's, and tells the sessions when the list moved.
    fn sync_presence(&mut self, ctx: &mut Context<Self>) {
        if self.presence.syncing {
            self.presence.again = true;
            return;
        }
        self.presence.syncing = true;
        let announce = std::mem::take(&mut self.presence.changed);
        let gone = std::mem::take(&mut self.presence.gone);
        let mine: Vec<(String, Viewer)> = self
            .members
            .iter()
            .map(|(id, m)| (self.field(*id), m.viewer.clone()))
            .collect();
        let (redis, prefix, customer_id) = (
            self.presence.redis.clone(),
            self.presence.prefix.clone(),
            self.customer_id,
        );
        let sync = async move {
            presence::sync(&redis, &prefix, customer_id, &mine, &gone, announce).await
        };
        ctx.spawn(sync.into_actor(self).map(|result, act, ctx| {
            act.presence.syncing = false;
            match result {
                Ok(viewers) => {
                    let moved = viewers != act.presence.shown;
                    if moved {
                        act.presence.shown = viewers;
                    }
                    let mut to = act
                        .members
                        .values_mut()
                        .filter(|m| !m.stale && (moved || !m.told_presence))
                        .peekable();
                    if to.peek().is_some() {
                        let frame = OutFrame::text(&protocol::presence_frame(
                            act.customer_id,
                            &act.presence.shown,
                        ));
                        for member in to {
                            deliver(member, &frame);
                            member.told_presence = true;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "presence sync failed; the next refresh retries")
                }
            }
            if act.presence.changed || std::mem::take(&mut act.presence.again) {
                // A burst of joins is announced a few times a second, not once per join to
                // every viewer (which costs the square of the room's size).
                act.presence.syncing = true;
                ctx.run_later(PRESENCE_SETTLE, |act, ctx| {
                    act.presence.syncing = false;
                    act.sync_presence(ctx);
                });
            }
        }));
    }

    /// Retries the subscription, offers stale sessions their snapshot, and recomputes if an
    /// event was missed; comes back within `SOON` while something still waits.
    fn look(&mut self, ctx: &mut Context<Self>) {
        if !self.subscribed {
            self.subscribe(ctx);
        }
        self.refresh_stale();
        self.schedule(ctx);
        self.look_soon_if_waiting(ctx);
    }

    fn look_soon_if_waiting(&mut self, ctx: &mut Context<Self>) {
        let waiting = !self.subscribed || self.members.values().any(|m| m.stale);
        if waiting && !self.looking_soon {
            self.looking_soon = true;
            ctx.run_later(SOON, |act, ctx| {
                act.looking_soon = false;
                act.look(ctx);
            });
        }
    }

    /// Stale sessions get a fresh snapshot as soon as their queue has room.
    fn refresh_stale(&mut self) {
        let stale: Vec<(u64, ProjectionKey)> = self
            .members
            .iter()
            .filter(|(_, m)| m.stale)
            .map(|(id, m)| (*id, m.key.clone()))
            .collect();
        for (id, key) in stale {
            let Some(frame) = self.snapshot_of(&key) else {
                continue;
            };
            let customer_id = self.customer_id;
            if let Some(member) = self.members.get_mut(&id)
                && member.out.capacity() >= 2
            {
                let notice = protocol::error_frame(
                    ErrorCode::SlowConsumer,
                    "you fell behind: pending deltas were dropped, a fresh snapshot follows",
                    Some(customer_id),
                );
                if member.out.try_send(OutFrame::text(&notice)).is_ok()
                    && member.out.try_send(OutFrame::text(&frame)).is_ok()
                {
                    member.stale = false;
                }
            }
        }
        self.members.retain(|_, m| !m.out.is_closed());
    }
}

/// Queues a frame without waiting; a full queue makes the session stale (slow consumer).
fn deliver(member: &mut Member, frame: &OutFrame) {
    match member.out.try_send(frame.clone()) {
        Ok(()) => metrics::counter!("hub_frames_sent_total").increment(1),
        Err(TrySendError::Full(_)) => {
            member.stale = true;
            metrics::counter!("hub_slow_consumers_total").increment(1);
        }
        Err(TrySendError::Closed(_)) => {}
    }
}

impl Actor for CustomerHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        metrics::gauge!("hubs").increment(1.0);
        self.subscribe(ctx);
        ctx.run_interval(presence::REFRESH, |act, ctx| act.sync_presence(ctx));
        ctx.run_interval(TICK, |act, ctx| act.look(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        metrics::gauge!("hubs").decrement(1.0);
    }
}

/// A session starts watching; it gets a snapshot, or the deltas it missed since `since`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub session_id: u64,
    pub viewer_id: String,
    pub viewer_name: String,
    pub role: Role,
    pub since: Option<Since>,
    pub out: Outgoing,
}

impl Handler<Join> for CustomerHub {
    type Result = ();
    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) {
        self.members.remove(&join.session_id);
        self.admit(join);
        self.sync_presence(ctx);
    }
}

/// A session stops watching.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub session_id: u64,
}

impl Handler<Leave> for CustomerHub {
    type Result = ();
    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) {
        if self.members.remove(&msg.session_id).is_some() {
            self.drop_unwatched();
            let field = self.field(msg.session_id);
            self.presence.gone.push(field);
            self.presence.changed = true;
            self.sync_presence(ctx);
        }
    }
}

/// A viewer says what they are doing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetActivity {
    pub session_id: u64,
    pub activity: Activity,
}

impl Handler<SetActivity> for CustomerHub {
    type Result = ();
    fn handle(&mut self, msg: SetActivity, ctx: &mut Context<Self>) {
        if let Some(member) = self.members.get_mut(&msg.session_id)
            && member.viewer.activity != msg.activity
        {
            member.viewer.activity = msg.activity;
            self.presence.changed = true;
            self.sync_presence(ctx);
        }
    }
}

/// Another node announced a presence change for this customer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceChanged;

impl Handler<PresenceChanged> for CustomerHub {
    type Result = ();
    fn handle(&mut self, _: PresenceChanged, ctx: &mut Context<Self>) {
        self.sync_presence(ctx);
    }
}

/// A session asks for a fresh snapshot (it saw a gap or an epoch change).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync {
    pub session_id: u64,
}

impl Handler<Resync> for CustomerHub {
    type Result = ();
    fn handle(&mut self, msg: Resync, _: &mut Context<Self>) {
        let Some(key) = self.members.get(&msg.session_id).map(|m| m.key.clone()) else {
            return;
        };
        if let Some(frame) = self.snapshot_of(&key)
            && let Some(member) = self.members.get_mut(&msg.session_id)
        {
            member.stale = false;
            deliver(member, &OutFrame::text(&frame));
        }
    }
}

/// Change events of this customer, from the bus.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Events(pub Vec<ChangeEvent>);

impl Handler<Events> for CustomerHub {
    type Result = ();
    fn handle(&mut self, msg: Events, ctx: &mut Context<Self>) {
        let (known, fresh): (Vec<ChangeEvent>, Vec<ChangeEvent>) = msg
            .0
            .into_iter()
            .partition(|e| self.applied.contains_key(&e.event_id));
        metrics::counter!("hub_events_already_applied_total").increment(known.len() as u64);
        self.pending.extend(fresh);
        self.schedule(ctx);
    }
}

/// Events may have been missed (the bus reconnected): recompute everything.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecomputeAll;

impl Handler<RecomputeAll> for CustomerHub {
    type Result = ();
    fn handle(&mut self, _: RecomputeAll, ctx: &mut Context<Self>) {
        self.pending_all = true;
        self.schedule(ctx);
    }
}

/// The current view for a masking class, if loaded (the HTTP 360 route serves it when a hub
/// for the customer lives on this node).
#[derive(Message)]
#[rtype(result = "Option<Value>")]
pub struct CurrentView {
    pub masking: Masking,
}

impl Handler<CurrentView> for CustomerHub {
    type Result = Option<Value>;
    fn handle(&mut self, msg: CurrentView, _: &mut Context<Self>) -> Option<Value> {
        if !self.subscribed || self.recomputing || self.pending_all || !self.pending.is_empty() {
            return None;
        }
        let clear = Projection::to_value(self.clear.as_ref()?).ok()?;
        view::mask_json(&clear, msg.masking).ok()
    }
}

/// The registry retires the hub (its last session left a grace period ago).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for CustomerHub {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        let gone = std::mem::take(&mut self.presence.gone);
        let (redis, prefix, customer_id) = (
            self.presence.redis.clone(),
            self.presence.prefix.clone(),
            self.customer_id,
        );
        let cleanup =
            async move { presence::sync(&redis, &prefix, customer_id, &[], &gone, true).await };
        ctx.wait(cleanup.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}
