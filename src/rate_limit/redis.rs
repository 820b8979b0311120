//! Counters shared by every replica: one sorted set of accepted timestamps per key, checked and
//! recorded by one Lua script so both windows move atomically.

use super::window::{Decision, Quota, WindowState, HOUR_MS, MINUTE_MS};
use super::Clock;
use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// KEYS[1] = the key's set; ARGV = now, minute ms, hour ms, minute limit, hour limit, member.
/// Returns {allowed, minute_used, hour_used, minute_oldest, hour_oldest, retry_ms}, where
/// `*_used` include this request when allowed and `*_oldest` is -1 for an empty window.
const SCRIPT: &str = r#"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local minute_ms = tonumber(ARGV[2])
local hour_ms = tonumber(ARGV[3])
local minute_limit = tonumber(ARGV[4])
local hour_limit = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - hour_ms)
local hour_used = redis.call('ZCARD', key)
local minute_used = redis.call('ZCOUNT', key, '(' .. (now - minute_ms), '+inf')
local retry = 0
local function wait_for(used, limit, first_rank, len)
  if used < limit then return 0 end
  local freeing = redis.call('ZRANGE', key, first_rank + used - limit, first_rank + used - limit, 'WITHSCORES')
  local w = tonumber(freeing[2]) + len - now
  if w < 1 then w = 1 end
  return w
end
local minute_wait = wait_for(minute_used, minute_limit, hour_used - minute_used, minute_ms)
local hour_wait = wait_for(hour_used, hour_limit, 0, hour_ms)
local allowed = 0
if minute_wait == 0 and hour_wait == 0 then
  allowed = 1
  redis.call('ZADD', key, now, ARGV[6])
  redis.call('PEXPIRE', key, hour_ms)
  minute_used = minute_used + 1
  hour_used = hour_used + 1
end
retry = math.max(minute_wait, hour_wait)
local function oldest(used)
  if used == 0 then return -1 end
  local total = redis.call('ZCARD', key)
  local first = redis.call('ZRANGE', key, total - used, total - used, 'WITHSCORES')
  return tonumber(first[2])
end
return {allowed, minute_used, hour_used, oldest(minute_used), oldest(hour_used), retry}
"#;

pub struct RedisLimiter {
    clock: Arc<dyn Clock>,
    conn: ConnectionManager,
    prefix: String,
    script: Script,
}

impl RedisLimiter {
    /// `prefix` namespaces the keys (one deployment, or one test, per prefix).
    pub async fn connect(url: &str, prefix: String, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid PF_REDIS_URL")?;
        // The library's defaults wait up to a minute between reconnects (and for ever on a
        // connect or an answer): a Redis back within seconds would leave every request waiting
        // on the reconnect, uncounted, for a minute or two. Here tries are 1–2 s apart (the
        // retry library's 1 s least delay, with jitter), each connect and answer has a second,
        // and start-up gives up after four tries.
        let config = ConnectionManagerConfig::new()
            .set_factor(2)
            .set_max_delay(1_000)
            .set_number_of_retries(3)
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to Redis at {}",
                    crate::redact::mask_url(url)
                )
            })?;
        Ok(Self {
            clock,
            conn,
            prefix,
            script: Script::new(SCRIPT),
        })
    }

    pub async fn check(&self, key: Uuid, quota: Quota) -> anyhow::Result<Decision> {
        let now = self.clock.now_ms();
        let mut conn = self.conn.clone();
        // A unique member, so two requests in the same millisecond both count.
        let member = format!("{now}-{}", uuid::Uuid::new_v4().simple());
        let (allowed, minute_used, hour_used, minute_oldest, hour_oldest, retry): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = self
            .script
            .key(format!("{}:rl:{}", self.prefix, key))
            .arg(now)
            .arg(MINUTE_MS)
            .arg(HOUR_MS)
            .arg(quota.per_minute)
            .arg(quota.per_hour)
            .arg(member)
            .invoke_async(&mut conn)
            .await
            .context("rate-limit script failed")?;
        let state = |used: i64, oldest: i64, limit: u32, len: u64| WindowState {
            limit,
            remaining: (i64::from(limit) - used).max(0) as u32,
            reset_ms: if oldest < 0 {
                0
            } else {
                (oldest as u64 + len).saturating_sub(now)
            },
        };
        Ok(Decision {
            allowed: allowed == 1,
            minute: state(minute_used, minute_oldest, quota.per_minute, MINUTE_MS),
            hour: state(hour_used, hour_oldest, quota.per_hour, HOUR_MS),
            retry_after_ms: retry.max(0) as u64,
        })
    }
}
