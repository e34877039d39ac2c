//! `pipeconnect_session`: one connection's bookkeeping, for C.
#![allow(non_camel_case_types)]

use super::cache::pipeconnect_cache;
use super::caps::{pipeconnect_caps, pipeconnect_ext};
use super::detail::{pipeconnect_error_detail, Failure};
use super::key::pipeconnect_key;
use super::policy::{
    pipeconnect_command_kind, pipeconnect_reason, pipeconnect_settings, pipeconnect_verdict,
    settings_from_c,
};
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{out_array_stride, read_in, write_array_element, write_out, Versioned};
use super::{
    bytes, copy_out_text, free_handle, guard_detail, guard_on, guard_void, handle, handle_mut,
    into_handle, mark, out, text, wrap_detail, Poison,
};
use crate::policy::CommandKind;
use crate::session::event::{Event, PlannedCommand, Summary};
use crate::session::intent::RCPTS_MAX;
use crate::session::{AuthIntent, Body, BodyMode, Intent, Recipients, Session};
use std::ffi::c_char;

/// Flags of a `pipeconnect_intent`, OR-ed.
pub type pipeconnect_intent_flags = u32;
/// STARTTLS on the cleartext connection (AUTH and the transaction follow the handshake).
pub const PIPECONNECT_INTENT_STARTTLS: pipeconnect_intent_flags = 1;
/// AUTH with `auth_mechanism`.
pub const PIPECONNECT_INTENT_AUTH: pipeconnect_intent_flags = 2;
/// The AUTH line carries the initial response.
pub const PIPECONNECT_INTENT_AUTH_INITIAL_RESPONSE: pipeconnect_intent_flags = 4;
/// A failed AUTH lets the delivery go on unauthenticated (without it, AUTH is required:
/// its failure ends the connection).
pub const PIPECONNECT_INTENT_AUTH_OPTIONAL: pipeconnect_intent_flags = 8;

/// How the body goes: one of `PIPECONNECT_BODY_*`.
pub type pipeconnect_body_mode = u32;
/// `BDAT <size> LAST` when the server offers CHUNKING, DATA otherwise.
pub const PIPECONNECT_BODY_AUTO: pipeconnect_body_mode = 0;
/// Always DATA.
pub const PIPECONNECT_BODY_DATA: pipeconnect_body_mode = 1;

/// What the caller means to do on one connection: one transaction to one server.
/// Zero-initialise, set `struct_size`, then fill. The strings are copied by
/// `pipeconnect_session_begin()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_intent {
    /// `sizeof(pipeconnect_intent)`, set by the caller.
    pub struct_size: usize,
    /// The EHLO name, NUL-terminated; NULL when it is not known before connecting (then
    /// nothing goes early, and the caller formats its own EHLO line).
    pub ehlo_name: *const c_char,
    /// `PIPECONNECT_INTENT_*` bits.
    pub flags: pipeconnect_intent_flags,
    /// A `PIPECONNECT_BODY_*` value.
    pub body_mode: pipeconnect_body_mode,
    /// With `PIPECONNECT_INTENT_AUTH`: the SASL mechanism, NUL-terminated.
    pub auth_mechanism: *const c_char,
    /// The envelope sender without angle brackets (`""` for the null sender), or NULL
    /// when the caller formats its own MAIL lines.
    pub mail_from: *const c_char,
    /// `rcpt_count` recipient addresses without angle brackets, or NULL when the caller
    /// formats its own RCPT lines (then only `rcpt_count` is read).
    pub rcpts: *const *const c_char,
    /// How many recipients: 1 to 1000.
    pub rcpt_count: usize,
    /// The message size in bytes: used for `BDAT <n> LAST`, for `SIZE=` on MAIL, and to
    /// decide whether the body may ride in the first flight. Give the message's own size
    /// (as BDAT sends it). With `PIPECONNECT_BODY_AUTO` the library may pick DATA, whose
    /// dot-stuffing adds a little; RFC 1870 takes `SIZE=` as an estimate, so that is
    /// harmless. An MTA that needs the DATA size exactly asks for `PIPECONNECT_BODY_DATA`.
    pub body_size: u64,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_intent {
    const NAME: &'static str = "pipeconnect_intent";
}

/// Flags of a `pipeconnect_session_command`.
pub type pipeconnect_session_command_flags = u32;
/// The command goes in an early flight (before the banner, or after STARTTLS before the
/// EHLO reply).
pub const PIPECONNECT_SESSION_COMMAND_EARLY: pipeconnect_session_command_flags = 1;

