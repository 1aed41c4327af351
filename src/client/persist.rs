//! The durable high-water mark of a [`NonceManager`](crate::NonceManager):
//! the file format, the lock that keeps one manager per file, and the whole
//! cross-the-mark protocol ([`DurableMark`]): no nonce above the mark on disk
//! is ever handed out; the thread that needs more writes a new mark first.
//!
//! Format v2 (40 bytes, little-endian): magic `MNONCEHW`, version `u32` (2),
//! reserved `u32` (0), the mark `u64`, the strategy's nonce units per ms `u64`,
//! and an FNV-1a 64 checksum of the first 32 bytes. Version 1 (32 bytes, no
//! units) is still read; the next write upgrades it.
//!
//! The file is replaced atomically (temp file, `fsync`, rename, `fsync` of the
//! directory). The path is resolved (symlinks included) before anything is
//! derived from it, and before each write the manager checks that the lock
//! file it holds is still the one at `<path>.lock` (device and inode): if it
//! was deleted or replaced, another manager may have built on the same mark,
//! so nothing above the mark is handed out any more.

use crate::atomic_file::{self, parent_dir, with_suffix};
use crate::error::{BuildError, NonceError, PersistError};
use crate::strategy::TimeScale;
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"MNONCEHW";
/// The file format version this build writes.
pub(crate) const VERSION: u32 = 2;
const LEN_V1: usize = 32;
const LEN: usize = 40;

const WHAT_TO_DO: &str = "restore the file from a backup, or delete it and pass \
    .start_after(n) with n at least the highest nonce ever sent with this key";

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn encode(mark: u64, scale: TimeScale) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    // 12..16 reserved, zero
    out[16..24].copy_from_slice(&mark.to_le_bytes());
    out[24..32].copy_from_slice(&scale.units_per_ms().to_le_bytes());
    let sum = fnv1a(&out[..32]);
    out[32..].copy_from_slice(&sum.to_le_bytes());
    out
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// What a mark file holds: the mark, and the time scale that wrote it (`None`: a version 1 file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) mark: u64,
    pub(crate) units_per_ms: Option<u64>,
}

