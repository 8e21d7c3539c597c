//! The platform's side of a run: changes written straight into Postgres at a steady rate
//! (the same writes and mix as `customer360 simulate`), each in its own transaction, with the
//! change events it emitted reported to the collector the moment its commit returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use customer360::db::DbPool;
use customer360::simulate;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{Mutex, Semaphore};

use crate::Args;
use crate::collector::{Collector, Msg};

/// What the writer did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub written: u64,
    pub failed: u64,
    /// Writes that started more than 100 ms after their slot (the writers could not keep up).
    pub behind_schedule: u64,
    /// Commit time as the writer saw it (BEGIN to COMMIT returned), µs.
    pub write_p50_us: u64,
    pub write_p99_us: u64,
    pub first_error: Option<String>,
}

pub async fn run(args: &Args, pool: &DbPool, customers: &[i64], collector: Collector) -> Written {
    let total = args.total_changes();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let permits = Arc::new(Semaphore::new(args.writers));
    // unwrap: 1 µs to 60 s at 3 significant digits is a valid histogram.
    let timing = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    ));
    let failures = Arc::new(Mutex::new((0u64, None::<String>)));
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut behind = 0;
    let mut tasks = Vec::with_capacity(total as usize);
    let start = tokio::time::Instant::now();
    for i in 0..total {
        let slot = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(slot).await;
        // unwrap: the semaphore is never closed.
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("writer semaphore");
        if slot.elapsed() > Duration::from_millis(100) {
            behind += 1;
        }
        let customer = customers[rng.random_range(0..customers.len())];
        let (change, amount) = simulate::pick(&mut rng);
        let (pool, collector, timing, failures) = (
            pool.clone(),
            collector.clone(),
            timing.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let result = async {
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                let started = Instant::now();
                let events = simulate::write(&mut conn, change, customer, amount)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((started, events))
            }
            .await;
            match result {
                Ok((started, events)) => {
                    let committed = Instant::now();
                    collector.send(Msg::Write {
                        customer,
                        events,
                        started,
                        committed,
                    });
                    let us = committed.duration_since(started).as_micros() as u64;
                    timing.lock().await.saturating_record(us.max(1));
                    true
                }
                Err(e) => {
                    let mut f = failures.lock().await;
                    f.0 += 1;
                    f.1.get_or_insert(e);
                    false
                }
            }
        }));
    }
    let mut written = 0;
    for t in tasks {
        if matches!(t.await, Ok(true)) {
            written += 1;
        }
    }
    let timing = timing.lock().await;
    let failures = failures.lock().await;
    Written {
        written,
        failed: failures.0,
        behind_schedule: behind,
        write_p50_us: timing.value_at_quantile(0.5),
        write_p99_us: timing.value_at_quantile(0.99),
        first_error: failures.1.clone(),
    }
}
