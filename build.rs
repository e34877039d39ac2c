//! Generates the C header with cbindgen into OUT_DIR, sets the shared library's soname,
//! and leaves a soname link beside the library cargo is about to link.
//! `include/pipeconnect.h` is the committed copy; `make header` refreshes it and a test
//! fails when the two differ.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("out dir"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("major");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("minor");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("patch");

    // The soname: `libpipeconnect.so.MAJOR` from 1.0 on; while MAJOR is 0, every 0.MINOR
    // may break the ABI, so the soname carries the minor too (`libpipeconnect.so.0.2`).
    let soname = if major == "0" {
        format!("libpipeconnect.so.{major}.{minor}")
    } else {
        format!("libpipeconnect.so.{major}")
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    soname_link(&out_dir, &soname);
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n/* Functions returning a result warn when it is ignored (GCC, Clang). Define\n\
         * PIPECONNECT_MUST_USE as nothing before including this header to turn it off. */\n\
         #ifndef PIPECONNECT_MUST_USE\n\
         #if defined(__GNUC__) || defined(__clang__)\n\
         #define PIPECONNECT_MUST_USE __attribute__((warn_unused_result))\n\
         #else\n\
         #define PIPECONNECT_MUST_USE\n\
         #endif\n\
         #endif\n\
         \n#define PIPECONNECT_VERSION_MAJOR {major}\n\
         #define PIPECONNECT_VERSION_MINOR {minor}\n\
         #define PIPECONNECT_VERSION_PATCH {patch}\n\
         #define PIPECONNECT_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         #define PIPECONNECT_VERSION_NUMBER ({major} * 10000 + {minor} * 100 + {patch})\n"
    ));
    // Only the C layer is parsed (cbindgen follows its `mod` lines): the core's own
    // public items are not part of the ABI.
    let builder = cbindgen::Builder::new().with_src(crate_dir.join("src/ffi/mod.rs"));
    match builder.with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(out_dir.join("pipeconnect.h"));
        }
        Err(e) => {
            // A source error is reported by rustc itself; do not hide it behind this one.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            std::fs::write(
                out_dir.join("pipeconnect.h"),
                format!("/* cbindgen failed: {e} */\n"),
            )
            .expect("write the placeholder header");
        }
    }
}

/// Leave `<soname>` as a relative link to `libpipeconnect.so` in the profile folder
/// (`target/release`, `target/debug`, or under a target triple), where cargo puts the
/// library after this script: a program linked against that folder records the soname,
/// and finds it there once the library is linked. The link is made before the library
/// exists and dangles until then; nothing reads it before. OUT_DIR is
/// `<profile>/build/<package>-<hash>/out`.
fn soname_link(out_dir: &std::path::Path, soname: &str) {
    let Some(profile) = out_dir.ancestors().nth(3) else {
        return;
    };
    let link = profile.join(soname);
    if std::fs::read_link(&link).is_ok_and(|t| t == std::path::Path::new("libpipeconnect.so")) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink("libpipeconnect.so", &link) {
        println!(
            "cargo:warning=could not link {} to libpipeconnect.so: {e}",
            link.display()
        );
    }
}
