//! The policy level of the C API: the rules of PIPE_CONNECT over plain data.
//!
//! `pipeconnect_policy_early_flight()`: how much of a command sequence may go before any
//! reply; `pipeconnect_policy_outcome()`: what a reply means; `pipeconnect_policy_check_ehlo()`:
//! the real EHLO reply against the cached one. Pure functions: thread-safe, no state.
#![allow(non_camel_case_types)]

use super::cache::pipeconnect_cache;
use super::caps::{pipeconnect_caps, pipeconnect_ext};
use super::detail::{pipeconnect_error_detail, Failure};
use super::key::pipeconnect_key;
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::session::PIPECONNECT_EVENT_EARLY_STOPPED;
use super::sized::{read_array, read_in, write_out, Versioned};
use super::{guard_detail, guard_on, handle, mark, out, text, wrap_detail};
use crate::caps::ALL_EXTENSION_BITS;
use crate::policy::{
    self, check_ehlo, early_flight, early_flight_for_key, used_extensions, valid_reply_code,
    Command, CommandKind, ConnPhase, Invalidation, ReplyContext, Settings, Situation, StopReason,
    Verdict, DEFAULT_MAX_FIRST_FLIGHT_BODY, SEQUENCE_MAX,
};
use crate::session::event::outcome_flags;
use std::ffi::c_char;

/// A command kind (or the reply a command gets): one of `PIPECONNECT_CMD_*`.
pub type pipeconnect_command_kind = u32;
/// Not a command: the server's greeting (the reply a connection starts with).
pub const PIPECONNECT_CMD_BANNER: pipeconnect_command_kind = 0;
/// `EHLO`.
pub const PIPECONNECT_CMD_EHLO: pipeconnect_command_kind = 1;
/// `STARTTLS`.
pub const PIPECONNECT_CMD_STARTTLS: pipeconnect_command_kind = 2;
/// `AUTH` (set `mechanism`, and `PIPECONNECT_COMMAND_INITIAL_RESPONSE` when the line
/// carries the initial response).
pub const PIPECONNECT_CMD_AUTH: pipeconnect_command_kind = 3;
/// `MAIL FROM` (`size`: the declared message size, 0 when not declared).
pub const PIPECONNECT_CMD_MAIL: pipeconnect_command_kind = 4;
/// `RCPT TO`: one per recipient.
pub const PIPECONNECT_CMD_RCPT: pipeconnect_command_kind = 5;
/// `DATA` (the body waits for the 354).
pub const PIPECONNECT_CMD_DATA: pipeconnect_command_kind = 6;
/// `BDAT <size> LAST` with the whole body (`size`: the body size).
pub const PIPECONNECT_CMD_BDAT_LAST: pipeconnect_command_kind = 7;
/// Not a command line: the body after a 354, ending with `CRLF.CRLF`; its reply is the
/// end-of-data reply. Sessions hand it out; the policy does not take it.
pub const PIPECONNECT_CMD_BODY: pipeconnect_command_kind = 8;
/// `QUIT`; its reply is 221. Sessions plan it on request (`pipeconnect_session_quit()`);
/// early-flight sequences do not take it.
pub const PIPECONNECT_CMD_QUIT: pipeconnect_command_kind = 9;

/// Flags of a `pipeconnect_command`, OR-ed.
pub type pipeconnect_command_flags = u32;
/// The AUTH line carries the SASL initial response (RFC 4954 §4).
pub const PIPECONNECT_COMMAND_INITIAL_RESPONSE: pipeconnect_command_flags = 1;

/// One command of an intended sequence, for `pipeconnect_policy_early_flight()`. Give one
/// element per command (three recipients are three `PIPECONNECT_CMD_RCPT` elements).
/// Zero-initialise, set `struct_size` in every element (the array's stride is the first
/// element's `struct_size`), and fill the fields the kind uses.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_command {
    /// `sizeof(pipeconnect_command)`, set by the caller.
    pub struct_size: usize,
    /// A `PIPECONNECT_CMD_*` value (not BANNER or BODY).
    pub kind: pipeconnect_command_kind,
    /// `PIPECONNECT_COMMAND_*` bits (only AUTH uses one); 0 otherwise.
    pub flags: pipeconnect_command_flags,
    /// MAIL: the declared message size in bytes (0: not declared; the size of a BDAT LAST
    /// later in the transaction is then used). BDAT_LAST: the body size. 0 otherwise.
    pub size: u64,
    /// AUTH: the mechanism name, NUL-terminated (`"PLAIN"`). Ignored otherwise (may be
    /// NULL).
    pub mechanism: *const c_char,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_command {
    const NAME: &'static str = "pipeconnect_command";
}

