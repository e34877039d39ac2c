//! `pipeconnect_caps`: what one EHLO reply advertised.
#![allow(non_camel_case_types)]

use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{write_out, Versioned};
use super::{
    bytes, free_handle, guard, guard_on, guard_void, handle, into_handle, mark, out, text, Poison,
};
use crate::cache::Entry;
use crate::caps::{Capabilities, ParseOptions, ALL_EXTENSION_BITS};
use std::ffi::{c_char, CString};

/// Extension bits, as returned by `pipeconnect_caps_flags()` and taken by
/// `pipeconnect_caps_has()`.
pub type pipeconnect_ext = u32;
/// RFC 2920 PIPELINING.
pub const PIPECONNECT_EXT_PIPELINING: pipeconnect_ext = 1 << 0;
/// PIPECONNECT (early pipelining).
pub const PIPECONNECT_EXT_PIPECONNECT: pipeconnect_ext = 1 << 1;
/// RFC 3207 STARTTLS.
pub const PIPECONNECT_EXT_STARTTLS: pipeconnect_ext = 1 << 2;
/// RFC 3030 CHUNKING.
pub const PIPECONNECT_EXT_CHUNKING: pipeconnect_ext = 1 << 3;
/// RFC 3030 BINARYMIME.
pub const PIPECONNECT_EXT_BINARYMIME: pipeconnect_ext = 1 << 4;
/// RFC 6152 8BITMIME.
pub const PIPECONNECT_EXT_8BITMIME: pipeconnect_ext = 1 << 5;
/// RFC 6531 SMTPUTF8.
pub const PIPECONNECT_EXT_SMTPUTF8: pipeconnect_ext = 1 << 6;
/// RFC 3461 DSN.
pub const PIPECONNECT_EXT_DSN: pipeconnect_ext = 1 << 7;
/// RFC 1870 SIZE.
pub const PIPECONNECT_EXT_SIZE: pipeconnect_ext = 1 << 8;
/// RFC 2034 ENHANCEDSTATUSCODES.
pub const PIPECONNECT_EXT_ENHANCEDSTATUSCODES: pipeconnect_ext = 1 << 9;
/// PRDR.
pub const PIPECONNECT_EXT_PRDR: pipeconnect_ext = 1 << 10;
/// RFC 8689 REQUIRETLS.
pub const PIPECONNECT_EXT_REQUIRETLS: pipeconnect_ext = 1 << 11;
/// RFC 9422 LIMITS.
pub const PIPECONNECT_EXT_LIMITS: pipeconnect_ext = 1 << 12;
/// RFC 4954 AUTH.
pub const PIPECONNECT_EXT_AUTH: pipeconnect_ext = 1 << 13;

/// Options for reading an EHLO reply, OR-ed together; 0 for none.
pub type pipeconnect_parse_flags = u32;
/// Also take the legacy keywords `PIPE_CONNECT` and `X_PIPE_CONNECT` (Exim 4.92 to 4.95)
/// as early pipelining.
pub const PIPECONNECT_PARSE_LEGACY_KEYWORDS: pipeconnect_parse_flags = 1;

pub(crate) fn parse_options(flags: pipeconnect_parse_flags) -> Result<ParseOptions, R> {
    if flags & !PIPECONNECT_PARSE_LEGACY_KEYWORDS != 0 {
        return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
    }
    Ok(ParseOptions {
        legacy_keywords: flags & PIPECONNECT_PARSE_LEGACY_KEYWORDS != 0,
    })
}

/// RFC 9422 LIMITS values; 0 where the server did not advertise the value. Set
/// `struct_size` to `sizeof(pipeconnect_limits)` before `pipeconnect_caps_limits()`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipeconnect_limits {
    /// `sizeof(pipeconnect_limits)`, set by the caller.
    pub struct_size: usize,
    /// MAILMAX: transactions per connection.
    pub mail_max: u32,
    /// RCPTMAX: recipients per transaction.
    pub rcpt_max: u32,
    /// RCPTDOMAINMAX: recipient domains per transaction.
    pub rcpt_domain_max: u32,
}

// SAFETY: repr(C), starts with a usize, integers only.
unsafe impl Versioned for pipeconnect_limits {
    const NAME: &'static str = "pipeconnect_limits";
}

/// What one EHLO reply advertised: extension flags, SIZE, LIMITS, AUTH mechanisms, a
/// fingerprint of all extensions, and (when it came from the cache) when it was learned.
///
/// An immutable snapshot owned by the caller (it does not change when the cache does);
/// release with `pipeconnect_caps_free()`. Any threads may read one at once.
pub struct pipeconnect_caps {
    pub(crate) caps: Capabilities,
    pub(crate) learned_at: Option<u64>,
    auth_names: Vec<CString>,
    pub(crate) poisoned: Poison,
}

