//! Who the masters are, and whether one of them may have lost writes: each
//! master probed on its own (with its own deadline, so one hung node never
//! stalls the others), compared with the last reading node by node.
//!
//! A master may have lost acknowledged writes when its `run_id` changed (a
//! restart; where `INFO` has no run id, its uptime went down), or when it is
//! a master this gateway did not know and it was promoted from a replica
//! (`master_replid2` set: it inherited another master's history, and
//! replication is asynchronous). A new empty master that received slots with
//! their keys (a scale-out) lost nothing; a master that became a replica, or
//! left, lost nothing by that.

use super::store::{info_field, text, Conn};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// Run on each master (`EVAL`, no keys): its `INFO server`, `INFO
/// replication`, its cluster node id (empty outside a cluster) and its slot
/// map, one `start end host:port id` line per range.
const PROBE: &str = r"
local id = redis.pcall('CLUSTER', 'MYID')
if type(id) ~= 'string' then id = '' end
local slots = {}
if id ~= '' then
  for _, r in ipairs(redis.call('CLUSTER', 'SLOTS')) do
    local m = r[3]
    slots[#slots + 1] = r[1] .. ' ' .. r[2] .. ' ' .. m[1] .. ':' .. m[2] .. ' ' .. (m[3] or '')
  end
end
return {redis.call('INFO', 'server'), redis.call('INFO', 'replication'), id, table.concat(slots, '\n')}
";

/// One master as a probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    /// `host:port` in a cluster, `single` for one server.
    pub(super) addr: String,
    /// The cluster node id (stable across restarts); empty for one server.
    pub(super) id: String,
    pub(super) run_id: String,
    pub(super) uptime_s: u64,
    /// `master_replid2` is set: this master was promoted from a replica.
    pub(super) promoted: bool,
}

impl Node {
    /// What identifies it across readings: the node id, or the address.
    pub(super) fn key(&self) -> &str {
        if self.id.is_empty() {
            &self.addr
        } else {
            &self.id
        }
    }
}

/// A probe's answer: the node, whether it is a master, and its slot map.
#[derive(Debug)]
struct Probe {
    node: Node,
    master: bool,
    slots: Vec<(u16, u16, String, String)>,
}

/// What one check saw: the masters that answered, the known masters that did
/// not (kept as they were), and the slot map.
#[derive(Debug, Default)]
pub(super) struct Reading {
    pub(super) masters: Vec<Node>,
    pub(super) unreachable: Vec<Node>,
    /// `(first slot, last slot, node id)`.
    pub(super) slots: Vec<(u16, u16, String)>,
}

/// Whether any master in `now` may have lost writes against `before`.
pub(super) fn lost_writes(before: &[Node], now: &[Node]) -> bool {
    now.iter().any(|n| match before.iter().find(|b| b.key() == n.key()) {
        Some(b) => b.run_id != n.run_id || (n.run_id.is_empty() && n.uptime_s < b.uptime_s),
        None => n.promoted,
    })
}

fn parse(addr: &str, v: &Value) -> Option<Probe> {
    let Value::Array(items) = v else { return None };
    let server = text(items.first()?)?;
    let replication = text(items.get(1)?)?;
    let id = text(items.get(2)?)?;
    let slots = text(items.get(3)?)?
        .lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let (a, b, at, node) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?, f.next()?);
            Some((a, b, at.to_owned(), node.to_owned()))
        })
        .collect();
    let replid2 = info_field(&replication, "master_replid2").unwrap_or_default();
    Some(Probe {
        node: Node {
            addr: addr.to_owned(),
            id,
            run_id: info_field(&server, "run_id").unwrap_or_default(),
            uptime_s: info_field(&server, "uptime_in_seconds").and_then(|s| s.parse().ok()).unwrap_or(0),
            promoted: !replid2.is_empty() && replid2.bytes().any(|b| b != b'0'),
        },
        master: info_field(&replication, "role").as_deref() == Some("master"),
        slots,
    })
}

/// Runs `cmd` on the node at `addr` (`single`: the one server), within `deadline`.
async fn on_node(conn: &Conn, addr: &str, cmd: redis::Cmd, deadline: Duration) -> Result<Value, String> {
    let work = async {
        match conn {
            Conn::Single(_) => conn.query(&cmd).await,
            Conn::Cluster(c) => {
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "bad node address")))?;
                let port =
                    port.parse().map_err(|_| redis::RedisError::from((redis::ErrorKind::Client, "bad node port")))?;
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host: host.to_owned(), port });
                c.clone().route_command(cmd, route).await
            }
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: timed out")),
    }
}