/// A command the session says to send now, from `pipeconnect_session_flight()`: set
/// `struct_size` in the array's first element (the stride); the library sets it in every
/// element it fills.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipeconnect_session_command {
    /// `sizeof(pipeconnect_session_command)`, set by the caller.
    pub struct_size: usize,
    /// Its place in the conversation: commands count from 1 (0 is the banner). Events
    /// carry the same number.
    pub seq: usize,
    /// A `PIPECONNECT_CMD_*` value. For `PIPECONNECT_CMD_BDAT_LAST`, send the body right
    /// after the line; for `PIPECONNECT_CMD_BODY`, send the dot-stuffed body and `.\r\n`.
    pub kind: pipeconnect_command_kind,
    /// `PIPECONNECT_SESSION_COMMAND_*` bits.
    pub flags: pipeconnect_session_command_flags,
    /// For RCPT: which recipient of the intent (0-based); 0 otherwise.
    pub rcpt_index: usize,
    /// BDAT_LAST: the body size. MAIL: the `SIZE=` value to declare (0: the server did
    /// not advertise SIZE; declare none). 0 otherwise.
    pub size: u64,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_session_command {
    const NAME: &'static str = "pipeconnect_session_command";
}

/// Event flags, OR-ed in `pipeconnect_event.flags` (and, for a subset, in
/// `pipeconnect_outcome.flags` and `pipeconnect_ehlo_check.flags`).
pub type pipeconnect_event_flags = u32;
/// The rules removed this key's cache entry for the current TLS state.
pub const PIPECONNECT_EVENT_CACHE_INVALIDATED: pipeconnect_event_flags = 1;
/// The fresh EHLO capabilities were stored (learned, or the entry rewritten).
pub const PIPECONNECT_EVENT_CACHE_STORED: pipeconnect_event_flags = 2;
/// PIPECONNECT (or PIPELINING) is gone from the EHLO reply: nothing more goes early on
/// this connection; the rest is classic.
pub const PIPECONNECT_EVENT_EARLY_STOPPED: pipeconnect_event_flags = 4;
/// The connection can carry nothing more: close it (QUIT if it is still in step).
pub const PIPECONNECT_EVENT_CONNECTION_DONE: pipeconnect_event_flags = 8;
/// The reply follows from an earlier failure (a RCPT after a failed MAIL, DATA after every
/// recipient was refused, anything after a failed banner): its verdict repeats that
/// failure's; no action of its own.
pub const PIPECONNECT_EVENT_FOLLOWS_FAILURE: pipeconnect_event_flags = 16;
/// A 334 to AUTH: send your next SASL response line, then feed the next reply.
pub const PIPECONNECT_EVENT_AUTH_CHALLENGE: pipeconnect_event_flags = 32;
/// The command answered went in an early flight.
pub const PIPECONNECT_EVENT_EARLY: pipeconnect_event_flags = 64;
/// The server accepted the message (2xx to the end of data or to BDAT LAST).
pub const PIPECONNECT_EVENT_MESSAGE_ACCEPTED: pipeconnect_event_flags = 128;
/// The reply cannot answer its command (wrong code class): the two ends are out of step.
pub const PIPECONNECT_EVENT_OUT_OF_STEP: pipeconnect_event_flags = 256;
/// The text was cut at 2048 bytes.
pub const PIPECONNECT_EVENT_TEXT_TRUNCATED: pipeconnect_event_flags = 512;
/// The raw reply was cut after its last whole line within 4096 bytes.
pub const PIPECONNECT_EVENT_RAW_TRUNCATED: pipeconnect_event_flags = 1024;

/// One complete reply and what it means, from `pipeconnect_session_next_event()` (set
/// `struct_size` first).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_event {
    /// `sizeof(pipeconnect_event)`, set by the caller.
    pub struct_size: usize,
    /// The `seq` of the command answered (0: the banner).
    pub seq: usize,
    /// The command answered: a `PIPECONNECT_CMD_*` (BANNER for the greeting, BODY for the
    /// end-of-data reply).
    pub kind: pipeconnect_command_kind,
    /// A `PIPECONNECT_VERDICT_*` value.
    pub verdict: pipeconnect_verdict,
    /// `PIPECONNECT_EVENT_*` bits.
    pub flags: pipeconnect_event_flags,
    /// The reply code.
    pub code: u32,
    /// For RCPT: which recipient (0-based); 0 otherwise.
    pub rcpt_index: usize,
    /// The enhanced status code's class (2, 4, 5), or 0 when the reply has none.
    pub enhanced_class: u32,
    /// The enhanced status code's subject.
    pub enhanced_subject: u32,
    /// The enhanced status code's detail.
    pub enhanced_detail: u32,
    /// For EHLO: the extension bits whose facts differ from the cached entry.
    pub changed_extensions: pipeconnect_ext,
    /// The reply text (lines joined with `\n`, not NUL-terminated), owned by the session,
    /// valid until the next call on the session.
    pub text: *const u8,
    /// The text's length in bytes (at most 2048).
    pub text_len: usize,
    /// The reply as received, codes and enhanced status codes included, each line ending
    /// in CRLF (not NUL-terminated), for callers that parse replies themselves; owned by
    /// the session, valid until the next call on the session. Whole lines only.
    pub raw: *const u8,
    /// The raw reply's length in bytes (at most 4096; see
    /// `PIPECONNECT_EVENT_RAW_TRUNCATED`).
    pub raw_len: usize,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_event {
    const NAME: &'static str = "pipeconnect_event";
}

