//! The prefix's own key, `{prefix}:meta`: the settings every account key
//! under the prefix was written with (the policy with its `k` or `w`, the
//! time scale), and an epoch, a random token written once when the key space
//! starts. A gateway with other settings is refused at `build()`, so no key is
//! ever read under another policy's rules; a missing key or another epoch
//! means the store lost its state (`FLUSHALL`, `FLUSHDB`, a restore from an
//! old backup, an operator's `DEL`), which the restart guard treats as it
//! treats a restart.
//!
//! It also holds the guard's floor from when the epoch began: a key space
//! started afresh (first use, or recreated after a loss) refuses everything
//! up to `then + max_future` on every gateway, not only on the one that
//! wrote it.
//!
//! The key holds one line of text:
//! `monotonic-nonce v1 <settings> floor=<n> epoch=<32 hex digits>`.

use super::store::{text, Conn};
use redis::RedisResult;

/// What the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    pub(super) settings: String,
    /// Every nonce at or below it is refused on every gateway (0: none).
    pub(super) floor: u64,
    pub(super) epoch: String,
}

impl Meta {
    /// A new record for `settings` and `floor`, with a fresh random epoch.
    pub(super) fn fresh(settings: &str, floor: u64) -> Result<Self, String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| format!("no random epoch: {e}"))?;
        let epoch = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { settings: settings.to_owned(), floor, epoch })
    }

    fn encode(&self) -> String {
        format!("monotonic-nonce v1 {} floor={} epoch={}", self.settings, self.floor, self.epoch)
    }

    fn decode(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("monotonic-nonce v1 ")?;
        let (rest, epoch) = rest.rsplit_once(" epoch=")?;
        let (settings, floor) = rest.rsplit_once(" floor=")?;
        Some(Self { settings: settings.to_owned(), floor: floor.parse().ok()?, epoch: epoch.to_owned() })
    }
}

/// The record, if the key exists. A value that is not one is an error (the
/// prefix is used by something else).
pub(super) async fn read(conn: &Conn, key: &[u8]) -> RedisResult<Result<Option<Meta>, String>> {
    let mut get = redis::cmd("GET");
    get.arg(key);
    let reply = conn.query(&get).await?;
    Ok(match reply {
        redis::Value::Nil => Ok(None),
        other => match text(&other).as_deref().and_then(Meta::decode) {
            Some(meta) => Ok(Some(meta)),
            None => Err(format!("{} holds {other:?}, not a monotonic-nonce record", String::from_utf8_lossy(key))),
        },
    })
}

/// Writes `meta` unless the key exists (`SET NX`); returns the record that
/// holds afterwards (ours, or the one another gateway wrote first).
pub(super) async fn create(conn: &Conn, key: &[u8], meta: &Meta) -> RedisResult<Result<Meta, String>> {
    let mut set = redis::cmd("SET");
    set.arg(key).arg(meta.encode()).arg("NX");
    conn.query(&set).await?;
    Ok(match read(conn, key).await? {
        Ok(Some(now)) => Ok(now),
        Ok(None) => Err(format!("{} vanished right after it was written", String::from_utf8_lossy(key))),
        Err(e) => Err(e),
    })
}

/// The settings a record names for a validator: every gateway on a prefix
/// must name the same.
pub(super) fn settings(policy: crate::rules::Policy, units_per_ms: u64) -> String {
    format!("policy={policy:?} units_per_ms={units_per_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_anything_else_is_not_one() {
        let m = Meta::fresh(&settings(crate::rules::Policy::HighestK(3), 1), 1_234).unwrap();
        assert_eq!(m.epoch.len(), 32);
        assert_eq!(Meta::decode(&m.encode()), Some(m.clone()));
        assert_eq!(Meta::decode("something else"), None);
        assert_ne!(Meta::fresh(&m.settings, 0).unwrap().epoch, m.epoch);
        assert_eq!(Meta::decode("monotonic-nonce v1 policy=Strict units_per_ms=1 floor=x epoch=ab"), None);
    }
}
