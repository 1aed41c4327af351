//! The one place atomics and locks come from.
//!
//! Normally these are `std`'s atomics and `parking_lot`'s mutex; under
//! `--cfg loom` they are loom's, so the loom models (`tests/loom_*.rs`, and
//! the `loom_models` modules inside `src/issuer/`) exercise exactly the code
//! users run. Nothing else in the crate names `std::sync::atomic`,
//! `parking_lot` or `loom` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

/// The lock the Redis guard holds across a round trip to the store (tokio's:
/// it is held over `.await`). The Redis validator runs on tokio, which loom
/// does not model; this is its one lock.
#[cfg(feature = "redis")]
pub(crate) use tokio::sync::Mutex as AsyncMutex;

/// A mutex whose `lock()` returns the guard directly, whichever backend is in use.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            // A poisoned loom mutex means a model thread already panicked; the
            // model reports that panic, so carrying on with the data is fine.
            self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// The guard, or `None` at once when another thread holds the lock.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.inner.try_lock()
        }
        #[cfg(loom)]
        {
            match self.inner.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }
}

/// One step of waiting for another thread to finish a short critical step
/// (the issuer ledger's group takeover): a spin hint for the first few
/// calls, then a yield, so a descheduled thread gets the core back. Under
/// loom, always a yield, which lets the model run the other thread.
pub(crate) fn wait_a_little(calls: &mut u32) {
    *calls = calls.saturating_add(1);
    #[cfg(not(loom))]
    {
        if *calls <= 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// A small number naming the calling thread, the same on every call from it:
/// threads get 0, 1, 2, ... in the order they first ask, so up to `n`
/// threads running at once mostly fall in distinct slots modulo `n`. Only a
/// hint for spreading threads over stripes: every value is correct. Under
/// loom, the model thread's index (model threads share one OS thread).
pub(crate) fn thread_slot() -> usize {
    #[cfg(not(loom))]
    {
        use std::cell::Cell;
        use std::sync::atomic::AtomicUsize;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        // a thread already tearing down its thread-locals gets slot 0
        SLOT.try_with(|slot| {
            if slot.get() == usize::MAX {
                // Relaxed: only the value matters (one per thread); it orders nothing.
                slot.set(NEXT.fetch_add(1, Ordering::Relaxed));
            }
            slot.get()
        })
        .unwrap_or(0)
    }
    #[cfg(loom)]
    {
        // the model thread's index, which its Debug form shows ("ThreadId(2)"):
        // the same in every execution of a model, unlike its hash
        let id = format!("{:?}", loom::thread::current().id());
        id.chars().filter_map(|c| c.to_digit(10)).fold(0, |n, d| n * 10 + d as usize)
    }
}
