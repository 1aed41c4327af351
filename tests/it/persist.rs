//! The durable high-water mark: restarts, how far ahead the mark is set, the lock, corrupt files
//! and failed writes. Every failure is a clear error; none is a panic.

use monotonic_nonce::{client::PersistError, clock::ManualClock, BuildError, NonceError, NonceManager, Strategy};
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

fn manager(path: &Path, clock: &ManualClock) -> Result<NonceManager<ManualClock>, BuildError> {
    NonceManager::builder().clock(clock.clone()).persist(path).mark_ahead(Duration::from_secs(10)).build()
}

/// The whole error chain as one string, each cause once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The mark-file error inside a build error, whichever way it came.
fn persist_error(result: Result<impl std::fmt::Debug, BuildError>, path: &Path, needle: &str) {
    match result {
        Err(BuildError::Persist(e)) => check_persist(&e, path, needle),
        other => panic!("expected a Persist error about {needle:?}, got {other:?}"),
    }
}

fn check_persist(e: &PersistError, path: &Path, needle: &str) {
    // the file itself, or its `.lock` sibling, with the directory resolved
    let want = path.file_name().unwrap().to_string_lossy().into_owned();
    let named = e.path().to_string_lossy().contains(&want) || e.path().starts_with(path);
    assert!(named, "error names {:?}, expected {:?}", e.path(), path);
    let text = chain(e);
    assert!(text.contains(needle), "{text:?} does not say {needle:?}");
    assert_eq!(text.matches(e.reason()).count(), 1, "each cause once: {text}");
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
fn mark_ahead_bounds_how_often_the_mark_is_written() {
    let dir = TempDir::new("ahead");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder()
        .clock(clock.clone())
        .strategy(Strategy::Hft { counter_digits: 3 })
        .persist(&path)
        .mark_ahead(Duration::from_millis(5))
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
    // 5 ms x 1 000 units per ms = 5 000 nonces per mark: 20 000 nonces need 4 marks
    assert_eq!(marks.len(), 4, "one write per mark_ahead");
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
                b[8] = 3;
                b
            },
            "format version 3",
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
    persist_error(manager(&path, &ManualClock::new(NOW)), &path, "not a regular file");
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
fn a_vanished_directory_hands_out_nothing_above_the_mark() {
    let dir = TempDir::new("failwrite");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder()
        .clock(clock.clone())
        .persist(&path)
        .mark_ahead(Duration::from_millis(3))
        .build()
        .unwrap();
    let mut used = vec![m.next().unwrap(), m.next().unwrap(), m.next().unwrap()];
    // the mark covers NOW + 3; the directory vanishes (disk gone, unmounted...)
    std::fs::remove_dir_all(&dir.0).unwrap();
    let before = m.last();
    assert_eq!(m.next().unwrap(), NOW + 3, "still under the durable mark");
    match m.next() {
        Err(NonceError::Persist(e)) => assert!(e.to_string().contains("lock file was deleted or replaced"), "{e}"),
        other => panic!("expected a Persist error, got {other:?}"),
    }
    assert!(matches!(m.reserve(5), Err(NonceError::Persist(_))));
    assert_eq!(m.last(), before + 1, "the refused calls handed out nothing");
    used.push(NOW + 3);
    // The directory comes back, but the lock file went with it: another manager
    // may now hold the mark, so this one keeps refusing (fail closed).
    std::fs::create_dir_all(&dir.0).unwrap();
    assert!(matches!(m.next(), Err(NonceError::Persist(_))));
    assert_eq!(m.last(), before + 1, "still nothing handed out above the mark");
    assert!(used.iter().all(|&u| u <= NOW + 3));
}

#[test]
fn mark_ahead_of_zero_is_refused() {
    let dir = TempDir::new("ahead0");
    let r = NonceManager::builder().persist(dir.file("m")).mark_ahead(Duration::ZERO).build();
    assert!(matches!(r, Err(BuildError::InvalidConfig { field: "mark_ahead", .. })));
}

#[cfg(unix)]
#[test]
fn a_symlink_to_the_mark_gets_the_same_lock() {
    let dir = TempDir::new("symlink");
    let real = dir.file("real.mark");
    let link = dir.file("link.mark");
    let clock = ManualClock::new(NOW);
    manager(&real, &clock).unwrap().next().unwrap(); // the real file exists
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let first = manager(&real, &clock).unwrap();
    // before the fix: a second manager built on `link.mark.lock` and both handed out the same nonces
    persist_error(manager(&link, &clock), &real, "another NonceManager");
    let n = first.next().unwrap();
    drop(first);
    let through_link = manager(&link, &clock).unwrap();
    assert!(through_link.next().unwrap() > n);
    // the mark was written to the real file: the link still points at it
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was not renamed over");
}

#[test]
fn a_deleted_lock_file_stops_the_manager_at_its_mark() {
    let dir = TempDir::new("dellock");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder()
        .clock(clock.clone())
        .persist(&path)
        .mark_ahead(Duration::from_millis(10))
        .build()
        .unwrap();
    let first = m.next().unwrap();
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    std::fs::remove_file(&lock).unwrap();
    // the mark file itself (its inode) is still locked: no second manager builds on it
    persist_error(manager(&path, &clock), &path, "another NonceManager");
    // and the first, whose lock file is gone, hands out nothing above its own mark any more
    let mut mine = vec![first];
    loop {
        match m.next() {
            Ok(n) => mine.push(n),
            Err(NonceError::Persist(e)) => {
                assert!(e.to_string().contains("lock file was deleted or replaced"), "{e}");
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(mine.len() < 100, "the first manager never stopped");
    }
    assert!(mine.windows(2).all(|p| p[0] < p[1]));
}

#[test]
fn an_empty_persist_path_is_refused() {
    let r = NonceManager::builder().persist("").build();
    assert!(matches!(r, Err(BuildError::InvalidConfig { field: "persist", .. })), "{r:?}");
}

#[test]
fn a_mark_from_another_strategy_is_refused_with_the_way_out() {
    let dir = TempDir::new("strategy");
    let path = dir.file("m");
    let clock = ManualClock::new(NOW);
    let hft = NonceManager::builder().clock(clock.clone()).strategy(Strategy::Hft { counter_digits: 3 }).persist(&path);
    let last = hft.build().unwrap().next().unwrap();
    let millis = NonceManager::builder().clock(clock.clone()).persist(&path).build();
    match millis {
        Err(BuildError::InvalidConfig { field: "persist", reason }) => {
            assert!(reason.contains("1000 nonce units per ms") && reason.contains("start_after"), "{reason}");
        }
        other => panic!("a Millis manager built on an Hft mark (it would run ~1000x ahead): {other:?}"),
    }
    // the way out the message gives: delete the file, start after its mark
    std::fs::remove_file(&path).unwrap();
    let m = NonceManager::builder().clock(clock).persist(&path).start_after(last).build().unwrap();
    assert!(m.next().unwrap() > last);
}

/// Two hard links name one mark file: one lock, so one manager.
#[test]
fn a_hard_link_to_the_mark_gets_the_same_lock() {
    let dir = TempDir::new("hardlink");
    let real = dir.file("real.mark");
    let link = dir.file("link.mark");
    let clock = ManualClock::new(NOW);
    manager(&real, &clock).unwrap().next().unwrap(); // the real file exists
    std::fs::hard_link(&real, &link).unwrap();
    let first = manager(&real, &clock).unwrap();
    persist_error(manager(&link, &clock), &link, "another NonceManager");
    drop(first);
}

/// A FIFO (or any file that is not a regular file) at the mark's path is a
/// clear error at once, never a `build()` that blocks.
#[test]
fn a_fifo_at_the_mark_path_is_an_error_not_a_hang() {
    let dir = TempDir::new("fifo");
    let path = dir.file("bot.mark");
    let made = std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo (coreutils) is needed");
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let clock = ManualClock::new(NOW);
        let _ = tx.send(manager(&p, &clock).map(|_| ()));
    });
    let result = rx.recv_timeout(Duration::from_secs(10)).expect("build() blocked on a FIFO");
    persist_error(result, &path, "not a regular file");
}
