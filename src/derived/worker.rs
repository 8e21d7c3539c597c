//! The derived-state worker: recomputes the customers the outbox relay hands over, a few at a
//! time and never one customer twice at once. The relay waits for them (within a bound) before
//! it publishes their changes, so a dashboard's one reload shows a change together with the
//! health, churn and segments that follow from it.

use std::collections::{HashMap, hash_map};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Semaphore;

use crate::db::DbPool;

/// Recomputations started and not finished before the worker starts dropping (and counting)
/// customers handed to it: under an overload it falls behind, but its memory does not grow.
pub const QUEUE: usize = 10_000;
/// Recomputations running at once. They share the pool with the hubs' reloads: when
/// PostgreSQL is the bottleneck the derived state lags (and is not waited for, see
/// `keeping_up`) rather than the dashboards. Tried: a pool of the worker's own, with which it
/// kept up at 300 changes/s and took so much of PostgreSQL that a fifth of the deliveries came
/// later than 10 s.
const CONCURRENCY: usize = 2;

/// One recomputation of one customer; every request it answers awaits a clone.
type Run = Shared<BoxFuture<'static, ()>>;

/// A customer's recomputations: at most one running and one waiting.
#[derive(Default)]
struct Turns {
    /// Held by the running one: two at once could both append the same history row.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// The one waiting for its turn. It has read nothing yet, so it also covers every change
    /// handed over meanwhile: those join it rather than queue one more each (behind, a customer
    /// changed five times is recomputed once or twice, not five times).
    waiting: Option<Run>,
}

#[derive(Clone)]
pub struct DerivedWorker {
    pool: DbPool,
    permits: Arc<Semaphore>,
    outstanding: Arc<AtomicUsize>,
    customers: Arc<Mutex<HashMap<i64, Turns>>>,
}

impl DerivedWorker {
    pub fn new(pool: DbPool) -> DerivedWorker {
        DerivedWorker {
            pool,
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
            outstanding: Arc::new(AtomicUsize::new(0)),
            customers: Arc::default(),
        }
    }

    /// Recomputations started and not finished, running or waiting.
    pub fn pending(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Whether the worker is keeping up: no more recomputations pending than it runs at once.
    /// Behind, it is not waited for — under an overload, changes reach dashboards first and
    /// their derived state follows (a second reload), instead of everything waiting for it.
    pub fn keeping_up(&self) -> bool {
        self.pending() <= CONCURRENCY
    }

    /// Has each of `customers` recomputed from a read that starts after this call; the future
    /// returned ends when all of them have been. Dropping it leaves them running.
    pub fn recompute(&self, customers: impl IntoIterator<Item = i64>) -> impl Future<Output = ()> {
        let runs: Vec<Run> = customers
            .into_iter()
            .filter_map(|customer| self.request(customer))
            .collect();
        async move {
            for run in runs {
                run.await;
            }
        }
    }

    /// The customer's waiting recomputation, or a new one (none when `QUEUE` are pending).
    fn request(&self, customer: i64) -> Option<Run> {
        let mut map = self.lock_map();
        if let Some(waiting) = map.get(&customer).and_then(|turns| turns.waiting.as_ref()) {
            metrics::counter!("derived_recompute_folded_total").increment(1);
            return Some(waiting.clone());
        }
        if self.outstanding.fetch_add(1, Ordering::AcqRel) >= QUEUE {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("derived_recompute_dropped_total").increment(1);
            return None;
        }
        let turns = map.entry(customer).or_default();
        // Its own task: a recomputation that panics ends that task, not the relay awaiting it.
        let task = actix_web::rt::spawn(self.clone().one(customer, turns.lock.clone()));
        let run = async move {
            let _ = task.await;
        }
        .boxed()
        .shared();
        turns.waiting = Some(run.clone());
        Some(run)
    }

    async fn one(self, customer: i64, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut done = Done {
            worker: &self,
            customer,
            lock,
            reading: false,
        };
        let _turn = done.lock.lock().await;
        // unwrap: no permit is ever closed; the semaphore lives as long as the worker.
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        // From here on it reads: a change handed over from now needs a run of its own.
        if let Some(turns) = self.lock_map().get_mut(&customer) {
            turns.waiting = None;
        }
        done.reading = true;
        self.run(customer).await;
    }

    async fn run(&self, customer: i64) {
        let result = match self.pool.get().await {
            Ok(mut conn) => super::recompute_customer(&mut conn, customer, Utc::now())
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => metrics::counter!("derived_recomputed_total").increment(1),
            Err(e) => {
                metrics::counter!("derived_recompute_failed_total").increment(1);
                tracing::warn!(customer, error = %format!("{e:#}"), "derived state recompute failed");
            }
        }
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Turns>> {
        // A panic while holding this lock cannot leave the map inconsistent: take it anyway.
        self.customers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A recomputation's end, however it ends (finished, panicked, or its task dropped at shutdown):
/// it stops counting as pending, and a customer with nothing running or waiting leaves the map.
struct Done<'a> {
    worker: &'a DerivedWorker,
    customer: i64,
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Whether it got its turn; until then it is the customer's waiting recomputation.
    reading: bool,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let mut map = self.worker.lock_map();
        if let hash_map::Entry::Occupied(mut turns) = map.entry(self.customer) {
            if !self.reading {
                turns.get_mut().waiting = None;
            }
            // Only the map's handle of the lock and this one left, and nothing waiting: the
            // customer is done (handles are cloned under the map's lock, so none can appear
            // meanwhile).
            if turns.get().waiting.is_none() && Arc::strong_count(&self.lock) == 2 {
                turns.remove();
            }
        }
        self.worker.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}
