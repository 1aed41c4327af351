//! The durable high-water mark: restarts, the lease, the lock, corrupt files
//! and failed writes. Every failure is a clear error; none is a panic.

use monotonic_nonce::{ManualClock, NonceError, NonceManager, Strategy};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NOW: u64 = 1_704_067_200_000;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("monotonic-nonce-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn manager(path: &Path, clock: &ManualClock) -> Result<NonceManager<ManualClock>, NonceError> {
    NonceManager::builder().clock(clock.clone()).persist(path).lease(Duration::from_secs(10)).build()
}

fn persist_error(result: Result<impl std::fmt::Debug, NonceError>, path: &Path, needle: &str) {
    match result {
        Err(NonceError::Persist(e)) => {
            // the file itself, or its `.lock` sibling
            let named = e.path.to_string_lossy().starts_with(&*path.to_string_lossy());
            assert!(named, "error names {:?}, expected {:?}", e.path, path);
            let text = NonceError::Persist(e.clone()).to_string();
            assert!(text.contains(needle), "{text:?} does not say {needle:?}");
        }
        other => panic!("expected a Persist error about {needle:?}, got {other:?}"),
    }
}

#[test]
fn restart_continues_above_the_mark_even_with_the_clock_an_hour_back() {
    let dir = TempDir::new("restart");
    let path = dir.file("bot.mark");
    let clock = ManualClock::new(NOW);
    let m = manager(&path, &clock).unwrap();
    let first = m.next().unwrap();
    assert_eq!(first, NOW);
    for _ in 0..1_000 {
        m.next().unwrap();
    }
    let last_used = m.last();
    drop(m);
    clock.set(NOW - 3_600_000);
    let m = manager(&path, &clock).unwrap();
    // the mark was written at the first call as first + 10 s of units: everything below is skipped
    assert_eq!(m.next().unwrap(), first + 10_000 + 1);
    assert!(m.last() > last_used);
}

#[test]
fn first_nonce_is_above_mark_start_after_and_clock() {
    let dir = TempDir::new("max");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let m = manager(&path, &clock).unwrap();
    m.next().unwrap(); // mark: NOW + 10 000
    drop(m);
    let above_mark = NonceManager::builder().clock(clock.clone()).persist(&path).start_after(NOW + 5).build().unwrap();
    assert_eq!(above_mark.next().unwrap(), NOW + 10_001);
    drop(above_mark);
    let above_start = NonceManager::builder().clock(clock.clone()).persist(&path).start_after(NOW + 50_000_000).build();
    assert_eq!(above_start.unwrap().next().unwrap(), NOW + 50_000_001);
    clock.set(NOW + 90_000_000);
    let above_clock = manager(&path, &clock).unwrap();
    assert_eq!(above_clock.next().unwrap(), NOW + 90_000_000);
}

#[test]
fn lease_bounds_how_often_the_mark_is_written() {
    let dir = TempDir::new("lease");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder()
        .clock(clock.clone())
        .strategy(Strategy::Hft { counter_digits: 3 })
        .persist(&path)
        .lease(Duration::from_millis(5))
        .build()
        .unwrap();
    assert!(!path.exists(), "build() writes nothing until a nonce needs it");
    let mut marks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..20_000 {
        m.next().unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        if marks.last() != Some(&on_disk) {
            marks.push(on_disk);
        }
    }
    // 5 ms x 1 000 units per ms = 5 000 nonces per lease: 20 000 nonces need 4 marks
    assert_eq!(marks.len(), 4, "one write per lease");
}

#[test]
fn two_managers_on_one_file_is_an_error() {
    let dir = TempDir::new("lock");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let first = manager(&path, &clock).unwrap();
    persist_error(manager(&path, &clock), &path, "another NonceManager");
    drop(first);
    assert!(manager(&path, &clock).is_ok(), "the lock is released with the manager");
}

