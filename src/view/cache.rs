//! The Redis cache of whole 360 views, one entry per customer and masking class, 30 s TTL (in
//! process when `demo` runs without Redis).
//!
//! Invalidation is by generation: the outbox relay bumps `viewgen:{id}` whenever it publishes
//! an event of that customer, and an entry is only served if it was built under the current
//! generation. A reader that loaded stale data while an event went by therefore stores an
//! entry that is never served, instead of a stale view for 30 seconds.
//!
//! A lookup or fill that finds Redis out of reach pauses the cache for a moment
//! (`RedisLink::cache_failed`); callers skip it while `RedisLink::cache_paused` says so.

use redis::AsyncCommands;

use crate::domain::masking::Masking;
use crate::redis_link::RedisLink;

pub const TTL_SECS: u64 = 30;

fn view_key(redis: &RedisLink, customer_id: i64, masking: Masking) -> String {
    // v2: the notes and timeline hold private notes apart; an earlier release's entries, in
    // the old shape, are not read.
    redis.key(&format!("view:v2:{customer_id}:{}", masking.as_str()))
}

pub fn generation_key(redis: &RedisLink, customer_id: i64) -> String {
    redis.key(&format!("viewgen:{customer_id}"))
}

/// Every cache key of a customer, for the relay to drop.
pub fn view_keys(redis: &RedisLink, customer_id: i64) -> [String; 2] {
    [
        view_key(redis, customer_id, Masking::Clear),
        view_key(redis, customer_id, Masking::Masked),
    ]
}

/// What a lookup found: the cached JSON if it is current, and the generation to store under.
pub struct Lookup {
    pub json: Option<String>,
    pub generation: i64,
}

pub async fn get(
    redis: &RedisLink,
    customer_id: i64,
    masking: Masking,
) -> redis::RedisResult<Lookup> {
    let generation_key = generation_key(redis, customer_id);
    let view_key = view_key(redis, customer_id, masking);
    let (generation, entry): (Option<i64>, Option<String>) = match redis.embedded() {
        Some(local) => (
            local.get(&generation_key).and_then(|g| g.parse().ok()),
            local.get(&view_key),
        ),
        None => async {
            let mut conn = redis.connection().await?;
            redis::pipe()
                .get(generation_key)
                .get(view_key)
                .query_async(&mut conn)
                .await
        }
        .await
        .inspect_err(|e| redis.cache_failed(e))?,
    };
    let generation = generation.unwrap_or(0);
    let json = entry.and_then(|e| {
        let (built_under, json) = e.split_once('\n')?;
        (built_under.parse::<i64>().ok()? == generation).then(|| json.to_owned())
    });
    Ok(Lookup { json, generation })
}

pub async fn put(
    redis: &RedisLink,
    customer_id: i64,
    masking: Masking,
    generation: i64,
    json: &str,
) -> redis::RedisResult<()> {
    let key = view_key(redis, customer_id, masking);
    let entry = format!("{generation}\n{json}");
    if let Some(local) = redis.embedded() {
        local.set_ex(&key, entry, std::time::Duration::from_secs(TTL_SECS));
        return Ok(());
    }
    async {
        let mut conn = redis.connection().await?;
        conn.set_ex::<_, _, ()>(key, entry, TTL_SECS).await
    }
    .await
    .inspect_err(|e| redis.cache_failed(e))
}