/// Summary flags, OR-ed in `pipeconnect_summary.flags`.
pub type pipeconnect_summary_flags = u32;
/// The server accepted the message.
pub const PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED: pipeconnect_summary_flags = 1;
/// The cleartext phase used an early flight.
pub const PIPECONNECT_SUMMARY_CLEARTEXT_EARLY: pipeconnect_summary_flags = 2;
/// The encrypted phase (after STARTTLS, or TLS on connect) used an early flight.
pub const PIPECONNECT_SUMMARY_ENCRYPTED_EARLY: pipeconnect_summary_flags = 4;
/// The rules removed a cache entry.
pub const PIPECONNECT_SUMMARY_CACHE_INVALIDATED: pipeconnect_summary_flags = 8;
/// The session stored capabilities in the cache.
pub const PIPECONNECT_SUMMARY_CACHE_STORED: pipeconnect_summary_flags = 16;
/// PIPECONNECT was withdrawn during the connection.
pub const PIPECONNECT_SUMMARY_EARLY_STOPPED: pipeconnect_summary_flags = 32;
/// The session stopped on an error (malformed or unexpected reply, cleartext after
/// STARTTLS).
pub const PIPECONNECT_SUMMARY_FAILED: pipeconnect_summary_flags = 64;

/// What a session did, from `pipeconnect_session_finish()` (set `struct_size` first).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipeconnect_summary {
    /// `sizeof(pipeconnect_summary)`, set by the caller.
    pub struct_size: usize,
    /// For the message: CONTINUE when the server accepted it (for the accepted
    /// recipients); RECONNECT when early pipelining failed; otherwise the failure that
    /// ended the transaction (TEMPFAIL for an unfinished session).
    pub verdict: pipeconnect_verdict,
    /// `PIPECONNECT_SUMMARY_*` bits.
    pub flags: pipeconnect_summary_flags,
    /// Recipients accepted.
    pub rcpt_accepted: usize,
    /// Recipients refused permanently.
    pub rcpt_rejected: usize,
    /// Recipients refused for now (or not accepted because of an earlier failure).
    pub rcpt_deferred: usize,
    /// Recipients never sent (beyond the server's RCPTMAX, or after a failure): deliver
    /// them in another transaction.
    pub rcpt_not_attempted: usize,
    /// Replies to sent commands that never arrived.
    pub replies_outstanding: usize,
    /// How many times commands were released to send (each after the first is one wait
    /// for replies).
    pub groups: usize,
}

// SAFETY: repr(C), starts with a usize, integers and pointers only.
unsafe impl Versioned for pipeconnect_summary {
    const NAME: &'static str = "pipeconnect_summary";
}

/// One connection's bookkeeping: the early flight, the replies reaped in order, what the
/// cache learns and forgets. Made by `pipeconnect_session_begin()`, released by
/// `pipeconnect_session_free()`. One thread at a time: no two calls on one session may
/// overlap (different sessions, and the cache they share, may be used from any threads).
pub struct pipeconnect_session {
    inner: Session,
    /// The event last handed out; its text is what `pipeconnect_event.text` points to.
    current: Option<Event>,
    /// `pipeconnect_session_finish()` was called: taking commands is then a bad state.
    finished: bool,
    poisoned: Poison,
}

super::poisonable!(pipeconnect_session);

fn intent_flags_known(f: u32) -> bool {
    f & !(PIPECONNECT_INTENT_STARTTLS
        | PIPECONNECT_INTENT_AUTH
        | PIPECONNECT_INTENT_AUTH_INITIAL_RESPONSE
        | PIPECONNECT_INTENT_AUTH_OPTIONAL)
        == 0
}