/// Where a connection stands: one of `PIPECONNECT_PHASE_*`.
pub type pipeconnect_phase = u32;
/// A new cleartext connection (it may go on to STARTTLS).
pub const PIPECONNECT_PHASE_CLEARTEXT: pipeconnect_phase = 0;
/// Right after a successful STARTTLS handshake.
pub const PIPECONNECT_PHASE_AFTER_STARTTLS: pipeconnect_phase = 1;
/// A connection encrypted from the start (port 465), after its handshake.
pub const PIPECONNECT_PHASE_TLS_ON_CONNECT: pipeconnect_phase = 2;

/// Flags of a `pipeconnect_situation`, OR-ed.
pub type pipeconnect_situation_flags = u32;
/// This connection's cleartext phase used an early flight (needed after STARTTLS).
pub const PIPECONNECT_SITUATION_CLEARTEXT_EARLY_USED: pipeconnect_situation_flags = 1;
/// The EHLO name is known before connecting (without it nothing goes early).
pub const PIPECONNECT_SITUATION_EHLO_NAME_KNOWN: pipeconnect_situation_flags = 2;
/// An EHLO reply earlier on this connection dropped PIPECONNECT: nothing more goes early.
pub const PIPECONNECT_SITUATION_EARLY_WITHDRAWN: pipeconnect_situation_flags = 4;

/// The connection's situation, for `pipeconnect_policy_early_flight()`. Zero-initialise
/// and set `struct_size`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_situation {
    /// `sizeof(pipeconnect_situation)`, set by the caller.
    pub struct_size: usize,
    /// A `PIPECONNECT_PHASE_*` value.
    pub phase: pipeconnect_phase,
    /// `PIPECONNECT_SITUATION_*` bits.
    pub flags: pipeconnect_situation_flags,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_situation {
    const NAME: &'static str = "pipeconnect_situation";
}

/// Flags of a `pipeconnect_settings`, OR-ed.
pub type pipeconnect_settings_flags = u32;
/// Early pipelining may be used with this host (like Exim's `hosts_pipe_connect`).
/// Without it every connection is classic (the library still learns).
pub const PIPECONNECT_SETTINGS_EARLY_ALLOWED: pipeconnect_settings_flags = 1;
/// Sessions read the legacy keywords `PIPE_CONNECT` and `X_PIPE_CONNECT` as PIPECONNECT.
pub const PIPECONNECT_SETTINGS_LEGACY_KEYWORDS: pipeconnect_settings_flags = 2;
/// Relaxed invalidation (draft-harris-early-pipe-01, Exim): only banner, EHLO, STARTTLS
/// and required-AUTH failures and capability changes invalidate. Without it, strict (the
/// PIPE_CONNECT proposal): also any 4xx or 5xx in a transaction that used early
/// pipelining.
pub const PIPECONNECT_SETTINGS_RELAXED: pipeconnect_settings_flags = 4;

/// The caller's settings. A zero-initialised struct with `struct_size` set is valid:
/// early pipelining not allowed, strict invalidation, a 64 KiB body limit for the first
/// flight.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_settings {
    /// `sizeof(pipeconnect_settings)`, set by the caller.
    pub struct_size: usize,
    /// `PIPECONNECT_SETTINGS_*` bits.
    pub flags: pipeconnect_settings_flags,
    /// The largest body sent with BDAT LAST before any recipient was accepted (in the
    /// early flight, or any group sent before the RCPT replies); 0 means 65536.
    pub max_first_flight_body: u64,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_settings {
    const NAME: &'static str = "pipeconnect_settings";
}

