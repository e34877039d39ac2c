//! The core's C API, exercised from C programs compiled against the committed header.
mod common;

use std::process::Command;

#[test]
fn cache_from_c_learns_exim_reply_and_misses_where_the_key_differs() {
    let o = common::run_c_test("test_cache");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn null_for_every_pointer_of_the_core_is_an_error_result() {
    let o = common::run_c_test("test_null_core");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn header_compiles_as_cpp_with_warnings_as_errors() {
    let dir = common::scratch("cpp");
    let src = dir.join("t.cpp");
    std::fs::write(
        &src,
        "#include \"pipeconnect.h\"\nint main() { return pipeconnect_version() ? 0 : 1; }\n",
    )
    .unwrap();
    let lib = common::link_dir(&dir);
    common::run_ok(
        Command::new("c++")
            .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(format!("-I{}", common::root().join("include").display()))
            .arg(&src)
            .arg("-o")
            .arg(dir.join("t"))
            .arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lpipeconnect"),
    );
    common::run_ok(&mut Command::new(dir.join("t")));
}

#[test]
fn tracker_from_c_plans_judges_and_keeps_the_cache_right() {
    let o = common::run_c_test("test_tracker");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn null_for_every_pointer_of_the_tracker_is_an_error_result() {
    let o = common::run_c_test("test_null_tracker");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");
}
