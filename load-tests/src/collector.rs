//! Matches every write to the deliveries it should cause: a write is expected at each session
//! that held its customer's snapshot before the write began (slow sessions excepted), and is
//! delivered there by the first delta naming one of the write's change events as a cause.
//! Latency runs from the write's commit (as its client saw it) to the delta's arrival.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Plan;

pub enum Msg {
    /// The session received a snapshot: it is watching (or starts over after a gap).
    Snapshot { session: u32, at: Instant },
    /// A delta reached the session.
    Delta {
        session: u32,
        causes: Vec<Uuid>,
        at: Instant,
    },
    /// The session ended for good (closed by the server, or it could not reconnect).
    Gone { session: u32 },
    /// A write committed, with the change events it emitted.
    Write {
        customer: i64,
        events: Vec<Uuid>,
        started: Instant,
        committed: Instant,
    },
}

/// The handle sessions and writers report through.
#[derive(Clone)]
pub struct Collector {
    tx: mpsc::UnboundedSender<Msg>,
    clock: Arc<OnceLock<Instant>>,
    outstanding: Arc<AtomicI64>,
    /// Messages sent and not yet taken into account: a write the collector has not seen yet
    /// is not outstanding yet either.
    unread: Arc<AtomicI64>,
    /// Nanoseconds after the clock's start of the last delta seen.
    last_delta: Arc<AtomicU64>,
}