/// Why an early flight stops: one of `PIPECONNECT_REASON_*`; `pipeconnect_reason_name()`
/// gives its name for logs. Values 1 to 7, and 18, mean "no early flight at all".
pub type pipeconnect_reason = u32;
/// Every command of the sequence may go early.
pub const PIPECONNECT_REASON_END_OF_SEQUENCE: pipeconnect_reason = 0;
/// The settings do not allow early pipelining with this host.
pub const PIPECONNECT_REASON_NOT_ALLOWED: pipeconnect_reason = 1;
/// The EHLO name is not known before connecting.
pub const PIPECONNECT_REASON_EHLO_NAME_UNKNOWN: pipeconnect_reason = 2;
/// After STARTTLS, but the cleartext phase had no early flight (Exim's rule).
pub const PIPECONNECT_REASON_ENCRYPTED_WITHOUT_CLEARTEXT_EARLY: pipeconnect_reason = 3;
/// Nothing live is cached for the key in this TLS state.
pub const PIPECONNECT_REASON_NO_ENTRY: pipeconnect_reason = 4;
/// The cached reply lacks PIPECONNECT.
pub const PIPECONNECT_REASON_NO_PIPECONNECT: pipeconnect_reason = 5;
/// The cached reply lacks PIPELINING.
pub const PIPECONNECT_REASON_NO_PIPELINING: pipeconnect_reason = 6;
/// PIPECONNECT was withdrawn earlier on this connection.
pub const PIPECONNECT_REASON_PIPECONNECT_WITHDRAWN: pipeconnect_reason = 7;
/// STARTTLS ends the flight (it is included).
pub const PIPECONNECT_REASON_STARTTLS_ENDS_FLIGHT: pipeconnect_reason = 8;
/// STARTTLS is not offered by the cached reply (the flight stops before it).
pub const PIPECONNECT_REASON_STARTTLS_NOT_OFFERED: pipeconnect_reason = 9;
/// AUTH ends the flight (included): no initial response, or not PLAIN/EXTERNAL.
pub const PIPECONNECT_REASON_AUTH_ENDS_FLIGHT: pipeconnect_reason = 10;
/// The AUTH mechanism is not offered by the cached reply (stops before AUTH).
pub const PIPECONNECT_REASON_AUTH_NOT_OFFERED: pipeconnect_reason = 11;
/// DATA ends the flight (included; the body waits for 354).
pub const PIPECONNECT_REASON_DATA_ENDS_FLIGHT: pipeconnect_reason = 12;
/// BDAT without CHUNKING cached (stops before BDAT).
pub const PIPECONNECT_REASON_NO_CHUNKING: pipeconnect_reason = 13;
/// The cached RCPTMAX is reached (stops before the next RCPT).
pub const PIPECONNECT_REASON_RCPTMAX_REACHED: pipeconnect_reason = 14;
/// The cached MAILMAX is reached (stops before the next MAIL).
pub const PIPECONNECT_REASON_MAILMAX_REACHED: pipeconnect_reason = 15;
/// The message is larger than the cached SIZE limit (stops before MAIL).
pub const PIPECONNECT_REASON_SIZE_EXCEEDED: pipeconnect_reason = 16;
/// The body is larger than `max_first_flight_body` (stops before BDAT LAST: send the body
/// after the replies, with DATA or BDAT).
pub const PIPECONNECT_REASON_BODY_TOO_LARGE_FOR_ONE_FLIGHT: pipeconnect_reason = 17;
/// The server refused an early flight not long ago and is held down: classic until the
/// hold-down ends (set by a session; see `pipeconnect_hold_down`).
pub const PIPECONNECT_REASON_HELD_DOWN: pipeconnect_reason = 18;
/// The message needs an extension the cached reply does not offer (the `required` field
/// of `pipeconnect_tracker_request`): classic (set by a tracker).
pub const PIPECONNECT_REASON_EXTENSION_MISSING: pipeconnect_reason = 19;

/// What the MTA should do about a reply: one of `PIPECONNECT_VERDICT_*`.
pub type pipeconnect_verdict = u32;
/// The reply is the one hoped for: go on.
pub const PIPECONNECT_VERDICT_CONTINUE: pipeconnect_verdict = 0;
/// Permanent failure of the message (5xx to MAIL/DATA/BDAT/end of data) or of one
/// recipient (5xx to RCPT): bounce it or that recipient.
pub const PIPECONNECT_VERDICT_REJECTED: pipeconnect_verdict = 1;
/// Transient failure (4xx) of the message, a recipient or the connection: defer.
pub const PIPECONNECT_VERDICT_TEMPFAIL: pipeconnect_verdict = 2;
/// Early pipelining failed here: close, reconnect at once without early pipelining, and
/// neither bounce nor defer the message for it.
pub const PIPECONNECT_VERDICT_RECONNECT: pipeconnect_verdict = 3;
/// Permanent failure of the connection, not of the message (5xx to the banner, EHLO,
/// STARTTLS or a required AUTH): host-error handling (try another host).
pub const PIPECONNECT_VERDICT_HOST_ERROR: pipeconnect_verdict = 4;

/// What the cache must do: one of `PIPECONNECT_CACHE_*`.
pub type pipeconnect_cache_action = u32;
/// Leave the entry as it is.
pub const PIPECONNECT_CACHE_NOTHING: pipeconnect_cache_action = 0;
/// Remove the key's entry in this TLS state (`pipeconnect_cache_forget()`).
pub const PIPECONNECT_CACHE_INVALIDATE: pipeconnect_cache_action = 1;
/// Store the fresh EHLO capabilities (`pipeconnect_cache_learn_caps()`).
pub const PIPECONNECT_CACHE_STORE: pipeconnect_cache_action = 2;

