//! Replacing a file so that a crash leaves either its old or its new content:
//! write a temporary file beside it, `fsync` it, rename it over the file,
//! `fsync` the directory. Shared by the durable mark and the validator's
//! snapshot file; each turns a [`Failed`] into its own error type.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Which file a step failed on, what the step was, and the I/O error.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) path: PathBuf,
    pub(crate) doing: &'static str,
    pub(crate) source: io::Error,
}

fn at<'a>(path: &'a Path, doing: &'static str) -> impl FnOnce(io::Error) -> Failed + 'a {
    move |source| Failed { path: path.to_owned(), doing, source }
}

/// Replaces `path` with `bytes` through `tmp`, then syncs `dir`.
pub(crate) fn write(path: &Path, tmp: &Path, dir: &Path, bytes: &[u8]) -> Result<(), Failed> {
    let mut f = File::create(tmp).map_err(at(tmp, "cannot create the temporary file"))?;
    f.write_all(bytes).map_err(at(tmp, "cannot write the temporary file"))?;
    f.sync_all().map_err(at(tmp, "cannot fsync the temporary file"))?;
    drop(f);
    fs::rename(tmp, path).map_err(at(path, "cannot rename the new file over the old"))?;
    sync_dir(dir)
}

/// [`write`] with the temporary file `<path>.tmp` next to `path`.
#[cfg(feature = "serde")]
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), Failed> {
    write(path, &with_suffix(path, ".tmp"), &parent_dir(path), bytes)
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), Failed> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir, "cannot fsync the directory of the file"))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), Failed> {
    // Directories cannot be opened for fsync here; the rename is durable once the OS flushes its metadata.
    Ok(())
}
