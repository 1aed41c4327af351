//! [`RedisValidatorBuilder`]: the settings of a [`RedisValidator`], checked
//! against each other and against the store's own configuration at `build()`.

use super::guard::{Guard, Known, Start};
use super::keys;
use super::meta::{self, Meta};
use super::store::{self, Conn, Target};
use super::topology;
use super::{Inner, RedisValidator};
use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::protocol::JsonNumbers;
use crate::rules::{Policy, Stats, TimeBounds};
use crate::strategy::{Strategy, TimeScale};
use crate::sync::Mutex;
use crate::telemetry::Verdicts;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// The default `response_timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The default margin added to every key's time to live (clock skew between gateways and Redis).
const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Configures a [`RedisValidator`]; [`build`](Self::build) connects, reads the
/// server's configuration and refuses every unsafe combination.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct RedisValidatorBuilder<C: Clock = SystemClock> {
    policy: Policy,
    target: Option<Target>,
    prefix: String,
    clock: C,
    /// The stateless checks: time scale, time bounds, ceiling.
    bounds: TimeBounds,
    timeout: Duration,
    expiry_margin: Duration,
    accept_durability_risk: bool,
    json_numbers: JsonNumbers,
    declared_noeviction: bool,
    assume_new_prefix: bool,
}

impl RedisValidator {
    /// A builder for `policy` on the [`SystemClock`].
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// let builder = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379");
    /// # drop(builder);
    /// ```
    pub fn builder(policy: Policy) -> RedisValidatorBuilder<SystemClock> {
        RedisValidatorBuilder {
            policy,
            target: None,
            prefix: "nonce".to_owned(),
            clock: SystemClock,
            bounds: TimeBounds::new(),
            timeout: DEFAULT_TIMEOUT,
            expiry_margin: DEFAULT_EXPIRY_MARGIN,
            accept_durability_risk: false,
            json_numbers: JsonNumbers::Auto,
            declared_noeviction: false,
            assume_new_prefix: false,
        }
    }
}

impl<C: Clock> RedisValidatorBuilder<C> {
    /// One Redis node, e.g. `redis://127.0.0.1:6379` (or `rediss://` with TLS support in redis-rs).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379");
    /// # drop(b);
    /// ```
    pub fn url(mut self, url: &str) -> Self {
        self.target = Some(Target::Url(url.to_owned()));
        self
    }

    /// A Redis Cluster, by its seed nodes (`redis://host:port` each).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// let seeds = vec!["redis://10.0.0.5:7000".to_owned(), "redis://10.0.0.6:7000".to_owned()];
    /// let b = RedisValidator::builder(Policy::Strict).cluster(seeds);
    /// # drop(b);
    /// ```
    pub fn cluster(mut self, nodes: Vec<String>) -> Self {
        self.target = Some(Target::Cluster(nodes));
        self
    }

    /// The key prefix (default `"nonce"`): an account's key is `{prefix:account}`.
    /// Must not contain `{` or `}` (they would break the hash tag).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").key_prefix("gw-eu"); // keys are {gw-eu:account}
    /// # drop(b);
    /// ```
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// The clock the time bounds and the restart guard use (default [`SystemClock`]).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator, clock::ManualClock};
    /// let b = RedisValidator::builder(Policy::Strict).clock(ManualClock::new(1_704_067_200_000));
    /// # drop(b);
    /// ```
    pub fn clock<D: Clock>(self, clock: D) -> RedisValidatorBuilder<D> {
        RedisValidatorBuilder {
            policy: self.policy,
            target: self.target,
            prefix: self.prefix,
            clock,
            bounds: self.bounds,
            timeout: self.timeout,
            expiry_margin: self.expiry_margin,
            accept_durability_risk: self.accept_durability_risk,
            json_numbers: self.json_numbers,
            declared_noeviction: self.declared_noeviction,
            assume_new_prefix: self.assume_new_prefix,
        }
    }