/// The context of a reply, for `pipeconnect_policy_outcome()`: `PIPECONNECT_CONTEXT_*`
/// bits, OR-ed.
pub type pipeconnect_reply_context = u32;
/// An early flight was sent in the current TLS phase.
pub const PIPECONNECT_CONTEXT_EARLY_USED: pipeconnect_reply_context = 1;
/// For AUTH replies: the delivery needs AUTH to succeed.
pub const PIPECONNECT_CONTEXT_AUTH_REQUIRED: pipeconnect_reply_context = 2;
/// For AUTH replies: commands were pipelined after this AUTH.
pub const PIPECONNECT_CONTEXT_COMMANDS_AFTER_AUTH: pipeconnect_reply_context = 4;
/// Some of the message body went out on this connection (BDAT LAST with its body, or
/// the body after a 354): an out-of-step reply then gives TEMPFAIL, as the server may
/// hold the message. Implied for replies to BDAT_LAST and BODY.
pub const PIPECONNECT_CONTEXT_BODY_SENT: pipeconnect_reply_context = 8;

/// What a reply means, from `pipeconnect_policy_outcome()` (set `struct_size` first).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipeconnect_outcome {
    /// `sizeof(pipeconnect_outcome)`, set by the caller.
    pub struct_size: usize,
    /// `PIPECONNECT_CACHE_NOTHING` or `PIPECONNECT_CACHE_INVALIDATE`.
    pub cache: pipeconnect_cache_action,
    /// A `PIPECONNECT_VERDICT_*` value.
    pub verdict: pipeconnect_verdict,
    /// `PIPECONNECT_EVENT_CONNECTION_DONE`, `_AUTH_CHALLENGE`, `_MESSAGE_ACCEPTED`,
    /// `_OUT_OF_STEP` bits.
    pub flags: u32,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_outcome {
    const NAME: &'static str = "pipeconnect_outcome";
}

/// The real EHLO reply against the cached one, from `pipeconnect_policy_check_ehlo()`
/// (set `struct_size` first).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipeconnect_ehlo_check {
    /// `sizeof(pipeconnect_ehlo_check)`, set by the caller.
    pub struct_size: usize,
    /// `PIPECONNECT_CACHE_INVALIDATE` (PIPECONNECT or PIPELINING gone),
    /// `PIPECONNECT_CACHE_STORE` (nothing cached and worth caching, or a fact changed), or
    /// `PIPECONNECT_CACHE_NOTHING`.
    pub cache: pipeconnect_cache_action,
    /// `PIPECONNECT_EVENT_EARLY_STOPPED` when nothing more may go early on this
    /// connection.
    pub flags: u32,
    /// The extension bits whose facts differ.
    pub changed: pipeconnect_ext,
    /// `changed` restricted to the extensions the early flight used.
    pub used_changed: pipeconnect_ext,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_ehlo_check {
    const NAME: &'static str = "pipeconnect_ehlo_check";
}

/// The caller's settings, read through their `struct_size`.
///
/// # Safety
/// `p` is NULL or readable for its `struct_size` bytes.
pub(crate) unsafe fn settings_from_c(p: *const pipeconnect_settings) -> Result<Settings, Failure> {
    // SAFETY: see the function's contract.
    let s = unsafe { read_in(p) }?;
    let known = PIPECONNECT_SETTINGS_EARLY_ALLOWED
        | PIPECONNECT_SETTINGS_LEGACY_KEYWORDS
        | PIPECONNECT_SETTINGS_RELAXED;
    if s.flags & !known != 0 {
        return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
            .field("settings.flags")
            .say(format!("unknown settings flags {:#x}", s.flags & !known)));
    }
    Ok(Settings {
        early_allowed: s.flags & PIPECONNECT_SETTINGS_EARLY_ALLOWED != 0,
        legacy_keywords: s.flags & PIPECONNECT_SETTINGS_LEGACY_KEYWORDS != 0,
        invalidation: if s.flags & PIPECONNECT_SETTINGS_RELAXED != 0 {
            Invalidation::Relaxed
        } else {
            Invalidation::Strict
        },
        max_first_flight_body: match s.max_first_flight_body {
            0 => DEFAULT_MAX_FIRST_FLIGHT_BODY,
            n => n,
        },
    })
}

/// A `PIPECONNECT_PHASE_*` value as the core's phase.
pub(crate) fn phase_from_c(phase: pipeconnect_phase) -> Option<ConnPhase> {
    match phase {
        PIPECONNECT_PHASE_CLEARTEXT => Some(ConnPhase::Cleartext),
        PIPECONNECT_PHASE_AFTER_STARTTLS => Some(ConnPhase::AfterStartTls),
        PIPECONNECT_PHASE_TLS_ON_CONNECT => Some(ConnPhase::TlsOnConnect),
        _ => None,
    }
}

