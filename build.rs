//! Generates the C header with cbindgen into OUT_DIR and sets the shared library's
//! soname. `include/pipeconnect.h` is the committed copy; `make header` refreshes it and
//! a test fails when the two differ.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("out dir"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("major");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("minor");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("patch");

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpipeconnect.so.{major}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n#define PIPECONNECT_VERSION_MAJOR {major}\n\
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
