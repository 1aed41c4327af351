//! Crash test for the durable high-water mark: a child process hands out
//! nonces with `persist` and prints each one, flushed, as soon as it has it;
//! the parent kills it with SIGKILL at random moments, 60 times, restarting it
//! each time (every other restart with the child's clock one hour back). After
//! every restart the first nonce must exceed every nonce any earlier run
//! printed, and no nonce ever repeats.
//!
//! The child is this same test binary, running the ignored test `crash_child`.

use monotonic_nonce::{clock::ClockError, Clock, NonceManager, SystemClock};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const PATH_ENV: &str = "MONOTONIC_NONCE_CRASH_PATH";
const BACK_ENV: &str = "MONOTONIC_NONCE_CRASH_CLOCK_BACK_MS";

/// The system clock, set back by a fixed amount (an NTP step between runs).
struct BehindClock(u64);

impl Clock for BehindClock {
    fn now_ms(&self) -> Result<u64, ClockError> {
        Ok(SystemClock.now_ms()?.saturating_sub(self.0))
    }
}

#[test]
#[ignore = "helper: the crash test runs it as a child process"]
fn crash_child() {
    let Ok(path) = std::env::var(PATH_ENV) else { return };
    let back = std::env::var(BACK_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let m = NonceManager::builder()
        .clock(BehindClock(back))
        .persist(path)
        .mark_ahead(Duration::from_millis(50)) // short: many mark writes per run
        .build()
        .expect("build");
    let mut out = std::io::stdout().lock();
    loop {
        let n = m.next().expect("next");
        writeln!(out, "NONCE {n}").and_then(|()| out.flush()).expect("stdout");
    }
}

/// Every complete `NONCE n` line (a line cut by the kill is dropped).
fn nonces(output: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(output);
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete.lines().filter_map(|l| l.strip_prefix("NONCE ")).map(|n| n.parse().expect("a nonce")).collect()
}

#[test]
fn kill_9_never_repeats_a_nonce() {
    let dir = std::env::temp_dir().join(format!("monotonic-nonce-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bot.mark");
    let exe = std::env::current_exe().unwrap();
    let mut rng = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut highest: Option<u64> = None;
    let mut seen = HashSet::new();
    let mut runs_with_output = 0;
    for run in 0..60 {
        let back_ms = if run % 2 == 1 { 3_600_000 } else { 0 };
        let mut child = Command::new(&exe)
            .args(["crash::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(PATH_ENV, &path)
            .env(BACK_ENV, back_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).map(|_| buf)
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(5 + rng % 60)); // sometimes before the first nonce
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "run {run}: the child must have been killed, not have exited: {status}");
        let printed = nonces(&reader.join().unwrap().unwrap());
        if let (Some(&first), Some(prev)) = (printed.first(), highest) {
            assert!(
                first > prev,
                "run {run} (clock back {back_ms} ms): first nonce {first} <= {prev} from an earlier run"
            );
        }
        for &n in &printed {
            assert!(seen.insert(n), "run {run}: nonce {n} repeated");
        }
        assert!(printed.windows(2).all(|w| w[0] < w[1]), "run {run}: not increasing");
        if let Some(&last) = printed.last() {
            highest = Some(last);
            runs_with_output += 1;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        runs_with_output >= 30,
        "only {runs_with_output} of 60 runs printed a nonce: the kills came too early to test anything"
    );
    eprintln!("{runs_with_output} runs printed {} nonces in all; none repeated", seen.len());
}
