//! The server side of the C API: what a receiving MTA makes of input that arrived before
//! its banner (`pipeconnect_server_*`).
//!
//! A classifier handle is for one connection and one thread at a time; the one-call
//! `pipeconnect_server_classify()` has no state at all.
#![allow(non_camel_case_types)]

use super::caps::{parse_options, pipeconnect_caps, pipeconnect_parse_flags};
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{read_in, write_out, Versioned};
use super::{
    bytes, free_handle, guard_on, guard_void, handle, handle_mut, into_handle, mark, out,
    poisonable, Poison,
};
use super::{copy_out_text, guard, text};
use crate::server::prebanner::{
    Class, Prebanner, PrebannerLimits, Reason, Verdict, PREBANNER_MAX_COMMANDS_LIMIT,
};
use crate::server::quickstart::{self, CookieError};
use std::ffi::{c_char, CStr};

/// A class of pre-banner input: one of `PIPECONNECT_PREBANNER_CLASS_*`.
pub type pipeconnect_prebanner_class = u32;
/// No input: write the banner as usual.
pub const PIPECONNECT_PREBANNER_CLASS_NOTHING: pipeconnect_prebanner_class = 0;
/// A well-formed early flight (so far, when `PIPECONNECT_PREBANNER_VERDICT_INCOMPLETE` is set):
/// write the banner, then process the commands as usual.
pub const PIPECONNECT_PREBANNER_CLASS_EARLY_FLIGHT: pipeconnect_prebanner_class = 1;
/// SMTP from a client that went beyond what may go early (RSET, input after STARTTLS,
/// QUIT or an AUTH challenge, input over the limits): write the banner first, then
/// process the input as usual.
pub const PIPECONNECT_PREBANNER_CLASS_BANNER_FIRST: pipeconnect_prebanner_class = 2;
/// A pregreet violation (garbage, HELO or MAIL first, commands out of order, a body
/// before the 354, or any input from a client not offered PIPECONNECT). Exim answers
/// `554 SMTP synchronization error` and closes.
pub const PIPECONNECT_PREBANNER_CLASS_PREGREET: pipeconnect_prebanner_class = 3;

/// Why input got its class: one of `PIPECONNECT_PREBANNER_REASON_*`.
pub type pipeconnect_prebanner_reason = u32;
/// Nothing wrong (no input, or a well-formed early flight).
pub const PIPECONNECT_PREBANNER_REASON_NONE: pipeconnect_prebanner_reason = 0;
/// Input from a client not offered PIPECONNECT that would have been acceptable from one
/// offered it.
pub const PIPECONNECT_PREBANNER_REASON_NOT_OFFERED: pipeconnect_prebanner_reason = 1;
/// The first line is HELO.
pub const PIPECONNECT_PREBANNER_REASON_HELO_FIRST: pipeconnect_prebanner_reason = 2;
/// The first line is an SMTP command other than EHLO (MAIL, QUIT, ...).
pub const PIPECONNECT_PREBANNER_REASON_COMMAND_FIRST: pipeconnect_prebanner_reason = 3;
/// A line that is no SMTP command (garbage, binary, HTTP, control characters, empty).
pub const PIPECONNECT_PREBANNER_REASON_NOT_SMTP: pipeconnect_prebanner_reason = 4;
/// A known command with unusable arguments (EHLO without a name, BDAT without a size).
pub const PIPECONNECT_PREBANNER_REASON_BAD_SYNTAX: pipeconnect_prebanner_reason = 5;
/// Known commands in an order SMTP does not allow (RCPT before MAIL, a second EHLO).
pub const PIPECONNECT_PREBANNER_REASON_OUT_OF_ORDER: pipeconnect_prebanner_reason = 6;
/// A line longer than 1000 bytes.
pub const PIPECONNECT_PREBANNER_REASON_LINE_TOO_LONG: pipeconnect_prebanner_reason = 7;
/// Input after DATA: the body must wait for the 354.
pub const PIPECONNECT_PREBANNER_REASON_BODY_BEFORE_REPLY: pipeconnect_prebanner_reason = 8;
/// Input after STARTTLS (discarded by the server, RFC 3207).
pub const PIPECONNECT_PREBANNER_REASON_AFTER_STARTTLS: pipeconnect_prebanner_reason = 9;
/// Input after an AUTH that waits for a challenge.
pub const PIPECONNECT_PREBANNER_REASON_AFTER_AUTH_CHALLENGE: pipeconnect_prebanner_reason = 10;
/// Input after QUIT.
pub const PIPECONNECT_PREBANNER_REASON_AFTER_QUIT: pipeconnect_prebanner_reason = 11;
/// A command kept out of early flights (RSET, NOOP, HELP, VRFY, EXPN, BDAT without LAST).
pub const PIPECONNECT_PREBANNER_REASON_NOT_EARLY_COMMAND: pipeconnect_prebanner_reason = 12;
/// A BDAT LAST body over `max_body`.
pub const PIPECONNECT_PREBANNER_REASON_BODY_TOO_LARGE: pipeconnect_prebanner_reason = 13;
/// More command lines than `max_commands`.
pub const PIPECONNECT_PREBANNER_REASON_TOO_MANY_COMMANDS: pipeconnect_prebanner_reason = 14;
/// More bytes than `max_bytes`.
pub const PIPECONNECT_PREBANNER_REASON_TOO_MUCH_INPUT: pipeconnect_prebanner_reason = 15;

