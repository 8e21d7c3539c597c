//! Presence: who is viewing a customer and what they are doing, across nodes. Each hub writes
//! its own sessions into the Redis hash `{prefix}:presence:{customer}` (one field per session,
//! each carrying its own expiry, refreshed every `REFRESH`), announces changes on the channel
//! `{prefix}:presence:{customer}`, and reads the hash back dropping expired entries — so the
//! viewers of a node that crashed vanish within `ENTRY_TTL` — and shows one viewer per admin.

use std::collections::{HashMap, hash_map};
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
    let key = key(redis, customer_id);
    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(ENTRY_TTL).unwrap_or_default();
    let entries: Vec<(String, String)> = mine
        .iter()
        .map(|(field, viewer)| {
            // unwrap: a struct of strings, an enum and a timestamp always serialises.
            let json = serde_json::to_string(&Entry {
                viewer: viewer.clone(),
                expires_at,
            })
            .unwrap();
            (field.clone(), json)
        })
        .collect();
    let all: Vec<(String, String)> = match redis.embedded() {
        Some(local) => {
            local.hset(&key, &entries);
            local.hdel(&key, gone);
            if announce {
                local.publish(channel(prefix, customer_id), "changed".to_owned());
            }
            local.hgetall(&key)
        }
        None => {
            let mut conn = redis.connection().await?;
            let mut pipe = redis::pipe();
            for (field, json) in &entries {
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
            conn.hgetall(&key).await?
        }
    };
    let mut viewers = Vec::new();
    let mut expired = Vec::new();
    for (field, json) in all {
        match serde_json::from_str::<Entry>(&json) {
            Ok(entry) if entry.expires_at > now => viewers.push(entry.viewer),
            _ => expired.push(field),
        }
    }
    if !expired.is_empty() {
        match redis.embedded() {
            Some(local) => local.hdel(&key, &expired),
            None => {
                let mut conn = redis.connection().await?;
                conn.hdel::<_, _, ()>(&key, expired).await?;
            }
        }
    }
    Ok(per_admin(viewers))
}

/// One viewer per admin, oldest first: an admin with several sessions on the customer (tabs,
/// nodes) is there since their first one and typing when any of them is. Per session, 500
/// sessions of 200 admins sent every one of them a 500-entry list on each change.
pub fn per_admin(sessions: Vec<Viewer>) -> Vec<Viewer> {
    let mut admins: HashMap<String, Viewer> = HashMap::new();
    for v in sessions {
        match admins.entry(v.admin_id.clone()) {
            hash_map::Entry::Vacant(e) => {
                e.insert(v);
            }
            hash_map::Entry::Occupied(mut e) => {
                let seen = e.get_mut();
                if v.activity == Activity::TypingNote {
                    seen.activity = Activity::TypingNote;
                }
                if v.since < seen.since {
                    seen.since = v.since;
                    seen.name = v.name;
                    seen.role = v.role;
                }
            }
        }
    }
    let mut viewers: Vec<Viewer> = admins.into_values().collect();
    viewers.sort_by(|a, b| {
        a.since
            .cmp(&b.since)
            .then_with(|| a.admin_id.cmp(&b.admin_id))
    });
    viewers
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn viewer(admin: u8, typing: bool, since: i64) -> Viewer {
        Viewer {
            admin_id: format!("a{admin}"),
            name: format!("Admin {admin}"),
            role: Role::Support,
            activity: if typing {
                Activity::TypingNote
            } else {
                Activity::Viewing
            },
            // unwrap: small offsets from the epoch are valid instants.
            since: DateTime::from_timestamp(since, 0).unwrap(),
        }
    }

    #[test]
    fn several_sessions_of_one_admin_are_one_viewer() {
        let merged = per_admin(vec![
            viewer(1, false, 30),
            viewer(2, false, 20),
            viewer(1, true, 10),
            viewer(1, false, 40),
        ]);
        assert_eq!(merged, vec![viewer(1, true, 10), viewer(2, false, 20)]);
    }

    proptest! {
        #[test]
        fn each_admin_once_since_their_first_session_typing_if_any_session_is(
            sessions in proptest::collection::vec((0u8..6, any::<bool>(), 0i64..100), 0..40)
        ) {
            let merged = per_admin(sessions.iter().map(|&(a, t, s)| viewer(a, t, s)).collect());
            let admins: std::collections::BTreeSet<u8> = sessions.iter().map(|s| s.0).collect();
            prop_assert_eq!(merged.len(), admins.len());
            for v in &merged {
                let mine: Vec<_> = sessions.iter().filter(|s| format!("a{}", s.0) == v.admin_id).collect();
                prop_assert_eq!(v.since.timestamp(), mine.iter().map(|s| s.2).min().unwrap_or(-1));
                prop_assert_eq!(v.activity == Activity::TypingNote, mine.iter().any(|s| s.1));
            }
            prop_assert!(merged.windows(2).all(|w| (w[0].since, &w[0].admin_id) <= (w[1].since, &w[1].admin_id)));
        }
    }
}
