//! `pipeconnect_key`: which server, port and TLS state a cache entry is about.
#![allow(non_camel_case_types)]

use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::{
    copy_out_text, free_handle, guard, guard_on, guard_void, handle, handle_mut, into_handle, mark,
    out, text, Poison,
};
use crate::key::{PeerKey, TlsState};
use std::ffi::c_char;

/// A TLS state, as a plain integer so that no out-of-range value can reach the library
/// as an enum: one of `PIPECONNECT_TLS_CLEARTEXT` or `PIPECONNECT_TLS_ENCRYPTED`.
pub type pipeconnect_tls_state = u32;
/// Before STARTTLS, or a connection without TLS.
pub const PIPECONNECT_TLS_CLEARTEXT: pipeconnect_tls_state = 0;
/// After a completed TLS handshake (STARTTLS, or TLS on connect).
pub const PIPECONNECT_TLS_ENCRYPTED: pipeconnect_tls_state = 1;

pub(crate) fn tls_from_c(v: pipeconnect_tls_state) -> Result<TlsState, R> {
    u8::try_from(v)
        .ok()
        .and_then(TlsState::from_u8)
        .ok_or(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
}

/// A cache key: server address, port, TLS state, and optionally the local address and
/// the EHLO name the client will use. Two spellings of one address make one key
/// (`2001:0db8:0:0::1` and `[2001:db8::1]`; `::ffff:192.0.2.1` and `192.0.2.1`).
///
/// Owned by the caller; release with `pipeconnect_key_free()`. A key is never changed by
/// a function that takes it `const`, so one key may be read by any threads at once; the
/// `_set_` functions need the key to themselves.
pub struct pipeconnect_key {
    pub(crate) inner: PeerKey,
    pub(crate) poisoned: Poison,
}

super::poisonable!(pipeconnect_key);

impl pipeconnect_key {
    pub(crate) fn new(inner: PeerKey) -> pipeconnect_key {
        pipeconnect_key {
            inner,
            poisoned: Poison::default(),
        }
    }
}

/// The most bytes `pipeconnect_key_to_string()` writes, NUL included: a bracketed IPv6
/// server address with port 65535 (47), `/cleartext` (10), ` from ` and an IPv6 local
/// address (45), ` as ` and a 255-byte EHLO name (259): 361 characters and the NUL.
pub const PIPECONNECT_KEY_STRING_MAX: usize = 362;

/// Make a key for `server` (NUL-terminated IPv4 or IPv6 text, IPv6 optionally in
/// brackets; no host names) on `port` (not 0) in TLS state `tls`. On success `*key_out`
/// is a new key the caller frees with `pipeconnect_key_free()`. Refused with
/// `PIPECONNECT_ERR_INVALID_ADDRESS`: surrounding white space or a line end, an IPv4
/// address in brackets, and the unspecified addresses `0.0.0.0` and `::` (no server
/// listens there).
///
/// # Safety
/// `server` is a NUL-terminated string; `key_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_key_new(
    server: *const c_char,
    port: u16,
    tls: pipeconnect_tls_state,
    key_out: *mut *mut pipeconnect_key,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let server = unsafe { text(server) }?;
        let key_out = unsafe { out(key_out) }?;
        let tls = tls_from_c(tls)?;
        let inner = PeerKey::parse(server, port, tls)?;
        *key_out = into_handle(pipeconnect_key::new(inner));
        Ok(R::PIPECONNECT_OK)
    })
}

/// Narrow `key` to connections made from the local address `local` (IPv4 or IPv6 text,
/// refused as for `pipeconnect_key_new()`). On error the key is unchanged.
///
/// # Safety
/// `key` is a live key not used by another thread during the call; `local` is a
/// NUL-terminated string.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_key_set_local(
    key: *mut pipeconnect_key,
    local: *const c_char,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let key = unsafe { handle_mut(key) }?;
        let local = unsafe { text(local) }?;
        key.inner = key.inner.clone().with_local(local)?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Narrow `key` to connections that greet with `ehlo_name` (printable ASCII, at most 255
/// bytes; compared case-insensitively). On error the key is unchanged.
///
/// # Safety
/// `key` is a live key not used by another thread during the call; `ehlo_name` is a
/// NUL-terminated string.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_key_set_ehlo_name(
    key: *mut pipeconnect_key,
    ehlo_name: *const c_char,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let key = unsafe { handle_mut(key) }?;
        let name = unsafe { text(ehlo_name) }?;
        key.inner = key.inner.clone().with_ehlo_name(name)?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Make a new key equal to `key` but in TLS state `tls` (for the encrypted half of a
/// STARTTLS connection). The caller frees `*key_out`.
///
/// # Safety
/// `key` is a live key; `key_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_key_with_tls(
    key: *const pipeconnect_key,
    tls: pipeconnect_tls_state,
    key_out: *mut *mut pipeconnect_key,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let key = unsafe { handle(key) }?;
        let key_out = unsafe { out(key_out) }?;
        let tls = tls_from_c(tls)?;
        *key_out = into_handle(pipeconnect_key::new(key.inner.in_state(tls)));
        Ok(R::PIPECONNECT_OK)
    })
}

/// Write the key as text (`192.0.2.1:25/cleartext`, `[2001:db8::1]:25/encrypted`, then
/// ` from <local>` and ` as <ehlo name>` when set) with a NUL into `buf` of `buf_len`
/// bytes; `*written` gets the length without the NUL. If the buffer is too small the
/// result is `PIPECONNECT_ERR_BUFFER_TOO_SMALL` and `*written` is the length needed
/// (without the NUL); `PIPECONNECT_KEY_STRING_MAX` bytes are always enough.
///
/// # Safety
/// `key` is a live key; `buf` is writable for `buf_len` bytes; `written` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_key_to_string(
    key: *const pipeconnect_key,
    buf: *mut c_char,
    buf_len: usize,
    written: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let key = unsafe { handle(key) }?;
        unsafe { copy_out_text(&key.inner.to_string(), buf, buf_len, written) }
    })
}

/// Release a key (a poisoned one too). NULL is allowed and does nothing.
///
/// # Safety
/// `key` is NULL or a key from this library not yet freed; it is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_key_free(key: *mut pipeconnect_key) {
    // SAFETY: see the function's contract.
    guard_void(|| unsafe { free_handle(key) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_key_string_fits_key_string_max_exactly() {
        let name = "a".repeat(crate::key::EHLO_NAME_MAX);
        let k = PeerKey::parse(
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]",
            65535,
            TlsState::Cleartext,
        )
        .unwrap()
        .with_local("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd")
        .unwrap()
        .with_ehlo_name(&name)
        .unwrap();
        assert_eq!(k.to_string().len() + 1, PIPECONNECT_KEY_STRING_MAX);
    }
}
