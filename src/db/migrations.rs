//! The migrations in `migrations/`, embedded in the binary and applied by `migrate` and on
//! `serve` start. Several nodes starting at once take turns through an advisory lock.

use anyhow::{Context, anyhow};
use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the advisory lock held while migrating ("c360mig" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_3336_306d_6967;

/// Applies pending migrations; returns the versions it applied.
pub async fn run(database_url: &str) -> anyhow::Result<Vec<String>> {
    let url = database_url.to_owned();
    // The sync harness over the async connection must not run on the async runtime's thread.
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .with_context(|| format!("cannot connect to {}", super::url::redact(&url)))?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| anyhow!("migration failed: {e}"));
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .execute(&mut conn)?;
        applied
    })
    .await
    .context("migration task panicked")?
}
