//! The tracker level of the C API: early pipelining for an MTA that writes its own
//! commands and reads its own replies (`pipeconnect_tracker_*`). The rules live in
//! `crate::tracker`; this file converts and calls.
#![allow(non_camel_case_types)]

use super::cache::pipeconnect_cache;
use super::caps::pipeconnect_ext;
use super::detail::{pipeconnect_error_detail, Failure};
use super::policy::{
    phase_from_c, pipeconnect_command_kind, pipeconnect_phase, pipeconnect_reason,
    pipeconnect_verdict,
};
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::session::pipeconnect_event_flags;
use super::sized::{check_out, read_in, write_out, Versioned};
use super::{
    bytes, free_handle, guard_detail, guard_on, guard_void, handle, handle_mut, into_handle, mark,
    out, text, wrap_detail, Poison,
};
use crate::caps::ALL_EXTENSION_BITS;
use crate::key::PeerKey;
use crate::policy::{
    valid_reply_code, CommandKind, Invalidation, Settings, DEFAULT_MAX_FIRST_FLIGHT_BODY,
};
use crate::tracker::{keyword_bits, Request, StartTlsUse, Tracker};
use std::ffi::c_char;

/// Flags of a `pipeconnect_tracker_request`, OR-ed.
pub type pipeconnect_tracker_flags = u32;
/// Early flights may go to this server (the MTA's host list, like Exim's
/// `hosts_pipe_connect`). Without it the connection is classic and the tracker only
/// learns.
pub const PIPECONNECT_TRACKER_EARLY_ALLOWED: pipeconnect_tracker_flags = 1;
/// Read the legacy keywords `PIPE_CONNECT` and `X_PIPE_CONNECT` as PIPECONNECT.
pub const PIPECONNECT_TRACKER_LEGACY_KEYWORDS: pipeconnect_tracker_flags = 2;
/// Relaxed invalidation (as `PIPECONNECT_SETTINGS_RELAXED`).
pub const PIPECONNECT_TRACKER_RELAXED: pipeconnect_tracker_flags = 4;
/// After STARTTLS: the cleartext phase of this connection had an early flight (the
/// encrypted phase may have one only then).
pub const PIPECONNECT_TRACKER_CLEARTEXT_EARLY_USED: pipeconnect_tracker_flags = 8;
/// In cleartext, the MTA uses STARTTLS when the server offers it: the early flight is
/// then EHLO and STARTTLS.
pub const PIPECONNECT_TRACKER_STARTTLS_IF_OFFERED: pipeconnect_tracker_flags = 16;
/// In cleartext, the MTA refuses to deliver without STARTTLS: when the cached reply does
/// not offer it, the connection is classic (`PIPECONNECT_REASON_STARTTLS_NOT_OFFERED`).
pub const PIPECONNECT_TRACKER_STARTTLS_REQUIRED: pipeconnect_tracker_flags = 32;

const KNOWN_FLAGS: u32 = PIPECONNECT_TRACKER_EARLY_ALLOWED
    | PIPECONNECT_TRACKER_LEGACY_KEYWORDS
    | PIPECONNECT_TRACKER_RELAXED
    | PIPECONNECT_TRACKER_CLEARTEXT_EARLY_USED
    | PIPECONNECT_TRACKER_STARTTLS_IF_OFFERED
    | PIPECONNECT_TRACKER_STARTTLS_REQUIRED;