super::poisonable!(pipeconnect_caps);

impl pipeconnect_caps {
    pub(crate) fn new(caps: Capabilities, learned_at: Option<u64>) -> pipeconnect_caps {
        let auth_names = caps
            .auth_mechanisms()
            .iter()
            .map(|m| CString::new(*m).unwrap_or_default())
            .collect();
        pipeconnect_caps {
            caps,
            learned_at,
            auth_names,
            poisoned: Poison::default(),
        }
    }

    pub(crate) fn from_entry(e: Entry) -> pipeconnect_caps {
        Self::new(e.caps, Some(e.learned_at))
    }
}

/// Read an EHLO reply of `len` bytes, exactly as received (one complete reply, CRLF or
/// LF line ends). `flags` is 0 or `PIPECONNECT_PARSE_LEGACY_KEYWORDS`. On success
/// `*caps_out` is a new snapshot the caller frees. A reply that is not 250 is
/// `PIPECONNECT_ERR_NOT_EHLO_REPLY`; a malformed, incomplete or oversized one gets the
/// reply parser's error.
///
/// # Safety
/// `reply` is readable for `len` bytes; `caps_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_parse(
    reply: *const u8,
    len: usize,
    flags: pipeconnect_parse_flags,
    caps_out: *mut *mut pipeconnect_caps,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helpers; see the function's contract.
        let reply = unsafe { bytes(reply, len) }?;
        let caps_out = unsafe { out(caps_out) }?;
        let caps = Capabilities::parse_ehlo(reply, parse_options(flags)?)?;
        *caps_out = into_handle(pipeconnect_caps::new(caps, None));
        Ok(R::PIPECONNECT_OK)
    })
}

/// Whether the extension `ext` (one `PIPECONNECT_EXT_*` bit) was advertised. More than
/// one bit, or an unknown bit, is `PIPECONNECT_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `caps` is a live snapshot; `has_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_has(
    caps: *const pipeconnect_caps,
    ext: pipeconnect_ext,
    has_out: *mut bool,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let has_out = unsafe { out(has_out) }?;
        if ext.count_ones() != 1 || ext & !ALL_EXTENSION_BITS != 0 {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        *has_out = caps.caps.flags() & ext != 0;
        Ok(R::PIPECONNECT_OK)
    })
}

/// All advertised extensions as `PIPECONNECT_EXT_*` bits.
///
/// # Safety
/// `caps` is a live snapshot; `flags_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_flags(
    caps: *const pipeconnect_caps,
    flags_out: *mut pipeconnect_ext,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        *unsafe { out(flags_out) }? = caps.caps.flags();
        Ok(R::PIPECONNECT_OK)
    })
}

/// The SIZE limit in bytes. `PIPECONNECT_NOT_FOUND` (nothing written) when SIZE was not
/// advertised with a number; 0 means the server declared no fixed limit.
///
/// # Safety
/// `caps` is a live snapshot; `size_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_size_limit(
    caps: *const pipeconnect_caps,
    size_out: *mut u64,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let size_out = unsafe { out(size_out) }?;
        match caps.caps.size_limit() {
            Some(s) => {
                *size_out = s;
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// The LIMITS values (0 for those not advertised; `pipeconnect_caps_limit()` tells an
/// advertised 0 apart); set `limits_out->struct_size` first.
///
/// # Safety
/// `caps` is a live snapshot; `limits_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_limits(
    caps: *const pipeconnect_caps,
    limits_out: *mut pipeconnect_limits,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let l = caps.caps.limits();
        let value = pipeconnect_limits {
            struct_size: 0,
            mail_max: l.mail_max.unwrap_or(0),
            rcpt_max: l.rcpt_max.unwrap_or(0),
            rcpt_domain_max: l.rcpt_domain_max.unwrap_or(0),
        };
        unsafe { write_out(limits_out, value) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// One RFC 9422 LIMITS value, for `pipeconnect_caps_limit()`.
pub type pipeconnect_limit = u32;
/// MAILMAX: transactions per connection.
pub const PIPECONNECT_LIMIT_MAILMAX: pipeconnect_limit = 1;
/// RCPTMAX: recipients per transaction.
pub const PIPECONNECT_LIMIT_RCPTMAX: pipeconnect_limit = 2;
/// RCPTDOMAINMAX: recipient domains per transaction.
pub const PIPECONNECT_LIMIT_RCPTDOMAINMAX: pipeconnect_limit = 3;

/// One LIMITS value (`which`: a `PIPECONNECT_LIMIT_*`), telling "not advertised" apart
/// from every value, 0 and 4294967295 included: `PIPECONNECT_OK` and `*value_out`, or
/// `PIPECONNECT_NOT_FOUND` (nothing written) when the server did not advertise it. An
/// unknown `which` is `PIPECONNECT_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `caps` is a live snapshot; `value_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_limit(
    caps: *const pipeconnect_caps,
    which: pipeconnect_limit,
    value_out: *mut u32,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let value_out = unsafe { out(value_out) }?;
        let l = caps.caps.limits();
        let v = match which {
            PIPECONNECT_LIMIT_MAILMAX => l.mail_max,
            PIPECONNECT_LIMIT_RCPTMAX => l.rcpt_max,
            PIPECONNECT_LIMIT_RCPTDOMAINMAX => l.rcpt_domain_max,
            _ => return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT),
        };
        match v {
            Some(v) => {
                *value_out = v;
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// How many AUTH mechanism names were kept (at most 16; see
/// `pipeconnect_caps_auth_name()`).
///
/// # Safety
/// `caps` is a live snapshot; `count_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_auth_count(
    caps: *const pipeconnect_caps,
    count_out: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        *unsafe { out(count_out) }? = caps.auth_names.len();
        Ok(R::PIPECONNECT_OK)
    })
}

/// The AUTH mechanism at `index` (upper case, NUL-terminated, in the server's order).
/// The string belongs to `caps` and lives until `caps` is freed. An index past the end is
/// `PIPECONNECT_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `caps` is a live snapshot; `name_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_auth_name(
    caps: *const pipeconnect_caps,
    index: usize,
    name_out: *mut *const c_char,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let name_out = unsafe { out(name_out) }?;
        let name = caps
            .auth_names
            .get(index)
            .ok_or(R::PIPECONNECT_ERR_INVALID_ARGUMENT)?;
        *name_out = name.as_ptr();
        Ok(R::PIPECONNECT_OK)
    })
}