/// The C intent as the core's.
///
/// # Safety
/// The intent's pointers are NULL or valid as its documentation says.
unsafe fn intent_from_c(p: *const pipeconnect_intent) -> Result<Intent, Failure> {
    // SAFETY: NULL or readable for its struct_size, by the caller's promise.
    let i = unsafe { read_in(p) }?;
    let invalid = |field: &'static str, why: &'static str| {
        Failure::new(R::PIPECONNECT_ERR_INVALID_INTENT)
            .field(field)
            .say(format!("{field}: {why}"))
    };
    if !intent_flags_known(i.flags) {
        return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
            .field("flags")
            .say("unknown intent flag bits"));
    }
    let opt_text = |p: *const c_char, field: &'static str| -> Result<Option<String>, Failure> {
        if p.is_null() {
            Ok(None)
        } else {
            // SAFETY: non-NULL and NUL-terminated by the caller's promise.
            let t = unsafe { text(p) }.map_err(|r| Failure::new(r).field(field))?;
            Ok(Some(t.to_string()))
        }
    };
    let auth = if i.flags & PIPECONNECT_INTENT_AUTH != 0 {
        // SAFETY: as above; NULL is refused.
        let mechanism = unsafe { text(i.auth_mechanism) }
            .map_err(|r| Failure::new(r).field("auth_mechanism"))?
            .to_string();
        Some(AuthIntent {
            mechanism,
            initial_response: i.flags & PIPECONNECT_INTENT_AUTH_INITIAL_RESPONSE != 0,
            required: i.flags & PIPECONNECT_INTENT_AUTH_OPTIONAL == 0,
        })
    } else if i.flags
        & (PIPECONNECT_INTENT_AUTH_INITIAL_RESPONSE | PIPECONNECT_INTENT_AUTH_OPTIONAL)
        != 0
    {
        return Err(invalid(
            "flags",
            "AUTH_INITIAL_RESPONSE or AUTH_OPTIONAL without AUTH",
        ));
    } else {
        None
    };
    if i.rcpt_count == 0 || i.rcpt_count > RCPTS_MAX {
        return Err(invalid("rcpt_count", "there must be 1 to 1000 recipients"));
    }
    let rcpts = if i.rcpts.is_null() {
        Recipients::Count(i.rcpt_count)
    } else {
        // SAFETY: non-NULL, readable for rcpt_count (bounded) pointers by the promise.
        let ptrs = unsafe { std::slice::from_raw_parts(i.rcpts, i.rcpt_count) };
        let mut v = Vec::with_capacity(ptrs.len());
        for (n, &p) in ptrs.iter().enumerate() {
            // SAFETY: each is NULL (refused) or NUL-terminated.
            let t = unsafe { text(p) }.map_err(|r| Failure::new(r).field("rcpts").index(n))?;
            v.push(t.to_string());
        }
        Recipients::Addresses(v)
    };
    let mode = match i.body_mode {
        PIPECONNECT_BODY_AUTO => BodyMode::Auto,
        PIPECONNECT_BODY_DATA => BodyMode::Data,
        _ => {
            return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                .field("body_mode")
                .say("unknown body mode"))
        }
    };
    Ok(Intent {
        ehlo_name: opt_text(i.ehlo_name, "ehlo_name")?,
        starttls: i.flags & PIPECONNECT_INTENT_STARTTLS != 0,
        auth,
        mail_from: opt_text(i.mail_from, "mail_from")?,
        rcpts,
        body: Body {
            size: i.body_size,
            mode,
        },
    })
}

fn command_to_c(c: &PlannedCommand) -> pipeconnect_session_command {
    pipeconnect_session_command {
        struct_size: 0,
        seq: c.seq,
        kind: c.kind as u32,
        flags: if c.early {
            PIPECONNECT_SESSION_COMMAND_EARLY
        } else {
            0
        },
        rcpt_index: c.rcpt_index.unwrap_or(0),
        size: c.size,
    }
}

fn command_from_c(c: &pipeconnect_session_command) -> Result<PlannedCommand, Failure> {
    let kind = CommandKind::from_u32(c.kind).ok_or(R::PIPECONNECT_ERR_INVALID_ARGUMENT)?;
    if c.flags & !PIPECONNECT_SESSION_COMMAND_EARLY != 0 {
        return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT).field("flags"));
    }
    Ok(PlannedCommand {
        seq: c.seq,
        kind,
        rcpt_index: (kind == CommandKind::Rcpt).then_some(c.rcpt_index),
        size: c.size,
        early: c.flags & PIPECONNECT_SESSION_COMMAND_EARLY != 0,
    })
}

fn event_to_c(e: &Event) -> pipeconnect_event {
    // The core's flag bits are the C values (checked by a test).
    let (class, subject, detail) = e.enhanced.map_or((0, 0, 0), |x| {
        (
            u32::from(x.class),
            u32::from(x.subject),
            u32::from(x.detail),
        )
    });
    pipeconnect_event {
        struct_size: 0,
        seq: e.seq,
        kind: e.kind as u32,
        verdict: e.verdict as u32,
        flags: e.flags,
        code: u32::from(e.code),
        rcpt_index: e.rcpt_index.unwrap_or(0),
        enhanced_class: class,
        enhanced_subject: subject,
        enhanced_detail: detail,
        changed_extensions: e.changed_extensions,
        text: e.text.as_ptr(),
        text_len: e.text.len(),
        raw: e.raw.as_ptr(),
        raw_len: e.raw.len(),
    }
}

