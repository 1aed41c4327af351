//! Error types by phase: [`BuildError`] (what a builder refuses), [`NonceError`]
//! (what `next()` and friends can return at run time), [`PersistError`] (the
//! durable mark's file), [`ClockError`], and [`Rejection`] (a validator's verdict).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a [`Clock`](crate::Clock) could not give the time.
///
/// ```
/// use monotonic_nonce::{Clock, clock::{ClockError, ManualClock}};
/// let clock = ManualClock::new(1);
/// clock.set_failing(true);
/// assert_eq!(clock.now_ms(), Err(ClockError::Injected));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ClockError {
    /// The wall clock reads a time before 1970-01-01; check the host's clock.
    #[error("the wall clock reads a time before the Unix epoch; fix the host clock (NTP)")]
    BeforeUnixEpoch,
    /// The time in milliseconds does not fit in a `u64`.
    #[error("the wall clock reads a time whose milliseconds do not fit in a u64")]
    OutOfRange,
    /// A [`ManualClock`](crate::clock::ManualClock) was told to fail (fault injection in tests).
    #[error("the manual clock was set to fail (fault injection)")]
    Injected,
    /// An [`OffsetClock`](crate::client::OffsetClock) sample whose response arrived
    /// before its request was sent, or whose offset is beyond the clock's bound.
    #[error("invalid round-trip sample (response before request, or an offset beyond the plausible bound); the sample was ignored")]
    InvalidSample,
}

/// What a builder's `build()` refused: every builder of the crate returns it.
///
/// ```
/// use monotonic_nonce::{BuildError, NonceValidator, Policy};
/// let e = NonceValidator::<u8>::builder(Policy::Window(0)).build().unwrap_err();
/// assert!(matches!(e, BuildError::InvalidConfig { field: "policy", .. }));
/// assert_eq!(e.to_string(), "invalid `policy`: Window(0) is Strict; use Policy::Strict or w >= 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting (or a strategy or policy parameter) is invalid on its own or
    /// together with another; `reason` says what to change.
    #[error("invalid `{field}`: {reason}")]
    InvalidConfig {
        /// The builder setting at fault, e.g. `"ceiling"`.
        field: &'static str,
        /// What is wrong and what to change, one line.
        reason: String,
    },
    /// The clock could not be read where `build()` needed it (today's nonce
    /// against the ceiling, or a restore guard).
    #[error("the clock could not be read at build time")]
    Clock(#[source] ClockError),
    /// The durable mark file could not be opened, locked or decoded.
    #[error("the durable mark file cannot be used")]
    Persist(#[source] Box<PersistError>),
    /// A snapshot given to `restore` was refused: restoring it could reopen a replay.
    #[error("restore refused: {reason}")]
    Restore {
        /// What is wrong with the snapshot, and what to do.
        reason: String,
    },
    /// A shared store (Redis) could not be reached or is configured unsafely.
    #[error("the store refused the configuration: {reason}")]
    Store {
        /// What the store said or what is unsafe, and what to change.
        reason: String,
    },
    /// Every slot of a `client::SlotLease`'s key space (feature `redis`) is
    /// held (and no slot freed up within its `wait`).
    #[error("all {total_systems} slots of the key space {key_space:?} are held; stop a bot, raise total_systems on a new key space, or set wait()")]
    NoFreeSlot {
        /// The key space.
        key_space: String,
        /// Its number of slots.
        total_systems: u64,
    },
    /// The manager's clock is further from the lease store's `TIME` than the
    /// lease's `max_skew` allows (a host whose clock is off would hand out
    /// nonces the other bots' successors could step on).
    #[error("the clock is {skew_ms} ms from the lease store's TIME, beyond max_skew {max_skew_ms} ms; fix the host's time sync")]
    ClockSkew {
        /// This clock minus the store's, in ms.
        skew_ms: i64,
        /// The bound.
        max_skew_ms: u64,
    },
    /// The operating system's random source failed, so no secret key could
    /// be drawn (the nonce issuer's MAC key).
    #[error("the random source failed: {reason}")]
    Random {
        /// What the random source said.
        reason: String,
    },
}

impl BuildError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig { field, reason: reason.into() }
    }

    pub(crate) fn restore(reason: impl Into<String>) -> Self {
        Self::Restore { reason: reason.into() }
    }

    /// A builder's `Duration` as whole milliseconds, or a config error naming `field`.
    pub(crate) fn duration_ms(field: &'static str, d: std::time::Duration) -> Result<u64, Self> {
        u64::try_from(d.as_millis()).map_err(|_| Self::config(field, "does not fit in u64 milliseconds"))
    }
}

