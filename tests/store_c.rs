//! The shared file store's C API, exercised from a C program compiled against the
//! committed header: open, learn, look up, fork, and hostile paths.
mod common;

#[test]
fn store_from_c_learns_shares_across_fork_and_refuses_hostile_paths() {
    let o = common::run_c_test("test_store");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
    let passed: u32 = out
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 50, "{out}");
}
