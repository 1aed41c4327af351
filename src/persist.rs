//! The durable high-water mark of a [`NonceManager`](crate::NonceManager):
//! one small file, replaced atomically (temp file, `fsync`, rename, `fsync` of
//! the directory), guarded by an advisory lock on a sibling `.lock` file.
//!
//! Format (32 bytes, little-endian): magic `MNONCEHW`, version `u32`,
//! reserved `u32` (0), the mark `u64`, and an FNV-1a 64 checksum of the
//! first 24 bytes.

use crate::error::{NonceError, PersistError};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"MNONCEHW";
/// The file format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
const LEN: usize = 32;

const WHAT_TO_DO: &str = "restore the file from a backup, or delete it and pass \
    .start_after(n) with n at least the highest nonce ever sent with this key, so no nonce is reused";

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn encode(mark: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    // 12..16 reserved, zero
    out[16..24].copy_from_slice(&mark.to_le_bytes());
    let sum = fnv1a(&out[..24]);
    out[24..].copy_from_slice(&sum.to_le_bytes());
    out
}

fn error(path: &Path, kind: Option<io::ErrorKind>, reason: impl Into<String>) -> NonceError {
    NonceError::Persist(Box::new(PersistError { path: path.to_owned(), kind, reason: reason.into() }))
}

fn io_error(path: &Path, doing: &str, e: &io::Error) -> NonceError {
    error(path, Some(e.kind()), format!("cannot {doing}: {e}"))
}

fn word(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    w
}

/// The mark stored in `bytes`, read from `path`; every malformation is an error
/// that names the file and says what to do.
fn decode(path: &Path, bytes: &[u8]) -> Result<u64, NonceError> {
    if bytes.is_empty() {
        return Err(error(
            path,
            None,
            format!("the mark file is empty (a crash before its first write completed?); {WHAT_TO_DO}"),
        ));
    }
    if bytes.len() != LEN || bytes[..8] != MAGIC {
        let what = if bytes.len() >= 8 && bytes[..8] == MAGIC {
            "truncated or padded"
        } else {
            "not a monotonic-nonce mark file"
        };
        return Err(error(path, None, format!("{what} ({} bytes, expected {LEN}); {WHAT_TO_DO}", bytes.len())));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(v);
    if version != VERSION {
        return Err(error(
            path,
            None,
            format!("format version {version}, but this build reads version {VERSION}; use the monotonic-nonce release that wrote it, or {WHAT_TO_DO}"),
        ));
    }
    if u64::from_le_bytes(word(bytes, 24)) != fnv1a(&bytes[..24]) {
        return Err(error(path, None, format!("checksum mismatch: the file is corrupt; {WHAT_TO_DO}")));
    }
    Ok(u64::from_le_bytes(word(bytes, 16)))
}

/// An open, locked mark file.
#[derive(Debug)]
pub(crate) struct MarkFile {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    /// Held for the manager's lifetime: the advisory lock lives as long as this handle.
    _lock: File,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl MarkFile {
    /// Locks `path` for this process and reads its mark (`None`: no file yet, a new manager).
    pub(crate) fn open(path: &Path) -> Result<(Self, Option<u64>), NonceError> {
        let dir = parent_dir(path);
        let lock_path = with_suffix(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, "create the lock file next to the mark file", &e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(error(
                    &lock_path,
                    Some(io::ErrorKind::WouldBlock),
                    "another NonceManager (in this or another process) already persists to this file; \
                     give each manager its own file, or share one manager",
                ))
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&lock_path, "lock the mark file", &e)),
        }
        let mark = match fs::read(path) {
            Ok(bytes) => Some(decode(path, &bytes)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(path, &format!("read the mark file ({WHAT_TO_DO})"), &e)),
        };
        Ok((Self { path: path.to_owned(), tmp: with_suffix(path, ".tmp"), dir, _lock: lock }, mark))
    }

    /// Makes `mark` durable: temp file, `fsync`, rename over the old file, `fsync` the directory.
    pub(crate) fn write(&mut self, mark: u64) -> Result<(), NonceError> {
        write_atomically(&self.path, &self.tmp, &self.dir, &encode(mark))
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the
/// new content: write `tmp`, `fsync` it, rename it over `path`, `fsync` `dir`.
pub(crate) fn write_atomically(path: &Path, tmp: &Path, dir: &Path, bytes: &[u8]) -> Result<(), NonceError> {
    let mut f = File::create(tmp).map_err(|e| io_error(tmp, "create the temporary file", &e))?;
    f.write_all(bytes).map_err(|e| io_error(tmp, "write the temporary file", &e))?;
    f.sync_all().map_err(|e| io_error(tmp, "fsync the temporary file", &e))?;
    drop(f);
    fs::rename(tmp, path).map_err(|e| io_error(path, "rename the new file over the old", &e))?;
    sync_dir(dir)
}

/// [`write_atomically`] with the temp file `<path>.tmp` next to `path`.
#[cfg(feature = "serde")]
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), NonceError> {
    write_atomically(path, &with_suffix(path, ".tmp"), &parent_dir(path), bytes)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A persistence error about `path` (for callers outside this module).
#[cfg(feature = "serde")]
pub(crate) fn persist_error(path: &Path, kind: Option<io::ErrorKind>, reason: impl Into<String>) -> NonceError {
    error(path, kind, reason)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), NonceError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, "fsync the directory of the mark file", &e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), NonceError> {
    // Directories cannot be opened for fsync here; the rename is durable once the OS flushes its metadata.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        for mark in [0, 1, 1_704_067_200_000, u64::MAX] {
            assert_eq!(decode(Path::new("m"), &encode(mark)).unwrap(), mark);
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let good = encode(1_704_067_200_000);
        for i in 0..LEN {
            let mut bad = good;
            bad[i] ^= 0x20;
            assert!(decode(Path::new("m"), &bad).is_err(), "flip at byte {i} not detected");
        }
    }
}