/// Flags of a `pipeconnect_prebanner_options`, OR-ed.
pub type pipeconnect_prebanner_flags = u32;
/// This server advertises PIPECONNECT to this client (its own per-connection decision,
/// like Exim's `pipelining_connect_advertise_hosts`). Without it any input is a
/// pregreet violation.
pub const PIPECONNECT_PREBANNER_OPTION_OFFERED: pipeconnect_prebanner_flags = 1;

/// QHLO (SMTP QUICKSTART, experimental) may stand where EHLO may: for a server that
/// greets with its capabilities (`pipeconnect_server_qhlo_cookie()`).
pub const PIPECONNECT_PREBANNER_OPTION_QUICKSTART: pipeconnect_prebanner_flags = 2;

/// Flags of a `pipeconnect_prebanner_verdict`, OR-ed.
pub type pipeconnect_prebanner_verdict_flags = u32;
/// The input ends inside a line or a BDAT body: more is on its way.
pub const PIPECONNECT_PREBANNER_VERDICT_INCOMPLETE: pipeconnect_prebanner_verdict_flags = 1;
/// The verdict cannot change whatever follows; more input is not looked at.
pub const PIPECONNECT_PREBANNER_VERDICT_DECIDED: pipeconnect_prebanner_verdict_flags = 2;

/// How pre-banner input is classified. Zero-initialise and set `struct_size`; a 0 limit
/// means its default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_prebanner_options {
    /// `sizeof(pipeconnect_prebanner_options)`, set by the caller.
    pub struct_size: usize,
    /// `PIPECONNECT_PREBANNER_OPTION_OFFERED` or 0.
    pub flags: pipeconnect_prebanner_flags,
    /// Command lines looked at (0: 100; at most 4096).
    pub max_commands: u32,
    /// Bytes looked at, BDAT bodies included (0: 65536).
    pub max_bytes: u64,
    /// The largest BDAT LAST body in an early flight (0: 65536).
    pub max_body: u64,
}

// SAFETY: repr(C), starts with a usize, integers only.
unsafe impl Versioned for pipeconnect_prebanner_options {
    const NAME: &'static str = "pipeconnect_prebanner_options";
}