impl From<ClockError> for BuildError {
    fn from(e: ClockError) -> Self {
        Self::Clock(e)
    }
}

impl From<PersistError> for BuildError {
    fn from(e: PersistError) -> Self {
        Self::Persist(Box::new(e))
    }
}

/// What [`NonceManager::next`](crate::NonceManager::next), `reserve`,
/// `advance_past` and `apply_feedback` can return. Whenever one is returned,
/// nothing was handed out and nothing changed.
///
/// ```
/// use monotonic_nonce::{NonceError, NonceManager};
/// assert_eq!(NonceManager::new().reserve(0), Err(NonceError::EmptyBatch));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// The next nonce would be above the ceiling, a hard limit of the API the nonces go to.
    #[error("the next nonce would exceed the ceiling {ceiling}; use a strategy with fewer units per ms, or a higher ceiling")]
    Overflow {
        /// The configured ceiling.
        ceiling: u64,
    },
    /// `reserve(0)`: a batch must hold at least one nonce.
    #[error("reserve(0): a batch must hold at least one nonce")]
    EmptyBatch,
    /// The durable high-water mark could not be written (see
    /// [`NonceManagerBuilder::persist`](crate::client::NonceManagerBuilder::persist)).
    #[error("the durable mark could not be extended; nothing above it is handed out")]
    Persist(#[source] Box<PersistError>),
    /// The manager's slot lease lapsed (no renewal within its deadline less
    /// the margin) or was taken: nothing is handed out until it holds a
    /// lease again, which a later call tries (see
    /// `client::SlotLease`, feature `redis`).
    #[error("the lease on slot {slot} is not held; nothing is handed out until a slot is held again")]
    LeaseLost {
        /// The slot held last.
        slot: u64,
    },
    /// The slot's mark could not be written to the lease store; nothing above
    /// the mark is handed out until it can.
    #[error("the lease store could not extend the mark: {reason}")]
    LeaseStore {
        /// What the store said.
        reason: Box<str>,
    },
    /// The next nonce would stand for a time more than `max_lead` ahead of the
    /// clock (see [`NonceManagerBuilder::max_lead`](crate::client::NonceManagerBuilder::max_lead)).
    #[error("the next nonce would be {lead_ms} ms ahead of the clock, beyond max_lead; send fewer requests per ms or use Strategy::Hft")]
    TooFarAhead {
        /// How far ahead the nonce would have been, in ms.
        lead_ms: u64,
    },
    /// The server said a nonce was too far in the future: this side's clock or
    /// strategy is wrong. Nothing is "fixed" by lowering nonces; fix the cause.
    #[error("the server refused the nonce as too far in the future{}; check this host's clock (NTP) and the strategy", max_nonce.map(|m| format!(" (it accepts up to {m})")).unwrap_or_default())]
    ServerSaysTooFarAhead {
        /// The highest nonce the server accepts now, if it said (`NonZeroU64`
        /// keeps `Result<u64, NonceError>` at 24 bytes).
        max_nonce: Option<std::num::NonZeroU64>,
    },
    /// The server said the request's timestamp is outside its time window
    /// (Binance `-1021`): this host's clock is off; a higher nonce does not help.
    #[error("the server says this host's clock is outside its time window; sync the clock (NTP) or use OffsetClock")]
    ServerSaysClockSkew,
}