/// The caller's situation, read through its `struct_size`.
///
/// # Safety
/// `p` is NULL or readable for its `struct_size` bytes.
unsafe fn situation_from_c(p: *const pipeconnect_situation) -> Result<Situation, Failure> {
    // SAFETY: see the function's contract.
    let s = unsafe { read_in(p) }?;
    let bad = |field: &'static str| Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT).field(field);
    let phase = phase_from_c(s.phase).ok_or_else(|| bad("situation.phase"))?;
    let known = PIPECONNECT_SITUATION_CLEARTEXT_EARLY_USED
        | PIPECONNECT_SITUATION_EHLO_NAME_KNOWN
        | PIPECONNECT_SITUATION_EARLY_WITHDRAWN;
    if s.flags & !known != 0 {
        return Err(bad("situation.flags"));
    }
    Ok(Situation {
        phase,
        cleartext_early_used: s.flags & PIPECONNECT_SITUATION_CLEARTEXT_EARLY_USED != 0,
        ehlo_name_known: s.flags & PIPECONNECT_SITUATION_EHLO_NAME_KNOWN != 0,
        early_withdrawn: s.flags & PIPECONNECT_SITUATION_EARLY_WITHDRAWN != 0,
    })
}

/// The C command array as the core's commands.
///
/// # Safety
/// `cmds` is NULL or readable for `n` elements of its first element's `struct_size`,
/// whose AUTH mechanisms are NUL-terminated.
unsafe fn commands_from_c(
    cmds: *const pipeconnect_command,
    n: usize,
) -> Result<Vec<Command>, Failure> {
    if cmds.is_null() {
        return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field("cmds"));
    }
    if n == 0 || n > SEQUENCE_MAX {
        return Err(Failure::new(R::PIPECONNECT_ERR_BAD_SEQUENCE)
            .field("n")
            .say(format!(
                "a sequence has 1 to {SEQUENCE_MAX} commands, not {n}"
            )));
    }
    // SAFETY: non-NULL, n bounded, readable by the caller's promise.
    let raw = unsafe { read_array(cmds, n) }?;
    let mut v = Vec::with_capacity(n);
    for (i, c) in raw.iter().enumerate() {
        let bad = |field: &'static str| {
            Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                .field(field)
                .index(i)
        };
        if c.flags & !PIPECONNECT_COMMAND_INITIAL_RESPONSE != 0 {
            return Err(bad("flags"));
        }
        let kind = CommandKind::from_u32(c.kind).ok_or_else(|| bad("kind"))?;
        v.push(match kind {
            CommandKind::Ehlo => Command::Ehlo,
            CommandKind::StartTls => Command::StartTls,
            CommandKind::Auth => Command::Auth {
                // SAFETY: NUL-terminated or NULL by the caller's promise; NULL is refused.
                mechanism: unsafe { text(c.mechanism) }
                    .map_err(|r| Failure::new(r).field("mechanism").index(i))?
                    .to_string(),
                initial_response: c.flags & PIPECONNECT_COMMAND_INITIAL_RESPONSE != 0,
            },
            CommandKind::Mail => Command::Mail {
                size: (c.size > 0).then_some(c.size),
            },
            CommandKind::Rcpt => Command::Rcpt,
            CommandKind::Data => Command::Data,
            CommandKind::BdatLast => Command::BdatLast { size: c.size },
            CommandKind::Banner | CommandKind::Body | CommandKind::Quit => {
                return Err(Failure::new(R::PIPECONNECT_ERR_BAD_SEQUENCE)
                    .field("kind")
                    .index(i)
                    .say(format!(
                        "command {i}: BANNER, BODY and QUIT are not commands to plan"
                    )))
            }
        });
    }
    Ok(v)
}

fn write_flight(
    f: policy::Flight,
    allowed_out: &mut usize,
    reason_out: &mut pipeconnect_reason,
) -> pipeconnect_result {
    *allowed_out = f.allowed;
    *reason_out = f.reason as u32;
    R::PIPECONNECT_OK
}

