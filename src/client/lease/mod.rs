//! Fleet leases: `Distributed` slots claimed from Redis instead of static ids,
//! with each slot's high-water mark kept in Redis (feature `redis`).

mod held;
mod store;

pub(crate) use held::{Claim, ClaimError, Held};

use crate::client::persist::MarkStore;
use crate::error::{BuildError, NonceError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use store::{Io, Keys};

/// A slot of a bot fleet sharing one API key, leased from Redis: give it to
/// [`NonceManagerBuilder::lease`](crate::client::NonceManagerBuilder::lease)
/// and the manager hands out `Distributed { system_id: slot, total_systems }`
/// nonces, with no static id and no disk.
///
/// At `build()` of the manager, the lease claims a free slot `i` in
/// `0..total_systems` (`SET {key_space}:slot:i <random token> NX PX ttl`), and
/// a renewer (a thread, or a task with [`SlotLeaseBuilder::build_async`])
/// extends it every `ttl / 3` with a compare-and-extend script. Dropping the
/// manager releases the slot.
///
/// # Guarantees
/// | promise | how it is tested |
/// |---|---|
/// | no nonce is handed out twice across processes, restarts and handovers of a slot: each slot keeps a high-water mark in Redis, written (fenced by the holder's token) before anything above it is handed out; a new holder starts above `max(clock, mark)` | `tests/redis_lease.rs`: 8 processes on one key, SIGKILL, SIGSTOP beyond the TTL, clocks skewed by up to ±2 s; no nonce twice, each process strictly increasing |
/// | self-fencing: the deadline is kept on the local monotonic clock; once `deadline - margin` passes without a renewal, `next()`/`reserve()` return [`NonceError::LeaseLost`] and hand out nothing (a nonce taken while it lapsed, or while another thread moved the manager to a new slot, is dropped) | the chaos test's SIGSTOP beyond the TTL; `with_redis_stopped_nothing_is_handed_out_once_the_lease_lapses`; `the_async_renewer_keeps_the_lease_and_lets_it_lapse_when_redis_stops` (the tokio renewer) |
/// | the manager re-acquires on its own (at most once per `ttl / 10`, the same slot first) and carries on above everything it handed out and above the new slot's mark | the chaos test; `a_lapsed_holder_takes_its_slot_again_and_continues_above_it` |
/// | a clock more than `max_skew` from Redis's `TIME` at claim is [`BuildError::ClockSkew`]; every slot held is [`BuildError::NoFreeSlot`], or a wait of up to [`wait`](SlotLeaseBuilder::wait) | `a_ninth_process_gets_no_slot_or_waits_for_a_killed_holders_slot` (9 processes), `a_ninth_manager_gets_no_slot_or_waits_for_one`, `a_skewed_clock_is_refused_at_claim` |
/// | the key space records `total_systems` and the nonce units: a lease with other settings is refused at `build()`; an `allkeys-*` eviction policy (which could evict a mark) is refused | `a_key_space_written_under_other_settings_is_refused` |
///
/// Limits: the marks live as long as Redis keeps them. Run Redis with
/// `appendonly yes` and `appendfsync always` (or `everysec`, accepting one
/// second of marks); if Redis loses the marks, a new holder starts from the
/// clock and may be refused by the exchange until it moves past the old
/// nonces (the exchange refuses a repeat; it never executes it twice).
/// Across a system suspend the local monotonic clock stops: the lease is
/// then checked again at the next renewal, and the marks still keep every
/// nonce unique.
///
/// ```no_run
/// use monotonic_nonce::{client::SlotLease, NonceManager};
/// let lease = SlotLease::builder("redis://127.0.0.1:6379", "kraken-key-1", 8).build()?;
/// let m = NonceManager::builder().lease(lease).build()?;
/// let n = m.next()?; // n % 8 is the slot this process holds
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Debug, Clone)]
pub struct SlotLease {
    cfg: Arc<Config>,
}

/// The lease's settings, shared by the manager and its renewer.
pub(crate) struct Config {
    pub(crate) url: String,
    pub(crate) key_space: String,
    pub(crate) total: u64,
    /// The nonce units per ms of the strategy (`total` for `Distributed`).
    pub(crate) units: u64,
    ttl: Duration,
    margin: Duration,
    pub(crate) max_skew: Duration,
    pub(crate) wait: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) client: redis::Client,
    keys: Keys,
    pub(crate) runtime: Option<tokio::runtime::Handle>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotLease")
            .field("url", &self.url)
            .field("key_space", &self.key_space)
            .field("total_systems", &self.total)
            .field("ttl", &self.ttl)
            .field("margin", &self.margin)
            .field("max_skew", &self.max_skew)
            .field("renewer", &if self.runtime.is_some() { "tokio task" } else { "thread" })
            .finish()
    }
}

impl Config {
    pub(crate) fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// The deadline of a claim or renewal sent at `sent` (`mono_ns`): `sent + ttl - margin`.
    pub(crate) fn until_after(&self, sent: u64) -> u64 {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        sent.saturating_add(ns(self.ttl).saturating_sub(ns(self.margin))).max(1)
    }

    /// How often the renewer renews.
    pub(crate) fn period(&self) -> Duration {
        self.ttl / 3
    }

    /// How soon a failed renewal or claim is tried again.
    pub(crate) fn retry(&self) -> Duration {
        self.ttl / 10
    }
}