fn summary_to_c(s: &Summary) -> pipeconnect_summary {
    pipeconnect_summary {
        struct_size: 0,
        verdict: s.verdict as u32,
        flags: s.flags,
        rcpt_accepted: s.rcpt_accepted,
        rcpt_rejected: s.rcpt_rejected,
        rcpt_deferred: s.rcpt_deferred,
        rcpt_not_attempted: s.rcpt_not_attempted,
        replies_outstanding: s.replies_outstanding,
        groups: s.groups,
    }
}

/// Begin a connection to `key`'s server: a cleartext key for a plain or STARTTLS
/// connection, an encrypted key for TLS on connect (port 465; call this after the
/// handshake). The session looks `key` up in `cache`, plans the early flight under
/// `settings`, and keeps its own reference to the cache (the cache handle may be freed
/// first). On success `*session_out` is a new session the caller frees with
/// `pipeconnect_session_free()`; take the flight with `pipeconnect_session_flight()` (0
/// commands: classic, wait for the banner).
///
/// Worked example (error checks shortened; `sock_write`/`sock_read` are the caller's):
///
/// ```c
/// const char *rcpts[] = { "a@example.org", "b@example.org" };
/// pipeconnect_intent intent = { 0 };
/// intent.struct_size = sizeof intent;           /* every struct: its sizeof first */
/// intent.ehlo_name = "client.example.net";
/// intent.mail_from = "sender@example.net";
/// intent.rcpts = rcpts;
/// intent.rcpt_count = 2;
/// intent.body_size = body_len;                  /* BDAT LAST if CHUNKING, else DATA */
/// pipeconnect_settings settings = { sizeof settings, PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0 };
/// pipeconnect_error_detail why = { .struct_size = sizeof why };
///
/// pipeconnect_session *s;
/// if (pipeconnect_session_begin(cache, key, &intent, &settings, &s, &why) != PIPECONNECT_OK)
///     return log("%s", why.message), -1;        /* names the field and recipient */
/// for (;;) {
///     pipeconnect_session_command cmds[16];
///     size_t n = 0;
///     cmds[0].struct_size = sizeof cmds[0];      /* the array's stride */
///     if (pipeconnect_session_flight(s, cmds, 16, &n) != PIPECONNECT_OK) break;
///     for (size_t i = 0; i < n; i++) {
///         char line[600]; size_t len;
///         if (cmds[i].kind == PIPECONNECT_CMD_BODY) { sock_write_dotstuffed_body(); continue; }
///         if (pipeconnect_session_command_line(s, &cmds[i], line, sizeof line, &len))
///             break;                                  /* AUTH with a response: yours */
///         sock_write(line, len);
///         if (cmds[i].kind == PIPECONNECT_CMD_BDAT_LAST) sock_write(body, body_len);
///     }
///     bool done;
///     if (pipeconnect_session_is_done(s, &done) != PIPECONNECT_OK || done) break;
///     uint8_t buf[4096];
///     ssize_t got = sock_read(buf, sizeof buf);       /* any split is fine */
///     if (got <= 0) break;
///     size_t events;
///     pipeconnect_result r = pipeconnect_session_feed(s, buf, (size_t)got, &events);
///     pipeconnect_event ev = { .struct_size = sizeof ev };
///     while (pipeconnect_session_next_event(s, &ev) == PIPECONNECT_OK) {
///         log("%s %u %.*s -> %s", pipeconnect_command_name(ev.kind), ev.code,
///             (int)ev.text_len, (const char *)ev.text, pipeconnect_verdict_name(ev.verdict));
///         if (ev.kind == PIPECONNECT_CMD_RCPT && ev.verdict != PIPECONNECT_VERDICT_CONTINUE)
///             note_recipient(ev.rcpt_index, ev.verdict);
///         if (ev.kind == PIPECONNECT_CMD_STARTTLS &&
///             ev.verdict == PIPECONNECT_VERDICT_CONTINUE) {
///             do_tls_handshake();
///             if (pipeconnect_session_tls_started(s)) /* cleartext after the 220 */
///                 break;
///         }
///     }
///     if (r != PIPECONNECT_OK) break;                 /* unexpected or malformed reply */
/// }
/// pipeconnect_summary sum = { .struct_size = sizeof sum };
/// if (pipeconnect_session_finish(s, &sum) == PIPECONNECT_OK &&
///     sum.verdict == PIPECONNECT_VERDICT_RECONNECT)
///     retry_now_without_early_pipelining();           /* no bounce, no deferral */
/// pipeconnect_session_free(s);
/// ```
///
/// `PIPECONNECT_ERR_INVALID_INTENT` for an unusable intent (see that result's message),
/// `PIPECONNECT_ERR_INVALID_ARGUMENT` for unknown flag bits or body modes. `detail_out`
/// may be NULL; otherwise (its `struct_size` set) it names the field at fault (`rcpts`
/// with the recipient's `index`, `mail_from`, `ehlo_name`, ...) and why.
///
/// # Safety
/// `cache`, `key` are live handles; `intent` and `settings` are readable for their
/// `struct_size`, with the intent's pointers valid as documented; `session_out` is
/// writable; `detail_out` is NULL or writable for its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_begin(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    intent: *const pipeconnect_intent,
    settings: *const pipeconnect_settings,
    session_out: *mut *mut pipeconnect_session,
    detail_out: *mut pipeconnect_error_detail,
) -> pipeconnect_result {
    guard_detail(
        &[unsafe { mark(cache) }, unsafe { mark(key) }],
        unsafe { wrap_detail(detail_out) },
        || {
            // SAFETY: pointers are checked by the helpers; see the function's contract.
            let cache = unsafe { handle(cache) }.map_err(|r| Failure::new(r).field("cache"))?;
            let key = unsafe { handle(key) }.map_err(|r| Failure::new(r).field("key"))?;
            let intent = unsafe { intent_from_c(intent) }?;
            let settings = unsafe { settings_from_c(settings) }?;
            let session_out =
                unsafe { out(session_out) }.map_err(|r| Failure::new(r).field("session_out"))?;
            let inner = Session::begin(cache.cache.clone(), key.inner.clone(), intent, settings)?;
            *session_out = into_handle(pipeconnect_session {
                inner,
                current: None,
                finished: false,
                poisoned: Poison::default(),
            });
            Ok(R::PIPECONNECT_OK)
        },
    )
}