/// The classification of the input so far. Set `struct_size`; the library fills the
/// rest.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_prebanner_verdict {
    /// `sizeof(pipeconnect_prebanner_verdict)`, set by the caller.
    pub struct_size: usize,
    /// A `PIPECONNECT_PREBANNER_CLASS_*` value.
    pub class_: pipeconnect_prebanner_class,
    /// A `PIPECONNECT_PREBANNER_REASON_*` value.
    pub reason: pipeconnect_prebanner_reason,
    /// Complete command lines accepted as part of the flight.
    pub commands: u32,
    /// `PIPECONNECT_PREBANNER_VERDICT_INCOMPLETE`, `PIPECONNECT_PREBANNER_VERDICT_DECIDED`.
    pub flags: pipeconnect_prebanner_verdict_flags,
    /// Bytes looked at.
    pub bytes: u64,
}

// SAFETY: repr(C), starts with a usize, integers only.
unsafe impl Versioned for pipeconnect_prebanner_verdict {
    const NAME: &'static str = "pipeconnect_prebanner_verdict";
}

/// A classifier of one connection's pre-banner input. Made by
/// `pipeconnect_server_prebanner_new()`, released by `pipeconnect_server_prebanner_free()`.
pub struct pipeconnect_prebanner {
    inner: Prebanner,
    poisoned: Poison,
}

poisonable!(pipeconnect_prebanner);

/// The core's settings from the C options.
///
/// # Safety
/// `options` is NULL or readable for its `struct_size`.
unsafe fn options_from_c(
    options: *const pipeconnect_prebanner_options,
) -> Result<(bool, bool, PrebannerLimits), R> {
    // SAFETY: see the function's contract.
    let o = unsafe { read_in(options) }?;
    let known = PIPECONNECT_PREBANNER_OPTION_OFFERED | PIPECONNECT_PREBANNER_OPTION_QUICKSTART;
    if o.flags & !known != 0 || o.max_commands > PREBANNER_MAX_COMMANDS_LIMIT {
        return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
    }
    let d = PrebannerLimits::default();
    let or = |v: u64, default: u64| if v == 0 { default } else { v };
    let limits = PrebannerLimits {
        max_bytes: or(o.max_bytes, d.max_bytes),
        max_commands: if o.max_commands == 0 {
            d.max_commands
        } else {
            o.max_commands
        },
        max_body: or(o.max_body, d.max_body),
    };
    Ok((
        o.flags & PIPECONNECT_PREBANNER_OPTION_OFFERED != 0,
        o.flags & PIPECONNECT_PREBANNER_OPTION_QUICKSTART != 0,
        limits,
    ))
}

fn verdict_to_c(v: Verdict, decided: bool) -> pipeconnect_prebanner_verdict {
    let mut flags = 0;
    if v.incomplete {
        flags |= PIPECONNECT_PREBANNER_VERDICT_INCOMPLETE;
    }
    if decided {
        flags |= PIPECONNECT_PREBANNER_VERDICT_DECIDED;
    }
    pipeconnect_prebanner_verdict {
        struct_size: 0,
        class_: v.class as u32,
        reason: v.reason as u32,
        commands: v.commands,
        flags,
        bytes: v.bytes,
    }
}

