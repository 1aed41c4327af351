//! Runs the built `exchange_sim` binary with small sizes: it must hold its
//! own invariants (exit 0), print every scenario, and refuse bad flags.

use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_exchange_sim"))
}

#[test]
fn small_run_holds_its_invariants_and_prints_every_scenario() {
    let chart = std::env::temp_dir().join(format!("monotonic-nonce-sim-{}.svg", std::process::id()));
    let out = sim().args(["--bots", "2", "--requests", "300", "--seed", "7", "--chart"]).arg(&chart).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status);
    for scenario in ["| 1 naive", "| 2 Millis", "| 3a", "| 3b", "| 4a", "| 4b", "| 5a", "| 5b", "| 6 attacker", "| 7a"]
    {
        assert!(stdout.contains(scenario), "{scenario} missing from\n{stdout}");
    }
    assert!(stderr.contains("invariants held"), "{stderr}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 2);
    std::fs::remove_file(&chart).unwrap();
}

#[test]
fn json_summary_parses() {
    let out = sim().args(["--bots", "2", "--requests", "200", "--scenario", "6", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["accepted"], 0, "no attack request accepted");
    assert_eq!(rows[1]["replays_accepted"], 0);
    assert_eq!(rows[2]["accepted"], 1, "the account works after the attack");
}

#[test]
fn bad_flags_are_a_usage_error() {
    for args in [&["--bots", "0"][..], &["--scenario", "10"], &["--frobnicate"], &["--seed"], &["--requests", "x"]] {
        let out = sim().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: exchange_sim"), "{args:?}");
    }
    let help = sim().arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--chart"));
}