/// What the MTA means to send on a connection, for `pipeconnect_tracker_begin()`.
/// Zero-initialise, set `struct_size`, `server`, `port` and what applies.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_tracker_request {
    /// `sizeof(pipeconnect_tracker_request)`, set by the caller.
    pub struct_size: usize,
    /// The server's numeric address, NUL-terminated (`"192.0.2.1"`, `"2001:db8::1"`).
    pub server: *const c_char,
    /// The server's port.
    pub port: u16,
    /// A `PIPECONNECT_PHASE_*` value: cleartext, after STARTTLS (the handshake done), or
    /// TLS on connect. The cache key's TLS state follows from it.
    pub phase: pipeconnect_phase,
    /// `PIPECONNECT_TRACKER_*` bits.
    pub flags: pipeconnect_tracker_flags,
    /// Recipients of the transaction; 0 when no transaction goes early (the MTA says
    /// something between EHLO and MAIL, such as AUTH or XFORWARD, or sends no message):
    /// then EHLO alone may go before the banner. More than 4093: classic.
    pub rcpt_count: u32,
    /// The size the MTA declares with `MAIL FROM ... SIZE=` (0: none).
    pub message_size: u64,
    /// `PIPECONNECT_EXT_*` bits whose cached facts the MTA builds its early MAIL and RCPT
    /// parameters from (8BITMIME, SMTPUTF8, DSN, SIZE): when the real EHLO reply changes
    /// any of them, the step says reconnect.
    pub relies_on: pipeconnect_ext,
    /// `PIPECONNECT_EXT_*` bits the message cannot go without: classic
    /// (`PIPECONNECT_REASON_EXTENSION_MISSING`) unless all are cached.
    pub required: pipeconnect_ext,
    /// EHLO keywords the MTA discards for this server, separated by commas or white space
    /// (Postfix's `smtp_discard_ehlo_keywords`), or NULL. Unknown words are skipped.
    pub ignored_keywords: *const c_char,
    /// The local address the MTA binds to, or NULL, as for `pipeconnect_key_set_local()`.
    pub local: *const c_char,
    /// The EHLO name, or NULL, as for `pipeconnect_key_set_ehlo_name()`: only when the
    /// MTA's other keys carry one.
    pub ehlo_name: *const c_char,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_tracker_request {
    const NAME: &'static str = "pipeconnect_tracker_request";
}

/// How a connection goes: one of `PIPECONNECT_TRACKER_MODE_*`.
pub type pipeconnect_tracker_mode = u32;
/// Classic: wait for the banner (after STARTTLS: send EHLO and wait for its reply).
pub const PIPECONNECT_TRACKER_MODE_CLASSIC: pipeconnect_tracker_mode = 0;
/// Send EHLO, MAIL, one RCPT per recipient and DATA now, before reading any reply.
pub const PIPECONNECT_TRACKER_MODE_TRANSACTION: pipeconnect_tracker_mode = 1;
/// Send EHLO and STARTTLS now; after the handshake, begin a tracker for the encrypted
/// phase with `PIPECONNECT_TRACKER_CLEARTEXT_EARLY_USED`.
pub const PIPECONNECT_TRACKER_MODE_STARTTLS: pipeconnect_tracker_mode = 2;
/// Send EHLO alone now, before the banner (`rcpt_count` 0: the MTA says something between
/// EHLO and MAIL, or sends no message); the rest waits for the EHLO reply.
pub const PIPECONNECT_TRACKER_MODE_EHLO: pipeconnect_tracker_mode = 3;

/// The tracker's plan, written by `pipeconnect_tracker_begin()`. Set `struct_size`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_tracker_plan {
    /// `sizeof(pipeconnect_tracker_plan)`, set by the caller.
    pub struct_size: usize,
    /// A `PIPECONNECT_TRACKER_MODE_*` value.
    pub mode: pipeconnect_tracker_mode,
    /// When classic, why (`pipeconnect_reason_name()` for logs); otherwise
    /// `PIPECONNECT_REASON_END_OF_SEQUENCE`.
    pub reason: pipeconnect_reason,
    /// How many commands go now (0 when classic).
    pub command_count: usize,
    /// The cached extensions less the ignored ones (0 without an entry): build the early
    /// commands' parameters from these, as from a live EHLO reply.
    pub extensions: pipeconnect_ext,
    /// The cached SIZE limit; 0 when none applies.
    pub size_limit: u64,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_tracker_plan {
    const NAME: &'static str = "pipeconnect_tracker_plan";
}