/// A classifier for one connection's pre-banner input, into `*prebanner_out`.
/// `PIPECONNECT_ERR_INVALID_ARGUMENT` for unknown flag bits or `max_commands` over 4096.
///
/// ```c
/// pipeconnect_prebanner_options o = { .struct_size = sizeof o };
/// if (host_in_list(client_ip, pipelining_connect_advertise_hosts))
///     o.flags = PIPECONNECT_PREBANNER_OPTION_OFFERED;
/// pipeconnect_prebanner *pb;
/// if (pipeconnect_server_prebanner_new(&o, &pb) != PIPECONNECT_OK) ...
/// /* during the greet pause: */
/// while ((n = read_nonblocking(fd, buf, sizeof buf)) > 0) {
///     keep_for_smtp_in(buf, n);                   /* the bytes are still the MTA's */
///     if (pipeconnect_server_prebanner_feed(pb, buf, (size_t)n) != PIPECONNECT_OK) break;
/// }
/// pipeconnect_prebanner_verdict v = { .struct_size = sizeof v };
/// if (pipeconnect_server_prebanner_verdict(pb, &v) == PIPECONNECT_OK &&
///     v.class_ == PIPECONNECT_PREBANNER_CLASS_PREGREET)
///     return reply_554_sync_error_and_close(pipeconnect_server_reason_name(v.reason));
/// pipeconnect_server_prebanner_free(pb);
/// ```
///
/// # Safety
/// `options` is readable for its `struct_size`; `prebanner_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_prebanner_new(
    options: *const pipeconnect_prebanner_options,
    prebanner_out: *mut *mut pipeconnect_prebanner,
) -> pipeconnect_result {
    guard_on(&[], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let (offered, quickstart, limits) = unsafe { options_from_c(options) }?;
        let prebanner_out = unsafe { out(prebanner_out) }?;
        *prebanner_out = into_handle(pipeconnect_prebanner {
            inner: Prebanner::new(offered, limits).with_quickstart(quickstart),
            poisoned: Poison::default(),
        });
        Ok(R::PIPECONNECT_OK)
    })
}

/// Look at `len` more bytes of the input (any split gives the same verdict). Bytes past
/// the limits, or after the verdict is decided, are not looked at; that is not an error.
/// The classifier keeps no reference to `data`.
///
/// # Safety
/// `prebanner` is a live classifier used by no other thread; `data` is readable for
/// `len` bytes (non-NULL even when `len` is 0).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_prebanner_feed(
    prebanner: *mut pipeconnect_prebanner,
    data: *const u8,
    len: usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(prebanner) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let p = unsafe { handle_mut(prebanner) }?;
        let data = unsafe { bytes(data, len) }?;
        p.inner.feed(data);
        Ok(R::PIPECONNECT_OK)
    })
}

