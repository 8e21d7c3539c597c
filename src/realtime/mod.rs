//! Moving change events: the outbox relay that publishes `change_events` to Redis (and, on the
//! way, invalidates cached views and schedules derived-state recomputation), and the event
//! format on the wire.

pub mod event;
pub mod outbox_relay;
