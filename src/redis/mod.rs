//! [`RedisValidator`]: the rules of [`NonceValidator`](crate::NonceValidator)
//! on Redis (one node or a cluster), so that every gateway behind a load
//! balancer refuses a replay sent to any of them.
//!
//! Each account's whole state is one Redis key, `{prefix:account}` (a hash
//! tag, so one slot: it runs unchanged on Redis Cluster), holding a packed
//! binary string, read and written by one Lua script call (`validate.lua`,
//! the rules of `validator/policy.rs`). The stateless checks (positive,
//! ceiling, time bounds) run on the gateway with the same code as in memory,
//! against the gateway's clock; the script never reads the server's time.

mod as_async;
mod blocking;
mod builder;
mod guard;
mod keys;
mod meta;
mod store;
mod topology;
mod wire;

pub use blocking::BlockingRedisValidator;
pub use builder::RedisValidatorBuilder;

use crate::clock::{Clock, SystemClock};
use crate::error::Rejection;
use crate::protocol::{ErrorBody, JsonNumbers};
use crate::rules::{Limits, Policy, Stats};
use crate::sync::Mutex;
use crate::telemetry::Verdicts;
use guard::Guard;
use redis::{Script, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use store::Conn;
use wire::{decode, script_args, unavailable, verdict, Op};

/// The longest account key accepted, in bytes.
///
/// ```
/// assert_eq!(monotonic_nonce::redis::MAX_ACCOUNT_LEN, 1024);
/// ```
pub const MAX_ACCOUNT_LEN: usize = 1024;

/// Validates nonces against Redis with the rules of [`NonceValidator`](crate::NonceValidator):
/// the same [`Policy`], time bounds and ceiling give the same verdicts, and N
/// gateways validating the same `(account, nonce)` at once get exactly one `Ok`.
///
/// It fails closed: a connection error, a timeout (`response_timeout`,
/// default 50 ms) or a script error is [`Rejection::Unavailable`], never an
/// acceptance; after Redis comes back, validation resumes by itself.
///
/// Clones share the connection. Needs a tokio runtime (redis-rs's
/// `tokio-comp`).
///
/// # Guarantees
/// | promise | how it is tested (`tests/redis.rs`, real `redis-server` processes) |
/// |---|---|
/// | the same verdicts as `NonceValidator` for every policy, time bound and ceiling | `conformance_strict`, `conformance_highest_k`, `conformance_window` (300 / 300 / 3 x 150 random sequences through both, same clock, verdicts and last nonces compared every step); `conformance_without_bounds_matches_the_reference_model` (huge jumps, `u64::MAX`, `I64_MAX`, against the BTree model) |
/// | atomic per account: N gateways validating the same `(account, nonce)` get exactly one `Ok` | `concurrent_gateways_accept_each_pair_exactly_once` (8 tasks on 4 connections x 20 000 validations, 500 nonces, 4 accounts); the same on a 3-master cluster with accounts on every master |
/// | fails closed: a connection error, a timeout (`response_timeout`, default 50 ms) or a script error is `Rejection::Unavailable` (HTTP 503, code `SERVICE_UNAVAILABLE`, `NonceFeedback::Other`), never an acceptance; validation resumes by itself after the store comes back | `an_outage_fails_closed_and_validation_resumes_after_it` |
/// | a restart that lost writes never reopens a replay | `a_restart_that_lost_writes_never_reopens_a_replay` (`appendfsync everysec`, SIGKILL right after a burst, restart from the AOF, every request accepted in the last 2 s replayed: all refused; honest traffic accepted again once `max_future` has passed) |
/// | a restart noticed by many calls at once is counted once in `restarts_seen()` (all of them raise the floor) | `a_restart_seen_by_many_calls_at_once_is_counted_once` (16 concurrent validations due for a check after a restart) |
/// | bounded memory without reopening replays: with `max_past`, a key's time to live runs until every nonce it can refuse is older than `max_past` (plus `expiry_margin`, default 60 s, for clock skew between gateways and Redis); the TTL is relative, so the server's clock does not matter; without time bounds keys do not expire | `keys_expire_once_every_nonce_they_refuse_is_too_old` |
/// | `build()` refuses `maxmemory-policy` other than `noeviction` (Redis evicting an account key would reopen its replays), a store that does not fsync every write without `max_future` (unless `accept_durability_risk()`), an unreachable store, a key prefix with `{` or `}` | `build_refuses_an_evicting_store_and_unguarded_durability_risk` |
/// | the guard raises its floor on a failover even when every node has `appendfsync always` (replication is asynchronous) | `a_failover_to_a_lagging_replica_never_reopens_a_replay_even_with_appendfsync_always` (`tests/redis_seams.rs`: master and replica, the replica detached, 20 writes, the address switched to it: no replay accepted) |
/// | `FLUSHALL` / `FLUSHDB` keep the run id, but not the prefix's record `{prefix}:meta` (its epoch): the guard fires on every gateway; without `max_future` the gateway fails closed | `a_flushed_store_raises_the_guard` |
/// | `maxmemory-policy` changed at run time is re-read once a second: `Unavailable` until it is `noeviction` again | `an_evicting_policy_set_at_run_time_fails_closed` |
/// | the record names the policy with its `k` / `w` and the time scale: a gateway with others on the prefix is refused at `build()`, so no key is read under another width | `a_gateway_with_another_width_on_the_same_prefix_is_refused` |
/// | managed Redis without `CONFIG`: refused by name unless `declare_noeviction()`, then taken as a store that may lose writes | `a_store_without_config_needs_the_operator_to_declare_it` |
/// | `validate_many` never sends an item twice: after `SCRIPT FLUSH` only the items refused with `NOSCRIPT` are resent | `validate_many_never_refuses_an_item_that_ran_before_a_script_flush` (a flush every 20 ms under 200 batches of 1 000: no item refused) |
/// | account keys of any bytes (empty, `}`, non-UTF-8) behave as in memory; a key above 1 KiB is `Rejection::AccountTooLong` and writes nothing | `account_keys_of_any_bytes_and_an_oversized_one` |
///
/// **Durability: the three settings and what each costs.**
///
/// | Redis setting | what a crash can lose | what the validator does | the price |
/// |---|---|---|---|
/// | `appendonly yes`, `appendfsync always` | nothing acknowledged | nothing more | every write waits for an fsync on the Redis host: size `response_timeout` (default 50 ms) to that disk's slowest fsync, since a reply later than it is a 503 (`Unavailable`, fail closed); this repository's tests use 2 s after one 50 ms fsync overran on a loaded CI disk |
/// | `appendfsync everysec` (the default with AOF), or a failover to a lagging replica (whatever `appendfsync` says) | up to about a second of accepted nonces | with `max_future` set: the restart guard. The gateway remembers every master's `run_id` (and uptime) and the prefix's epoch, checks them after any error from the store and at least once a second, and when one changed refuses every nonce standing for a time up to `detection + max_future` (also at `build()` when the server has been up for less than `max_future` and does not fsync every write, and at a prefix's first start) | honest clients are refused as `TooLow` for up to `max_future` after a restart |
/// | no AOF, or `everysec` without `max_future` | as above, or everything | `build()` refuses, unless `accept_durability_risk()`: then a request accepted in the lost second can be replayed once | the risk, stated |
///
/// Limits, stated: a gateway that starts after a failover to a replica that has been up for long cannot know writes
/// were lost (the guard covers the gateways running at the time, and any gateway whose server restarted less than
/// `max_future` before it started); between a store restart and the first error a gateway sees from it there is a
/// window of in-flight calls (commands sent before the connection broke fail; the first call after it checks the run
/// ids).
///
/// # Restarts, failovers and operators
/// What each setting trusts, and what the validator detects:
///
/// | event | detected by | with `max_future` | without it |
/// |---|---|---|---|
/// | a master restarts or is replaced (failover, even to a replica that lags) | its `run_id` changes (or, where `INFO` has none, its uptime goes down), read after any error and at least once a second | the guard: every nonce standing for up to `detection + max_future` is refused, whatever `appendfsync` says (replication is asynchronous) | trusted: `build()` demanded `appendfsync always` or [`accept_durability_risk`](RedisValidatorBuilder::accept_durability_risk) |
/// | `FLUSHALL`, `FLUSHDB`, the prefix's keys deleted, an old backup restored | the prefix's record `{prefix}:meta` is gone or holds another epoch | the guard, on every gateway | fails closed for good (`Unavailable`): no guard can refuse the replays |
/// | `maxmemory-policy` set to an evicting policy at run time | re-read at each check (where `CONFIG` answers) | `Unavailable` until it is `noeviction` again | the same |
/// | a gateway with another policy, width or time scale on the prefix | the record names the settings the keys were written with | `build()` refuses it (a rolling deploy stops at the first such gateway; the others keep serving) | the same |
/// | a prefix's first start | no record yet | the guard, unless [`assume_new_prefix`](RedisValidatorBuilder::assume_new_prefix) | nothing |
///
/// Operators must not: delete single account keys by hand (undetectable: that
/// account's replays reopen), run two fleets of other settings on one prefix
/// (refused), or give the store a policy that evicts keys (refused, at
/// `build()` and at run time). On managed Redis where `CONFIG` is disabled,
/// [`declare_noeviction`](RedisValidatorBuilder::declare_noeviction) states
/// the eviction policy in its place, and the store is taken as one that may
/// lose writes. To change the policy, its width or the time scale, stop the
/// gateways of the old settings and start the new ones on a new key prefix
/// with `max_future`: its first start refuses everything the old prefix could
/// have accepted.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use monotonic_nonce::{Policy, RedisValidator, Strategy};
/// use std::time::Duration;
/// let v = RedisValidator::builder(Policy::HighestK(20))
///     .url("redis://127.0.0.1:6379")
///     .strategy(Strategy::Millis)
///     .max_past(Duration::from_secs(60))
///     .max_future(Duration::from_secs(5))
///     .build()
///     .await?;
/// v.validate("api-key-1", 1_704_067_200_000).await?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisValidator<C: Clock = SystemClock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for RedisValidator<C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

struct Inner<C> {
    conn: Conn,
    script: Script,
    policy: Policy,
    prefix: String,
    clock: C,
    limits: Limits,
    expiry_margin_ms: u64,
    timeout: Duration,
    guard: Guard,
    stats: Mutex<Stats>,
    /// Its metrics' handles (nothing without the `metrics` feature).
    telemetry: Verdicts,
    /// A cluster: the script names the master that answered.
    cluster: bool,
    json_numbers: JsonNumbers,
}

impl<C: Clock> RedisValidator<C> {
    /// Checks `nonce` for `account` and records it if accepted, atomically on the store.
    ///
    /// # Errors
    /// The [`Rejection`], as [`NonceValidator::validate`](crate::NonceValidator::validate)
    /// would give it; [`Rejection::Unavailable`] when the store did not answer
    /// in time (nothing is accepted then); [`Rejection::AccountTooLong`] for a
    /// key above [`MAX_ACCOUNT_LEN`] bytes.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// v.validate("api-key-1", 1_704_067_200_000).await?;
    /// assert!(v.validate("api-key-1", 1_704_067_200_000).await.is_err()); // a replay, on any gateway
    /// # Ok(()) }
    /// ```
    pub async fn validate(&self, account: impl AsRef<[u8]>, nonce: u64) -> Result<(), Rejection> {
        let verdict = self.call(account.as_ref(), nonce, Op::Validate).await;
        self.inner.stats.lock().count(verdict.as_ref().map(|_| ()));
        self.inner.telemetry.verdict(verdict.as_ref().map(|_| ()));
        verdict
    }

    /// The verdict `validate` would give now, without recording anything.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// v.check("api-key-1", 5).await?; // records nothing
    /// # Ok(()) }
    /// ```
    pub async fn check(&self, account: impl AsRef<[u8]>, nonce: u64) -> Result<(), Rejection> {
        let verdict = self.call(account.as_ref(), nonce, Op::Check).await;
        self.inner.telemetry.check(verdict.as_ref().map(|_| ()));
        verdict
    }

    /// The highest nonce accepted for `account`, if the store holds it.
    ///
    /// # Errors
    /// [`Rejection::Unavailable`] when the store did not answer; [`Rejection::AccountTooLong`].
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// v.validate(b"key", 7).await?;
    /// assert_eq!(v.last_nonce(b"key").await?, Some(7));
    /// # Ok(()) }
    /// ```
    pub async fn last_nonce(&self, account: impl AsRef<[u8]>) -> Result<Option<u64>, Rejection> {
        let account = account.as_ref();
        let key = self.key(account)?;
        let reply = self.eval(&key, Op::Last, 1, 0, None).await?;
        let (reply, _) = wire::split_node(reply, self.inner.cluster)?;
        wire::last_nonce(&reply)
    }

    /// Validates a batch in one pipelined round trip per node (a cluster
    /// spreads it over its masters); each result is what `validate` would have
    /// given, in order. A store error fails every item still waiting on it.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// let verdicts = v.validate_many(&[("a", 5u64), ("b", 9), ("a", 5)]).await;
    /// assert!(verdicts[0].is_ok() && verdicts[2].is_err());
    /// # Ok(()) }
    /// ```
    pub async fn validate_many<A: AsRef<[u8]>>(&self, batch: &[(A, u64)]) -> Vec<Result<(), Rejection>> {
        let mut results: Vec<Option<Result<(), Rejection>>> = vec![None; batch.len()];
        let mut calls: Vec<(usize, Vec<u8>, u64, u64)> = Vec::with_capacity(batch.len());
        // one reading for the whole batch: the bounds, the TTLs and the guard check
        let reading = self.inner.clock.now_ms();
        let now = reading.as_ref().ok().copied();
        for (i, (account, nonce)) in batch.iter().enumerate() {
            let prepared = self.key(account.as_ref()).and_then(|key| {
                self.inner.limits.precheck(*nonce, || reading.clone())?;
                Ok((key, self.ttl_ms(*nonce, now)))
            });
            match prepared {
                Ok((key, ttl)) => calls.push((i, key, *nonce, ttl)),
                Err(r) => results[i] = Some(Err(r)),
            }
        }
        if !calls.is_empty() {
            match self.ready(now).await {
                Err(r) => {
                    for (i, ..) in &calls {
                        results[*i] = Some(Err(r.clone()));
                    }
                }
                Ok(floor) => {
                    let replies = self.eval_many(&calls, floor).await;
                    for ((i, _, nonce, _), reply) in calls.iter().zip(replies) {
                        results[*i] = Some(match reply {
                            Ok(v) => self.judge(v, *nonce, floor, now).await,
                            Err(r) => Err(r),
                        });
                    }
                }
            }
        }
        let results: Vec<Result<(), Rejection>> =
            results.into_iter().map(|r| r.unwrap_or_else(|| Err(unavailable("no reply for this item")))).collect();
        let mut stats = self.inner.stats.lock();
        for r in &results {
            stats.count(r.as_ref().map(|_| ()));
            self.inner.telemetry.verdict(r.as_ref().map(|_| ()));
        }
        results
    }

    /// The verdicts given by this validator (and its clones) so far, by kind.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// v.validate("k", 1).await?;
    /// assert_eq!(v.stats().accepted, 1);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Stats {
        *self.inner.stats.lock()
    }

    /// One `PING` round trip on the validator's own connection (on a
    /// cluster, to a node redis-rs picks), within the response timeout: a
    /// readiness probe for the gateway, and the floor under a `validate`.
    ///
    /// # Errors
    /// [`Rejection::Unavailable`] when the store did not answer `PONG` in time.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// v.ping().await?; // ready
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self) -> Result<(), Rejection> {
        let ping = redis::cmd("PING");
        let answered = async {
            match self.inner.conn.query(&ping).await {
                Ok(reply) if store::text(&reply).as_deref() == Some("PONG") => Ok(()),
                Ok(reply) => Err(format!("PING answered {reply:?}")),
                Err(e) => Err(e.to_string()),
            }
        };
        self.guarded(None, self.inner.timeout, answered).await
    }

    /// How many restarts or failovers of the store this validator has seen
    /// (a change of the masters' run ids; one noticed by many calls at once
    /// counts once).
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// assert_eq!(v.restarts_seen(), 0);
    /// # Ok(()) }
    /// ```
    pub fn restarts_seen(&self) -> u64 {
        self.inner.guard.restarts()
    }

    /// The floor the restart guard currently imposes (0: none).
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// println!("nonces up to {} are refused for now", v.guard_floor());
    /// # Ok(()) }
    /// ```
    pub fn guard_floor(&self) -> u64 {
        self.inner.guard.floor()
    }

    /// The JSON body for `rejection`, the same as
    /// [`NonceValidator::error_body`](crate::NonceValidator::error_body) writes:
    /// `lastNonce` is read from the store for the refusals that do not carry
    /// one (left out if the store does not answer), and nonces are written as
    /// the builder's `json_numbers` says.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// if let Err(rejection) = v.validate("key", 0).await {
    ///     let body = v.error_body("key", &rejection).await;
    ///     assert_eq!(body.http_status(), 400);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn error_body(&self, account: impl AsRef<[u8]>, rejection: &Rejection) -> ErrorBody {
        let last = match rejection {
            _ if rejection.error_body().error.details.last_nonce.is_some() => None,
            // not about the account's state: no round trip (after a failure it would wait for another)
            Rejection::Unavailable { .. } | Rejection::ClockUnavailable(_) | Rejection::AccountTooLong { .. } => None,
            _ => self.last_nonce(account).await.ok().flatten(),
        };
        crate::rules::error_body(rejection, last, self.inner.json_numbers)
    }

    /// The policy.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// assert_eq!(v.policy(), Policy::Strict);
    /// # Ok(()) }
    /// ```
    pub fn policy(&self) -> Policy {
        self.inner.policy
    }

    fn key(&self, account: &[u8]) -> Result<Vec<u8>, Rejection> {
        keys::account(&self.inner.prefix, account)
    }

    /// The key's time to live after accepting `nonce`: until every nonce up to it
    /// is older than `max_past`, plus the margin. 0: keys do not expire.
    fn ttl_ms(&self, nonce: u64, now: Option<u64>) -> u64 {
        let Some(b) = self.inner.limits.bounds else { return 0 };
        let (Some(past), Some(now)) = (b.max_past_ms, now) else { return 0 };
        let until =
            self.inner.limits.scale.ms_of(nonce).saturating_add(past).saturating_add(self.inner.expiry_margin_ms);
        until.saturating_sub(now).max(1)
    }

    /// The restart guard is current (checked if due); answers its floor.
    async fn ready(&self, now: Option<u64>) -> Result<u64, Rejection> {
        self.checked(now, false).await
    }

    /// Runs the guard's check (at once when `force`) within its budget: two
    /// response timeouts (one server is probed within one; a cluster's masters within half of one each).
    async fn checked(&self, now: Option<u64>, force: bool) -> Result<u64, Rejection> {
        let check = self.inner.guard.ensure_checked(&self.inner.conn, now, &self.inner.limits, force);
        self.guarded(None, self.inner.timeout.saturating_mul(2), check).await?;
        Ok(self.inner.guard.floor())
    }

    async fn call(&self, account: &[u8], nonce: u64, op: Op) -> Result<(), Rejection> {
        let key = self.key(account)?;
        // one reading for the bounds, the guard check and the TTL
        let reading = self.inner.clock.now_ms();
        self.inner.limits.precheck(nonce, || reading.clone())?;
        let now = reading.ok();
        let floor = self.ready(now).await?;
        let reply = self.eval(&key, op, nonce, floor, now).await?;
        self.judge(reply, nonce, floor, now).await
    }

    /// The verdict in `reply`. On a cluster the reply names the master that
    /// answered: one this gateway does not know or doubts (a redirect after a
    /// failover, a master that restarted) is checked first, and an acceptance
    /// at or below the floor that check raised is refused as `TooLow` (its
    /// recording only refuses more).
    async fn judge(&self, reply: Value, nonce: u64, floor: u64, now: Option<u64>) -> Result<(), Rejection> {
        let (reply, node) = wire::split_node(reply, self.inner.cluster)?;
        let floor = match node {
            Some(node) if !self.inner.guard.trusts(&node) => self.checked(now, true).await?,
            _ => floor,
        };
        match decode(&reply).and_then(|c| verdict(c, nonce)) {
            Ok(()) if nonce <= floor => Err(Rejection::TooLow { last_nonce: floor, attempted_nonce: nonce }),
            other => other,
        }
    }

    fn invocation<'a>(&'a self, key: &[u8], op: Op, nonce: u64, floor: u64, ttl: u64) -> redis::ScriptInvocation<'a> {
        let mut inv = self.inner.script.key(key);
        inv.arg(&script_args(op, self.inner.policy, nonce, floor, ttl, self.inner.cluster)[..]);
        inv
    }

    async fn eval(&self, key: &[u8], op: Op, nonce: u64, floor: u64, now: Option<u64>) -> Result<Value, Rejection> {
        let ttl = if op == Op::Validate { self.ttl_ms(nonce, now) } else { 0 };
        self.eval_ttl(key, op, nonce, floor, ttl).await
    }

    /// One script call within the response timeout; an error doubts the key's master.
    async fn eval_ttl(&self, key: &[u8], op: Op, nonce: u64, floor: u64, ttl: u64) -> Result<Value, Rejection> {
        let inv = self.invocation(key, op, nonce, floor, ttl);
        let mut conn = self.inner.conn.clone();
        self.guarded(Some(key), self.inner.timeout, inv.invoke_async(&mut conn)).await
    }

    async fn eval_many(&self, calls: &[(usize, Vec<u8>, u64, u64)], floor: u64) -> Vec<Result<Value, Rejection>> {
        let failed = |why: String| calls.iter().map(|_| Err(unavailable(&why))).collect::<Vec<_>>();
        let work = async {
            match &self.inner.conn {
                Conn::Single(_) => self.pipeline_once_each(calls, floor).await,
                Conn::Cluster(_) => {
                    // each item within its own deadline: one hung master fails only its items
                    let each =
                        calls.iter().map(|(_, key, nonce, ttl)| self.eval_ttl(key, Op::Validate, *nonce, floor, *ttl));
                    futures_util::future::join_all(each).await
                }
            }
        };
        let work = async { Ok::<_, std::convert::Infallible>(work.await) };
        match self.guarded(None, self.inner.timeout.saturating_mul(2), work).await {
            Ok(replies) => {
                // one node: its batch's errors are the store's (a cluster's items doubted their own masters)
                if matches!(self.inner.conn, Conn::Single(_)) && replies.iter().any(Result::is_err) {
                    self.inner.guard.suspect(None);
                }
                replies
            }
            Err(why) => failed(why.to_string()),
        }
    }
}