/// Take the commands that may be sent now, in order: up to `cap` of them are copied into
/// `cmds_out` and removed from the session's queue; `*count_out` says how many (0: wait
/// for replies). Call again while it fills the whole array. Send every command taken, in
/// order; take them before feeding more replies. Set `cmds_out[0].struct_size` to
/// `sizeof(pipeconnect_session_command)`: it is the array's stride. After
/// `pipeconnect_session_finish()`: `PIPECONNECT_ERR_BAD_STATE`.
///
/// # Safety
/// `session` is a live session used by no other thread; `cmds_out` is writable for `cap`
/// elements of `cmds_out[0].struct_size` bytes; `count_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_flight(
    session: *mut pipeconnect_session,
    cmds_out: *mut pipeconnect_session_command,
    cap: usize,
    count_out: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle_mut(session) }?;
        let count_out = unsafe { out(count_out) }?;
        if cmds_out.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        if s.finished {
            return Err(R::PIPECONNECT_ERR_BAD_STATE);
        }
        let stride = if cap == 0 {
            0
        } else {
            unsafe { out_array_stride(cmds_out) }?
        };
        let taken = s.inner.take_commands(cap);
        for (i, c) in taken.iter().enumerate() {
            // SAFETY: i < taken.len() <= cap, and cmds_out holds cap elements of stride.
            unsafe { write_array_element(cmds_out, stride, i, command_to_c(c)) };
        }
        *count_out = taken.len();
        Ok(R::PIPECONNECT_OK)
    })
}

/// How many commands wait to be taken with `pipeconnect_session_flight()`
/// (`*commands_out`) and how many events with `pipeconnect_session_next_event()`
/// (`*events_out`).
///
/// # Safety
/// `session` is a live session used by no other thread; the outputs are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_pending(
    session: *const pipeconnect_session,
    commands_out: *mut usize,
    events_out: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle(session) }?;
        let commands_out = unsafe { out(commands_out) }?;
        let events_out = unsafe { out(events_out) }?;
        *commands_out = s.inner.pending_commands();
        *events_out = s.inner.pending_events();
        Ok(R::PIPECONNECT_OK)
    })
}

/// Format the line for `cmd` (a command from this session's `pipeconnect_session_flight()`),
/// CRLF included, NUL-terminated, into `buf` of `len` bytes; `*written` gets the length
/// without the NUL (`PIPECONNECT_ERR_BUFFER_TOO_SMALL` with the needed length when it does
/// not fit; 600 bytes always do). An optional helper: an MTA may format its own lines.
/// `PIPECONNECT_ERR_CANNOT_FORMAT` for AUTH with an initial response (it carries
/// credentials the library never sees), the body, and lines whose EHLO name or addresses
/// the intent did not give.
///
/// # Safety
/// `session` is a live session used by no other thread; `cmd` is readable; `buf` is
/// writable for `len` bytes; `written` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_command_line(
    session: *const pipeconnect_session,
    cmd: *const pipeconnect_session_command,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle(session) }?;
        let cmd = command_from_c(&unsafe { read_in(cmd) }?)?;
        let line = s.inner.command_line(&cmd)?;
        unsafe { copy_out_text(&line, buf, len, written) }
    })
}