/// The content of `bytes`, read from `path`; every malformation is an error
/// that names the file and says what to do.
fn decode(path: &Path, bytes: &[u8]) -> Result<Stored, PersistError> {
    let bad = |what: String| PersistError::new(path, format!("{what}; {WHAT_TO_DO}"));
    if bytes.is_empty() {
        return Err(bad("the mark file is empty (a crash before its first write completed?)".into()));
    }
    if bytes.len() < 12 || bytes[..8] != MAGIC {
        return Err(bad(format!("not a monotonic-nonce mark file ({} bytes)", bytes.len())));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    let (version, len) = match u32::from_le_bytes(v) {
        1 => (1, LEN_V1),
        VERSION => (VERSION, LEN),
        other => {
            return Err(bad(format!(
            "format version {other}, but this build reads versions 1 and {VERSION}; use the release that wrote it, or"
        )))
        }
    };
    if bytes.len() != len {
        return Err(bad(format!("truncated or padded ({} bytes, expected {len})", bytes.len())));
    }
    if word(bytes, len - 8) != fnv1a(&bytes[..len - 8]) {
        return Err(bad("checksum mismatch: the file is corrupt".into()));
    }
    Ok(Stored { mark: word(bytes, 16), units_per_ms: (version == VERSION).then(|| word(bytes, 24)) })
}

/// `path` with its directory resolved (symlinks included), so that two names
/// of one file get one lock. A dangling link or an unreadable directory is an error.
fn resolve(path: &Path) -> Result<PathBuf, PersistError> {
    let name = match path.file_name() {
        Some(name) if !path.as_os_str().is_empty() => name.to_owned(),
        _ => return Err(PersistError::new(path, "not a file path; give persist() a file name such as bot.mark")),
    };
    if fs::symlink_metadata(path).is_ok() {
        return fs::canonicalize(path)
            .map_err(|e| PersistError::io(path, "cannot resolve the path (a symlink to a missing directory?)", e));
    }
    let dir = parent_dir(path);
    let dir = fs::canonicalize(&dir).map_err(|e| PersistError::io(&dir, "cannot open the mark file's directory", e))?;
    Ok(dir.join(name))
}

/// The identity (device, inode) of a file, where the platform has one.
#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_meta: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// An open, locked mark file.
#[derive(Debug)]
pub(crate) struct MarkFile {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    lock_path: PathBuf,
    /// The lock file's identity when it was locked.
    lock_id: Option<(u64, u64)>,
    /// Held for the manager's lifetime: the advisory lock lives as long as this handle.
    _lock: File,
    /// The mark file's first and latest inodes, locked (keyed by identity, not name).
    held: Vec<File>,
    scale: TimeScale,
}

impl MarkFile {
    /// Locks `path` for this process and reads its content (`None`: no file yet).
    pub(crate) fn open(path: &Path, scale: TimeScale) -> Result<(Self, Option<Stored>), PersistError> {
        let path = resolve(path)?;
        let dir = parent_dir(&path);
        let lock_path = with_suffix(&path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| PersistError::io(&lock_path, "cannot create the lock file next to the mark file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(PersistError::new(
                    &lock_path,
                    "another NonceManager already persists to this file; give each manager its own file, or share one",
                ))
            }
            Err(TryLockError::Error(e)) => return Err(PersistError::io(&lock_path, "cannot lock the mark file", e)),
        }
        let lock_id = lock.metadata().ok().as_ref().and_then(identity);
        let (stored, held) = match open_regular(&path)? {
            Some(file) => {
                // the file's own identity is locked too: another name for it (a hard
                // link) has another `.lock`, but the same inode
                let held = lock_identity(&path, file)?;
                (Some(decode(&path, &read_bounded(&path, &held)?)?), held)
            }
            None => return Ok((Self::assemble(path, dir, lock_path, lock_id, lock, scale, Vec::new()), None)),
        };
        Ok((Self::assemble(path, dir, lock_path, lock_id, lock, scale, vec![held]), stored))
    }

    fn assemble(
        path: PathBuf,
        dir: PathBuf,
        lock_path: PathBuf,
        lock_id: Option<(u64, u64)>,
        lock: File,
        scale: TimeScale,
        held: Vec<File>,
    ) -> Self {
        let tmp = with_suffix(&path, ".tmp");
        Self { path, tmp, dir, lock_path, lock_id, _lock: lock, held, scale }
    }

    /// Makes `mark` durable: temp file, `fsync`, rename over the old file, `fsync` the directory.
    /// Refused when the lock file is no longer the one this manager locked.
    pub(crate) fn write(&mut self, mark: u64) -> Result<(), PersistError> {
        if let Some(held) = self.lock_id {
            let now = fs::metadata(&self.lock_path).ok().as_ref().and_then(identity);
            if now != Some(held) {
                return Err(PersistError::new(
                    &self.lock_path,
                    "the lock file was deleted or replaced while this manager held it, so another manager may \
                     use the same mark; nothing above the mark is handed out. Restart the process",
                ));
            }
        }
        atomic_file::write(&self.path, &self.tmp, &self.dir, &encode(mark, self.scale))
            .map_err(|f| PersistError::io(&f.path, f.doing, f.source))?;
        // hold the new file's identity too (and the first one's: a hard link made to
        // it before the start still names it); a file that cannot be locked now was
        // just written by this manager, so only a report is lost
        if let Ok(Some(file)) = open_regular(&self.path) {
            if let Ok(file) = lock_identity(&self.path, file) {
                self.held.truncate(1);
                self.held.push(file);
            }
        }
        Ok(())
    }
}

/// Opens `path` for reading if it exists, without blocking (a FIFO is not
/// waited on), and only if it is a regular file.
fn open_regular(path: &Path) -> Result<Option<File>, PersistError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading returns at once; no effect on a regular file
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(PersistError::new(path, "not a regular file; give persist() the path of a regular file"));
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PersistError::io(path, format!("cannot read the mark file ({WHAT_TO_DO})"), e)),
    };
    let meta = file.metadata().map_err(|e| PersistError::io(path, "cannot read the mark file's metadata", e))?;
    if !meta.is_file() {
        return Err(PersistError::new(path, "not a regular file; give persist() the path of a regular file"));
    }
    Ok(Some(file))
}

