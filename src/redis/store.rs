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
    /// Every master's `appendonly yes` and `appendfsync always`: nothing
    /// acknowledged is lost by a restart of that node (a failover to a lagging
    /// replica still loses writes: replication is asynchronous).
    pub(super) fsync_always: bool,
    /// `CONFIG` answers: the periodic check re-reads `maxmemory-policy`.
    pub(super) readable: bool,
}

fn config_get(name: &str) -> Cmd {
    let mut c = redis::cmd("CONFIG");
    c.arg("GET").arg(name);
    c
}

/// Whether an error says the command does not exist (renamed or disabled, as on managed Redis).
fn is_unknown_command(e: &redis::RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("unknown command") || text.contains("unknown subcommand") || text.contains("noperm")
}

/// Reads `maxmemory-policy`, `appendonly` and `appendfsync` on every master;
/// refuses a policy that lets Redis evict keys. Where `CONFIG` is disabled,
/// `declared` (the operator's word that the policy is `noeviction`) stands in
/// for it, and the store is taken as one that may lose writes.
pub(super) async fn check_config(conn: &Conn, declared: bool) -> Result<Durability, BuildError> {
    let mut fsync_always = true;
    for (name, required) in [("maxmemory-policy", Some("noeviction")), ("appendonly", None), ("appendfsync", None)] {
        let replies = match conn.on_every_master(config_get(name)).await {
            Ok(replies) => replies,
            Err(e) if is_unknown_command(&e) && declared => {
                return Ok(Durability { fsync_always: false, readable: false });
            }
            Err(e) if is_unknown_command(&e) => {
                return Err(BuildError::Store {
                    reason: format!(
                        "CONFIG GET {name} is refused ({e}): the store's eviction policy and durability cannot be read (managed Redis?); if its maxmemory-policy is noeviction, say so with declare_noeviction() (and set max_future)"
                    ),
                })
            }
            Err(e) => {
                return Err(store_error(
                    &format!("CONFIG GET {name} failed (the validator must see the server's configuration)"),
                    e,
                ))
            }
        };
        for (node, reply) in replies {
            let value = config_value(&reply).ok_or_else(|| BuildError::Store {
                reason: format!("{node}: CONFIG GET {name} gave no value ({reply:?})"),
            })?;
            if let Some(required) = required {
                if value != required {
                    return Err(BuildError::Store { reason: evicting(&node, &value) });
                }
            }
            match name {
                "appendonly" if value != "yes" => fsync_always = false,
                "appendfsync" if value != "always" => fsync_always = false,
                _ => {}
            }
        }
    }
    Ok(Durability { fsync_always, readable: true })
}

fn evicting(node: &str, policy: &str) -> String {
    format!(
        "{node}: maxmemory-policy is {policy}; Redis evicting an account key would reopen its replays, so only noeviction is accepted (CONFIG SET maxmemory-policy noeviction)"
    )
}

/// `Err` naming the node when a master's `maxmemory-policy` is not `noeviction`
/// (the periodic check: a `CONFIG SET` at run time). A master that does not
/// answer within `deadline` is skipped (it is already suspect, and answers nothing else either).
pub(super) async fn check_eviction(
    conn: &Conn,
    masters: &[super::topology::Node],
    deadline: std::time::Duration,
) -> Result<(), String> {
    for (node, reply) in super::topology::on_each(conn, masters, &config_get("maxmemory-policy"), deadline).await {
        let Ok(reply) = reply else { continue };
        match config_value(&reply) {
            Some(v) if v == "noeviction" => {}
            Some(v) => return Err(evicting(&node, &v)),
            None => return Err(format!("{node}: CONFIG GET maxmemory-policy gave no value")),
        }
    }
    Ok(())
}
