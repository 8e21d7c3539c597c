//! customer360: a Customer 360 service for e-commerce admins. One live page per customer,
//! served over HTTP and WebSocket from PostgreSQL, with Redis carrying change events between
//! nodes. See README.md for the architecture and DESIGN.md for the contract.

pub mod config;
pub mod db;
pub mod derived;
pub mod domain;
pub mod embedded;
pub mod export;
pub mod http;
pub mod realtime;
pub mod redis_link;
pub mod seed;
pub mod simulate;
pub mod startup;
pub mod telemetry;
pub mod view;
