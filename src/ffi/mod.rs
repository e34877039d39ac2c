//! The C ABI. Each file is one C type; each function converts its arguments, calls the
//! safe core, and converts the result. No logic lives here.
//!
//! Conventions, for every exported function:
//! - the name starts with `pipeconnect_`;
//! - a fallible function returns [`result::pipeconnect_result`] and writes its outputs
//!   through out-parameters only when it returns `PIPECONNECT_OK` (or says otherwise);
//! - every pointer is checked: NULL is `PIPECONNECT_ERR_NULL_POINTER`, never a crash;
//! - every body runs inside [`guard`], so a panic becomes `PIPECONNECT_ERR_PANIC` and
//!   never unwinds into, or aborts, the calling MTA;
//! - handles are made by `_new`/`_open`/`_parse` and released by `_free`, which accepts NULL.
#![allow(non_camel_case_types)]

pub mod cache;
pub mod caps;
pub mod key;
pub mod policy;
pub mod result;
pub mod session;
pub mod store;
pub mod version;

use result::pipeconnect_result;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`, turning a panic into `PIPECONNECT_ERR_PANIC`.
pub(crate) fn guard(
    f: impl FnOnce() -> Result<pipeconnect_result, pipeconnect_result>,
) -> pipeconnect_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) | Ok(Err(r)) => r,
        Err(_) => pipeconnect_result::PIPECONNECT_ERR_PANIC,
    }
}

/// Run `f` for a function that returns nothing (the `_free` functions): a panic is
/// swallowed, because there is no way to report it and unwinding into C is undefined.
pub(crate) fn guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// The `T` behind a handle pointer.
///
/// # Safety
/// `p` is NULL or a pointer this library handed out as a `T` and has not been freed.
pub(crate) unsafe fn handle<'a, T>(p: *const T) -> Result<&'a T, pipeconnect_result> {
    // SAFETY: the caller promises a live handle or NULL; NULL is refused here.
    unsafe { p.as_ref() }.ok_or(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER)
}

/// The `T` behind a mutable handle pointer.
///
/// # Safety
/// As [`handle`], and no other reference to the handle is in use (the C documentation
/// says which handles are for one thread at a time).
pub(crate) unsafe fn handle_mut<'a, T>(p: *mut T) -> Result<&'a mut T, pipeconnect_result> {
    // SAFETY: as above.
    unsafe { p.as_mut() }.ok_or(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER)
}

/// A checked out-parameter.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
pub(crate) unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T, pipeconnect_result> {
    // SAFETY: the caller promises `p` is writable or NULL.
    unsafe { p.as_mut() }.ok_or(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER)
}

/// A NUL-terminated C string as UTF-8 text.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text<'a>(p: *const c_char) -> Result<&'a str, pipeconnect_result> {
    if p.is_null() {
        return Err(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's promise.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| pipeconnect_result::PIPECONNECT_ERR_NOT_UTF8)
}

/// A byte buffer given as pointer and length. NULL is refused even with length 0, so a
/// caller's forgotten buffer is caught.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], pipeconnect_result> {
    if p.is_null() {
        return Err(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER);
    }
    if len > isize::MAX as usize {
        return Err(pipeconnect_result::PIPECONNECT_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, length in range, readable by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Hand a value to C as a new handle.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Take back and drop a handle made by [`into_handle`]; NULL is allowed.
///
/// # Safety
/// `p` is NULL or a handle from [`into_handle`] of the same `T`, not yet freed.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: made by Box::into_raw and freed once, by the caller's promise.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Copy `s` with a NUL into `buf` of `len` bytes; the length without the NUL goes to
/// `written`. Too small a buffer is `PIPECONNECT_ERR_BUFFER_TOO_SMALL`, with the needed
/// length (without the NUL) in `written` and nothing written to `buf`.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `written` is NULL or writable.
pub(crate) unsafe fn copy_out_text(
    s: &str,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> Result<pipeconnect_result, pipeconnect_result> {
    // SAFETY: checked by `out`.
    let written = unsafe { out(written) }?;
    if buf.is_null() {
        return Err(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER);
    }
    if s.len() + 1 > len {
        *written = s.len();
        return Err(pipeconnect_result::PIPECONNECT_ERR_BUFFER_TOO_SMALL);
    }
    // SAFETY: buf holds at least s.len() + 1 bytes by the check above.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    *written = s.len();
    Ok(pipeconnect_result::PIPECONNECT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_result_and_does_not_unwind() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = guard(|| panic!("inside the library"));
        let mut freed = false;
        guard_void(|| {
            freed = true;
            panic!("inside a free function")
        });
        std::panic::set_hook(prev);
        assert_eq!(r, pipeconnect_result::PIPECONNECT_ERR_PANIC);
        assert!(freed);
    }

    #[test]
    fn copy_out_text_never_overruns() {
        let mut buf = [0x55 as c_char; 8];
        let mut n = 0usize;
        let r = unsafe { copy_out_text("12345678", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, Err(pipeconnect_result::PIPECONNECT_ERR_BUFFER_TOO_SMALL));
        assert_eq!(n, 8);
        assert!(buf.iter().all(|&b| b == 0x55));
        let r = unsafe { copy_out_text("1234567", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, Ok(pipeconnect_result::PIPECONNECT_OK));
        assert_eq!(buf[7], 0);
    }
}