/// A high-water-mark file that could not be used: which file, what happened,
/// and the operating system's error as [`source`](std::error::Error::source).
///
/// ```
/// use monotonic_nonce::{BuildError, NonceManager};
/// let dir = std::env::temp_dir().join(format!("mn-doc-corrupt-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("bot.mark"), b"garbage").unwrap();
/// match NonceManager::builder().persist(dir.join("bot.mark")).build() {
///     Err(BuildError::Persist(e)) => {
///         assert!(e.path().ends_with("bot.mark"));
///         assert!(e.reason().contains("not a monotonic-nonce mark file"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PersistError {
    path: PathBuf,
    reason: String,
    source: Option<Arc<io::Error>>,
}

impl PersistError {
    pub(crate) fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self { path: path.to_owned(), reason: reason.into(), source: None }
    }

    pub(crate) fn io(path: &Path, reason: impl Into<String>, source: io::Error) -> Self {
        Self { path: path.to_owned(), reason: reason.into(), source: Some(Arc::new(source)) }
    }

    /// The file (or its directory, or its lock file) at fault.
    ///
    /// ```
    /// use monotonic_nonce::{BuildError, NonceManager};
    /// let r = NonceManager::builder().persist("/proc/mn-doc.mark").build();
    /// let Err(BuildError::Persist(e)) = r else { panic!("{r:?}") };
    /// assert!(e.path().starts_with("/proc"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What happened and what to do about it.
    ///
    /// ```
    /// use monotonic_nonce::{BuildError, NonceManager};
    /// let r = NonceManager::builder().persist("/proc/mn-doc.mark").build();
    /// let Err(BuildError::Persist(e)) = r else { panic!("{r:?}") };
    /// assert!(e.reason().contains("lock file"));
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The I/O error kind, when an operating-system call failed.
    ///
    /// ```
    /// use monotonic_nonce::{BuildError, NonceManager};
    /// let r = NonceManager::builder().persist("/proc/mn-doc.mark").build();
    /// let Err(BuildError::Persist(e)) = r else { panic!("{r:?}") };
    /// assert!(e.kind().is_some()); // the operating system said why
    /// ```
    pub fn kind(&self) -> Option<io::ErrorKind> {
        self.source.as_ref().map(|e| e.kind())
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for PersistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for PersistError {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.reason == other.reason && self.kind() == other.kind()
    }
}

impl Eq for PersistError {}

impl Hash for PersistError {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path.hash(state);
        self.reason.hash(state);
        self.kind().hash(state);
    }
}

