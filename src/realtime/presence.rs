//! Presence: who is viewing a customer and what they are doing, across nodes. Each hub writes
//! its own sessions into the Redis hash `{prefix}:presence:{customer}` (one field per session,
//! each carrying its own expiry, refreshed every `REFRESH`), announces changes on the channel
//! `{prefix}:presence:{customer}`, and reads the hash back dropping expired entries — so the
//! viewers of a node that crashed vanish within `ENTRY_TTL`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::domain::roles::Role;
use crate::realtime::protocol::Activity;
use crate::redis_link::RedisLink;

/// How long an entry counts without being refreshed.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);
/// How often a hub refreshes its entries and re-reads everyone's.
pub const REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub admin_id: String,
    pub name: String,
    pub role: Role,
    pub activity: Activity,
    pub since: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    viewer: Viewer,
    expires_at: DateTime<Utc>,
}

pub fn key(redis: &RedisLink, customer_id: i64) -> String {
    redis.key(&format!("presence:{customer_id}"))
}

/// The channel that announces presence changes (next to the customer's event channel).
pub fn channel(prefix: &str, customer_id: i64) -> String {
    format!("{prefix}:presence:{customer_id}")
}

/// Writes this hub's viewers (`field → viewer`), removes `gone`, announces the change when
/// asked, and returns everyone's current viewers, sorted by arrival.
pub async fn sync(
    redis: &RedisLink,
    prefix: &str,
    customer_id: i64,
    mine: &[(String, Viewer)],
    gone: &[String],
    announce: bool,
) -> redis::RedisResult<Vec<Viewer>> {
    let mut conn = redis.connection().await?;
    let key = key(redis, customer_id);
    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(ENTRY_TTL).unwrap_or_default();
    let mut pipe = redis::pipe();
    for (field, viewer) in mine {
        // unwrap: a struct of strings, an enum and a timestamp always serialises.
        let json = serde_json::to_string(&Entry {
            viewer: viewer.clone(),
            expires_at,
        })
        .unwrap();
        pipe.hset(&key, field, json).ignore();
    }
    if !gone.is_empty() {
        pipe.hdel(&key, gone).ignore();
    }
    pipe.expire(&key, 2 * ENTRY_TTL.as_secs() as i64).ignore();
    if announce {
        pipe.publish(channel(prefix, customer_id), "changed")
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await?;
    let all: Vec<(String, String)> = conn.hgetall(&key).await?;
    let mut viewers = Vec::new();
    let mut expired = Vec::new();
    for (field, json) in all {
        match serde_json::from_str::<Entry>(&json) {
            Ok(entry) if entry.expires_at > now => viewers.push(entry.viewer),
            _ => expired.push(field),
        }
    }
    if !expired.is_empty() {
        conn.hdel::<_, _, ()>(&key, expired).await?;
    }
    viewers.sort_by(|a, b| {
        a.since
            .cmp(&b.since)
            .then_with(|| a.admin_id.cmp(&b.admin_id))
    });
    Ok(viewers)
}
