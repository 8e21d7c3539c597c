//! The WebSocket protocol (DESIGN.md): what clients send, and the frames the server sends,
//! each serialised once and shared by every session that receives it.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Largest client frame accepted; bigger ones get an `error` frame.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Most customers one session may watch at once.
pub const MAX_SUBSCRIPTIONS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    pub epoch: String,
    pub version: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Subscribe {
        customer_id: i64,
        since: Option<Since>,
    },
    Unsubscribe {
        customer_id: i64,
    },
    Resync {
        customer_id: i64,
    },
    Presence {
        customer_id: i64,
        activity: Activity,
    },
    Ping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Viewing,
    TypingNote,
}

/// The `code` of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Forbidden,
    NotFound,
    BadRequest,
    TooManySubscriptions,
    SlowConsumer,
    Unavailable,
}

impl ErrorCode {
    fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

pub fn error_frame(code: ErrorCode, message: &str, customer_id: Option<i64>) -> ByteString {
    json!({"type": "error", "code": code.as_str(), "message": message, "customer_id": customer_id})
        .to_string()
        .into()
}

pub fn pong_frame() -> ByteString {
    ByteString::from_static(r#"{"type":"pong"}"#)
}

/// `head` (an object) with one more field, `field`, whose JSON text `write` appends: for
/// parts that are already JSON text and need not be parsed and serialised again.
fn with_raw_field(
    head: serde_json::Value,
    field: &str,
    capacity: usize,
    write: impl FnOnce(&mut String),
) -> ByteString {
    let head = head.to_string();
    let mut out = String::with_capacity(head.len() + field.len() + capacity + 8);
    // `head` is an object: reopen it before its closing brace.
    out.push_str(&head[..head.len() - 1]);
    out.push(',');
    out.push_str(&serde_json::Value::from(field).to_string());
    out.push(':');
    write(&mut out);
    out.push('}');
    out.into()
}

/// A snapshot from the view's slices, each already JSON text: written out, not re-serialised.
pub fn snapshot_frame<'a>(
    customer_id: i64,
    epoch: &str,
    version: u64,
    slices: impl Iterator<Item = (&'a str, &'a str)>,
) -> ByteString {
    let head =
        json!({"type": "snapshot", "customer_id": customer_id, "epoch": epoch, "version": version});
    with_raw_field(head, "view", 16 * 1024, |out| {
        out.push('{');
        for (i, (name, text)) in slices.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::from(name).to_string());
            out.push(':');
            out.push_str(text);
        }
        out.push('}');
    })
}

/// One change event behind a delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub event_id: uuid::Uuid,
    pub kind: String,
    pub entity_id: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl From<crate::realtime::event::ChangeEvent> for Cause {
    fn from(e: crate::realtime::event::ChangeEvent) -> Cause {
        Cause {
            event_id: e.event_id,
            kind: e.kind,
            entity_id: e.entity_id,
            at: e.at,
        }
    }
}

/// An event a reload found already in its snapshot.
impl From<crate::view::Committed> for Cause {
    fn from(c: crate::view::Committed) -> Cause {
        Cause {
            event_id: c.event_id,
            kind: c.kind,
            entity_id: c.entity_id,
            at: c.at,
        }
    }
}

/// A delta; `ops` are the patch's operations, already JSON text and comma-separated.
pub fn delta_frame(
    customer_id: i64,
    epoch: &str,
    version: u64,
    ops: &str,
    causes: &[Cause],
) -> ByteString {
    let head = json!({
        "type": "delta", "customer_id": customer_id, "epoch": epoch, "version": version,
        "base_version": version - 1, "causes": causes,
    });
    with_raw_field(head, "patch", ops.len() + 2, |out| {
        out.push('[');
        out.push_str(ops);
        out.push(']');
    })
}

/// The message types a client may send.
const CLIENT_TYPES: [&str; 5] = ["subscribe", "unsubscribe", "resync", "presence", "ping"];

/// Why a client frame was refused, and the customer it named, if it named one.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub why: String,
    pub customer_id: Option<i64>,
}

/// Parses a client frame, naming what is wrong: an unknown `type` apart from a known message
/// with a bad field (an unknown presence `activity`, say).
pub fn parse(text: &str) -> Result<ClientMessage, Refused> {
    let refused = |why: String, customer_id: Option<i64>| Refused { why, customer_id };
    if text.len() > MAX_CLIENT_FRAME {
        return Err(refused(
            format!(
                "frame of {} bytes exceeds the {MAX_CLIENT_FRAME}-byte limit",
                text.len()
            ),
            None,
        ));
    }
    let frame: Value =
        serde_json::from_str(text).map_err(|e| refused(format!("malformed message: {e}"), None))?;
    let customer_id = frame.get("customer_id").and_then(Value::as_i64);
    let kind = frame.get("type").and_then(Value::as_str).map(str::to_owned);
    match kind.as_deref() {
        None => Err(refused(
            "malformed message: a message is a JSON object with a string \"type\"".to_owned(),
            customer_id,
        )),
        Some(kind) if !CLIENT_TYPES.contains(&kind) => Err(refused(
            format!(
                "unknown message type '{kind}' (expected {})",
                CLIENT_TYPES.join(", ")
            ),
            customer_id,
        )),
        Some(kind) => serde_json::from_value(frame)
            .map_err(|e| refused(format!("malformed {kind} message: {e}"), customer_id)),
    }
}

pub fn presence_frame(
    customer_id: i64,
    viewers: &[crate::realtime::presence::Viewer],
) -> ByteString {
    json!({"type": "presence", "customer_id": customer_id, "viewers": viewers})
        .to_string()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_designed_messages() {
        assert!(matches!(
            parse(r#"{"type":"subscribe","customer_id":42,"since":{"epoch":"e","version":17}}"#),
            Ok(ClientMessage::Subscribe {
                customer_id: 42,
                since: Some(Since { version: 17, .. })
            })
        ));
        assert!(matches!(
            parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        ));
        assert!(matches!(
            parse(r#"{"type":"presence","customer_id":1,"activity":"typing_note"}"#),
            Ok(ClientMessage::Presence {
                activity: Activity::TypingNote,
                ..
            })
        ));
        assert!(
            parse(r#"{"type":"dance"}"#)
                .unwrap_err()
                .why
                .contains("unknown message type 'dance'")
        );
        let refused =
            parse(r#"{"type":"presence","customer_id":7,"activity":"dancing"}"#).unwrap_err();
        assert!(
            refused
                .why
                .starts_with("malformed presence message: unknown variant `dancing`"),
            "{refused:?}"
        );
        assert_eq!(refused.customer_id, Some(7));
        assert!(parse("not json").unwrap_err().why.contains("malformed"));
        // Every listed type is one the protocol parses (the list names them for errors).
        for kind in CLIENT_TYPES {
            let refused = parse(&json!({"type": kind}).to_string()).err();
            assert!(
                refused
                    .as_ref()
                    .is_none_or(|r| r.why.starts_with(&format!("malformed {kind} message"))),
                "{kind}: {refused:?}"
            );
        }
        assert!(parse("[1]").unwrap_err().why.contains("\"type\""));
        assert!(
            parse(&" ".repeat(MAX_CLIENT_FRAME + 1))
                .unwrap_err()
                .why
                .contains("exceeds")
        );
    }
}
