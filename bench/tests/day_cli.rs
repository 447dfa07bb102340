//! `exchange-bench day --quick` end to end: it starts `serve` on a fresh
//! data directory, drives a small day of orders, samples the server's
//! memory at each checkpoint and restarts it on the same directory. What is
//! checked is that the instrument works (non-zero memory, every order
//! answered and none rejected, a journal length and a restart time
//! reported), never how fast anything was: this runs in debug builds on a
//! shared machine.

use serde_json::Value;
use std::process::Command;

fn day_json(arguments: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_exchange-bench"))
        .arg("day")
        .args(arguments)
        .output()
        .expect("run exchange-bench day");
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn u64_at(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing or not a count in {value}"))
}

#[test]
fn day_quick_reports_memory_per_checkpoint_and_a_clean_restart() {
    let report = day_json(&["--quick", "--json"]);
    let checkpoints = report["checkpoints"].as_array().expect("checkpoints");
    assert_eq!(checkpoints.len(), 2, "{report}");
    let mut previous_cancels = 0;
    for (checkpoint, orders) in checkpoints.iter().zip([10_000, 20_000]) {
        assert_eq!(u64_at(checkpoint, "/orders"), orders, "{checkpoint}");
        let cancels = u64_at(checkpoint, "/cancels");
        assert!(cancels > previous_cancels, "the mix cancels: {checkpoint}");
        previous_cancels = cancels;
        assert!(
            u64_at(checkpoint, "/executions") > 0,
            "the mix trades: {checkpoint}"
        );
        let rss = u64_at(checkpoint, "/memory/vm_rss_kib");
        assert!(rss > 0, "{checkpoint}");
        assert!(
            u64_at(checkpoint, "/memory/vm_hwm_kib") >= rss,
            "{checkpoint}"
        );
        assert!(
            u64_at(checkpoint, "/memory/rss_anon_kib") > 0,
            "{checkpoint}"
        );
    }
    assert_eq!(u64_at(&report, "/orders_rejected"), 0, "{report}");
    assert!(u64_at(&report, "/memory_at_start/vm_rss_kib") > 0);

    let restart = &report["restart"];
    assert_eq!(
        restart["mode"].as_str(),
        Some("clean (SIGTERM)"),
        "{report}"
    );
    // The journal holds genesis and every order, and at most the cancels
    // on top (a refused cancel may or may not be journaled).
    let genesis = u64_at(&report, "/genesis_commands");
    let journaled = u64_at(restart, "/journal_commands");
    assert!(
        (genesis + 20_000..=genesis + 20_000 + previous_cancels).contains(&journaled),
        "{report}"
    );
    // Read from the journal itself between the stop and the restart.
    assert_eq!(
        u64_at(restart, "/journal/last_sequence"),
        journaled,
        "{restart}"
    );
    assert_eq!(u64_at(restart, "/journal/first_sequence"), 1, "{restart}");
    let serving = restart["serving_seconds"]
        .as_f64()
        .expect("serving_seconds");
    let listening = restart["order_entry_listening_seconds"]
        .as_f64()
        .expect("order_entry_listening_seconds");
    assert!(
        serving > 0.0 && listening > 0.0 && listening <= serving,
        "{restart}"
    );
    assert!(u64_at(restart, "/memory/vm_rss_kib") > 0, "{restart}");
    assert!(u64_at(restart, "/data_dir_bytes") > 0, "{restart}");
    for key in ["machine", "command", "order_mix"] {
        assert!(report.get(key).is_some(), "{key} missing from {report}");
    }
}

#[test]
fn day_crash_restart_recovers_every_acknowledged_order() {
    let report = day_json(&[
        "--orders",
        "3000",
        "--connections",
        "1",
        "--restart",
        "crash",
        "--json",
    ]);
    let restart = &report["restart"];
    assert_eq!(
        restart["mode"].as_str(),
        Some("crash (SIGKILL)"),
        "{report}"
    );
    let cancels = u64_at(&report, "/checkpoints/0/cancels");
    // Every order was answered before the kill, so each is in the journal
    // (memory durability survives the death of the process).
    let genesis = u64_at(&report, "/genesis_commands");
    assert!(
        (genesis + 3_000..=genesis + 3_000 + cancels)
            .contains(&u64_at(restart, "/journal_commands")),
        "{report}"
    );
    assert!(
        restart["serving_seconds"]
            .as_f64()
            .is_some_and(|seconds| seconds > 0.0)
    );
}
