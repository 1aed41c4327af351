//! The connection to Redis (one node, or a cluster), the validation script
//! and the server facts the validator depends on (configuration, run ids).

use crate::error::BuildError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{Cmd, RedisResult, Value};
use std::time::Duration;

/// The script, loaded once per node and called by its SHA (EVALSHA, reloaded
/// automatically after a restart flushed it).
pub(super) const SOURCE: &str = include_str!("validate.lua");

/// A handle to the store: cheap to clone, shared by every clone of the validator.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

/// Where the store is.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Url(String),
    Cluster(Vec<String>),
}

fn store_error(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::Store { reason: format!("{what}: {e}") }
}

impl Conn {
    /// Connects (eagerly: a store that does not answer is a build error).
    pub(super) async fn open(target: &Target, timeout: Duration) -> Result<Self, BuildError> {
        match target {
            Target::Url(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| store_error("invalid url", e))?;
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(timeout))
                    .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(200));
                let manager = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(|e| store_error(&format!("cannot connect to {url}"), e))?;
                Ok(Conn::Single(manager))
            }
            Target::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .response_timeout(timeout)
                    .connection_timeout(timeout.max(Duration::from_millis(500)))
                    .retries(2)
                    .build()
                    .map_err(|e| store_error("invalid cluster nodes", e))?;
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(|e| store_error(&format!("cannot connect to the cluster {nodes:?}"), e))?;
                Ok(Conn::Cluster(conn))
            }
        }
    }

    /// Runs `cmd` on this handle (a key's node for keyed commands).
    pub(super) async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut con = self.clone();
        cmd.query_async(&mut con).await
    }

    /// Runs a pipeline of script calls; in a cluster, redis-rs splits it per node.
    pub(super) async fn pipeline(&self, pipe: &redis::Pipeline) -> RedisResult<Vec<Value>> {
        let mut con = self.clone();
        pipe.query_async(&mut con).await
    }

    /// Runs `cmd` on every master, answering `(node, reply)` per master.
    pub(super) async fn on_every_master(&self, cmd: Cmd) -> RedisResult<Vec<(String, Value)>> {
        match self {
            Conn::Single(m) => {
                let mut m = m.clone();
                let v: Value = cmd.query_async(&mut m).await?;
                Ok(vec![("single".to_owned(), v)])
            }
            Conn::Cluster(c) => {
                let mut c = c.clone();
                let routing =
                    RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(ResponsePolicy::Special)));
                match c.route_command(cmd, routing).await? {
                    Value::Map(pairs) => {
                        Ok(pairs.into_iter().map(|(node, v)| (text(&node).unwrap_or_default(), v)).collect())
                    }
                    other => Ok(vec![("cluster".to_owned(), other)]),
                }
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Conn::Single(m) => m.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(m) => m.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(m) => m.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A reply as text, when it is one.
pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// `field:value` out of an INFO reply.
pub(super) fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_owned()))
}

/// The value of a `CONFIG GET name` reply (an array or a map of name, value).
pub(super) fn config_value(v: &Value) -> Option<String> {
    match v {
        Value::Array(items) => items.get(1).and_then(text),
        Value::Map(pairs) => pairs.first().and_then(|(_, v)| text(v)),
        _ => None,
    }
}

/// The durability-related configuration of every master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Durability {
    /// Every master's `appendonly yes` and `appendfsync always`: nothing acknowledged is lost.
    pub(super) fsync_always: bool,
}

/// Reads `maxmemory-policy`, `appendonly` and `appendfsync` on every master;
/// refuses a policy that lets Redis evict keys.
pub(super) async fn check_config(conn: &Conn) -> Result<Durability, BuildError> {
    let get = |name: &str| {
        let mut c = redis::cmd("CONFIG");
        c.arg("GET").arg(name);
        c
    };
    let mut fsync_always = true;
    for (name, required) in [("maxmemory-policy", Some("noeviction")), ("appendonly", None), ("appendfsync", None)] {
        let replies = conn.on_every_master(get(name)).await.map_err(|e| {
            store_error(&format!("CONFIG GET {name} failed (the validator must see the server's configuration)"), e)
        })?;
        for (node, reply) in replies {
            let value = config_value(&reply).ok_or_else(|| BuildError::Store {
                reason: format!("{node}: CONFIG GET {name} gave no value ({reply:?})"),
            })?;
            if let Some(required) = required {
                if value != required {
                    return Err(BuildError::Store {
                        reason: format!(
                            "{node}: maxmemory-policy is {value}; Redis evicting an account key would reopen its replays, so only noeviction is accepted (CONFIG SET maxmemory-policy noeviction)"
                        ),
                    });
                }
            }
            match name {
                "appendonly" if value != "yes" => fsync_always = false,
                "appendfsync" if value != "always" => fsync_always = false,
                _ => {}
            }
        }
    }
    Ok(Durability { fsync_always })
}

/// Every master's `run_id`, sorted by node: a change means a restart or a failover.
pub(super) async fn run_ids(conn: &Conn) -> RedisResult<Vec<(String, String)>> {
    let mut c = redis::cmd("INFO");
    c.arg("server");
    let mut ids: Vec<(String, String)> = conn
        .on_every_master(c)
        .await?
        .into_iter()
        .map(|(node, v)| {
            let id = text(&v).and_then(|t| info_field(&t, "run_id")).unwrap_or_default();
            (node, id)
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// How long the (first) master has been up, in ms.
pub(super) async fn uptime_ms(conn: &Conn) -> RedisResult<u64> {
    let mut c = redis::cmd("INFO");
    c.arg("server");
    let replies = conn.on_every_master(c).await?;
    Ok(replies
        .iter()
        .filter_map(|(_, v)| text(v).and_then(|t| info_field(&t, "uptime_in_seconds")))
        .filter_map(|s| s.parse::<u64>().ok())
        .min()
        .unwrap_or(u64::MAX / 1_000)
        .saturating_mul(1_000))
}