async fn probe(conn: &Conn, addr: &str, deadline: Duration) -> Result<Probe, String> {
    let mut eval = redis::cmd("EVAL");
    eval.arg(PROBE).arg(0);
    let v = on_node(conn, addr, eval, deadline).await?;
    parse(addr, &v).ok_or_else(|| format!("{addr}: an unexpected probe reply"))
}

/// Reads every master: first the addresses in `seeds` (the known masters,
/// or the configured nodes), then any master their slot maps name that was
/// not probed yet. A seed that does not answer within `deadline` is
/// reported unreachable if it was `known`. Fails when no master answers.
pub(super) async fn read(conn: &Conn, seeds: &[String], known: &[Node], deadline: Duration) -> Result<Reading, String> {
    let mut probed: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = seeds.to_vec();
    let mut reading = Reading::default();
    let mut errors = Vec::new();
    while !todo.is_empty() {
        todo.retain(|a| probed.insert(a.clone()));
        let answers = futures_util::future::join_all(todo.iter().map(|a| probe(conn, a, deadline))).await;
        let mut next = Vec::new();
        for (addr, answer) in todo.iter().zip(answers) {
            match answer {
                Ok(p) => {
                    if reading.slots.is_empty() && !p.slots.is_empty() {
                        reading.slots = p.slots.iter().map(|(a, b, _, id)| (*a, *b, id.clone())).collect();
                    }
                    next.extend(p.slots.iter().map(|(_, _, at, _)| at.clone()).filter(|a| !probed.contains(a)));
                    if p.master {
                        reading.masters.push(p.node);
                    }
                }
                Err(e) => {
                    errors.push(e);
                    reading.unreachable.extend(known.iter().filter(|k| &k.addr == addr).cloned());
                }
            }
        }
        next.sort();
        next.dedup();
        todo = next;
    }
    if reading.masters.is_empty() {
        return Err(format!("no master answered: {}", errors.join("; ")));
    }
    Ok(reading)
}

/// Runs `cmd` on each of `nodes` (each within `deadline`), answering `(addr, reply)` for those that answered.
pub(super) async fn on_each(
    conn: &Conn,
    nodes: &[Node],
    cmd: &redis::Cmd,
    deadline: Duration,
) -> Vec<(String, Result<Value, String>)> {
    let replies =
        futures_util::future::join_all(nodes.iter().map(|n| on_node(conn, &n.addr, cmd.clone(), deadline))).await;
    nodes.iter().map(|n| n.addr.clone()).zip(replies).collect()
}

/// The cluster slot of a key (CRC16/XMODEM of its hash tag, mod 16384), as Redis computes it.
pub(super) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let close = key[open + 1..].iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &key[open + 1..open + 1 + close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &b in tagged {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16_384
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, run_id: &str, uptime_s: u64, promoted: bool) -> Node {
        Node { addr: format!("h:{id}"), id: id.to_owned(), run_id: run_id.to_owned(), uptime_s, promoted }
    }

    #[test]
    fn slots_match_redis() {
        // values from CLUSTER KEYSLOT
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"{}x"), slot(b"{}x"), "an empty tag hashes the whole key");
        assert_eq!(slot(b"123456789"), 0x31C3); // the CRC16/XMODEM check value, below 16 384
    }

    #[test]
    fn restarts_and_promotions_lose_writes_new_masters_and_departures_do_not() {
        let before = [node("a", "r1", 100, false), node("b", "r2", 100, true)];
        assert!(!lost_writes(&before, &[node("a", "r1", 101, false), node("b", "r2", 101, true)]));
        assert!(lost_writes(&before, &[node("a", "r9", 1, false)]), "a restart");
        assert!(lost_writes(&before, &[node("c", "r3", 500, true)]), "a replica took over");
        assert!(!lost_writes(&before, &[node("a", "r1", 101, false), node("d", "r4", 1, false)]), "scale-out");
        assert!(!lost_writes(&before, &[node("a", "r1", 101, false)]), "b left (or is halfway through a failover)");
        // servers without run ids: the uptime going down is the restart
        let quiet = [node("a", "", 100, false)];
        assert!(!lost_writes(&quiet, &[node("a", "", 101, false)]));
        assert!(lost_writes(&quiet, &[node("a", "", 3, false)]));
    }
}
