//! `pipeconnect demo` end to end, as `make demo` runs it: the C client through the delay
//! proxy to the test sink, three modes, and the summary line with the expected ordering.
//!
//! Needs the tools crate built in the same profile (`cargo build --workspace`).
mod common;

use std::process::Command;

#[test]
fn demo_shows_one_flight_faster_than_early_faster_than_classic() {
    let tool = common::lib_dir().join("pipeconnect");
    assert!(
        tool.exists(),
        "{} not found: build the tools crate first (cargo build --workspace)",
        tool.display()
    );
    let dir = common::scratch("client-demo");
    let client = dir.join("pc-deliver");
    common::compile_c(
        &[
            "examples-c/client/pc_deliver.c",
            "examples-c/client/delivery.c",
            "examples-c/client/conn.c",
        ],
        &client,
        &[],
    );
    let o = Command::new(&tool)
        .args(["demo", "--rtt-ms", "40", "--deliveries", "3", "--client"])
        .arg(&client)
        .output()
        .expect("run pipeconnect demo");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "demo failed:\n{out}\n{err}");

    let last = out.lines().last().unwrap_or_default();
    let fields: std::collections::HashMap<&str, f64> = last
        .strip_prefix("summary: ")
        .unwrap_or_else(|| panic!("last line is not the summary: {last:?}\n{out}"))
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k, v.parse().expect("number")))
        .collect();
    assert_eq!(fields["rtt_ms"], 40.0);
    let (classic, early, one) = (
        fields["classic_ms"],
        fields["early_ms"],
        fields["oneflight_ms"],
    );
    // The waits are 4, 2 and 1 round trips of 40 ms; allow for scheduling noise.
    assert!(classic >= 160.0 && early >= 80.0 && one >= 40.0, "{out}");
    assert!(
        one * 1.5 <= early,
        "one flight not 1.5x faster than early:\n{out}"
    );
    assert!(
        one * 2.3 <= classic,
        "one flight not 2.3x faster than classic:\n{out}"
    );
    // The table: waits per delivery for each mode, every timed delivery early where it
    // should be.
    for (mode, early_count, waits) in [
        ("classic", "0/3", "4"),
        ("early", "3/3", "2"),
        ("oneflight", "3/3", "1"),
    ] {
        let row = out
            .lines()
            .find(|l| l.starts_with(mode) && l.split_whitespace().next() == Some(mode))
            .unwrap_or_else(|| panic!("no row for {mode}:\n{out}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cols[1], cols[2]), (early_count, waits), "{row}\n{out}");
    }
}