/// What the MTA does after a reply: one of `PIPECONNECT_TRACKER_ACTION_*`.
pub type pipeconnect_tracker_action = u32;
/// Handle the reply as the MTA always does (a rejected recipient is still rejected).
pub const PIPECONNECT_TRACKER_ACTION_PROCEED: pipeconnect_tracker_action = 0;
/// The early flight failed before the server accepted anything: close the connection and
/// connect to the same address again at once without early pipelining. No bounce, no
/// deferral; the entry is gone (and the server held down when it refused the flight).
pub const PIPECONNECT_TRACKER_ACTION_RECONNECT: pipeconnect_tracker_action = 1;
/// Out of step after the body may have reached the server: close the connection and keep
/// the message queued for a later try (resending now could deliver it twice).
pub const PIPECONNECT_TRACKER_ACTION_DEFER: pipeconnect_tracker_action = 2;

/// The tracker's answer to one reply, written by `pipeconnect_tracker_reply()`. Set
/// `struct_size`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_tracker_step {
    /// `sizeof(pipeconnect_tracker_step)`, set by the caller.
    pub struct_size: usize,
    /// A `PIPECONNECT_TRACKER_ACTION_*` value: PROCEED, RECONNECT or DEFER.
    pub action: pipeconnect_tracker_action,
    /// The reply's meaning under the rules (`PIPECONNECT_VERDICT_*`).
    pub verdict: pipeconnect_verdict,
    /// `PIPECONNECT_EVENT_*` bits: `CACHE_STORED`, `CACHE_INVALIDATED`, `EARLY_STOPPED`,
    /// `OUT_OF_STEP`, `MESSAGE_ACCEPTED`, `CONNECTION_DONE`, `EARLY`, `FOLLOWS_FAILURE`.
    pub flags: pipeconnect_event_flags,
    /// After a 250 to EHLO: the extensions it advertised less the ignored ones; 0
    /// otherwise.
    pub extensions: pipeconnect_ext,
    /// After a 250 to EHLO: its SIZE limit; 0 when none applies.
    pub size_limit: u64,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_tracker_step {
    const NAME: &'static str = "pipeconnect_tracker_step";
}

/// One connection's early-pipelining state, for an MTA that does its own I/O. Opaque.
pub struct pipeconnect_tracker {
    inner: Tracker,
    poisoned: Poison,
}

super::poisonable!(pipeconnect_tracker);

/// The request, read through its `struct_size`.
///
/// # Safety
/// `p` is NULL or readable for its `struct_size`, its pointers NULL or NUL-terminated.
unsafe fn request_from_c(p: *const pipeconnect_tracker_request) -> Result<Request, Failure> {
    // SAFETY: see the function's contract.
    let r = unsafe { read_in(p) }?;
    let bad = |field: &'static str, why: &str| {
        Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
            .field(field)
            .say(format!("{field}: {why}"))
    };
    if r.flags & !KNOWN_FLAGS != 0 {
        return Err(bad("flags", "unknown tracker flag bits"));
    }
    if (r.relies_on | r.required) & !ALL_EXTENSION_BITS != 0 {
        return Err(bad("relies_on", "unknown extension bits"));
    }
    let phase = phase_from_c(r.phase).ok_or_else(|| bad("phase", "unknown phase"))?;
    // SAFETY: NUL-terminated by the caller's promise; NULL is refused.
    let server = unsafe { text(r.server) }.map_err(|e| Failure::new(e).field("server"))?;
    let mut key = PeerKey::parse(server, r.port, phase.tls())
        .map_err(|e| Failure::from(e).field("server"))?;
    let opt = |p: *const c_char, field: &'static str| -> Result<Option<&str>, Failure> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's promise.
        unsafe { text(p) }
            .map(Some)
            .map_err(|e| Failure::new(e).field(field))
    };
    if let Some(local) = opt(r.local, "local")? {
        key = key
            .with_local(local)
            .map_err(|e| Failure::from(e).field("local"))?;
    }
    if let Some(name) = opt(r.ehlo_name, "ehlo_name")? {
        key = key
            .with_ehlo_name(name)
            .map_err(|e| Failure::from(e).field("ehlo_name"))?;
    }
    let flag = |f: u32| r.flags & f != 0;
    Ok(Request {
        key,
        phase,
        cleartext_early_used: flag(PIPECONNECT_TRACKER_CLEARTEXT_EARLY_USED),
        starttls: if flag(PIPECONNECT_TRACKER_STARTTLS_REQUIRED) {
            StartTlsUse::Required
        } else if flag(PIPECONNECT_TRACKER_STARTTLS_IF_OFFERED) {
            StartTlsUse::IfOffered
        } else {
            StartTlsUse::Never
        },
        rcpt_count: r.rcpt_count as usize,
        message_size: r.message_size,
        relies_on: r.relies_on,
        required: r.required,
        ignored: opt(r.ignored_keywords, "ignored_keywords")?.map_or(0, keyword_bits),
        settings: Settings {
            early_allowed: flag(PIPECONNECT_TRACKER_EARLY_ALLOWED),
            legacy_keywords: flag(PIPECONNECT_TRACKER_LEGACY_KEYWORDS),
            invalidation: if flag(PIPECONNECT_TRACKER_RELAXED) {
                Invalidation::Relaxed
            } else {
                Invalidation::Strict
            },
            max_first_flight_body: DEFAULT_MAX_FIRST_FLIGHT_BODY,
        },
    })
}

