//! The in-process stand-in for Redis that `demo` runs on when no Redis answers (DESIGN: "demo
//! with no reachable Redis runs single-node on an in-process bus and cache"). One node means
//! pub/sub is a broadcast within the process, and the read cache and presence are maps. Only
//! the commands the server uses exist here; `serve` never uses it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

/// Messages a subscriber may fall behind by before it is told it missed some.
const BACKLOG: usize = 4096;
/// Entries kept before expired ones are swept (each set checks).
const SWEEP_ABOVE: usize = 10_000;

/// A message published on a channel.
#[derive(Debug, Clone)]
pub struct Published {
    pub channel: String,
    pub payload: String,
}

pub struct Embedded {
    published: broadcast::Sender<Published>,
    strings: Mutex<HashMap<String, (String, Option<Instant>)>>,
    hashes: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl Default for Embedded {
    fn default() -> Embedded {
        Embedded {
            published: broadcast::channel(BACKLOG).0,
            strings: Mutex::new(HashMap::new()),
            hashes: Mutex::new(HashMap::new()),
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain maps: still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Embedded {
    pub fn publish(&self, channel: String, payload: String) {
        // No subscriber yet is no error, as in Redis.
        let _ = self.published.send(Published { channel, payload });
    }

    /// Every message published from now on (the bus filters by channel itself).
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.published.subscribe()
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let strings = lock(&self.strings);
        match strings.get(key) {
            Some((value, expires)) if expires.is_none_or(|at| at > Instant::now()) => {
                Some(value.clone())
            }
            _ => None,
        }
    }

    pub fn set_ex(&self, key: &str, value: String, ttl: Duration) {
        let mut strings = lock(&self.strings);
        if strings.len() > SWEEP_ABOVE {
            let now = Instant::now();
            strings.retain(|_, (_, expires)| expires.is_none_or(|at| at > now));
        }
        strings.insert(key.to_owned(), (value, Some(Instant::now() + ttl)));
    }

    /// Adds one to a counter (0 when missing or expired) and returns it; it then never expires.
    pub fn incr(&self, key: &str) -> i64 {
        let current = self
            .get(key)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let next = current.saturating_add(1);
        lock(&self.strings).insert(key.to_owned(), (next.to_string(), None));
        next
    }

    pub fn del(&self, keys: &[String]) {
        let mut strings = lock(&self.strings);
        for key in keys {
            strings.remove(key);
        }
    }

    pub fn hset(&self, key: &str, entries: &[(String, String)]) {
        let mut hashes = lock(&self.hashes);
        let hash = hashes.entry(key.to_owned()).or_default();
        for (field, value) in entries {
            hash.insert(field.clone(), value.clone());
        }
    }

    pub fn hdel(&self, key: &str, fields: &[String]) {
        let mut hashes = lock(&self.hashes);
        if let Some(hash) = hashes.get_mut(key) {
            for field in fields {
                hash.remove(field);
            }
            if hash.is_empty() {
                hashes.remove(key);
            }
        }
    }

    pub fn hgetall(&self, key: &str) -> Vec<(String, String)> {
        lock(&self.hashes)
            .get(key)
            .map(|hash| hash.iter().map(|(f, v)| (f.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_expire_counters_count_and_hashes_keep_fields() {
        let store = Embedded::default();
        store.set_ex("a", "1".into(), Duration::from_secs(60));
        store.set_ex("gone", "x".into(), Duration::ZERO);
        assert_eq!(store.get("a").as_deref(), Some("1"));
        assert_eq!(store.get("gone"), None);
        assert_eq!((store.incr("n"), store.incr("n")), (1, 2));
        store.del(&["a".to_owned(), "n".to_owned()]);
        assert_eq!((store.get("a"), store.incr("n")), (None, 1));
        store.hset("h", &[("f".into(), "1".into()), ("g".into(), "2".into())]);
        store.hdel("h", &["f".to_owned()]);
        assert_eq!(store.hgetall("h"), [("g".to_owned(), "2".to_owned())]);
    }

    #[tokio::test]
    async fn subscribers_receive_what_is_published_after_they_subscribe() {
        let store = Embedded::default();
        store.publish("early".into(), "lost".into());
        let mut rx = store.subscribe();
        store.publish("c".into(), "p".into());
        let got = rx.recv().await.expect("a message");
        assert_eq!((got.channel.as_str(), got.payload.as_str()), ("c", "p"));
    }
}