/// The classification of everything fed so far, into `*verdict_out` (its `struct_size`
/// set). May be called at any time, as often as wanted.
///
/// # Safety
/// `prebanner` is a live classifier used by no other thread; `verdict_out` is writable
/// for its `struct_size`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_prebanner_verdict(
    prebanner: *const pipeconnect_prebanner,
    verdict_out: *mut pipeconnect_prebanner_verdict,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(prebanner) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let p = unsafe { handle(prebanner) }?;
        let v = verdict_to_c(p.inner.verdict(), p.inner.is_decided());
        unsafe { write_out(verdict_out, v) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Classify `len` bytes of pre-banner input in one call: the same as a new classifier,
/// one feed and its verdict.
///
/// # Safety
/// `options` is readable for its `struct_size`; `data` is readable for `len` bytes
/// (non-NULL even when `len` is 0); `verdict_out` is writable for its `struct_size`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_classify(
    options: *const pipeconnect_prebanner_options,
    data: *const u8,
    len: usize,
    verdict_out: *mut pipeconnect_prebanner_verdict,
) -> pipeconnect_result {
    guard_on(&[], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let (offered, quickstart, limits) = unsafe { options_from_c(options) }?;
        let data = unsafe { bytes(data, len) }?;
        let mut p = Prebanner::new(offered, limits).with_quickstart(quickstart);
        p.feed(data);
        let v = verdict_to_c(p.verdict(), p.is_decided());
        unsafe { write_out(verdict_out, v) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Release a classifier; NULL is allowed.
///
/// # Safety
/// `prebanner` is NULL or a classifier not yet freed.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_server_prebanner_free(prebanner: *mut pipeconnect_prebanner) {
    // SAFETY: see the function's contract.
    guard_void(|| unsafe { free_handle(prebanner) });
}

/// The name of a `PIPECONNECT_PREBANNER_CLASS_*` value for logs (`"NOTHING"`,
/// `"EARLY_FLIGHT"`, `"BANNER_FIRST"`, `"PREGREET"`): a static NUL-terminated string,
/// never NULL (`"UNKNOWN"` for an unknown value). Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_server_class_name(
    class_: pipeconnect_prebanner_class,
) -> *const c_char {
    let name: &CStr = match Class::from_u32(class_) {
        Some(Class::Nothing) => c"NOTHING",
        Some(Class::EarlyFlight) => c"EARLY_FLIGHT",
        Some(Class::BannerFirst) => c"BANNER_FIRST",
        Some(Class::Pregreet) => c"PREGREET",
        None => c"UNKNOWN",
    };
    name.as_ptr()
}

/// The name of a `PIPECONNECT_PREBANNER_REASON_*` value for logs (`"NONE"`,
/// `"HELO_FIRST"`, `"AFTER_STARTTLS"`, ...): a static NUL-terminated string, never NULL
/// (`"UNKNOWN"` for an unknown value). Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_server_reason_name(
    reason: pipeconnect_prebanner_reason,
) -> *const c_char {
    let name: &CStr = match Reason::from_u32(reason) {
        Some(Reason::None) => c"NONE",
        Some(Reason::NotOffered) => c"NOT_OFFERED",
        Some(Reason::HeloFirst) => c"HELO_FIRST",
        Some(Reason::CommandFirst) => c"COMMAND_FIRST",
        Some(Reason::NotSmtp) => c"NOT_SMTP",
        Some(Reason::BadSyntax) => c"BAD_SYNTAX",
        Some(Reason::OutOfOrder) => c"OUT_OF_ORDER",
        Some(Reason::LineTooLong) => c"LINE_TOO_LONG",
        Some(Reason::BodyBeforeReply) => c"BODY_BEFORE_REPLY",
        Some(Reason::AfterStartTls) => c"AFTER_STARTTLS",
        Some(Reason::AfterAuthChallenge) => c"AFTER_AUTH_CHALLENGE",
        Some(Reason::AfterQuit) => c"AFTER_QUIT",
        Some(Reason::NotEarlyCommand) => c"NOT_EARLY_COMMAND",
        Some(Reason::BodyTooLarge) => c"BODY_TOO_LARGE",
        Some(Reason::TooManyCommands) => c"TOO_MANY_COMMANDS",
        Some(Reason::TooMuchInput) => c"TOO_MUCH_INPUT",
        None => c"UNKNOWN",
    };
    name.as_ptr()
}

// ---- SMTP QUICKSTART (experimental) --------------------------------------------------

/// The length of a QHLO cookie (hex digits, without the NUL).
pub const PIPECONNECT_QHLO_COOKIE_LEN: usize = 32;
/// The length of a secret from `pipeconnect_server_qhlo_epoch_secret()`.
pub const PIPECONNECT_QHLO_SECRET_LEN: usize = 32;

fn cookie_error(e: CookieError) -> R {
    match e {
        CookieError::BadSecret => R::PIPECONNECT_ERR_INVALID_ARGUMENT,
        CookieError::BadAddress => R::PIPECONNECT_ERR_INVALID_ADDRESS,
    }
}

/// Experimental (SMTP QUICKSTART). Read a server's greeting exactly as received (one
/// complete 220 reply, multi-line when it carries capabilities) into a capabilities
/// snapshot, as `pipeconnect_caps_parse()` reads an EHLO reply: the lines after the first
/// are EHLO keywords; a `QHLO=<cookie>` line is left out (see
/// `pipeconnect_quickstart_greeting_cookie()`), so the fingerprint is the one the same
/// EHLO reply gives. Learn it with `pipeconnect_cache_learn_caps()` under the usual key:
/// same TTL, same invalidation. A one-line greeting gives a snapshot with no extensions;
/// a reply that is not 220 is `PIPECONNECT_ERR_NOT_EHLO_REPLY`.
///
/// # Safety
/// `greeting` is readable for `len` bytes; `caps_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_quickstart_parse_greeting(
    greeting: *const u8,
    len: usize,
    flags: pipeconnect_parse_flags,
    caps_out: *mut *mut pipeconnect_caps,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helpers; see the function's contract.
        let greeting = unsafe { bytes(greeting, len) }?;
        let caps_out = unsafe { out(caps_out) }?;
        let g = quickstart::parse_greeting(greeting, parse_options(flags)?)?;
        *caps_out = into_handle(pipeconnect_caps::new(g.caps, None));
        Ok(R::PIPECONNECT_OK)
    })
}

