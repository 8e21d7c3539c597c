//! PostgreSQL: the schema as diesel sees it, the enum types, the pool, the embedded migrations,
//! the creation of a missing database, and the statistics of the tables the server fills.

pub mod enums;
pub mod migrations;
pub mod pool;
pub mod prepared;
pub mod schema;
pub mod search;
pub mod statistics;
pub mod tags;
pub mod url;

pub use pool::{DbConn, DbPool};
