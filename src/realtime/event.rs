//! A change event as published on `c360:customer:{id}` (DESIGN.md, "Change events on Redis").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub event_id: uuid::Uuid,
    pub customer_id: i64,
    /// order, loyalty, ticket, marketing, session, note, tag, segment, profile (others are
    /// accepted and recompute the whole view).
    pub kind: String,
    /// created, updated, deleted
    pub op: String,
    pub entity_id: String,
    pub at: DateTime<Utc>,
    /// `outbox` when relayed from the database, `external` from other producers.
    #[serde(default = "external")]
    pub source: String,
}

impl From<&ChangeEvent> for crate::view::Committed {
    fn from(e: &ChangeEvent) -> Self {
        crate::view::Committed {
            event_id: e.event_id,
            kind: e.kind.clone(),
            op: e.op.clone(),
            entity_id: e.entity_id.clone(),
            at: e.at,
        }
    }
}

fn external() -> String {
    "external".to_owned()
}

/// The channel of one customer's events.
pub fn channel(prefix: &str, customer_id: i64) -> String {
    format!("{prefix}:customer:{customer_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_the_design() {
        let json = r#"{"event_id":"6f1c1f8e-1d2b-4a39-9a7e-2f5d7c1e9b10","customer_id":42,"kind":"order","op":"created","entity_id":"123","at":"2026-11-24T19:00:00.123Z","source":"outbox"}"#;
        let e: ChangeEvent = serde_json::from_str(json).unwrap();
        assert_eq!(
            (e.customer_id, e.kind.as_str(), e.source.as_str()),
            (42, "order", "outbox")
        );
        let back: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(back["at"], "2026-11-24T19:00:00.123Z");
        assert_eq!(channel("c360", 42), "c360:customer:42");
    }
}