/// Experimental (SMTP QUICKSTART). The cookie of a greeting's `QHLO=<cookie>` line, NUL-terminated, into
/// `buf` of `buf_len` bytes (`*written`: its length without the NUL); `PIPECONNECT_NOT_FOUND`
/// (nothing written) when the greeting has none. Cache it with the capabilities and send
/// `QHLO <name> <cookie>` before the next banner.
///
/// # Safety
/// `greeting` is readable for `len` bytes; `buf` is writable for `buf_len` bytes;
/// `written` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_quickstart_greeting_cookie(
    greeting: *const u8,
    len: usize,
    buf: *mut c_char,
    buf_len: usize,
    written: *mut usize,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helpers; see the function's contract.
        let greeting = unsafe { bytes(greeting, len) }?;
        if buf.is_null() || written.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        let g = quickstart::parse_greeting(greeting, Default::default())?;
        match g.cookie {
            Some(c) => unsafe { copy_out_text(&c, buf, buf_len, written) },
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// Experimental (SMTP QUICKSTART). The QHLO cookie for the client at `client` (a numeric
/// address) and the capability list whose fingerprint is `fingerprint`
/// (`pipeconnect_caps_fingerprint()` of the server's own EHLO reply, parsed), under
/// `secret` (16 to 64 bytes; see `pipeconnect_server_qhlo_epoch_secret()`): 32 hex
/// digits and a NUL into `buf` (`*written`: 32). Put it in the greeting as
/// `QHLO=<cookie>`.
///
/// # Safety
/// `secret` is readable for `secret_len` bytes; `client` is a NUL-terminated string;
/// `buf` is writable for `buf_len` bytes; `written` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_qhlo_cookie(
    secret: *const u8,
    secret_len: usize,
    client: *const c_char,
    fingerprint: u64,
    buf: *mut c_char,
    buf_len: usize,
    written: *mut usize,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helpers; see the function's contract.
        let secret = unsafe { bytes(secret, secret_len) }?;
        let client = unsafe { text(client) }?;
        if buf.is_null() || written.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        let c = quickstart::cookie(secret, client, fingerprint).map_err(cookie_error)?;
        unsafe { copy_out_text(&c, buf, buf_len, written) }
    })
}