/// Feed `len` reply bytes exactly as read from the socket (any split; several replies in
/// one buffer). Each complete reply becomes one event (`*events_out`: how many this call
/// made); take them with `pipeconnect_session_next_event()`, then take any commands they
/// released with `pipeconnect_session_flight()`.
///
/// Errors stop the session, and repeat on later calls: the reply parser's errors (72xx),
/// `PIPECONNECT_ERR_UNEXPECTED_REPLY` (a reply answering no command sent),
/// `PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS` (bytes after the 220 to STARTTLS). Events
/// made before the error can still be taken. Close the connection; after an early flight
/// the summary's verdict is RECONNECT and the entry is gone.
///
/// # Safety
/// `session` is a live session used by no other thread; `data` is readable for `len`
/// bytes; `events_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_feed(
    session: *mut pipeconnect_session,
    data: *const u8,
    len: usize,
    events_out: *mut usize,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle_mut(session) }?;
        let data = unsafe { bytes(data, len) }?;
        let events_out = unsafe { out(events_out) }?;
        *events_out = s.inner.feed(data)?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Take the oldest queued event into `*event_out` (its `struct_size` set): `PIPECONNECT_OK`, or
/// `PIPECONNECT_NO_EVENT` (nothing written) when none is queued. `event_out->text` points
/// into the session and stays valid until the next call on the session.
///
/// # Safety
/// `session` is a live session used by no other thread; `event_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_next_event(
    session: *mut pipeconnect_session,
    event_out: *mut pipeconnect_event,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle_mut(session) }?;
        unsafe { super::sized::check_out(event_out) }?;
        s.current = s.inner.next_event();
        match &s.current {
            Some(e) => {
                unsafe { write_out(event_out, event_to_c(e)) }?;
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NO_EVENT),
        }
    })
}

/// The TLS handshake that followed a 220 to STARTTLS completed: plan the encrypted phase
/// (the key in the encrypted state; take its flight with `pipeconnect_session_flight()`).
/// `PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS` (the session stops) when cleartext bytes
/// were fed after the 220, even part of a line: they could be injected.
/// `PIPECONNECT_ERR_BAD_STATE` when no 220 to STARTTLS was seen.
///
/// # Safety
/// `session` is a live session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_tls_started(
    session: *mut pipeconnect_session,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: checked by the helper; see the function's contract.
        let s = unsafe { handle_mut(session) }?;
        s.inner.tls_started()?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// The early flight of the current TLS phase: how many commands went early
/// (`*allowed_out`, as `pipeconnect_policy_early_flight()` counts them) and why it
/// stopped there (`*reason_out`, for logs).
///
/// # Safety
/// `session` is a live session used by no other thread; the outputs are writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_reason(
    session: *const pipeconnect_session,
    allowed_out: *mut usize,
    reason_out: *mut pipeconnect_reason,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle(session) }?;
        let allowed_out = unsafe { out(allowed_out) }?;
        let reason_out = unsafe { out(reason_out) }?;
        let f = s.inner.flight();
        *allowed_out = f.allowed;
        *reason_out = f.reason as u32;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Whether the session has nothing more to do (`*done_out`): the transaction ended or the
/// connection failed, no reply is awaited (but perhaps the 221 to a QUIT already taken,
/// which the delivery's outcome never depends on) and no command waits to be taken.
///
/// # Safety
/// `session` is a live session used by no other thread; `done_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_is_done(
    session: *const pipeconnect_session,
    done_out: *mut bool,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle(session) }?;
        *unsafe { out(done_out) }? = s.inner.is_done();
        Ok(R::PIPECONNECT_OK)
    })
}

