//! The lease's keys and scripts on Redis, over a blocking connection with
//! timeouts (no async runtime needed): claim a free slot, renew it, write its
//! high-water mark, release it. Every write that matters is fenced by the
//! holder's random token, checked inside the same script.
//!
//! Keys, all under one hash tag so a cluster keeps them on one node:
//! `{key_space}:meta` (a hash: the `total_systems` and nonce units per ms the
//! slots were written under), `{key_space}:slot:i` (the holder's token, with
//! a TTL), `{key_space}:mark:i` (the slot's high-water mark, no TTL).

use std::time::Duration;

/// Claims the first free slot from `ARGV[5]` on, after checking the settings.
/// KEYS: meta, the `n` slot keys, the `n` mark keys. ARGV: total, units per
/// ms, token, ttl in ms, the slot to try first.
/// Returns `{slot, secs, micros, mark}`, `{-1, secs, micros}` when every
/// slot is held, or `{-2, secs, micros, total, units}` when the key space
/// was written under other settings.
const CLAIM: &str = r"
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local meta = redis.call('HMGET', KEYS[1], 'total', 'units')
if meta[1] or meta[2] then
  if meta[1] ~= ARGV[1] or meta[2] ~= ARGV[2] then
    return {-2, t[1], t[2], tostring(meta[1]), tostring(meta[2])}
  end
else
  redis.call('HSET', KEYS[1], 'total', ARGV[1], 'units', ARGV[2])
end
local first = tonumber(ARGV[5])
for k = 0, n - 1 do
  local i = (first + k) % n
  if redis.call('SET', KEYS[2 + i], ARGV[3], 'NX', 'PX', ARGV[4]) then
    return {i, t[1], t[2], redis.call('GET', KEYS[2 + n + i]) or '0'}
  end
end
return {-1, t[1], t[2]}
";

/// Extends the slot's TTL if it still holds our token. KEYS: slot. ARGV: token, ttl ms.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Raises the slot's mark if the slot still holds our token. KEYS: slot, mark.
/// ARGV: token, mark (decimal, no leading zeros: compared as digit strings,
/// since Lua's numbers are doubles). Returns 1, or 0 when the token is gone.
const MARK: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cur = redis.call('GET', KEYS[2]) or '0'
local new = ARGV[2]
if #new > #cur or (#new == #cur and new > cur) then
  redis.call('SET', KEYS[2], new)
end
return 1
";

/// At a clean release: sets the mark to the last nonce handed out (lower than
/// the mark written ahead, so a successor starts near the clock, not a whole
/// `mark_ahead` above it) and deletes the slot, if it still holds our token.
/// KEYS: slot, mark. ARGV: token, last.
const SETTLE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
";

/// Deletes the slot if it still holds our token. KEYS: slot. ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Claimed {
    /// The slot is ours; `mark` is the highest mark any holder wrote for it.
    Slot { slot: u64, mark: u64, redis_ms: u64 },
    /// Every slot is held.
    Full { redis_ms: u64 },
    /// The key space was written under other settings.
    OtherSettings { total: String, units: String },
}

/// The key space's names.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    meta: String,
    slots: Vec<String>,
    marks: Vec<String>,
}

impl Keys {
    pub(super) fn new(key_space: &str, total: u64) -> Self {
        let tag = format!("{{{key_space}}}");
        Self {
            meta: format!("{tag}:meta"),
            slots: (0..total).map(|i| format!("{tag}:slot:{i}")).collect(),
            marks: (0..total).map(|i| format!("{tag}:mark:{i}")).collect(),
        }
    }

    fn slot(&self, i: u64) -> &str {
        usize::try_from(i).ok().and_then(|i| self.slots.get(i)).map_or("", String::as_str)
    }

    fn mark(&self, i: u64) -> &str {
        usize::try_from(i).ok().and_then(|i| self.marks.get(i)).map_or("", String::as_str)
    }
}

/// A blocking connection, opened on first use and dropped after any error
/// (the next call reconnects), every call bounded by `timeout`.
pub(super) struct Io {
    client: redis::Client,
    conn: Option<redis::Connection>,
    timeout: Duration,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").field("connected", &self.conn.is_some()).field("timeout", &self.timeout).finish()
    }
}

impl Io {
    pub(super) fn new(client: redis::Client, timeout: Duration) -> Self {
        Self { client, conn: None, timeout }
    }