/// Whether the AUTH mechanism `mechanism` (any case) was offered.
///
/// # Safety
/// `caps` is a live snapshot; `mechanism` is NUL-terminated; `has_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_has_auth(
    caps: *const pipeconnect_caps,
    mechanism: *const c_char,
    has_out: *mut bool,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let mechanism = unsafe { text(mechanism) }?;
        *unsafe { out(has_out) }? = caps.caps.has_auth(mechanism);
        Ok(R::PIPECONNECT_OK)
    })
}

/// A 64-bit fingerprint of every extension line (keywords and parameters, case and order
/// ignored, the greeting line excluded): two replies that advertise the same things have
/// the same fingerprint, so a change on the server is detectable.
///
/// # Safety
/// `caps` is a live snapshot; `fingerprint_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_fingerprint(
    caps: *const pipeconnect_caps,
    fingerprint_out: *mut u64,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        *unsafe { out(fingerprint_out) }? = caps.caps.fingerprint();
        Ok(R::PIPECONNECT_OK)
    })
}

/// When the snapshot was learned, in Unix seconds, if it came from a cache lookup;
/// `PIPECONNECT_NOT_FOUND` (nothing written) for a snapshot from
/// `pipeconnect_caps_parse()`.
///
/// # Safety
/// `caps` is a live snapshot; `learned_at_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_caps_learned_at(
    caps: *const pipeconnect_caps,
    learned_at_out: *mut u64,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(caps) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let caps = unsafe { handle(caps) }?;
        let learned_at_out = unsafe { out(learned_at_out) }?;
        match caps.learned_at {
            Some(t) => {
                *learned_at_out = t;
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// Release a snapshot. NULL is allowed and does nothing.
///
/// # Safety
/// `caps` is NULL or a snapshot from this library not yet freed; it is not used
/// afterwards, nor are the AUTH name strings it handed out.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_caps_free(caps: *mut pipeconnect_caps) {
    // SAFETY: see the function's contract.
    guard_void(|| unsafe { free_handle(caps) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::Extension;

    #[test]
    fn c_extension_bits_are_the_core_bits() {
        let c = [
            PIPECONNECT_EXT_PIPELINING,
            PIPECONNECT_EXT_PIPECONNECT,
            PIPECONNECT_EXT_STARTTLS,
            PIPECONNECT_EXT_CHUNKING,
            PIPECONNECT_EXT_BINARYMIME,
            PIPECONNECT_EXT_8BITMIME,
            PIPECONNECT_EXT_SMTPUTF8,
            PIPECONNECT_EXT_DSN,
            PIPECONNECT_EXT_SIZE,
            PIPECONNECT_EXT_ENHANCEDSTATUSCODES,
            PIPECONNECT_EXT_PRDR,
            PIPECONNECT_EXT_REQUIRETLS,
            PIPECONNECT_EXT_LIMITS,
            PIPECONNECT_EXT_AUTH,
        ];
        for (bit, ext) in c.iter().zip(Extension::ALL) {
            assert_eq!(*bit, ext.bit(), "{ext:?}");
        }
    }
}
