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

/// Root and the MTA's users (tests/c/test_store_users.c): a store made by `nobody` that
/// root reads and writes without changing its owner, the owner option, group mode. The
/// program runs other users' steps in children with `setuid()`, so it needs root; it is
/// not skipped quietly: without root this test fails, unless
/// `PIPECONNECT_SKIP_ROOT_TESTS=1` says to skip it (and the skip is printed).
#[test]
fn store_users_from_c_as_root() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let skip = std::env::var("PIPECONNECT_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "store_users_from_c_as_root needs root (it runs steps as other users); \
             set PIPECONNECT_SKIP_ROOT_TESTS=1 to skip it"
        );
        println!("SKIPPED store_users_from_c_as_root: not root");
        return;
    }
    let o = common::run_c_test("test_store_users");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
    let passed: u32 = out
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 30, "{out}");
}
