//! [`NonceIssuerBuilder`]: every setting of a [`NonceIssuer`], checked once at `build()`.

use super::counter::Counters;
use super::ledger::Ledger;
use super::token::{self, Mac};
use super::{NonceIssuer, DEFAULT_ISSUER_WINDOW, MAX_ISSUER_WINDOW};
use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::telemetry::Issuer;
use std::fmt;
use std::time::Duration;

/// Configures a [`NonceIssuer`]; [`build`](Self::build) refuses every invalid setting.
///
/// ```
/// use monotonic_nonce::NonceIssuer;
/// use std::time::Duration;
/// let issuer = NonceIssuer::builder().prefix("gw-eu-01").window(4_096).max_age(Duration::from_secs(600)).build()?;
/// assert!(issuer.issue().starts_with("gw-eu-01"));
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
#[must_use = "a builder does nothing until .build()"]
pub struct NonceIssuerBuilder<C: Clock = SystemClock> {
    window: u64,
    prefix: String,
    max_age: Option<Duration>,
    reject_rate: f64,
    clock: C,
    key: Option<[u8; 16]>,
}

impl<C: Clock> fmt::Debug for NonceIssuerBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuerBuilder")
            .field("window", &self.window)
            .field("prefix", &self.prefix)
            .field("max_age", &self.max_age)
            .field("reject_rate", &self.reject_rate)
            .finish()
    }
}

impl NonceIssuerBuilder {
    /// The defaults of [`NonceIssuer::new`].
    pub(super) fn new() -> Self {
        NonceIssuerBuilder {
            window: DEFAULT_ISSUER_WINDOW,
            prefix: String::new(),
            max_age: None,
            reject_rate: 0.0,
            clock: SystemClock,
            key: None,
        }
    }
}

impl<C: Clock> NonceIssuerBuilder<C> {
    /// How many of the latest nonces are redeemable at a time (default
    /// [`DEFAULT_ISSUER_WINDOW`]; at most [`MAX_WINDOW`](crate::rules::MAX_WINDOW)).
    ///
    /// ```
    /// use monotonic_nonce::NonceIssuer;
    /// let issuer = NonceIssuer::builder().window(1_024).build()?;
    /// assert!(issuer.redeem(&issuer.issue()).is_ok());
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn window(mut self, window: u64) -> Self {
        self.window = window;
        self
    }

    /// An instance prefix of exactly 8 URL-safe characters (`A-Z a-z 0-9 - _`), for routing.
    ///
    /// ```
    /// use monotonic_nonce::NonceIssuer;
    /// let issuer = NonceIssuer::builder().prefix("gw-eu-01").build()?;
    /// assert!(issuer.issue().starts_with("gw-eu-01"));
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Nonces older than this are `TooOld` (off by default).
    ///
    /// ```
    /// use monotonic_nonce::NonceIssuer;
    /// use std::time::Duration;
    /// let issuer = NonceIssuer::builder().max_age(Duration::from_secs(3_600)).build()?;
    /// assert!(issuer.redeem(&issuer.issue()).is_ok());
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Rejects this fraction (0.0 to 1.0) of otherwise valid nonces as
    /// `Injected`, consuming them: Pebble's `PEBBLE_WFE_NONCEREJECT`, so
    /// clients exercise their retry path. Off by default.
    ///
    /// ```
    /// use monotonic_nonce::{NonceIssuer, acme::BadNonce};
    /// let issuer = NonceIssuer::builder().reject_rate(1.0).build()?;
    /// assert_eq!(issuer.redeem(&issuer.issue()), Err(BadNonce::Injected));
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn reject_rate(mut self, rate: f64) -> Self {
        self.reject_rate = rate;
        self
    }

    /// The clock for `max_age` (default [`SystemClock`]).
    ///
    /// ```
    /// use monotonic_nonce::{NonceIssuer, acme::BadNonce, clock::ManualClock};
    /// use std::time::Duration;
    /// let clock = ManualClock::new(1_000_000);
    /// let issuer = NonceIssuer::builder().clock(clock.clone()).max_age(Duration::from_secs(1)).build()?;
    /// let n = issuer.issue();
    /// clock.advance(1_001);
    /// assert_eq!(issuer.redeem(&n), Err(BadNonce::TooOld));
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn clock<D: Clock>(self, clock: D) -> NonceIssuerBuilder<D> {
        NonceIssuerBuilder {
            window: self.window,
            prefix: self.prefix,
            max_age: self.max_age,
            reject_rate: self.reject_rate,
            clock,
            key: self.key,
        }
    }

    /// A fixed key instead of a random one: only for tests and fuzzing, where
    /// runs must repeat. Two issuers with one key accept each other's nonces.
    #[doc(hidden)]
    pub fn insecure_fixed_key(mut self, key: [u8; 16]) -> Self {
        self.key = Some(key);
        self
    }

    /// Checks the settings, draws the key, and builds the issuer.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for a window of 0 or above
    /// [`MAX_WINDOW`](crate::rules::MAX_WINDOW), a prefix that is not 8 URL-safe
    /// characters, a `reject_rate` outside `0.0..=1.0`, a `max_age` beyond u64
    /// ms; [`BuildError::Random`] if the random source fails.
    ///
    /// ```
    /// use monotonic_nonce::NonceIssuer;
    /// assert!(NonceIssuer::builder().prefix("short").build().is_err());
    /// assert!(NonceIssuer::builder().prefix("a/b?c=d!").build().is_err());
    /// assert!(NonceIssuer::builder().reject_rate(1.5).build().is_err());
    /// ```
    pub fn build(self) -> Result<NonceIssuer<C>, BuildError> {
        if self.window == 0 || self.window > MAX_ISSUER_WINDOW {
            return Err(BuildError::config("window", format!("{} is outside 1..={MAX_ISSUER_WINDOW}", self.window)));
        }
        if !self.prefix.is_empty()
            && (self.prefix.len() != token::PREFIX_LEN || !self.prefix.bytes().all(token::url_safe))
        {
            return Err(BuildError::config(
                "prefix",
                format!("{:?} is not 8 URL-safe characters (A-Z a-z 0-9 - _)", self.prefix),
            ));
        }
        if !(0.0..=1.0).contains(&self.reject_rate) {
            return Err(BuildError::config("reject_rate", format!("{} is outside 0.0..=1.0", self.reject_rate)));
        }
        let max_age_ms = self.max_age.map(|d| BuildError::duration_ms("max_age", d)).transpose()?;
        let key = match self.key {
            Some(k) => k,
            None => {
                let mut k = [0u8; 16];
                getrandom::fill(&mut k).map_err(|e| BuildError::Random { reason: e.to_string() })?;
                k
            }
        };
        // the rate as a threshold on a uniform u64 (1.0: every nonce)
        let reject_below = if self.reject_rate >= 1.0 { u64::MAX } else { (self.reject_rate * 2f64.powi(64)) as u64 };
        let counters = Counters::new(self.window);
        Ok(NonceIssuer {
            key,
            mac: Mac::new(&key, &self.prefix, max_age_ms.is_some()),
            prefix: self.prefix,
            window: self.window,
            redeemed: Ledger::new(self.window, counters.run()),
            counters,
            max_age_ms,
            reject_below,
            clock: self.clock,
            telemetry: Issuer::new(),
        })
    }
}
