//! Helpers shared by the integration tests that compile and run C programs against the
//! built `libpipeconnect.so`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod sink;

/// The crate's root folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder holding the `libpipeconnect.so` built for this test run (the profile folder
/// above the test binary's `deps/`).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("profile folder")
        .to_path_buf();
    assert!(
        dir.join("libpipeconnect.so").exists(),
        "libpipeconnect.so not found in {}",
        dir.display()
    );
    // `cargo test` builds the rlib the tests link, but not the shared library: a stale
    // .so would test old code, so insist on `cargo build` (the Makefile does it) first.
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(so), Some(rlib)) = (
        modified(dir.join("libpipeconnect.so")),
        modified(dir.join("libpipeconnect.rlib")),
    ) {
        assert!(
            so + std::time::Duration::from_secs(30) >= rlib,
            "libpipeconnect.so is older than the crate: run `cargo build` before the tests \
             (make test does)"
        );
    }
    dir
}

/// The soname of the library this crate builds: `libpipeconnect.so.0.MINOR` while the
/// major version is 0, `libpipeconnect.so.MAJOR` after.
pub fn soname() -> String {
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    if major == "0" {
        format!("libpipeconnect.so.0.{}", env!("CARGO_PKG_VERSION_MINOR"))
    } else {
        format!("libpipeconnect.so.{major}")
    }
}

/// A folder beside `dir` where the built library is reachable as an installed one:
/// `libpipeconnect.so` and its soname, both links to the build.
pub fn link_dir(dir: &Path) -> PathBuf {
    let built = lib_dir().join("libpipeconnect.so");
    let d = dir.join("lib");
    std::fs::create_dir_all(&d).expect("lib folder");
    for name in ["libpipeconnect.so".to_string(), soname()] {
        let link = d.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&built, &link).expect("link the library");
    }
    d
}

/// A fresh scratch folder for one test, removed first if it exists.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pipeconnect-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// The C compiler: `$CC` or `cc`.
pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Compile `sources` (paths relative to the crate root) into `out`, as C99 with
/// `-Wall -Wextra -Werror -pedantic`, against the committed header and the built library.
/// Panics with the compiler's output on failure.
pub fn compile_c(sources: &[&str], out: &Path, extra: &[&str]) {
    let root = root();
    let lib = link_dir(out.parent().expect("output folder"));
    let mut cmd = Command::new(cc());
    cmd.args([
        "-std=c99",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
    ])
    .arg(format!("-I{}", root.join("include").display()))
    .arg(format!("-I{}", root.join("tests/c").display()));
    for s in sources {
        cmd.arg(root.join(s));
    }
    cmd.arg("-o")
        .arg(out)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lpipeconnect")
        .args(extra);
    let o = cmd.output().expect("run the C compiler");
    assert!(
        o.status.success(),
        "C compile failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run a program, returning its output; panics with the output if it failed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("run the program");
    assert!(
        o.status.success(),
        "{:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        cmd,
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Compile `tests/c/<name>.c` (plus `tests/c/check.h`) and run it; it must exit 0.
pub fn run_c_test(name: &str) -> Output {
    let dir = scratch(name);
    let exe = dir.join(name);
    compile_c(&[&format!("tests/c/{name}.c")], &exe, &[]);
    run_ok(&mut Command::new(&exe))
}

/// The reference client `pc-deliver` (examples-c/client, without TLS), compiled once per
/// test binary (C99, warnings as errors) against this build.
pub fn pc_deliver() -> &'static Path {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("pc-deliver-build").join("pc-deliver");
        compile_c(
            &[
                "examples-c/client/pc_deliver.c",
                "examples-c/client/delivery.c",
                "examples-c/client/conn.c",
            ],
            &exe,
            &[],
        );
        exe
    })
}