impl<C: Clock> RedisValidator<C> {
    /// Runs `work` within `budget`. A store error or a timeout is
    /// `Unavailable` (fail closed), and makes the guard doubt the master of
    /// `key` (on a cluster whose slot map it knows) or the whole store, so
    /// the store is checked before it is trusted again.
    async fn guarded<T, E: fmt::Display>(
        &self,
        key: Option<&[u8]>,
        budget: Duration,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Rejection> {
        let why = match tokio::time::timeout(budget, work).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        self.inner.guard.suspect(key);
        Err(unavailable(&why))
    }

    /// The batch as one pipeline on one node. Each item runs at most once: after
    /// `SCRIPT FLUSH` (a restart, an operator) only the items refused with
    /// `NOSCRIPT` are sent again, after loading the script; an item that ran is
    /// never resent (its resend would refuse an honest nonce as already used).
    async fn pipeline_once_each(
        &self,
        calls: &[(usize, Vec<u8>, u64, u64)],
        floor: u64,
    ) -> Vec<Result<Value, Rejection>> {
        let mut replies: Vec<Option<Result<Value, Rejection>>> = vec![None; calls.len()];
        let mut pending: Vec<usize> = (0..calls.len()).collect();
        for _ in 0..3 {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for &i in &pending {
                let (_, key, nonce, ttl) = &calls[i];
                pipe.invoke_script(&self.invocation(key, Op::Validate, *nonce, floor, *ttl));
            }
            let values = match self.inner.conn.pipeline(&pipe).await {
                Ok(values) if values.len() == pending.len() => values,
                Ok(values) => {
                    let why = format!("{} replies for {} calls", values.len(), pending.len());
                    pending.iter().for_each(|&i| replies[i] = Some(Err(unavailable(&why))));
                    break;
                }
                Err(e) => {
                    pending.iter().for_each(|&i| replies[i] = Some(Err(unavailable(&e.to_string()))));
                    break;
                }
            };
            let mut again = Vec::new();
            for (&i, value) in pending.iter().zip(values) {
                match value {
                    Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => again.push(i),
                    Value::ServerError(e) => replies[i] = Some(Err(unavailable(&e.to_string()))),
                    value => replies[i] = Some(Ok(value)),
                }
            }
            if again.is_empty() {
                break;
            }
            let mut load = redis::cmd("SCRIPT");
            load.arg("LOAD").arg(store::SOURCE);
            if let Err(e) = self.inner.conn.query(&load).await {
                again.iter().for_each(|&i| replies[i] = Some(Err(unavailable(&e.to_string()))));
                break;
            }
            pending = again;
        }
        replies
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(unavailable("the script cache was flushed on every try"))))
            .collect()
    }
}

impl<C: Clock> fmt::Debug for RedisValidator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisValidator")
            .field("policy", &self.inner.policy)
            .field("conn", &self.inner.conn)
            .field("prefix", &self.inner.prefix)
            .field("limits", &self.inner.limits)
            .field("guard_floor", &self.inner.guard.floor())
            .finish()
    }
}
