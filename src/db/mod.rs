//! PostgreSQL: the schema as diesel sees it, the enum types, the pool, the embedded migrations
//! and the creation of a missing database.

pub mod enums;
pub mod migrations;
pub mod pool;
pub mod prepared;
pub mod schema;
pub mod search;
pub mod tags;
pub mod url;

pub use pool::{DbConn, DbPool};
