//! Callers built against older and newer headers (smaller and larger structs, in and
//! out, arrays at their own stride) run against this library: `tests/c/test_old_structs.c`,
//! also under valgrind's memcheck when it is installed.
mod common;

use std::process::Command;

#[test]
fn old_and_new_callers_structs_work_both_ways() {
    let o = common::run_c_test("test_old_structs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn old_and_new_callers_structs_are_memcheck_clean() {
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "valgrind is not installed (CI=true: a missing tool is a failure)"
        );
        eprintln!("note: valgrind is not installed; test_old_structs was not run under it");
        return;
    }
    let dir = common::scratch("vg-test_old_structs");
    let exe = dir.join("test_old_structs");
    common::compile_c(&["tests/c/test_old_structs.c"], &exe, &[]);
    let o = Command::new("valgrind")
        .args(["--error-exitcode=97", "--leak-check=full", "-q"])
        .arg(&exe)
        .output()
        .expect("run valgrind");
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
