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
/// Entries kept before expired ones are first swept; after a sweep the next comes when the
/// map has doubled, so sweeps cost O(1) per entry written however many entries stay live.
const SWEEP_ABOVE: usize = 10_000;

/// A message published on a channel.
#[derive(Debug, Clone)]
pub struct Published {
    pub channel: String,
    pub payload: String,
}

pub struct Embedded {
    published: broadcast::Sender<Published>,
    strings: Mutex<Strings>,
    hashes: Mutex<HashMap<String, HashMap<String, String>>>,
}

/// String keys with when each expires, and the size at which expired ones are next swept.
struct Strings {
    entries: HashMap<String, (String, Instant)>,
    sweep_at: usize,
}

impl Strings {
    fn live(&self, key: &str, now: Instant) -> Option<&String> {
        self.entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value)
    }

    fn insert(&mut self, key: &str, value: String, expires: Instant) {
        if self.entries.len() >= self.sweep_at {
            let now = Instant::now();
            self.entries.retain(|_, (_, at)| *at > now);
            self.sweep_at = SWEEP_ABOVE.max(2 * self.entries.len());
        }
        self.entries.insert(key.to_owned(), (value, expires));
    }
}

impl Default for Embedded {
    fn default() -> Embedded {
        Embedded {
            published: broadcast::channel(BACKLOG).0,
            strings: Mutex::new(Strings {
                entries: HashMap::new(),
                sweep_at: SWEEP_ABOVE,
            }),
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
        lock(&self.strings).live(key, Instant::now()).cloned()
    }

    pub fn set_ex(&self, key: &str, value: String, ttl: Duration) {
        lock(&self.strings).insert(key, value, Instant::now() + ttl);
    }

    /// Adds one to a counter (0 when missing or expired), which then lives `ttl`; the new value.
    pub fn incr_ex(&self, key: &str, ttl: Duration) -> i64 {
        let mut strings = lock(&self.strings);
        let now = Instant::now();
        let next = strings
            .live(key, now)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
            .saturating_add(1);
        strings.insert(key, next.to_string(), now + ttl);
        next
    }

    pub fn del(&self, keys: &[String]) {
        let mut strings = lock(&self.strings);
        for key in keys {
            strings.entries.remove(key);
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
        let day = Duration::from_secs(86_400);
        assert_eq!((store.incr_ex("n", day), store.incr_ex("n", day)), (1, 2));
        store.del(&["a".to_owned(), "n".to_owned()]);
        assert_eq!((store.get("a"), store.incr_ex("n", day)), (None, 1));
        assert_eq!(store.incr_ex("n", Duration::ZERO), 2);
        assert_eq!(
            store.incr_ex("n", day),
            1,
            "an expired counter starts again"
        );
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
