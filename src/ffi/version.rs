//! The version of the loaded library.

use std::ffi::c_char;

/// The loaded library's version as a static NUL-terminated string, "MAJOR.MINOR.PATCH".
/// Compare with `PIPECONNECT_VERSION_STRING` from the header to detect a mismatch
/// between the header a program was built with and the library it loaded. Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_version() -> *const c_char {
    crate::version::STRING_NUL.as_ptr().cast()
}

/// The loaded library's version as `MAJOR * 10000 + MINOR * 100 + PATCH`, comparable
/// with `PIPECONNECT_VERSION_NUMBER` from the header. Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_version_number() -> u32 {
    crate::version::NUMBER
}