impl Collector {
    pub fn send(&self, msg: Msg) {
        self.unread.fetch_add(1, Ordering::AcqRel);
        // The collector outlives every sender; a send can fail only once the run is over.
        if self.tx.send(msg).is_err() {
            self.unread.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The instant the writes begin: per-second figures count from it.
    pub fn start_clock(&self, at: Instant) {
        let _ = self.clock.set(at);
    }

    /// Waits until every expected delivery arrived, or `max`. Writes reported but not yet
    /// read by the collector count as expected: without that, a run's last write could be
    /// found missing because the sessions were closed before it was even counted.
    pub async fn drain(&self, max: Duration) {
        let deadline = Instant::now() + max;
        while (self.outstanding.load(Ordering::Acquire) > 0
            || self.unread.load(Ordering::Acquire) > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no delta arrived for `quiet`, or `max`.
    pub async fn quiesce(&self, quiet: Duration, max: Duration) {
        let Some(start) = self.clock.get().copied() else {
            return;
        };
        let deadline = Instant::now() + max;
        while Instant::now() < deadline {
            let last = start + Duration::from_nanos(self.last_delta.load(Ordering::Acquire));
            if last.elapsed() >= quiet {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct WriteRec {
    customer: i64,
    events: Vec<Uuid>,
    committed: Instant,
    remaining: Vec<u32>,
}

/// What the collector found.
#[derive(Debug)]
pub struct Outcome {
    /// Delivery latency in microseconds, deliveries within the loss timeout only.
    pub latency: Histogram<u64>,
    /// (seconds since the writes began, latency in µs) of every timed delivery.
    pub series: Vec<(f32, u32)>,
    pub writes: u64,
    pub no_op_writes: u64,
    pub expected: u64,
    pub delivered: u64,
    /// Received, but later than the loss timeout (counted as lost).
    pub late: u64,
    /// Never received.
    pub missing: u64,
    /// Replaced by a fresh snapshot (after a gap or a reconnect that could not resume).
    pub covered_by_snapshot: u64,
    /// Every delta frame received, whatever caused it (derived updates too).
    pub delta_frames: u64,
    pub snapshots: u64,
    pub sessions_gone: u64,
    /// A few of the writes that never arrived, for diagnosis.
    pub missing_examples: Vec<String>,
    /// Deliveries that arrived before the writer saw its commit return (timed as 1 µs).
    pub negative_clock: u64,
}

impl Outcome {
    pub fn lost(&self) -> u64 {
        self.late + self.missing
    }
}

pub struct Collected {
    task: tokio::task::JoinHandle<Outcome>,
}

impl Collected {
    /// Ends the collection once every handle but `last` is gone, and returns the figures.
    pub async fn finish(self, last: Collector) -> Outcome {
        drop(last);
        // unwrap: the collector task does not panic (no indexing past bounds, no unwraps).
        self.task.await.expect("collector task")
    }
}

pub fn start(plans: &[Plan], loss_timeout: u64) -> (Collector, Collected) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = Collector {
        tx,
        clock: Arc::new(OnceLock::new()),
        outstanding: Arc::new(AtomicI64::new(0)),
        unread: Arc::new(AtomicI64::new(0)),
        last_delta: Arc::new(AtomicU64::new(0)),
    };
    let mut sessions_of: HashMap<i64, Vec<u32>> = HashMap::new();
    for p in plans {
        sessions_of.entry(p.customer).or_default().push(p.index);
    }
    let state = State {
        sessions_of,
        slow: plans.iter().map(|p| p.slow).collect(),
        ready_at: vec![None; plans.len()],
        open: vec![Vec::new(); plans.len()],
        writes: Vec::new(),
        by_event: HashMap::new(),
        early: HashMap::new(),
        loss_timeout: Duration::from_secs(loss_timeout),
        clock: handle.clock.clone(),
        outstanding: handle.outstanding.clone(),
        unread: handle.unread.clone(),
        last_delta: handle.last_delta.clone(),
        outcome: Outcome {
            // unwrap: 1 µs to 1 h at 3 significant digits is a valid histogram.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"),
            series: Vec::new(),
            writes: 0,
            no_op_writes: 0,
            expected: 0,
            delivered: 0,
            late: 0,
            missing: 0,
            covered_by_snapshot: 0,
            delta_frames: 0,
            snapshots: 0,
            sessions_gone: 0,
            missing_examples: Vec::new(),
            negative_clock: 0,
        },
    };
    let task = tokio::spawn(state.run(rx));
    (handle, Collected { task })
}

struct State {
    sessions_of: HashMap<i64, Vec<u32>>,
    slow: Vec<bool>,
    ready_at: Vec<Option<Instant>>,
    /// Per session, the writes it still waits for.
    open: Vec<Vec<usize>>,
    writes: Vec<WriteRec>,
    by_event: HashMap<Uuid, usize>,
    /// Deltas whose causes were not known yet (their write's commit was not reported, or they
    /// were caused by someone else, e.g. the derived-score worker).
    early: HashMap<Uuid, Vec<(u32, Instant)>>,
    loss_timeout: Duration,
    clock: Arc<OnceLock<Instant>>,
    outstanding: Arc<AtomicI64>,
    unread: Arc<AtomicI64>,
    last_delta: Arc<AtomicU64>,
    outcome: Outcome,
}

impl State {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> Outcome {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Snapshot { session, at } => self.snapshot(session, at),
                Msg::Delta {
                    session,
                    causes,
                    at,
                } => self.delta(session, &causes, at),
                Msg::Gone { session } => self.gone(session),
                Msg::Write {
                    customer,
                    events,
                    started,
                    committed,
                } => self.write(customer, events, started, committed),
            }
            self.unread.fetch_sub(1, Ordering::AcqRel);
        }
        for w in &self.writes {
            self.outcome.missing += w.remaining.len() as u64;
            if !w.remaining.is_empty() && self.outcome.missing_examples.len() < 5 {
                self.outcome.missing_examples.push(format!(
                    "customer {}: events {:?} never reached sessions {:?}",
                    w.customer, w.events, w.remaining
                ));
            }
        }
        self.outcome
    }

    fn snapshot(&mut self, session: u32, at: Instant) {
        self.outcome.snapshots += 1;
        let s = session as usize;
        if self.ready_at[s].is_none() {
            self.ready_at[s] = Some(at);
            return;
        }
        // A fresh snapshot shows every write committed before it.
        let open = std::mem::take(&mut self.open[s]);
        let mut keep = Vec::new();
        for w in open {
            let write = &mut self.writes[w];
            if write.committed <= at {
                write.remaining.retain(|x| *x != session);
                self.outcome.covered_by_snapshot += 1;
                self.outstanding.fetch_sub(1, Ordering::AcqRel);
            } else {
                keep.push(w);
            }
        }
        self.open[s] = keep;
    }

    fn gone(&mut self, session: u32) {
        self.outcome.sessions_gone += 1;
        self.ready_at[session as usize] = None;
    }

    fn delta(&mut self, session: u32, causes: &[Uuid], at: Instant) {
        self.outcome.delta_frames += 1;
        if let Some(start) = self.clock.get() {
            self.last_delta.store(
                at.saturating_duration_since(*start).as_nanos() as u64,
                Ordering::Release,
            );
        }
        for event in causes {
            match self.by_event.get(event) {
                Some(&w) => self.deliver(w, session, at),
                None => self.early.entry(*event).or_default().push((session, at)),
            }
        }
    }

    fn write(&mut self, customer: i64, events: Vec<Uuid>, started: Instant, committed: Instant) {
        self.outcome.writes += 1;
        if events.is_empty() {
            self.outcome.no_op_writes += 1;
            return;
        }
        let expected: Vec<u32> = self
            .sessions_of
            .get(&customer)
            .into_iter()
            .flatten()
            .copied()
            .filter(|s| {
                !self.slow[*s as usize] && self.ready_at[*s as usize].is_some_and(|r| r <= started)
            })
            .collect();
        let w = self.writes.len();
        for s in &expected {
            self.open[*s as usize].push(w);
        }
        self.outcome.expected += expected.len() as u64;
        self.outstanding
            .fetch_add(expected.len() as i64, Ordering::AcqRel);
        self.writes.push(WriteRec {
            customer,
            events: events.clone(),
            committed,
            remaining: expected,
        });
        for e in events {
            self.by_event.insert(e, w);
            if let Some(arrivals) = self.early.remove(&e) {
                for (session, at) in arrivals {
                    self.deliver(w, session, at);
                }
            }
        }
    }

    fn deliver(&mut self, w: usize, session: u32, at: Instant) {
        let write = &mut self.writes[w];
        let Some(pos) = write.remaining.iter().position(|s| *s == session) else {
            return;
        };
        write.remaining.swap_remove(pos);
        self.open[session as usize].retain(|x| *x != w);
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        if at < write.committed {
            // The relay can beat the writer's own view of its commit by a hair.
            self.outcome.negative_clock += 1;
        }
        let latency = at.saturating_duration_since(write.committed);
        if latency > self.loss_timeout {
            self.outcome.late += 1;
            return;
        }
        self.outcome.delivered += 1;
        let us = (latency.as_micros() as u64).max(1);
        // Values above the histogram's bound are clamped by `saturating_record`.
        self.outcome.latency.saturating_record(us);
        let since = self
            .clock
            .get()
            .map_or(0.0, |s| at.saturating_duration_since(*s).as_secs_f32());
        self.outcome
            .series
            .push((since, us.min(u64::from(u32::MAX)) as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customer360::domain::roles::Role;

    fn plan(index: u32, customer: i64, slow: bool) -> Plan {
        Plan {
            index,
            customer,
            viewer: format!("v{index}"),
            role: Role::Admin,
            url: String::new(),
            slow,
            keep_view: false,
        }
    }

    #[tokio::test]
    async fn deliveries_are_matched_timed_and_the_missing_ones_counted() {
        let plans = [
            plan(0, 1, false),
            plan(1, 1, false),
            plan(2, 1, true),
            plan(3, 2, false),
        ];
        let (collector, collected) = start(&plans, 10);
        let t0 = Instant::now();
        collector.start_clock(t0);
        for session in 0..4 {
            collector.send(Msg::Snapshot { session, at: t0 });
        }
        let (a, b, derived) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let committed = t0 + Duration::from_millis(5);
        // Session 0 sees the delta before the writer reported its commit; both count.
        collector.send(Msg::Delta {
            session: 0,
            causes: vec![a, derived],
            at: committed + Duration::from_millis(3),
        });
        collector.send(Msg::Write {
            customer: 1,
            events: vec![a, b],
            started: t0 + Duration::from_millis(1),
            committed,
        });
        // A second event of the same write does not count twice.
        collector.send(Msg::Delta {
            session: 0,
            causes: vec![b],
            at: committed + Duration::from_millis(9),
        });
        // Session 1 never gets it; session 2 is slow (not expected); session 3 watches another customer.
        collector.send(Msg::Write {
            customer: 2,
            events: vec![],
            started: t0,
            committed,
        });
        let outcome = collected.finish(collector).await;
        assert_eq!(outcome.writes, 2);
        assert_eq!(outcome.no_op_writes, 1);
        assert_eq!(outcome.expected, 2, "sessions 0 and 1; not the slow one");
        assert_eq!(outcome.delivered, 1);
        assert_eq!(outcome.missing, 1);
        assert_eq!(outcome.lost(), 1);
        assert_eq!(outcome.delta_frames, 2);
        assert_eq!(outcome.latency.len(), 1);
        let ms = outcome.latency.max() as f64 / 1000.0;
        assert!(
            (2.9..3.1).contains(&ms),
            "timed from commit to arrival: {ms} ms"
        );
    }

    #[tokio::test]
    async fn draining_waits_for_a_write_the_collector_has_not_read_yet() {
        let plans = [plan(0, 1, false)];
        let (collector, collected) = start(&plans, 10);
        let t0 = Instant::now();
        collector.start_clock(t0);
        collector.send(Msg::Snapshot { session: 0, at: t0 });
        let event = Uuid::new_v4();
        // Reported, not yet read: this test's runtime has one thread and has not yielded.
        collector.send(Msg::Write {
            customer: 1,
            events: vec![event],
            started: t0 + Duration::from_millis(1),
            committed: t0 + Duration::from_millis(2),
        });
        let sender = collector.clone();
        let sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let delivered = sent.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.send(Msg::Delta {
                session: 0,
                causes: vec![event],
                at: Instant::now(),
            });
            delivered.store(true, Ordering::Release);
        });
        collector.drain(Duration::from_secs(10)).await;
        assert!(
            sent.load(Ordering::Acquire),
            "the drain ended before the write's delivery"
        );
        let outcome = collected.finish(collector).await;
        assert_eq!(
            (outcome.expected, outcome.delivered, outcome.lost()),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn late_deliveries_are_lost_and_a_fresh_snapshot_covers_what_came_before_it() {
        let plans = [plan(0, 1, false), plan(1, 1, false)];
        let (collector, collected) = start(&plans, 1);
        let t0 = Instant::now();
        collector.start_clock(t0);
        collector.send(Msg::Snapshot { session: 0, at: t0 });
        collector.send(Msg::Snapshot { session: 1, at: t0 });
        let e = Uuid::new_v4();
        let committed = t0 + Duration::from_millis(1);
        collector.send(Msg::Write {
            customer: 1,
            events: vec![e],
            started: committed,
            committed,
        });
        collector.send(Msg::Delta {
            session: 0,
            causes: vec![e],
            at: committed + Duration::from_secs(2),
        });
        collector.send(Msg::Snapshot {
            session: 1,
            at: committed + Duration::from_millis(50),
        });
        let outcome = collected.finish(collector).await;
        assert_eq!(
            (outcome.late, outcome.missing, outcome.delivered),
            (1, 0, 0)
        );
        assert_eq!(outcome.covered_by_snapshot, 1);
    }
}
