//! The derived-state worker: recomputes customers handed over by the outbox relay, one at a
//! time, folding repeats that queued up meanwhile into one recomputation.

use std::collections::BTreeSet;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::db::DbPool;

/// Customers waiting for recomputation before the relay starts dropping (and counting) them.
pub const QUEUE: usize = 10_000;
/// Most customers taken off the queue at once.
const FOLD: usize = 256;

pub async fn run(pool: DbPool, mut queue: mpsc::Receiver<i64>) {
    while let Some(first) = queue.recv().await {
        let mut batch = BTreeSet::from([first]);
        while batch.len() < FOLD {
            match queue.try_recv() {
                Ok(more) => {
                    batch.insert(more);
                }
                Err(_) => break,
            }
        }
        for customer in batch {
            let result = match pool.get().await {
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
    }
}
