//! Every C test program again, under valgrind's memcheck: no invalid read or write, no
//! use of uninitialised memory, no definite or indirect leak, across the whole C API.
//! With `CI=true` a missing valgrind is a failure.
mod common;

use std::process::Command;

fn valgrind_available() -> bool {
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("valgrind is not installed (CI=true: a missing tool is a failure)");
    }
    found
}

fn memcheck(name: &str) {
    if !valgrind_available() {
        eprintln!("note: valgrind is not installed; {name} was not run under it");
        return;
    }
    let dir = common::scratch(&format!("vg-{name}"));
    let exe = dir.join(name);
    common::compile_c(&[&format!("tests/c/{name}.c")], &exe, &[]);
    let o = Command::new("valgrind")
        .args([
            "--error-exitcode=97",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--track-origins=yes",
            "-q",
        ])
        .arg(&exe)
        .current_dir(&dir)
        .output()
        .expect("run valgrind");
    assert!(
        o.status.success(),
        "{name} under valgrind: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn core_api_is_memcheck_clean() {
    memcheck("test_cache");
    memcheck("test_null_core");
}

#[test]
fn store_api_is_memcheck_clean() {
    memcheck("test_store");
}

#[test]
fn policy_and_session_apis_are_memcheck_clean() {
    memcheck("test_policy");
    memcheck("test_session");
    memcheck("test_null_policy_session");
    memcheck("test_out_of_step");
}

#[test]
fn server_api_is_memcheck_clean() {
    memcheck("test_server");
    memcheck("test_null_server");
}

#[test]
fn tracker_api_is_memcheck_clean() {
    memcheck("test_tracker");
    memcheck("test_null_tracker");
}