/// End the session (for instance when the connection closed) and fill `*summary_out`
/// (its `struct_size` set). A
/// banner or EHLO reply still missing after an early flight was taken for sending
/// invalidates the entry (verdict RECONNECT); a flight never taken (the connection failed
/// first) does not. Later calls give the same summary; feeding and taking commands are
/// then `PIPECONNECT_ERR_BAD_STATE`. Free the session afterwards.
///
/// # Safety
/// `session` is a live session used by no other thread; `summary_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_finish(
    session: *mut pipeconnect_session,
    summary_out: *mut pipeconnect_summary,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle_mut(session) }?;
        unsafe { super::sized::check_out(summary_out) }?;
        s.finished = true;
        unsafe { write_out(summary_out, summary_to_c(&s.inner.finish())) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Plan a QUIT: take it with `pipeconnect_session_flight()` (a `PIPECONNECT_CMD_QUIT`);
/// its reply is expected to be 221. Allowed once nothing more can follow it: the body
/// command was handed out (QUIT may then be pipelined right behind BDAT LAST or the
/// body), or the transaction ended. A 221 in its place keeps the entry; a 221 where
/// another reply was due (a stream shifted by one) is out of step, so the message is
/// never reported accepted by it. A 221 fed when nothing is awaited and the transaction
/// is over is also taken as the reply to a QUIT the caller sent unplanned.
/// `PIPECONNECT_ERR_BAD_STATE` when more commands may still follow, a QUIT was planned
/// already, during the STARTTLS handshake, or after finish.
///
/// # Safety
/// `session` is a live session used by no other thread.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_quit(
    session: *mut pipeconnect_session,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: checked by the helper; see the function's contract.
        let s = unsafe { handle_mut(session) }?;
        s.inner.quit()?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// The capabilities the server advertised in the current phase's real EHLO reply: on
/// `PIPECONNECT_OK`, `*caps_out` is a new snapshot the caller frees with
/// `pipeconnect_caps_free()`; `PIPECONNECT_NOT_FOUND` (nothing written) before that
/// reply is in, after a failed EHLO, and after STARTTLS until the new EHLO reply.
///
/// # Safety
/// `session` is a live session used by no other thread; `caps_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_session_server_caps(
    session: *const pipeconnect_session,
    caps_out: *mut *mut pipeconnect_caps,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(session) }], || {
        // SAFETY: pointers are checked by the helpers; see the function's contract.
        let s = unsafe { handle(session) }?;
        let caps_out = unsafe { out(caps_out) }?;
        match s.inner.server_caps() {
            Some(caps) => {
                *caps_out = into_handle(pipeconnect_caps::new(caps.clone(), None));
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// Release a session. NULL is allowed. A session freed without
/// `pipeconnect_session_finish()` records nothing more.
///
/// # Safety
/// `session` is NULL or a session from this library not yet freed, not in use by another
/// thread, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_session_free(session: *mut pipeconnect_session) {
    // SAFETY: see the function's contract.
    guard_void(|| unsafe { free_handle(session) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::event::*;

    #[test]
    fn c_flag_values_match_the_core() {
        assert_eq!(PIPECONNECT_EVENT_CACHE_INVALIDATED, EVENT_CACHE_INVALIDATED);
        assert_eq!(PIPECONNECT_EVENT_CACHE_STORED, EVENT_CACHE_STORED);
        assert_eq!(PIPECONNECT_EVENT_EARLY_STOPPED, EVENT_EARLY_STOPPED);
        assert_eq!(PIPECONNECT_EVENT_CONNECTION_DONE, EVENT_CONNECTION_DONE);
        assert_eq!(PIPECONNECT_EVENT_FOLLOWS_FAILURE, EVENT_FOLLOWS_FAILURE);
        assert_eq!(PIPECONNECT_EVENT_AUTH_CHALLENGE, EVENT_AUTH_CHALLENGE);
        assert_eq!(PIPECONNECT_EVENT_EARLY, EVENT_EARLY);
        assert_eq!(PIPECONNECT_EVENT_MESSAGE_ACCEPTED, EVENT_MESSAGE_ACCEPTED);
        assert_eq!(PIPECONNECT_EVENT_OUT_OF_STEP, EVENT_OUT_OF_STEP);
        assert_eq!(PIPECONNECT_EVENT_TEXT_TRUNCATED, EVENT_TEXT_TRUNCATED);
        assert_eq!(PIPECONNECT_EVENT_RAW_TRUNCATED, EVENT_RAW_TRUNCATED);
        assert_eq!(EVENT_TEXT_MAX, 2048);
        assert_eq!(EVENT_RAW_MAX, 4096);
        assert_eq!(
            PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED,
            SUMMARY_MESSAGE_ACCEPTED
        );
        assert_eq!(PIPECONNECT_SUMMARY_CLEARTEXT_EARLY, SUMMARY_CLEARTEXT_EARLY);
        assert_eq!(PIPECONNECT_SUMMARY_ENCRYPTED_EARLY, SUMMARY_ENCRYPTED_EARLY);
        assert_eq!(
            PIPECONNECT_SUMMARY_CACHE_INVALIDATED,
            SUMMARY_CACHE_INVALIDATED
        );
        assert_eq!(PIPECONNECT_SUMMARY_CACHE_STORED, SUMMARY_CACHE_STORED);
        assert_eq!(PIPECONNECT_SUMMARY_EARLY_STOPPED, SUMMARY_EARLY_STOPPED);
        assert_eq!(PIPECONNECT_SUMMARY_FAILED, SUMMARY_FAILED);
        assert_eq!(RCPTS_MAX, 1000);
    }
}