/// How many of the `n` commands in `cmds` may be written before reading any reply (the
/// early flight; the first `*allowed_out` commands), and why the flight stops there
/// (`*reason_out`, a `PIPECONNECT_REASON_*`). `*allowed_out == 0` means classic: wait for
/// the banner (after STARTTLS: send EHLO and wait for its reply).
///
/// `cached` is what the cache holds for the server in the connection's TLS state
/// (`pipeconnect_cache_lookup()` with a key in that state), or NULL when nothing is
/// cached. The caller must not pass information from another TLS state;
/// `pipeconnect_policy_early_flight_cached()` checks that for you.
///
/// The sequence must start with EHLO and keep SMTP's order, else
/// `PIPECONNECT_ERR_BAD_SEQUENCE`; unknown kinds or flag bits are
/// `PIPECONNECT_ERR_INVALID_ARGUMENT`. `detail_out` may be NULL; otherwise (its
/// `struct_size` set) it says which command (`index`) and what is wrong. Thread-safe.
///
/// # Safety
/// `cached` is NULL or a live snapshot; `situation`, `settings` are readable for their
/// `struct_size`; `cmds` is readable for `n` elements of `cmds[0].struct_size` bytes;
/// `allowed_out`, `reason_out` are writable; `detail_out` is NULL or writable for its
/// `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_policy_early_flight(
    cached: *const pipeconnect_caps,
    situation: *const pipeconnect_situation,
    settings: *const pipeconnect_settings,
    cmds: *const pipeconnect_command,
    n: usize,
    allowed_out: *mut usize,
    reason_out: *mut pipeconnect_reason,
    detail_out: *mut pipeconnect_error_detail,
) -> pipeconnect_result {
    guard_detail(
        &[unsafe { mark(cached) }],
        unsafe { wrap_detail(detail_out) },
        || {
            // SAFETY: pointers are checked by the helpers; see the function's contract.
            let cached = unsafe { cached.as_ref() }.map(|c| &c.caps);
            let situation = unsafe { situation_from_c(situation) }?;
            let settings = unsafe { settings_from_c(settings) }?;
            let cmds = unsafe { commands_from_c(cmds, n) }?;
            let allowed_out = unsafe { out(allowed_out) }?;
            let reason_out = unsafe { out(reason_out) }?;
            let f = early_flight(cached, &situation, &settings, &cmds)?;
            Ok(write_flight(f, allowed_out, reason_out))
        },
    )
}

/// As `pipeconnect_policy_early_flight()`, looking `key` up in `cache` itself. `key`'s
/// TLS state must be the connection's (cleartext for `PIPECONNECT_PHASE_CLEARTEXT`,
/// encrypted otherwise), else `PIPECONNECT_ERR_TLS_STATE_MISMATCH`: cleartext
/// information never licenses early commands after STARTTLS or on port 465. An early
/// flight to a server that is held down becomes classic with
/// `PIPECONNECT_REASON_HELD_DOWN` (counted as skipped; see
/// `pipeconnect_cache_note_early_refused()`). Thread-safe.
///
/// # Safety
/// `cache`, `key` are live handles; the rest as for `pipeconnect_policy_early_flight()`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_policy_early_flight_cached(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    situation: *const pipeconnect_situation,
    settings: *const pipeconnect_settings,
    cmds: *const pipeconnect_command,
    n: usize,
    allowed_out: *mut usize,
    reason_out: *mut pipeconnect_reason,
    detail_out: *mut pipeconnect_error_detail,
) -> pipeconnect_result {
    guard_detail(
        &[unsafe { mark(cache) }, unsafe { mark(key) }],
        unsafe { wrap_detail(detail_out) },
        || {
            // SAFETY: pointers are checked by the helpers; see the function's contract.
            let cache = unsafe { handle(cache) }?;
            let key = unsafe { handle(key) }?;
            let situation = unsafe { situation_from_c(situation) }?;
            let settings = unsafe { settings_from_c(settings) }?;
            let cmds = unsafe { commands_from_c(cmds, n) }?;
            let allowed_out = unsafe { out(allowed_out) }?;
            let reason_out = unsafe { out(reason_out) }?;
            if key.inner.tls() != situation.phase.tls() {
                return Err(Failure::new(R::PIPECONNECT_ERR_TLS_STATE_MISMATCH).field("key"));
            }
            let entry = cache.cache.lookup(&key.inner);
            let f = early_flight_for_key(
                entry.as_ref().map(|e| &e.caps),
                key.inner.tls(),
                &situation,
                &settings,
                &cmds,
            )?;
            let f = crate::policy::hold_down_gate(f, situation.phase, || {
                cache.cache.held_down(&key.inner).is_some()
            });
            if f.reason == StopReason::HeldDown {
                cache.cache.note_early_skipped(&key.inner);
            }
            Ok(write_flight(f, allowed_out, reason_out))
        },
    )
}

/// The extensions (`PIPECONNECT_EXT_*` bits) an early flight made of the first `n`
/// commands of `cmds` relied on (pass the `allowed` count from
/// `pipeconnect_policy_early_flight()`), for `pipeconnect_policy_check_ehlo()`. `n == 0`
/// gives 0. Thread-safe.
///
/// # Safety
/// `cmds` is readable for `n` elements of `cmds[0].struct_size` bytes; `used_out` is
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_policy_used_extensions(
    cmds: *const pipeconnect_command,
    n: usize,
    used_out: *mut pipeconnect_ext,
) -> pipeconnect_result {
    guard_on(&[], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let used_out = unsafe { out(used_out) }?;
        if cmds.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        let cmds = if n == 0 {
            Vec::new()
        } else {
            unsafe { commands_from_c(cmds, n) }?
        };
        *used_out = used_extensions(&cmds);
        Ok(R::PIPECONNECT_OK)
    })
}

