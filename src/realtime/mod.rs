//! Live push: the outbox relay publishes `change_events` to Redis (invalidating cached views and
//! scheduling derived-state recomputation on the way); each node's `RedisBus` receives the
//! events of the customers it has hubs for and hands them through the `HubRegistry` to the
//! `CustomerHub`s, which recompute the affected slices and send versioned JSON-Patch deltas to
//! every `DashboardSession` watching.

pub mod diff;
pub mod event;
pub mod held;
pub mod hub;
pub mod outbox_relay;
pub mod outgoing;
pub mod presence;
pub mod projection;
pub mod protocol;
pub mod redis_bus;
pub mod registry;
pub mod session;
