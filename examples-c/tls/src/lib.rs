//! Re-export rustls-ffi so that this crate's `staticlib` carries all of its
//! `#[no_mangle] extern "C"` functions (the C API declared in rustls.h).
pub use rustls_ffi::*;
