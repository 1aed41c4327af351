//! Measures the memory each policy costs per account: the growth of the
//! process's resident set (`VmRSS`, Linux) while a fresh process tracks
//! `ACCOUNTS` accounts, divided by the number of accounts. Each case runs in
//! its own child process so one case's heap cannot hide another's.
//!
//! `cargo run --release --example memory [accounts]` (default 1 000 000)
//!
//! Each account receives 20 nonces, either in order (`1, 2, 3, ...`) or as
//! swapped pairs (`2, 1, 4, 3, ...`); the naive baseline keeps all 20. Each
//! policy runs twice: with tables grown as accounts arrive, and pre-sized with
//! `expected_accounts(accounts)` (`, presized` rows).

use monotonic_nonce::{NonceValidator, Policy};
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const NONCES_PER_ACCOUNT: u64 = 20;
const CASES: [&str; 9] = [
    "naive",
    "strict",
    "strict, presized",
    "highest_k_16",
    "highest_k_16, presized",
    "window_64",
    "window_64, presized",
    "window_8128",
    "window_8128, presized",
];

fn policy(case: &str) -> Option<Policy> {
    match case.trim_end_matches(", presized") {
        "strict" => Some(Policy::Strict),
        "highest_k_16" => Some(Policy::HighestK(16)),
        "window_64" => Some(Policy::Window(64)),
        "window_8128" => Some(Policy::Window(8128)),
        _ => None,
    }
}

/// The resident set in bytes, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn nonce(k: u64, reordered: bool) -> u64 {
    if reordered {
        (k ^ 1) + 1
    } else {
        k + 1
    }
}

/// One case, in this process: prints `rss_per_account heap_bytes_per_account`
/// (heap 0 for the naive baseline, which cannot say).
fn child(case: &str, reordered: bool, accounts: u64) -> Result<(), String> {
    let before = rss_bytes().ok_or("VmRSS is not available on this system")?;
    let (heap, after) = if let Some(policy) = policy(case) {
        let presize = if case.ends_with(", presized") { usize::try_from(accounts).unwrap_or(usize::MAX) } else { 0 };
        let v = NonceValidator::<u64>::builder(policy).expected_accounts(presize).build().map_err(|e| e.to_string())?;
        for k in 0..NONCES_PER_ACCOUNT {
            for account in 0..accounts {
                let n = nonce(k, reordered);
                // Strict refuses the late half of each swapped pair; that is its rule.
                if let Err(e) = v.validate(&account, n) {
                    if policy != Policy::Strict {
                        return Err(format!("{case}: account {account} nonce {n}: {e}"));
                    }
                }
            }
        }
        (v.heap_bytes() as u64, rss_bytes().ok_or("VmRSS vanished")?)
    } else {
        let mut naive: HashMap<u64, BTreeSet<u64>> = HashMap::new();
        for k in 0..NONCES_PER_ACCOUNT {
            for account in 0..accounts {
                naive.entry(account).or_default().insert(nonce(k, reordered));
            }
        }
        (0, rss_bytes().ok_or("VmRSS vanished")?)
    };
    println!("{} {}", after.saturating_sub(before) / accounts, heap / accounts);
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let [_, _, case, order, accounts] = &args[..] else { return Err("usage: --child CASE ORDER ACCOUNTS".into()) };
        let accounts = accounts.parse().map_err(|e| format!("accounts: {e}"))?;
        return child(case, order == "reordered", accounts);
    }
    let accounts: u64 = match args.get(1) {
        Some(a) => a.parse().map_err(|e| format!("accounts: {e}"))?,
        None => 1_000_000,
    };
    if accounts == 0 {
        return Err("accounts must be at least 1".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!("{accounts} accounts, {NONCES_PER_ACCOUNT} nonces each; bytes per account (resident set growth / heap_bytes())\n");
    println!("| policy | in order: RSS | in order: heap_bytes | reordered: RSS | reordered: heap_bytes |");
    println!("|---|---:|---:|---:|---:|");
    for case in CASES {
        let mut row = format!("| {case} |");
        for order in ["in_order", "reordered"] {
            let out = Command::new(&exe)
                .args(["--child", case, order, &accounts.to_string()])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("{case} {order}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut fields = text.split_whitespace();
            let rss = fields.next().unwrap_or("?");
            let heap = match (case, fields.next()) {
                ("naive", _) => "n/a".to_string(),
                (_, Some(h)) => h.to_string(),
                (_, None) => "?".to_string(),
            };
            row.push_str(&format!(" {rss} | {heap} |"));
        }
        println!("{row}");
    }
    Ok(())
}