    /// Runs `f` on the connection; an error drops it.
    fn with<T>(&mut self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> redis::RedisResult<T> {
        if self.conn.is_none() {
            let conn = self.client.get_connection_with_timeout(self.timeout)?;
            conn.set_read_timeout(Some(self.timeout))?;
            conn.set_write_timeout(Some(self.timeout))?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else { unreachable!("connected above") };
        let out = f(conn);
        if out.is_err() {
            self.conn = None;
        }
        out
    }

    /// `CONFIG GET maxmemory-policy`: the marks have no TTL, so only an
    /// `allkeys-*` policy can evict them.
    pub(super) fn eviction_policy(&mut self) -> redis::RedisResult<String> {
        self.with(|c| {
            let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query(c)?;
            Ok(pair.get(1).cloned().unwrap_or_default())
        })
    }

    pub(super) fn claim(
        &mut self,
        keys: &Keys,
        units: u64,
        token: &str,
        ttl_ms: u64,
        first: u64,
    ) -> redis::RedisResult<Claimed> {
        let total = keys.slots.len() as u64;
        let reply: Vec<redis::Value> = self.with(|c| {
            let mut s = scripts().claim.prepare_invoke();
            s.key(&keys.meta);
            for k in keys.slots.iter().chain(&keys.marks) {
                s.key(k);
            }
            s.arg(total).arg(units).arg(token).arg(ttl_ms).arg(first % total.max(1));
            s.invoke(c)
        })?;
        decode_claim(&reply)
    }

    /// 1: renewed; 0: the slot no longer holds `token`.
    pub(super) fn renew(&mut self, keys: &Keys, slot: u64, token: &str, ttl_ms: u64) -> redis::RedisResult<bool> {
        self.with(|c| scripts().renew.key(keys.slot(slot)).arg(token).arg(ttl_ms).invoke::<i64>(c)).map(|r| r == 1)
    }

    /// true: the mark is at least `mark`; false: the slot no longer holds `token`.
    pub(super) fn mark(&mut self, keys: &Keys, slot: u64, token: &str, mark: u64) -> redis::RedisResult<bool> {
        self.with(|c| scripts().mark.key(keys.slot(slot)).key(keys.mark(slot)).arg(token).arg(mark).invoke::<i64>(c))
            .map(|r| r == 1)
    }

    pub(super) fn settle(&mut self, keys: &Keys, slot: u64, token: &str, last: u64) -> redis::RedisResult<()> {
        self.with(|c| scripts().settle.key(keys.slot(slot)).key(keys.mark(slot)).arg(token).arg(last).invoke::<i64>(c))
            .map(|_| ())
    }

    pub(super) fn release(&mut self, keys: &Keys, slot: u64, token: &str) -> redis::RedisResult<()> {
        self.with(|c| scripts().release.key(keys.slot(slot)).arg(token).invoke::<i64>(c)).map(|_| ())
    }
}

/// The renew script for the async renewer (the same script, another transport).
pub(super) fn renew_invocation(keys: &Keys, slot: u64, token: &str, ttl_ms: u64) -> redis::ScriptInvocation<'static> {
    let mut s = scripts().renew.prepare_invoke();
    s.key(keys.slot(slot)).arg(token).arg(ttl_ms);
    s
}

/// The four scripts, hashed once per process.
struct Scripts {
    claim: redis::Script,
    renew: redis::Script,
    mark: redis::Script,
    settle: redis::Script,
    release: redis::Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        claim: redis::Script::new(CLAIM),
        renew: redis::Script::new(RENEW),
        mark: redis::Script::new(MARK),
        settle: redis::Script::new(SETTLE),
        release: redis::Script::new(RELEASE),
    })
}

fn int(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(i) => Some(*i),
        redis::Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        redis::Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn bad_reply(what: &str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Parse, "unexpected reply from the lease script", what.to_owned()))
}

/// The claim script's reply; anything else is a parse error (never a slot).
fn decode_claim(reply: &[redis::Value]) -> redis::RedisResult<Claimed> {
    let code = reply.first().and_then(int).ok_or_else(|| bad_reply("no code"))?;
    let secs = reply.get(1).and_then(int).and_then(|s| u64::try_from(s).ok());
    let micros = reply.get(2).and_then(int).and_then(|s| u64::try_from(s).ok());
    let redis_ms = secs
        .zip(micros)
        .and_then(|(s, us)| s.checked_mul(1_000)?.checked_add(us / 1_000))
        .ok_or_else(|| bad_reply("TIME"))?;
    match code {
        -1 => Ok(Claimed::Full { redis_ms }),
        -2 => Ok(Claimed::OtherSettings {
            total: reply.get(3).map(text).unwrap_or_default(),
            units: reply.get(4).map(text).unwrap_or_default(),
        }),
        slot if slot >= 0 => {
            let mark = reply.get(3).map(text).ok_or_else(|| bad_reply("no mark"))?;
            let mark = mark.parse::<u64>().map_err(|_| bad_reply("a mark that is not a u64"))?;
            Ok(Claimed::Slot { slot: slot as u64, mark, redis_ms })
        }
        _ => Err(bad_reply("unknown code")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn claim_replies_decode_or_are_errors() {
        let ok = [Value::Int(3), bulk("1700000000"), bulk("250000"), bulk("17000000000123")];
        assert_eq!(
            decode_claim(&ok).unwrap(),
            Claimed::Slot { slot: 3, mark: 17_000_000_000_123, redis_ms: 1_700_000_000_250 }
        );
        assert_eq!(
            decode_claim(&[Value::Int(-1), bulk("5"), bulk("1000")]).unwrap(),
            Claimed::Full { redis_ms: 5_001 }
        );
        assert!(decode_claim(&[]).is_err());
        assert!(decode_claim(&[Value::Int(0), bulk("5"), bulk("0"), bulk("-4")]).is_err());
        assert!(decode_claim(&[Value::Int(0), bulk("5")]).is_err());
        assert!(decode_claim(&[Value::Int(-7), bulk("5"), bulk("0")]).is_err());
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys::new("bot-key-1", 3);
        assert_eq!(k.slot(2), "{bot-key-1}:slot:2");
        assert_eq!(k.mark(0), "{bot-key-1}:mark:0");
        assert_eq!(k.slot(3), "");
    }
}