/// Takes the advisory lock on the file itself (its device and inode).
fn lock_identity(path: &Path, file: File) -> Result<File, PersistError> {
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(PersistError::new(
            path,
            "another NonceManager already persists to this file under another name (a hard link); give each manager its own file",
        )),
        Err(TryLockError::Error(e)) => Err(PersistError::io(path, "cannot lock the mark file", e)),
    }
}

/// The file's content, at most one byte more than the largest format (so a
/// padded file is still reported as such, and a huge one is not read whole).
fn read_bounded(path: &Path, file: &File) -> Result<Vec<u8>, PersistError> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(LEN + 1);
    file.take(LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PersistError::io(path, format!("cannot read the mark file ({WHAT_TO_DO})"), e))?;
    Ok(bytes)
}

/// Where a durable mark is kept: the mark file, or a lease's slot in Redis
/// (`client::lease`). One protocol ([`DurableMark`]) over either store.
pub(crate) trait MarkStore: Send + fmt::Debug {
    /// Makes `mark` durable before anything above the previous mark is handed
    /// out; an error leaves the previous mark in force.
    fn store(&mut self, mark: u64) -> Result<(), NonceError>;
}

impl MarkStore for MarkFile {
    fn store(&mut self, mark: u64) -> Result<(), NonceError> {
        self.write(mark).map_err(|e| NonceError::Persist(Box::new(e)))
    }
}

/// The durable mark as the hot path sees it: the value known to be stored,
/// and the store that extends it.
#[derive(Debug)]
pub(crate) struct DurableMark {
    /// The mark known to be stored: no nonce above it is handed out.
    mark: CachePadded<AtomicU64>,
    /// How far past the nonce that crosses the mark the next mark is set, in nonce units.
    ahead: u64,
    /// The store; its lock also makes one thread write while the others wait (parked, not spinning).
    store: Mutex<Box<dyn MarkStore>>,
}

impl DurableMark {
    /// Opens the file at `path` for a manager with time scale `scale`, and
    /// returns the mark it holds (`None`: a new file).
    ///
    /// # Errors
    /// The file cannot be resolved, locked, read or decoded, or it was
    /// written by a strategy with another time scale.
    pub(crate) fn open(path: &Path, scale: TimeScale, ahead: u64) -> Result<(Self, Option<u64>), BuildError> {
        if path.as_os_str().is_empty() {
            return Err(BuildError::config("persist", "the path is empty; give a file such as bot.mark"));
        }
        let (file, stored) = MarkFile::open(path, scale)?;
        if let Some(Stored { units_per_ms: Some(units), mark }) = stored {
            if units != scale.units_per_ms() {
                return Err(BuildError::config(
                    "persist",
                    format!(
                        "{} was written by a strategy with {units} nonce units per ms, this one has {}; to switch, \
                         delete the file and pass .start_after({mark}) (its mark), or a larger nonce, to the new manager",
                        file.path.display(),
                        scale.units_per_ms()
                    ),
                ));
            }
        }
        let mark = stored.map(|s| s.mark);
        Ok((Self::over(Box::new(file), ahead), mark))
    }

    /// The protocol over any store (the mark starts at 0 until [`start_at`](Self::start_at)).
    pub(crate) fn over(store: Box<dyn MarkStore>, ahead: u64) -> Self {
        Self { mark: CachePadded::new(AtomicU64::new(0)), ahead, store: Mutex::new(store) }
    }

