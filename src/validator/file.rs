//! A [`ValidatorSnapshot`] as a JSON file (feature `serde`): written
//! atomically, read with its format version checked first, and a clean one
//! marked used as it is loaded.

use super::snapshot::{ValidatorSnapshot, SNAPSHOT_VERSION};
use crate::error::SnapshotError;
use serde::Deserialize;
use std::path::Path;

impl<K: serde::Serialize> ValidatorSnapshot<K> {
    /// Writes the snapshot to `path` as JSON, atomically (temp file, `fsync`,
    /// rename, `fsync` of the directory): a crash leaves the old or the new file.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] naming the file.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, validator::ValidatorSnapshot};
    /// let path = std::env::temp_dir().join(format!("mn-doc-snap-{}.json", std::process::id()));
    /// let v = NonceValidator::<String>::new(Policy::Strict);
    /// v.validate("k", 9)?;
    /// v.into_snapshot().save(&path)?;
    /// let back = ValidatorSnapshot::<String>::load(&path)?;
    /// assert_eq!(back.accounts[0].state.remembered(), vec![9]);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
        let path = path.as_ref();
        let bytes =
            serde_json::to_vec(self).map_err(|source| SnapshotError::Format { path: path.to_owned(), source })?;
        crate::atomic_file::replace(path, &bytes).map_err(|f| SnapshotError::Io {
            path: f.path,
            doing: f.doing,
            source: f.source,
        })
    }
}

impl<K: serde::de::DeserializeOwned> ValidatorSnapshot<K> {
    /// Reads a snapshot written by [`save`](Self::save), to restore it.
    ///
    /// A clean snapshot (taken after [`close`](crate::NonceValidator::close))
    /// is returned clean once: before returning, `load` rewrites the file
    /// as not clean (atomically, synced), so a process that restores it,
    /// accepts requests and crashes before its next save cannot have the
    /// same file restored without a guard again. The next start then needs
    /// `max_future` (the restart guard) or
    /// [`accept_unclean_restore`](crate::validator::NonceValidatorBuilder::accept_unclean_restore).
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when it cannot be read (a missing file
    /// included: see [`load_if_exists`](Self::load_if_exists)) or a clean
    /// one cannot be marked as used (nothing is returned then: fail closed);
    /// [`SnapshotError::Format`] when it is not a complete snapshot;
    /// [`SnapshotError::Version`] when another format version wrote it.
    ///
    /// ```
    /// use monotonic_nonce::validator::{SnapshotError, ValidatorSnapshot};
    /// let r = ValidatorSnapshot::<String>::load("/nonexistent/snapshot.json");
    /// assert!(matches!(r, Err(SnapshotError::Io { .. })));
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SnapshotError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| SnapshotError::Io { path: path.to_owned(), doing: "read", source })?;
        // parsed once: the version read first, then the snapshot, then (a clean one) rewritten
        let format = |source| SnapshotError::Format { path: path.to_owned(), source };
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(format)?;
        let version = Versioned::deserialize(&value).map_err(format)?;
        if version.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                path: path.to_owned(),
                found: version.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let snapshot = Self::deserialize(&value).map_err(format)?;
        if snapshot.clean_shutdown {
            // this load is the one clean restore the file allows: mark it used
            // (durably) before anyone can act on it
            value["clean_shutdown"] = serde_json::Value::Bool(false);
            let used = serde_json::to_vec(&value).map_err(format)?;
            crate::atomic_file::replace(path, &used).map_err(|f| SnapshotError::Io {
                path: f.path,
                doing: f.doing,
                source: f.source,
            })?;
        }
        Ok(snapshot)
    }

    /// [`load`](Self::load), with a missing file as `Ok(None)`: the first start.
    ///
    /// # Errors
    /// As [`load`](Self::load), except for a missing file.
    ///
    /// ```
    /// use monotonic_nonce::validator::ValidatorSnapshot;
    /// assert_eq!(ValidatorSnapshot::<String>::load_if_exists("/nonexistent/snapshot.json")?, None);
    /// # Ok::<(), monotonic_nonce::validator::SnapshotError>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn load_if_exists(path: impl AsRef<Path>) -> Result<Option<Self>, SnapshotError> {
        match Self::load(path) {
            Ok(s) => Ok(Some(s)),
            Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The one field read before the rest, so another version is a clear error.
#[derive(serde::Deserialize)]
struct Versioned {
    #[serde(default)]
    version: u32,
}