impl SlotLease {
    /// A builder for a lease on `url` (`redis://host:port`), key space
    /// `key_space` (one per API key), with `total_systems` slots.
    pub fn builder(url: impl Into<String>, key_space: impl Into<String>, total_systems: u64) -> SlotLeaseBuilder {
        SlotLeaseBuilder {
            url: url.into(),
            key_space: key_space.into(),
            total: total_systems,
            ttl: Duration::from_secs(5),
            margin: None,
            max_skew: Duration::from_secs(1),
            wait: Duration::ZERO,
            io_timeout: None,
            declare_noeviction: false,
        }
    }

    /// The key space (one per API key).
    pub fn key_space(&self) -> &str {
        &self.cfg.key_space
    }

    /// The number of slots.
    pub fn total_systems(&self) -> u64 {
        self.cfg.total
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.cfg
    }
}

/// Configures a [`SlotLease`]; invalid settings are refused by `build()`.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct SlotLeaseBuilder {
    url: String,
    key_space: String,
    total: u64,
    ttl: Duration,
    margin: Option<Duration>,
    max_skew: Duration,
    wait: Duration,
    io_timeout: Option<Duration>,
    declare_noeviction: bool,
}

impl SlotLeaseBuilder {
    /// How long a slot stays held without a renewal (default 5 s): a killed
    /// process's slot is free again after at most this long.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long before the deadline the manager stops handing out nonces
    /// (default `ttl / 5`).
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// The largest difference allowed between the manager's clock and Redis's
    /// `TIME` at a claim (default 1 s); beyond it `build()` fails with
    /// [`BuildError::ClockSkew`].
    pub fn max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// When every slot is held, wait up to `wait` for one to free up at the
    /// manager's `build()` (default: fail at once with [`BuildError::NoFreeSlot`]).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The bound on each Redis call (default `ttl / 10`, at least 10 ms).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = Some(timeout);
        self
    }

    /// For a Redis whose `CONFIG` command is disabled (managed services): the
    /// operator states that its `maxmemory-policy` is not `allkeys-*`.
    pub fn declare_noeviction(mut self) -> Self {
        self.declare_noeviction = true;
        self
    }

    /// Checks the settings and the store; the renewer is a thread (no runtime needed).
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] naming the setting; [`BuildError::Store`]
    /// when Redis cannot be reached or may evict a mark.
    pub fn build(self) -> Result<SlotLease, BuildError> {
        self.assemble(None)
    }

    /// As [`build`](Self::build), with the renewer a task on the current tokio
    /// runtime (call it inside one). Claims and marks still use a short
    /// blocking call, as the mark file's `fsync` does.
    ///
    /// # Errors
    /// As `build`; [`BuildError::InvalidConfig`] outside a tokio runtime.
    pub fn build_async(self) -> Result<SlotLease, BuildError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| BuildError::config("lease", "build_async() needs a tokio runtime; use build() outside one"))?;
        self.assemble(Some(handle))
    }

    fn assemble(self, runtime: Option<tokio::runtime::Handle>) -> Result<SlotLease, BuildError> {
        if !(1..=1024).contains(&self.total) {
            return Err(BuildError::config("total_systems", "use 1 to 1024 slots"));
        }
        if self.key_space.is_empty() || self.key_space.len() > 256 || self.key_space.contains(['{', '}']) {
            return Err(BuildError::config("key_space", "use 1 to 256 bytes without braces, e.g. the API key's name"));
        }
        if self.ttl < Duration::from_millis(30) {
            return Err(BuildError::config("ttl", "use at least 30 ms"));
        }
        let margin = self.margin.unwrap_or(self.ttl / 5);
        if margin < Duration::from_millis(10) || margin > self.ttl / 2 {
            return Err(BuildError::config("margin", "use at least 10 ms and at most ttl / 2"));
        }
        let io_timeout = self.io_timeout.unwrap_or((self.ttl / 10).max(Duration::from_millis(10)));
        if io_timeout.is_zero() {
            return Err(BuildError::config("io_timeout", "use more than 0"));
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| BuildError::config("url", format!("{}: {e}", self.url)))?;
        if !self.declare_noeviction {
            let mut io = Io::new(client.clone(), io_timeout.max(Duration::from_millis(500)));
            let policy = io.eviction_policy().map_err(|e| BuildError::Store {
                reason: format!(
                    "CONFIG GET maxmemory-policy on {}: {e}; if CONFIG is disabled, check the policy is not \
                     allkeys-* and call declare_noeviction()",
                    self.url
                ),
            })?;
            if policy.starts_with("allkeys") {
                return Err(BuildError::Store {
                    reason: format!(
                        "{} has maxmemory-policy {policy}, which may evict a slot's mark and let a successor \
                         reuse its nonces; use noeviction (or a volatile-* policy)",
                        self.url
                    ),
                });
            }
        }
        let keys = Keys::new(&self.key_space, self.total);
        Ok(SlotLease {
            cfg: Arc::new(Config {
                url: self.url,
                key_space: self.key_space,
                total: self.total,
                units: self.total,
                ttl: self.ttl,
                margin,
                max_skew: self.max_skew,
                wait: self.wait,
                io_timeout,
                client,
                keys,
                runtime,
            }),
        })
    }
}

/// The mark of the slot held, in Redis: the durable mark's other store.
#[derive(Debug)]
pub(crate) struct RedisMark(pub(crate) Arc<Held>);

impl MarkStore for RedisMark {
    fn store(&mut self, mark: u64) -> Result<(), NonceError> {
        self.0.store_mark(mark)
    }
}
