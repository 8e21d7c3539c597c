//! The derived-state worker: recomputes the customers the outbox relay hands over, a few at a
//! time and never one customer twice at once. The relay waits for them (within a bound) before
//! it publishes their changes, so a dashboard's one reload shows a change together with the
//! health, churn and segments that follow from it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
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

#[derive(Clone)]
pub struct DerivedWorker {
    pool: DbPool,
    permits: Arc<Semaphore>,
    outstanding: Arc<AtomicUsize>,
    /// One lock per customer being recomputed (or waiting to be): two recomputations of the
    /// same customer at once could both append the same history row.
    customers: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
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

    /// Whether the worker is keeping up: no more recomputations pending than it runs at once.
    /// Behind, it is not waited for — under an overload, changes reach dashboards first and
    /// their derived state follows (a second reload), instead of everything waiting for it.
    pub fn keeping_up(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) <= CONCURRENCY
    }

    /// Starts recomputing each of `customers` now; the future returned ends when all of them
    /// have. Dropping it leaves them running.
    pub fn recompute(&self, customers: impl IntoIterator<Item = i64>) -> impl Future<Output = ()> {
        let started: Vec<_> = customers
            .into_iter()
            .filter_map(|customer| {
                if self.outstanding.fetch_add(1, Ordering::AcqRel) >= QUEUE {
                    self.outstanding.fetch_sub(1, Ordering::AcqRel);
                    metrics::counter!("derived_recompute_dropped_total").increment(1);
                    return None;
                }
                Some(actix_web::rt::spawn(self.clone().one(customer)))
            })
            .collect();
        async move {
            for task in started {
                let _ = task.await;
            }
        }
    }

    async fn one(self, customer: i64) {
        let lock = self.lock_map().entry(customer).or_default().clone();
        {
            let _turn = lock.lock().await;
            self.run(customer).await;
        }
        let mut map = self.lock_map();
        // Only the map's handle and this one left: nobody waits for this customer's turn
        // (handles are cloned under the map's lock, so none can appear meanwhile).
        if Arc::strong_count(&lock) == 2 {
            map.remove(&customer);
        }
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    async fn run(&self, customer: i64) {
        // unwrap: no permit is ever closed; the semaphore lives as long as the worker.
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
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

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<tokio::sync::Mutex<()>>>> {
        // A panic while holding this lock cannot leave the map inconsistent: take it anyway.
        self.customers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