/// Begin tracking one connection (or one TLS phase of it) to `request->server`: look the
/// server up in `cache` and plan what goes before any reply. `*plan_out` says the mode:
/// classic (and why), an early transaction (send EHLO, MAIL, the RCPTs and DATA now, in
/// that order, building their parameters from `plan_out->extensions` and
/// `size_limit`), an early STARTTLS (send EHLO and STARTTLS now), or an early EHLO
/// (send EHLO alone now; `rcpt_count` 0). `*tracker_out` is a
/// new tracker in every mode: pass it each reply with `pipeconnect_tracker_reply()`,
/// free it with `pipeconnect_tracker_free()`. After STARTTLS and the handshake, begin a
/// new tracker with phase `PIPECONNECT_PHASE_AFTER_STARTTLS`.
///
/// `PIPECONNECT_ERR_INVALID_ARGUMENT` for unknown flags, phases or extension bits;
/// `PIPECONNECT_ERR_INVALID_ADDRESS` (or the key's other errors) for a bad `server`,
/// `local` or `ehlo_name`. `detail_out` may be NULL; otherwise (its `struct_size` set) it
/// names the field at fault. The cache may be freed before the tracker. Thread-safe
/// (each tracker belongs to one thread at a time).
///
/// # Safety
/// `cache` is a live handle; `request` is readable for its `struct_size`, its strings
/// NULL or NUL-terminated; `tracker_out` is writable; `plan_out` is writable for its
/// `struct_size`; `detail_out` is NULL or writable for its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_tracker_begin(
    cache: *const pipeconnect_cache,
    request: *const pipeconnect_tracker_request,
    tracker_out: *mut *mut pipeconnect_tracker,
    plan_out: *mut pipeconnect_tracker_plan,
    detail_out: *mut pipeconnect_error_detail,
) -> pipeconnect_result {
    guard_detail(
        &[unsafe { mark(cache) }],
        unsafe { wrap_detail(detail_out) },
        || {
            // SAFETY: pointers are checked by the helpers; see the function's contract.
            let cache = unsafe { handle(cache) }.map_err(|r| Failure::new(r).field("cache"))?;
            let req = unsafe { request_from_c(request) }?;
            let tracker_out =
                unsafe { out(tracker_out) }.map_err(|r| Failure::new(r).field("tracker_out"))?;
            unsafe { check_out(plan_out) }?;
            let (inner, plan) = Tracker::begin(cache.cache.clone(), &req)?;
            let value = pipeconnect_tracker_plan {
                struct_size: 0,
                mode: plan.mode as u32,
                reason: plan.reason as u32,
                command_count: plan.commands,
                extensions: plan.extensions,
                size_limit: plan.size_limit.unwrap_or(0),
            };
            unsafe { write_out(plan_out, value) }?;
            *tracker_out = into_handle(pipeconnect_tracker {
                inner,
                poisoned: Poison::default(),
            });
            Ok(R::PIPECONNECT_OK)
        },
    )
}

