//! The one Postgres pool of a process: built once at start-up with explicit timeouts (deadpool
//! would wait forever) and `statement_timeout` set on every new connection.

use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::config::PoolConfig;

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

pub fn build_pool(database_url: &str, config: &PoolConfig) -> anyhow::Result<DbPool> {
    let statement_timeout_ms = config.db_statement_timeout_ms;
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // A broken connection shows itself on use and is then dropped; checking every checkout with
    // a round trip would tax the hot path for nothing.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            // JIT compiles a plan above a cost threshold (~25 ms for a broad search): a loss
            // for queries that run for milliseconds.
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; SET jit = off"
            ))
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(database_url, manager_config);
    Ok(Pool::builder(manager)
        .max_size(config.db_pool_size)
        .wait_timeout(Some(config.wait_timeout()))
        .create_timeout(Some(config.connect_timeout()))
        .recycle_timeout(Some(config.connect_timeout()))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}
