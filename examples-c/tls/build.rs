//! Copy rustls.h from the rustls-ffi crate into ./include/ so that C code can
//! `#include "rustls.h"` with `-I examples-c/tls/include`.
//!
//! rustls-ffi's own build script copies src/rustls.h into its OUT_DIR and, as
//! it declares `links = "rustls_ffi"`, exports that directory to dependents
//! as DEP_RUSTLS_FFI_INCLUDE.  The header is generated/copied at build time
//! and is not committed (see .gitignore).
use std::{env, fs, path::PathBuf};

fn main() {
    let src = PathBuf::from(env::var("DEP_RUSTLS_FFI_INCLUDE").expect(
        "rustls-ffi did not export its include dir (DEP_RUSTLS_FFI_INCLUDE)",
    ))
    .join("rustls.h");
    let dst_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("include");
    fs::create_dir_all(&dst_dir).expect("create include/");
    let dst = dst_dir.join("rustls.h");
    let new = fs::read(&src).expect("read rustls.h");
    // Only rewrite when changed, so that make-style timestamps stay stable.
    if fs::read(&dst).ok().as_deref() != Some(&new[..]) {
        fs::write(&dst, &new).expect("write include/rustls.h");
    }
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed=build.rs");
}