/// Experimental (SMTP QUICKSTART). Whether `cookie` (from a client's `QHLO name cookie`)
/// is the one `pipeconnect_server_qhlo_cookie()` gives for `client`, `fingerprint` and
/// `secret`, into `*valid_out`. Call it with the current period's secret, then with the
/// previous one. A recognised client may skip the greet pause and the pregreet penalty.
///
/// # Safety
/// `secret` is readable for `secret_len` bytes; `client` and `cookie` are NUL-terminated
/// strings; `valid_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_qhlo_cookie_valid(
    secret: *const u8,
    secret_len: usize,
    client: *const c_char,
    fingerprint: u64,
    cookie: *const c_char,
    valid_out: *mut bool,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helpers; see the function's contract.
        let secret = unsafe { bytes(secret, secret_len) }?;
        let client = unsafe { text(client) }?;
        let cookie = unsafe { text(cookie) }?;
        let valid_out = unsafe { out(valid_out) }?;
        *valid_out =
            quickstart::cookie_valid(secret, client, fingerprint, cookie).map_err(cookie_error)?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Experimental (SMTP QUICKSTART). The cookie secret of rotation period `epoch` (for
/// example the Unix time divided by the period), derived from the server's `master`
/// secret (16 to 64 bytes): `PIPECONNECT_QHLO_SECRET_LEN` bytes into `secret_out`, which
/// holds `secret_out_len` bytes (at least 32; `PIPECONNECT_ERR_BUFFER_TOO_SMALL`
/// otherwise).
///
/// # Safety
/// `master` is readable for `master_len` bytes; `secret_out` is writable for
/// `secret_out_len` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_server_qhlo_epoch_secret(
    master: *const u8,
    master_len: usize,
    epoch: u64,
    secret_out: *mut u8,
    secret_out_len: usize,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helpers; see the function's contract.
        let master = unsafe { bytes(master, master_len) }?;
        if secret_out.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        if secret_out_len < PIPECONNECT_QHLO_SECRET_LEN {
            return Err(R::PIPECONNECT_ERR_BUFFER_TOO_SMALL);
        }
        let s = quickstart::epoch_secret(master, epoch).map_err(cookie_error)?;
        // SAFETY: writable for at least 32 bytes, checked above.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), secret_out, s.len()) };
        Ok(R::PIPECONNECT_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_values_match_the_core() {
        let classes = [
            PIPECONNECT_PREBANNER_CLASS_NOTHING,
            PIPECONNECT_PREBANNER_CLASS_EARLY_FLIGHT,
            PIPECONNECT_PREBANNER_CLASS_BANNER_FIRST,
            PIPECONNECT_PREBANNER_CLASS_PREGREET,
        ];
        for (c, core) in classes.iter().zip(Class::ALL) {
            assert_eq!(*c, core as u32);
            let name = unsafe { CStr::from_ptr(pipeconnect_server_class_name(*c)) };
            assert_eq!(name.to_str().unwrap().to_ascii_lowercase(), core.name());
        }
        let reasons = [
            PIPECONNECT_PREBANNER_REASON_NONE,
            PIPECONNECT_PREBANNER_REASON_NOT_OFFERED,
            PIPECONNECT_PREBANNER_REASON_HELO_FIRST,
            PIPECONNECT_PREBANNER_REASON_COMMAND_FIRST,
            PIPECONNECT_PREBANNER_REASON_NOT_SMTP,
            PIPECONNECT_PREBANNER_REASON_BAD_SYNTAX,
            PIPECONNECT_PREBANNER_REASON_OUT_OF_ORDER,
            PIPECONNECT_PREBANNER_REASON_LINE_TOO_LONG,
            PIPECONNECT_PREBANNER_REASON_BODY_BEFORE_REPLY,
            PIPECONNECT_PREBANNER_REASON_AFTER_STARTTLS,
            PIPECONNECT_PREBANNER_REASON_AFTER_AUTH_CHALLENGE,
            PIPECONNECT_PREBANNER_REASON_AFTER_QUIT,
            PIPECONNECT_PREBANNER_REASON_NOT_EARLY_COMMAND,
            PIPECONNECT_PREBANNER_REASON_BODY_TOO_LARGE,
            PIPECONNECT_PREBANNER_REASON_TOO_MANY_COMMANDS,
            PIPECONNECT_PREBANNER_REASON_TOO_MUCH_INPUT,
        ];
        assert_eq!(reasons.len(), Reason::ALL.len());
        for (c, core) in reasons.iter().zip(Reason::ALL) {
            assert_eq!(*c, core as u32);
            let name = unsafe { CStr::from_ptr(pipeconnect_server_reason_name(*c)) };
            assert_eq!(name.to_str().unwrap().to_ascii_lowercase(), core.name());
        }
        assert_eq!(PIPECONNECT_QHLO_COOKIE_LEN, quickstart::COOKIE_LEN);
        let unknown = unsafe { CStr::from_ptr(pipeconnect_server_reason_name(99)) };
        assert_eq!(unknown.to_str().unwrap(), "UNKNOWN");
    }
}