/// What reply `code` (100 to 599) to `answered` (a `PIPECONNECT_CMD_*`; BANNER for the
/// greeting, BODY for the end-of-data reply, QUIT) means, in `context`
/// (`PIPECONNECT_CONTEXT_*` bits) under `settings` (only its RELAXED flag is read). Only
/// the command's own positive code continues (banner 220, EHLO 250, STARTTLS 220, AUTH
/// 235 or a 334 challenge, MAIL 250, RCPT 250 or 251, DATA 354, BODY and BDAT_LAST 250,
/// QUIT 221); any other positive code is `PIPECONNECT_EVENT_OUT_OF_STEP`, never
/// `_MESSAGE_ACCEPTED` (docs/RULES.md §3.1). A 250 to EHLO gives CONTINUE and NOTHING
/// here: compare what it advertised with `pipeconnect_policy_check_ehlo()`. Thread-safe.
///
/// # Safety
/// `settings` is readable; `outcome_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_policy_outcome(
    answered: pipeconnect_command_kind,
    code: u32,
    context: pipeconnect_reply_context,
    settings: *const pipeconnect_settings,
    outcome_out: *mut pipeconnect_outcome,
) -> pipeconnect_result {
    guard_on(&[], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let settings = unsafe { settings_from_c(settings) }?;
        unsafe { super::sized::check_out(outcome_out) }?;
        let answered =
            CommandKind::from_u32(answered).ok_or(R::PIPECONNECT_ERR_INVALID_ARGUMENT)?;
        let known = PIPECONNECT_CONTEXT_EARLY_USED
            | PIPECONNECT_CONTEXT_AUTH_REQUIRED
            | PIPECONNECT_CONTEXT_COMMANDS_AFTER_AUTH
            | PIPECONNECT_CONTEXT_BODY_SENT;
        if context & !known != 0 || !valid_reply_code(code) {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        let ctx = ReplyContext {
            early_used: context & PIPECONNECT_CONTEXT_EARLY_USED != 0,
            auth_required: context & PIPECONNECT_CONTEXT_AUTH_REQUIRED != 0,
            commands_after_auth: context & PIPECONNECT_CONTEXT_COMMANDS_AFTER_AUTH != 0,
            invalidation: settings.invalidation,
            body_sent: context & PIPECONNECT_CONTEXT_BODY_SENT != 0,
        };
        let o = policy::outcome(answered, code as u16, &ctx);
        // The core's event bits are the C values (checked by a test in ffi/session.rs).
        let value = pipeconnect_outcome {
            struct_size: 0,
            cache: o.cache as u32,
            verdict: o.verdict as u32,
            flags: outcome_flags(&o),
        };
        unsafe { write_out(outcome_out, value) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Compare the real EHLO reply `fresh` (from `pipeconnect_caps_parse()`) with `cached`
/// (NULL when nothing was cached), given the extensions `used` by the early flight
/// (`pipeconnect_policy_used_extensions()`; 0 without one). Do this on every EHLO reply
/// of a connection that used cached information. Thread-safe.
///
/// # Safety
/// `cached` is NULL or a live snapshot; `fresh` is a live snapshot; `check_out` is
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_policy_check_ehlo(
    cached: *const pipeconnect_caps,
    fresh: *const pipeconnect_caps,
    used: pipeconnect_ext,
    check_out: *mut pipeconnect_ehlo_check,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cached) }, unsafe { mark(fresh) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let cached = unsafe { cached.as_ref() }.map(|c| &c.caps);
        let fresh = unsafe { handle(fresh) }?;
        unsafe { super::sized::check_out(check_out) }?;
        if used & !ALL_EXTENSION_BITS != 0 {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        let c = check_ehlo(cached, &fresh.caps, used);
        let value = pipeconnect_ehlo_check {
            struct_size: 0,
            cache: c.cache as u32,
            flags: if c.stop_early {
                PIPECONNECT_EVENT_EARLY_STOPPED
            } else {
                0
            },
            changed: c.changed,
            used_changed: c.used_changed,
        };
        unsafe { write_out(check_out, value) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// The name of a `PIPECONNECT_REASON_*` value for logs (`"NO_ENTRY"`,
/// `"STARTTLS_ENDS_FLIGHT"`, ...): a static NUL-terminated string, never NULL
/// (`"UNKNOWN"` for an unknown value). Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_reason_name(reason: pipeconnect_reason) -> *const c_char {
    StopReason::from_u32(reason)
        .map_or("UNKNOWN\0", StopReason::name_nul)
        .as_ptr()
        .cast()
}

/// The name of a `PIPECONNECT_VERDICT_*` value (`"CONTINUE"`, `"RECONNECT"`, ...): a
/// static NUL-terminated string, never NULL (`"UNKNOWN"` for an unknown value).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_verdict_name(verdict: pipeconnect_verdict) -> *const c_char {
    Verdict::from_u32(verdict)
        .map_or("UNKNOWN\0", Verdict::name_nul)
        .as_ptr()
        .cast()
}

/// The name of a `PIPECONNECT_CMD_*` value (`"BANNER"`, `"EHLO"`, ..., `"BDAT_LAST"`,
/// `"BODY"`): a static NUL-terminated string, never NULL (`"UNKNOWN"` for an unknown
/// value). Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_command_name(kind: pipeconnect_command_kind) -> *const c_char {
    let name = match CommandKind::from_u32(kind) {
        Some(CommandKind::Banner) => "BANNER\0",
        Some(CommandKind::Ehlo) => "EHLO\0",
        Some(CommandKind::StartTls) => "STARTTLS\0",
        Some(CommandKind::Auth) => "AUTH\0",
        Some(CommandKind::Mail) => "MAIL\0",
        Some(CommandKind::Rcpt) => "RCPT\0",
        Some(CommandKind::Data) => "DATA\0",
        Some(CommandKind::BdatLast) => "BDAT_LAST\0",
        Some(CommandKind::Body) => "BODY\0",
        Some(CommandKind::Quit) => "QUIT\0",
        None => "UNKNOWN\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::CacheAction;

    #[test]
    fn c_values_match_the_core() {
        let kinds = [
            PIPECONNECT_CMD_BANNER,
            PIPECONNECT_CMD_EHLO,
            PIPECONNECT_CMD_STARTTLS,
            PIPECONNECT_CMD_AUTH,
            PIPECONNECT_CMD_MAIL,
            PIPECONNECT_CMD_RCPT,
            PIPECONNECT_CMD_DATA,
            PIPECONNECT_CMD_BDAT_LAST,
            PIPECONNECT_CMD_BODY,
            PIPECONNECT_CMD_QUIT,
        ];
        for (c, k) in kinds.iter().zip(CommandKind::ALL) {
            assert_eq!(*c, k as u32);
            let name = unsafe { std::ffi::CStr::from_ptr(pipeconnect_command_name(*c)) };
            assert_eq!(name.to_str().unwrap(), k.name());
        }
        let reasons = [
            PIPECONNECT_REASON_END_OF_SEQUENCE,
            PIPECONNECT_REASON_NOT_ALLOWED,
            PIPECONNECT_REASON_EHLO_NAME_UNKNOWN,
            PIPECONNECT_REASON_ENCRYPTED_WITHOUT_CLEARTEXT_EARLY,
            PIPECONNECT_REASON_NO_ENTRY,
            PIPECONNECT_REASON_NO_PIPECONNECT,
            PIPECONNECT_REASON_NO_PIPELINING,
            PIPECONNECT_REASON_PIPECONNECT_WITHDRAWN,
            PIPECONNECT_REASON_STARTTLS_ENDS_FLIGHT,
            PIPECONNECT_REASON_STARTTLS_NOT_OFFERED,
            PIPECONNECT_REASON_AUTH_ENDS_FLIGHT,
            PIPECONNECT_REASON_AUTH_NOT_OFFERED,
            PIPECONNECT_REASON_DATA_ENDS_FLIGHT,
            PIPECONNECT_REASON_NO_CHUNKING,
            PIPECONNECT_REASON_RCPTMAX_REACHED,
            PIPECONNECT_REASON_MAILMAX_REACHED,
            PIPECONNECT_REASON_SIZE_EXCEEDED,
            PIPECONNECT_REASON_BODY_TOO_LARGE_FOR_ONE_FLIGHT,
            PIPECONNECT_REASON_HELD_DOWN,
            PIPECONNECT_REASON_EXTENSION_MISSING,
        ];
        for (c, r) in reasons.iter().zip(StopReason::ALL) {
            assert_eq!(*c, r as u32);
            let name = unsafe { std::ffi::CStr::from_ptr(pipeconnect_reason_name(*c)) };
            assert_eq!(name.to_str().unwrap(), r.name());
        }
        let verdicts = [
            PIPECONNECT_VERDICT_CONTINUE,
            PIPECONNECT_VERDICT_REJECTED,
            PIPECONNECT_VERDICT_TEMPFAIL,
            PIPECONNECT_VERDICT_RECONNECT,
            PIPECONNECT_VERDICT_HOST_ERROR,
        ];
        for (c, v) in verdicts.iter().zip(Verdict::ALL) {
            assert_eq!(*c, v as u32);
        }
        assert_eq!(PIPECONNECT_CACHE_NOTHING, CacheAction::Nothing as u32);
        assert_eq!(PIPECONNECT_CACHE_INVALIDATE, CacheAction::Invalidate as u32);
        assert_eq!(PIPECONNECT_CACHE_STORE, CacheAction::Store as u32);
        let unknown = unsafe { std::ffi::CStr::from_ptr(pipeconnect_reason_name(99)) };
        assert_eq!(unknown.to_str().unwrap(), "UNKNOWN");
    }
}