/// Why a validator snapshot could not be saved or loaded (feature `serde`).
///
/// ```
/// use monotonic_nonce::validator::{SnapshotError, ValidatorSnapshot};
/// let r = ValidatorSnapshot::<String>::load("/nonexistent/snapshot.json");
/// assert!(matches!(r, Err(SnapshotError::Io { .. })));
/// ```
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("{}: cannot {doing} the snapshot", path.display())]
    Io {
        /// The snapshot file.
        path: PathBuf,
        /// What was being done: `"read"`, `"write"`.
        doing: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is not a complete snapshot (truncated, corrupt, another format).
    #[error("{}: not a complete validator snapshot; restore an older one or start with a max_future guard", path.display())]
    Format {
        /// The snapshot file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by a format version this build does not read.
    #[error("{}: snapshot format version {found}, this build reads version {expected}", path.display())]
    Version {
        /// The snapshot file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
}

/// Why a validator refused a nonce. A refused nonce changes nothing.
/// [`error_body`](Self::error_body) turns it into the JSON body exchange
/// clients already parse (see [`protocol`](crate::protocol)).
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, Rejection};
/// let v = NonceValidator::new(Policy::Strict);
/// v.validate(&1u32, 1_704_067_200_000)?;
/// let err = v.validate(&1u32, 1_704_067_199_000).unwrap_err();
/// assert_eq!(err, Rejection::TooLow { last_nonce: 1_704_067_200_000, attempted_nonce: 1_704_067_199_000 });
/// # Ok::<(), Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Rejection {
    /// This exact nonce was accepted before (a replay, or two signers on one key).
    #[error("nonce {attempted_nonce} was already used (last nonce {last_nonce})")]
    AlreadyUsed {
        /// The highest nonce accepted for the account.
        last_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Below what the policy (or a floor) can still accept; any nonce above
    /// `last_nonce` is past everything that refused this one.
    #[error("nonce {attempted_nonce} is too low: use a nonce above {last_nonce}")]
    TooLow {
        /// A value to move past: the highest accepted nonce or the floor that
        /// refused this one, whichever is higher.
        last_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Stands for a time further ahead of the server clock than `max_future` allows.
    #[error("nonce {attempted_nonce} is too far in the future (at most {max_nonce} now); check the client clock and strategy")]
    TooFarInFuture {
        /// The highest nonce the time bound accepts right now.
        max_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Stands for a time further behind the server clock than `max_past` allows.
    #[error("nonce {attempted_nonce} is too old (at least {min_nonce} now)")]
    TooOld {
        /// The lowest nonce the time bound accepts right now.
        min_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Nonces are positive integers; 0 is never valid.
    #[error("a nonce must be a positive integer, not 0")]
    NotPositive,
    /// Above the ceiling the server accepts.
    #[error("nonce {attempted_nonce} is above the ceiling {ceiling}")]
    AboveCeiling {
        /// The highest nonce the server accepts.
        ceiling: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Time bounds are set and the server clock could not be read: the
    /// validator fails closed rather than skip the bound.
    #[error("the server clock is unavailable, so the time bound cannot be checked")]
    ClockUnavailable(#[source] ClockError),
    /// The shared store could not answer (connection lost, timeout, script
    /// error, or the validator was closed): nothing was accepted (fail closed).
    #[error("the nonce store is unavailable ({reason}); nothing was accepted")]
    Unavailable {
        /// What failed, for logs.
        reason: String,
    },
    /// The account key is longer than the store accepts.
    #[error("the account key is {len} bytes, more than the {max} the store accepts")]
    AccountTooLong {
        /// The key's length in bytes.
        len: usize,
        /// The longest key accepted.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compile-time check: `next()`'s error has only run-time variants. A
    /// configuration or build-time variant added here breaks this exhaustive
    /// match (inside the crate `#[non_exhaustive]` does not apply).
    fn run_time_only(e: &NonceError) -> &'static str {
        match e {
            NonceError::Overflow { .. } => "overflow",
            NonceError::EmptyBatch => "empty batch",
            NonceError::Persist(_) => "persist",
            NonceError::TooFarAhead { .. } => "too far ahead",
            NonceError::ServerSaysTooFarAhead { .. } => "server: too far ahead",
            NonceError::ServerSaysClockSkew => "server: clock skew",
            NonceError::LeaseLost { .. } => "lease lost",
            NonceError::LeaseStore { .. } => "lease store",
        }
    }

    #[test]
    fn next_errors_have_no_configuration_variant() {
        assert_eq!(run_time_only(&NonceError::EmptyBatch), "empty batch");
        assert!(std::mem::size_of::<Result<u64, NonceError>>() <= 24);
    }

    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn every_public_error_is_an_error_send_sync_static() {
        assert_error::<BuildError>();
        assert_error::<NonceError>();
        assert_error::<PersistError>();
        assert_error::<ClockError>();
        assert_error::<Rejection>();
        #[cfg(feature = "serde")]
        assert_error::<SnapshotError>();
    }

    #[test]
    fn each_cause_is_printed_once_on_one_line() {
        let io = io::Error::new(io::ErrorKind::PermissionDenied, "denied by the test");
        let e = BuildError::from(PersistError::io(Path::new("/x/m"), "cannot lock the mark file", io));
        let mut chain = vec![e.to_string()];
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            chain.push(c.to_string());
            cause = c.source();
        }
        assert_eq!(
            chain,
            ["the durable mark file cannot be used", "/x/m: cannot lock the mark file", "denied by the test"]
        );
        let clock = BuildError::Clock(ClockError::Injected);
        assert!(!clock.to_string().contains("manual clock"), "the cause is printed by source(), not twice");
        for text in chain {
            assert!(!text.contains('\n'), "{text}");
        }
    }
}