    /// The strategy the clients sign with (its [`TimeScale`]), as for the in-memory validator.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator, Strategy};
    /// let b = RedisValidator::builder(Policy::Strict).strategy(Strategy::Hft { counter_digits: 3 });
    /// # drop(b);
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.bounds = self.bounds.strategy(strategy);
        self
    }

    /// The time scale directly.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator, strategy::TimeScale};
    /// let b = RedisValidator::builder(Policy::Strict).time_scale(TimeScale::MILLIS);
    /// # drop(b);
    /// ```
    pub fn time_scale(mut self, scale: TimeScale) -> Self {
        self.bounds = self.bounds.time_scale(scale);
        self
    }

    /// Refuse nonces standing for a time more than `d` behind the clock. With
    /// it, each account key expires once every nonce it could still refuse is
    /// older than `d` (plus the expiry margin), so memory stays bounded and an
    /// expired account's replays are all `TooOld`. Without it keys never expire.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").max_past(Duration::from_secs(60));
    /// # drop(b);
    /// ```
    pub fn max_past(mut self, d: Duration) -> Self {
        self.bounds = self.bounds.max_past(d);
        self
    }

    /// Refuse nonces standing for a time more than `d` ahead of the clock; also
    /// what makes the restart guard possible.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").max_future(Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn max_future(mut self, d: Duration) -> Self {
        self.bounds = self.bounds.max_future(d);
        self
    }

    /// The highest nonce accepted (default [`I64_MAX`](crate::strategy::I64_MAX)).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").ceiling(monotonic_nonce::strategy::JS_SAFE_MAX);
    /// # drop(b);
    /// ```
    pub fn ceiling(mut self, ceiling: u64) -> Self {
        self.bounds = self.bounds.ceiling(ceiling);
        self
    }

    /// Every stateless check at once (time scale, `max_past`, `max_future`,
    /// ceiling), replacing what the setters above set: one value several
    /// gateways can share.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator, rules::TimeBounds};
    /// let shared = TimeBounds::new().max_future(std::time::Duration::from_secs(5));
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").time_bounds(shared);
    /// # drop(b);
    /// ```
    pub fn time_bounds(mut self, bounds: TimeBounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// How long to wait for the store's answer (default 50 ms); past it the
    /// verdict is [`Rejection::Unavailable`](crate::Rejection::Unavailable).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").response_timeout(Duration::from_millis(20));
    /// # drop(b);
    /// ```
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Added to every key's time to live (default 60 s): covers clock skew
    /// between the gateways and Redis, so a key never expires while a gateway
    /// with a slower clock could still accept one of its replays.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").max_past(Duration::from_secs(60)).expiry_margin(Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn expiry_margin(mut self, d: Duration) -> Self {
        self.expiry_margin = d;
        self
    }

    /// Accept a store that does not fsync every write (`appendfsync everysec`
    /// or no AOF) without a `max_future` bound: after a restart that lost up to
    /// a second of writes, the requests accepted in that second can be replayed
    /// once. Without this, `build()` refuses that combination.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk(); // appendfsync everysec, no max_future
    /// # drop(b);
    /// ```
    pub fn accept_durability_risk(mut self) -> Self {
        self.accept_durability_risk = true;
        self
    }

    /// How [`RedisValidator::error_body`] writes nonces (default
    /// [`JsonNumbers::Auto`]: numbers up to 2^53 - 1, decimal strings above),
    /// as `NonceValidatorBuilder::json_numbers`.
    ///
    /// ```
    /// use monotonic_nonce::{protocol::JsonNumbers, Policy, RedisValidator};
    /// let b = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").json_numbers(JsonNumbers::Strings);
    /// # drop(b);
    /// ```
    pub fn json_numbers(mut self, numbers: JsonNumbers) -> Self {
        self.json_numbers = numbers;
        self
    }

    /// For a store whose `CONFIG` command is disabled (managed Redis such as
    /// ElastiCache or Aiven for Valkey): the operator declares that its
    /// `maxmemory-policy` is `noeviction`, which the validator cannot check.
    /// The store is then treated as one that may lose acknowledged writes:
    /// `build()` needs [`max_future`](Self::max_future) (the restart guard)
    /// or [`accept_durability_risk`](Self::accept_durability_risk).
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// use std::time::Duration;
    /// let builder = RedisValidator::builder(Policy::Strict)
    ///     .url("redis://my-elasticache:6379")
    ///     .declare_noeviction()
    ///     .max_future(Duration::from_secs(30));
    /// # drop(builder);
    /// ```
    pub fn declare_noeviction(mut self) -> Self {
        self.declared_noeviction = true;
        self
    }

    /// Declares that the key prefix has never held keys (a new deployment), so
    /// its first start raises no guard. Without it, a prefix whose record is
    /// missing is taken as one whose state may have been lost while no gateway
    /// was watching (a `FLUSHALL` with every gateway down): with `max_future`
    /// set, every gateway then refuses nonces up to `now + max_future` for
    /// `max_future`. Once the prefix's record exists this changes nothing.
    ///
    /// ```
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// let builder = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").key_prefix("gw-v2").assume_new_prefix();
    /// # drop(builder);
    /// ```
    pub fn assume_new_prefix(mut self) -> Self {
        self.assume_new_prefix = true;
        self
    }

    /// Checks the settings, connects, reads `maxmemory-policy`, `appendonly`
    /// and `appendfsync` on every master, and builds the validator.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an invalid policy, strategy, ceiling,
    /// key prefix or missing `url`/`cluster`; [`BuildError::Store`] when the
    /// store does not answer, evicts keys (`maxmemory-policy` other than
    /// `noeviction`), refuses `CONFIG` and nothing was declared
    /// ([`declare_noeviction`](Self::declare_noeviction)), may lose writes on
    /// a restart while there is neither a `max_future` nor
    /// [`accept_durability_risk`](Self::accept_durability_risk), or its key
    /// prefix was started with another policy, width or time scale.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build().await?;
    /// # let _ = v;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<RedisValidator<C>, BuildError> {
        let policy = self.policy.check()?;
        let limits = self.bounds.limits()?;
        if self.prefix.contains(['{', '}']) {
            return Err(BuildError::config("key_prefix", "must not contain '{' or '}': they would break the hash tag"));
        }
        let target = self.target.ok_or_else(|| BuildError::config("url", "set .url(..) or .cluster(..)"))?;
        if self.timeout.is_zero() {
            return Err(BuildError::config("response_timeout", "must be above 0"));
        }
        let expiry_margin_ms = BuildError::duration_ms("expiry_margin", self.expiry_margin)?;
        let conn = Conn::open(&target, self.timeout).await?;
        let durability = store::check_config(&conn, self.declared_noeviction).await?;
        if !durability.fsync_always && self.bounds.max_future_set().is_none() && !self.accept_durability_risk {
            let why = if durability.readable {
                "the store does not fsync every write (appendfsync is not always)"
            } else {
                "the store's durability cannot be read (CONFIG is disabled), so it is taken as one that may lose writes"
            };
            return Err(BuildError::Store {
                reason: format!("{why}, so a restart can lose accepted nonces and reopen their replays; set max_future (the restart guard), appendfsync always, or call accept_durability_risk()"),
            });
        }
        let seeds: Vec<String> = match &target {
            Target::Url(_) => vec!["single".to_owned()],
            Target::Cluster(nodes) => nodes.iter().map(|n| node_addr(n)).collect(),
        };
        let reading = topology::read(&conn, &seeds, &[], self.timeout.max(Duration::from_secs(1)))
            .await
            .map_err(|e| BuildError::Store { reason: format!("cannot read the masters: {e}") })?;
        let now = self.clock.now_ms()?;
        // the prefix's record: the same settings, or no gateway of ours
        let settings = meta::settings(policy, limits.scale.units_per_ms());
        let meta_key = keys::meta(&self.prefix);
        let store_err = |e: String| BuildError::Store { reason: e };
        let existing = meta::read(&conn, &meta_key).await.map_err(|e| store_err(e.to_string()))?.map_err(store_err)?;
        // A prefix seen for the first time (its state may have been lost with no one
        // to notice, unless the operator says it is new) starts with the guard up, on
        // every gateway (the floor is in the record); so does a server that started
        // less than max_future ago and may have lost writes this gateway never saw.
        let fresh_floor = match limits.reachable(now) {
            Some(reachable) if !self.assume_new_prefix => reachable,
            _ => 0,
        };
        let record = match existing {
            Some(m) => m,
            None => {
                let fresh = Meta::fresh(&settings, fresh_floor).map_err(store_err)?;
                meta::create(&conn, &meta_key, &fresh)
                    .await
                    .map_err(|e| store_err(e.to_string()))?
                    .map_err(store_err)?
            }
        };
        if record.settings != settings {
            return Err(BuildError::Store {
                reason: format!(
                    "the key prefix {:?} holds keys written with {}, this gateway has {}: a key read under other rules could reopen replays. Every gateway on a prefix needs the same policy, width and time scale; to change them, stop the gateways of the old settings and start the new ones on a new key_prefix with max_future (its first start raises the guard past everything the old prefix could have accepted)",
                    self.prefix, record.settings, settings
                ),
            });
        }
        let youngest_ms = reading.masters.iter().map(|n| n.uptime_s).min().unwrap_or(0).saturating_mul(1_000);
        let young = match (self.bounds.max_future_set(), limits.reachable(now)) {
            (Some(f), Some(reachable)) if !durability.fsync_always && youngest_ms <= f.as_millis() as u64 + 1_000 => {
                reachable
            }
            _ => 0,
        };
        let floor = record.floor.max(young);
        Ok(RedisValidator {
            inner: Arc::new(Inner {
                conn,
                script: Script::new(store::SOURCE),
                policy,
                prefix: self.prefix,
                clock: self.clock,
                limits,
                expiry_margin_ms,
                timeout: self.timeout,
                guard: Guard::new(Start {
                    known: Known::new(reading, record.epoch),
                    meta_key,
                    settings,
                    check_eviction: durability.readable,
                    // one server: the whole response timeout; a cluster: half, so that a
                    // check with one hung master still ends within the call's budget
                    probe_deadline: if matches!(target, Target::Cluster(_)) { self.timeout / 2 } else { self.timeout },
                    now_ms: now,
                    floor,
                }),
                cluster: matches!(target, Target::Cluster(_)),
                json_numbers: self.json_numbers,
                stats: Mutex::new(Stats::default()),
                telemetry: Verdicts::new("redis"),
            }),
        })
    }
}

/// `host:port` of a node given as a URL (`redis://host:port`) or as `host:port`.
fn node_addr(node: &str) -> String {
    let rest = node.split_once("://").map_or(node, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('/').next().unwrap_or(rest).to_owned()
}