    /// How far past a crossing nonce the next mark is set, in nonce units.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn ahead(&self) -> u64 {
        self.ahead
    }

    /// The store, held, or `None` at once when another thread holds it: no
    /// mark is written while the guard lives (a lease's slot switch holds it).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn try_hold(&self) -> Option<MutexGuard<'_, Box<dyn MarkStore>>> {
        self.store.try_lock()
    }

    /// Publishes a mark already stored (under [`hold`](Self::hold)).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn publish(&self, mark: u64) {
        // Release: pairs with the Acquire load in `mark`: a thread that reads
        // this mark also sees the lease slot stored before it.
        self.mark.store(mark, Ordering::Release);
    }

    /// Sets the starting mark (at `build()`, before the manager is shared):
    /// nothing at or below it needs a write.
    pub(crate) fn start_at(self, mark: u64) -> Self {
        // Relaxed: the manager is not shared yet.
        self.mark.store(mark, Ordering::Relaxed);
        self
    }

    /// The mark known to be stored.
    #[inline]
    pub(crate) fn mark(&self) -> u64 {
        // Acquire: pairs with the Release stores in `extend` and `publish`: a
        // thread that reads a mark sees the store's write completed (and, with a
        // lease, the slot published before it). Free on x86; the loom model in
        // this file checks it.
        self.mark.load(Ordering::Acquire)
    }

    /// Makes the durable mark at least `needed` (capped at `ceiling`): one
    /// thread writes, the others wait on the store's lock (parked) and find the
    /// work done.
    #[cold]
    pub(crate) fn extend(&self, needed: u64, ceiling: u64) -> Result<(), NonceError> {
        let mut store = self.store.lock();
        if self.mark() >= needed {
            return Ok(());
        }
        let mark = needed.saturating_add(self.ahead).min(ceiling);
        store.store(mark)?;
        // Release: after the store confirmed it (see `mark`).
        self.mark.store(mark, Ordering::Release);
        Ok(())
    }
}

/// Loom model of the mark-crossing protocol that both stores (the file and a
/// lease's slot in Redis) go through: threads of a real manager race to cross
/// the mark; a recording store stands in for the disk or Redis.
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_models`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::clock::ManualClock;
    use crate::NonceManager;
    use loom::sync::Arc;
    use loom::thread;

    /// The highest mark the store has made durable.
    #[derive(Debug, Clone)]
    struct Recording(Arc<AtomicU64>);

    impl MarkStore for Recording {
        fn store(&mut self, mark: u64) -> Result<(), NonceError> {
            // SeqCst: the model's own bookkeeping, compared against what the threads hand out
            self.0.fetch_max(mark, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Two threads, two nonces each, a mark 2 ahead: the mark is crossed in
    /// most runs, sometimes by both threads at once. Every nonce handed out is
    /// at or below a mark the store had already made durable, and none repeats.
    /// (Fails when `extend` publishes the mark before the store returns, or
    /// when the hot path does not compare against the mark.)
    #[test]
    fn no_nonce_is_handed_out_above_the_stored_mark() {
        loom::model(|| {
            let stored = Arc::new(AtomicU64::new(0));
            let m = Arc::new(
                NonceManager::builder()
                    .clock(ManualClock::new(1_000))
                    .build_over(Box::new(Recording(Arc::clone(&stored))), 2),
            );
            let other = {
                let (m, stored) = (Arc::clone(&m), Arc::clone(&stored));
                thread::spawn(move || {
                    (0..2)
                        .map(|_| {
                            let n = m.next().unwrap();
                            assert!(n <= stored.load(Ordering::SeqCst), "{n} handed out above the stored mark");
                            n
                        })
                        .collect::<Vec<_>>()
                })
            };
            let mut all: Vec<u64> = (0..2)
                .map(|_| {
                    let n = m.next().unwrap();
                    assert!(n <= stored.load(Ordering::SeqCst), "{n} handed out above the stored mark");
                    n
                })
                .collect();
            all.extend(other.join().unwrap());
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 4, "a nonce twice");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        let scale = TimeScale::new(1_000).unwrap();
        for mark in [0, 1, 1_704_067_200_000, u64::MAX] {
            assert_eq!(
                decode(Path::new("m"), &encode(mark, scale)).unwrap(),
                Stored { mark, units_per_ms: Some(1_000) }
            );
        }
    }

    #[test]
    fn version_1_files_are_still_read() {
        let mut v1 = [0u8; LEN_V1];
        v1[..8].copy_from_slice(&MAGIC);
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1[16..24].copy_from_slice(&77u64.to_le_bytes());
        let sum = fnv1a(&v1[..24]);
        v1[24..].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(decode(Path::new("m"), &v1).unwrap(), Stored { mark: 77, units_per_ms: None });
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let good = encode(1_704_067_200_000, TimeScale::MILLIS);
        for i in 0..LEN {
            let mut bad = good;
            bad[i] ^= 0x20;
            assert!(decode(Path::new("m"), &bad).is_err(), "flip at byte {i} not detected");
        }
    }
}
