//! [`NonceBatch`]: a run of nonces reserved in one atomic step.

/// `count` nonces reserved by [`NonceManager::reserve`](crate::NonceManager::reserve)
/// in one compare-exchange: `first, first + stride, ..., last`. No other call on
/// the same manager hands out a nonce in `first..=last`.
///
/// The stride is 1, or `total_systems` for [`Strategy::Distributed`](crate::Strategy::Distributed).
/// A batch is a small `Copy` value; iterate it with `for n in batch`,
/// [`iter`](Self::iter) or `into_iter()` (an [`ExactSizeIterator`] on 64-bit targets).
///
/// # Example
/// ```
/// use monotonic_nonce::NonceManager;
/// let manager = NonceManager::new();
/// let batch = manager.reserve(3)?;
/// let nonces: Vec<u64> = batch.iter().collect();
/// assert_eq!(nonces, vec![batch.first(), batch.first() + 1, batch.last()]);
/// assert!(manager.next()? > batch.last());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Deserializing goes through [`NonceBatch::try_new`]: a batch that no
/// manager could have reserved (a zero stride, `first > last`, a length that
/// does not match) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "RawBatch"))]
pub struct NonceBatch {
    first: u64,
    last: u64,
    stride: u64,
    len: u64,
}

/// The fields of a [`NonceBatch`] as they arrive, before they are checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct RawBatch {
    first: u64,
    last: u64,
    stride: u64,
    len: u64,
}

#[cfg(feature = "serde")]
impl TryFrom<RawBatch> for NonceBatch {
    type Error = String;
    fn try_from(r: RawBatch) -> Result<Self, String> {
        NonceBatch::try_new(r.first, r.last, r.stride, r.len).ok_or_else(|| {
            format!(
                "not a batch: first {}, last {}, stride {}, len {} (need stride >= 1, len >= 1, last = first + (len - 1) * stride)",
                r.first, r.last, r.stride, r.len
            )
        })
    }
}

impl NonceBatch {
    pub(crate) fn new(first: u64, last: u64, stride: u64, len: u64) -> Self {
        Self { first, last, stride, len }
    }

    /// A batch of `len` nonces `first, first + stride, ..., last`, or `None`
    /// when the four numbers do not describe one (`stride == 0`, `len == 0`,
    /// or `last != first + (len - 1) * stride`, overflow included).
    ///
    /// ```
    /// use monotonic_nonce::client::NonceBatch;
    /// assert!(NonceBatch::try_new(5, 9, 2, 3).is_some());
    /// assert!(NonceBatch::try_new(5, 5, 0, 4).is_none());
    /// assert!(NonceBatch::try_new(9, 5, 1, 3).is_none());
    /// ```
    pub fn try_new(first: u64, last: u64, stride: u64, len: u64) -> Option<Self> {
        if stride == 0 || len == 0 {
            return None;
        }
        let end = (len - 1).checked_mul(stride).and_then(|d| first.checked_add(d))?;
        (end == last).then_some(Self { first, last, stride, len })
    }

    /// The lowest nonce of the batch.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// let batch = m.reserve(3)?;
    /// assert_eq!(batch.first(), 1_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The highest nonce of the batch.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// let batch = m.reserve(3)?;
    /// assert_eq!(batch.last(), 1_002);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The distance between consecutive nonces of the batch.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, Strategy};
    /// let m = NonceManager::builder().strategy(Strategy::Distributed { system_id: 0, total_systems: 4 }).build()?;
    /// assert_eq!(m.reserve(2)?.stride(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// How many nonces the batch holds (at least 1).
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// let batch = m.reserve(3)?;
    /// assert_eq!(batch.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // a batch is never empty: reserve(0) is an error
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether `nonce` is one of the batch's nonces.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, Strategy};
    /// let m = NonceManager::builder()
    ///     .strategy(Strategy::Distributed { system_id: 1, total_systems: 3 })
    ///     .build()?;
    /// let batch = m.reserve(4)?;
    /// assert!(batch.contains(batch.first() + 3));
    /// assert!(!batch.contains(batch.first() + 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, nonce: u64) -> bool {
        (self.first..=self.last).contains(&nonce) && (nonce - self.first).is_multiple_of(self.stride)
    }

    /// An iterator over the batch's nonces, lowest first.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// let batch = m.reserve(3)?;
    /// assert_eq!(batch.iter().collect::<Vec<_>>(), [1_000, 1_001, 1_002]);
    /// assert_eq!(batch.iter().rev().next(), Some(1_002));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> NonceBatchIter {
        NonceBatchIter { front: self.first, back: self.last, stride: self.stride, remaining: self.len }
    }
}

impl IntoIterator for NonceBatch {
    type Item = u64;
    type IntoIter = NonceBatchIter;

    fn into_iter(self) -> NonceBatchIter {
        self.iter()
    }
}

impl IntoIterator for &NonceBatch {
    type Item = u64;
    type IntoIter = NonceBatchIter;

    fn into_iter(self) -> NonceBatchIter {
        self.iter()
    }
}

/// The nonces of a [`NonceBatch`], lowest first (or from either end).
///
/// ```
/// use monotonic_nonce::{NonceManager, clock::ManualClock};
/// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
/// let batch = m.reserve(3)?;
/// let mut it = batch.into_iter();
/// assert_eq!((it.len(), it.next(), it.next_back()), (3, Some(1_000), Some(1_002)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct NonceBatchIter {
    front: u64,
    back: u64,
    stride: u64,
    remaining: u64,
}

impl Iterator for NonceBatchIter {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        let value = self.front;
        self.remaining -= 1;
        if self.remaining > 0 {
            // Cannot overflow (the batch ends at `back`, a u64); checked anyway.
            self.front = self.front.checked_add(self.stride)?;
        }
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.remaining) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl DoubleEndedIterator for NonceBatchIter {
    fn next_back(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        let value = self.back;
        self.remaining -= 1;
        if self.remaining > 0 {
            // Cannot underflow (the batch starts at `front`); checked anyway.
            self.back = self.back.checked_sub(self.stride)?;
        }
        Some(value)
    }
}

/// Exact on 64-bit targets, where every `u64` length fits a `usize`.
#[cfg(target_pointer_width = "64")]
impl ExactSizeIterator for NonceBatchIter {}

impl std::iter::FusedIterator for NonceBatchIter {}