/// Tell the tracker the reply `code` (100 to 599) that the MTA read for `answered` (a
/// `PIPECONNECT_CMD_*`: BANNER for the greeting, BODY for the end-of-data reply), and get
/// what to do in `*step_out`. `text` is the whole reply as the MTA holds it, `len` bytes,
/// its lines with their codes, ended by CRLF or LF, the last line end optional; it is
/// read only for a 250 to EHLO (NULL with `len` 0 is allowed) and need not be
/// NUL-terminated.
///
/// Pass every reply to EHLO (early or classic: the tracker compares it with the cache
/// and learns it), and after an early flight the banner and the replies to the early
/// commands, in the order read. The tracker keeps the cache right itself. Act on
/// `step_out->action`: PROCEED (as the MTA always does), RECONNECT (close and connect to
/// the same address again at once, classic) or DEFER (close, keep the message queued).
///
/// `PIPECONNECT_ERR_INVALID_ARGUMENT` for an unknown command kind or a code outside 100
/// to 599; an EHLO reply that cannot be read is no error: after an early flight the step
/// says reconnect, otherwise nothing is learned.
///
/// # Safety
/// `tracker` is a live tracker used by no other thread; `text` is readable for `len`
/// bytes (NULL when `len` is 0); `step_out` is writable for its `struct_size`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_tracker_reply(
    tracker: *mut pipeconnect_tracker,
    answered: pipeconnect_command_kind,
    code: u32,
    text: *const u8,
    len: usize,
    step_out: *mut pipeconnect_tracker_step,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(tracker) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let t = unsafe { handle_mut(tracker) }?;
        unsafe { check_out(step_out) }?;
        let answered =
            CommandKind::from_u32(answered).ok_or(R::PIPECONNECT_ERR_INVALID_ARGUMENT)?;
        if !valid_reply_code(code) {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        let reply = if text.is_null() && len == 0 {
            &[][..]
        } else {
            unsafe { bytes(text, len) }?
        };
        let s = t.inner.on_reply(answered, code as u16, reply);
        let value = pipeconnect_tracker_step {
            struct_size: 0,
            action: s.action as u32,
            verdict: s.verdict as u32,
            flags: s.flags,
            extensions: s.extensions,
            size_limit: s.size_limit.unwrap_or(0),
        };
        unsafe { write_out(step_out, value) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Release a tracker. NULL is allowed.
///
/// # Safety
/// `tracker` is NULL or a tracker from this library not yet freed, not in use by another
/// thread, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_tracker_free(tracker: *mut pipeconnect_tracker) {
    // SAFETY: see the function's contract.
    guard_void(|| unsafe { free_handle(tracker) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{Action, Mode};

    #[test]
    fn c_values_match_the_core() {
        assert_eq!(PIPECONNECT_TRACKER_MODE_CLASSIC, Mode::Classic as u32);
        assert_eq!(
            PIPECONNECT_TRACKER_MODE_TRANSACTION,
            Mode::Transaction as u32
        );
        assert_eq!(PIPECONNECT_TRACKER_MODE_STARTTLS, Mode::StartTls as u32);
        assert_eq!(PIPECONNECT_TRACKER_MODE_EHLO, Mode::Ehlo as u32);
        assert_eq!(PIPECONNECT_TRACKER_ACTION_PROCEED, Action::Proceed as u32);
        assert_eq!(
            PIPECONNECT_TRACKER_ACTION_RECONNECT,
            Action::Reconnect as u32
        );
        assert_eq!(PIPECONNECT_TRACKER_ACTION_DEFER, Action::Defer as u32);
    }
}
