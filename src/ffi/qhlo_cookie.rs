//! The client's QHLO cookie in the cache (SMTP QUICKSTART, experimental; docs/RULES.md
//! 6.3): `pipeconnect_cache_*_qhlo_cookie`. The logic is in `cache::qhlo_cookie`.

use super::cache::pipeconnect_cache;
use super::key::pipeconnect_key;
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::{copy_out_text, guard_on, handle, mark, text};
use crate::cache::qhlo_cookie::{cookie_acceptable, cookie_key, COOKIE_MAX};
use std::ffi::c_char;

/// The longest QHLO cookie the cache keeps, in bytes (without the NUL). A buffer of
/// `PIPECONNECT_QHLO_COOKIE_MAX + 1` bytes holds any cookie
/// `pipeconnect_cache_qhlo_cookie()` gives.
pub const PIPECONNECT_QHLO_COOKIE_MAX: usize = 128;

const _: () = assert!(PIPECONNECT_QHLO_COOKIE_MAX == COOKIE_MAX);

/// Experimental (SMTP QUICKSTART). Keep `cookie` (a NUL-terminated string: the value of a
/// greeting's `QHLO=<cookie>` line, from `pipeconnect_quickstart_greeting_cookie()`) for
/// `key`'s server, replacing the one kept before, so that the next connection, in this
/// process or another one using the same store file, may send `QHLO <name> <cookie>`
/// before the banner. The cookie is kept beside the key's capabilities with the same TTL,
/// in the cleartext state whatever the key's state; it never enters their fingerprint, and
/// never goes to a shared tier. A cookie of 0 or more than `PIPECONNECT_QHLO_COOKIE_MAX`
/// bytes, or with a byte that is not printable ASCII, is `PIPECONNECT_ERR_INVALID_ARGUMENT`
/// (nothing kept); so is a key whose EHLO name is longer than 242 bytes.
///
/// # Safety
/// `cache` and `key` are live handles; `cookie` is a NUL-terminated string.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_learn_qhlo_cookie(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    cookie: *const c_char,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        let cookie = unsafe { text(cookie) }?;
        if !cookie_acceptable(cookie) || cookie_key(&key.inner).is_none() {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        if cache.cache.learn_qhlo_cookie(&key.inner, cookie) {
            Ok(R::PIPECONNECT_OK)
        } else {
            Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
        }
    })
}

/// Experimental (SMTP QUICKSTART). The QHLO cookie kept for `key`'s server, NUL-terminated,
/// into `buf` of `buf_len` bytes (`*written`: its length without the NUL); a buffer of
/// `PIPECONNECT_QHLO_COOKIE_MAX + 1` bytes is always large enough.
/// `PIPECONNECT_NOT_FOUND` (nothing written) when none is kept or it has expired. A
/// client sends it as `QHLO <name> <cookie>` in place of the EHLO of an early flight, and
/// only where the library releases one (the cookie licenses nothing by itself).
///
/// # Safety
/// `cache` and `key` are live handles; `buf` is writable for `buf_len` bytes; `written` is
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_qhlo_cookie(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    buf: *mut c_char,
    buf_len: usize,
    written: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        if buf.is_null() || written.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        match cache.cache.qhlo_cookie(&key.inner) {
            Some(c) => unsafe { copy_out_text(&c, buf, buf_len, written) },
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// Experimental (SMTP QUICKSTART). Drop the QHLO cookie kept for `key`'s server (say, after
/// the server refused QHLO): `PIPECONNECT_OK` if there was one, `PIPECONNECT_NOT_FOUND`
/// if not.
///
/// # Safety
/// `cache` and `key` are live handles.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_forget_qhlo_cookie(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        Ok(if cache.cache.forget_qhlo_cookie(&key.inner) {
            R::PIPECONNECT_OK
        } else {
            R::PIPECONNECT_NOT_FOUND
        })
    })
}