fn good_file(dir: &TempDir) -> (PathBuf, Vec<u8>) {
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    manager(&path, &clock).unwrap().next().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn corrupt_files_are_clear_errors() {
    let dir = TempDir::new("corrupt");
    let (path, good) = good_file(&dir);
    let clock = ManualClock::new(NOW);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..20].to_vec(), "truncated"),
        ("padded", [good.clone(), vec![0]].concat(), "truncated or padded"),
        ("empty", Vec::new(), "empty"),
        ("not ours", b"{\"last\": 1704067200000}".to_vec(), "not a monotonic-nonce mark file"),
        (
            "wrong version",
            {
                let mut b = good.clone();
                b[8] = 2;
                b
            },
            "format version 2",
        ),
        (
            "flipped byte in the mark",
            {
                let mut b = good.clone();
                b[17] ^= 0x01;
                b
            },
            "checksum mismatch",
        ),
        (
            "flipped byte in the checksum",
            {
                let mut b = good.clone();
                b[30] ^= 0x80;
                b
            },
            "checksum mismatch",
        ),
    ];
    for (name, bytes, needle) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let result = manager(&path, &clock);
        persist_error(result, &path, needle);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: a refused file is left as it was");
    }
    std::fs::write(&path, &good).unwrap();
    assert!(manager(&path, &clock).is_ok(), "the good file still reads");
}

#[test]
fn a_directory_where_the_file_should_be_is_an_error() {
    let dir = TempDir::new("isdir");
    let path = dir.file("m");
    std::fs::create_dir(&path).unwrap();
    persist_error(manager(&path, &ManualClock::new(NOW)), &path, "cannot read the mark file");
}

#[test]
fn a_file_where_the_directory_should_be_is_an_error() {
    let dir = TempDir::new("notdir");
    let parent = dir.file("plain-file");
    std::fs::write(&parent, b"x").unwrap();
    let path = parent.join("m");
    persist_error(manager(&path, &ManualClock::new(NOW)), &path, "cannot create the lock file");
}

/// A directory nobody can write to, root included: `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_directory_is_an_error() {
    let path = Path::new("/proc/monotonic-nonce-test.mark");
    persist_error(manager(path, &ManualClock::new(NOW)), path, "cannot create the lock file");
}

/// A read-only directory (mode 0555): refused at `build()`. Root ignores the
/// mode, so there the test checks that it really could write, and says so.
#[cfg(unix)]
#[test]
fn a_read_only_directory_is_an_error_or_root_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("readonly");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o555)).unwrap();
    let path = dir.file("m");
    let writable = std::fs::write(dir.file("probe"), b"").is_ok();
    let result = manager(&path, &ManualClock::new(NOW));
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    if writable {
        eprintln!("running as root: mode 0555 does not stop writes; /proc covers the unwritable case");
        assert!(result.is_ok());
    } else {
        persist_error(result, &path, "cannot create the lock file");
    }
}

#[test]
fn a_failed_write_hands_out_nothing_and_recovers() {
    let dir = TempDir::new("failwrite");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let m =
        NonceManager::builder().clock(clock.clone()).persist(&path).lease(Duration::from_millis(3)).build().unwrap();
    let mut used = vec![m.next().unwrap(), m.next().unwrap(), m.next().unwrap()];
    // the mark covers NOW + 3; the directory vanishes (disk gone, unmounted...)
    std::fs::remove_dir_all(&dir.0).unwrap();
    let before = m.last();
    assert_eq!(m.next().unwrap(), NOW + 3, "still under the durable mark");
    match m.next() {
        Err(NonceError::Persist(e)) => assert!(e.to_string().contains("cannot create the temporary file"), "{e}"),
        other => panic!("expected a Persist error, got {other:?}"),
    }
    assert!(matches!(m.reserve(5), Err(NonceError::Persist(_))));
    assert_eq!(m.last(), before + 1, "the refused calls handed out nothing");
    used.push(NOW + 3);
    std::fs::create_dir_all(&dir.0).unwrap();
    let n = m.next().unwrap();
    assert!(used.iter().all(|&u| n > u));
    drop(m);
    let again = manager(&path, &clock).unwrap();
    assert!(again.next().unwrap() > n);
}

#[test]
fn lease_of_zero_is_refused() {
    let dir = TempDir::new("lease0");
    let r = NonceManager::builder().persist(dir.file("m")).lease(Duration::ZERO).build();
    assert!(matches!(r, Err(NonceError::InvalidConfig(e)) if e.field == "lease"));
}
