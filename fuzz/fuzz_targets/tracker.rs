//! The tracker driven through its `extern "C"` functions as an MTA with its own SMTP engine
//! would: a request from fuzzer choices (flags, phases and extension bits unknown ones
//! included, a NUL-terminated keyword list from fuzzer bytes), a cache that holds an EHLO
//! reply built from fuzzer choices in either TLS state, then replies of fuzzer-chosen
//! kinds, codes and texts (built EHLO replies or raw bytes, passed with their exact
//! lengths, CRLF or LF, with or without the last line end).
//!
//! Invariants checked:
//! - no panic reaches the boundary; an error writes no tracker;
//! - the plan is consistent: classic exactly when no command goes; a transaction is EHLO,
//!   MAIL, one RCPT per recipient and DATA; an early STARTTLS only in cleartext; EHLO alone
//!   only without recipients and not after STARTTLS; nothing
//!   early without EARLY_ALLOWED, or without every required extension in the plan;
//!   ignored keywords never appear in the plan's extensions;
//! - a reply of an unknown kind or a code outside 100..=599 is INVALID_ARGUMENT;
//! - MESSAGE_ACCEPTED only for a 250 to the end of data or BDAT LAST, with PROCEED;
//! - RECONNECT never on a classic connection; once a step says RECONNECT or DEFER, every
//!   later step repeats it with FOLLOWS_FAILURE;
//! - extensions in a step only after a 250 to EHLO, and never an ignored one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::ffi::cache::*;
use pipeconnect::ffi::key::*;
use pipeconnect::ffi::policy::*;
use pipeconnect::ffi::result::pipeconnect_result::{self, *};
use pipeconnect::ffi::session::{
    PIPECONNECT_EVENT_FOLLOWS_FAILURE, PIPECONNECT_EVENT_MESSAGE_ACCEPTED,
};
use pipeconnect::ffi::tracker::*;
use pipeconnect::tracker::keyword_bits;
use pipeconnect_fuzz::Cursor;
use std::ffi::CString;
use std::ptr::null_mut;

const CODES: [u32; 16] = [
    220, 250, 251, 354, 221, 421, 450, 451, 500, 503, 550, 554, 334, 235, 200, 599,
];

const EXTENSIONS: [&str; 12] = [
    "PIPELINING",
    "PIPECONNECT",
    "STARTTLS",
    "SIZE 1000000",
    "8BITMIME",
    "SMTPUTF8",
    "DSN",
    "CHUNKING",
    "LIMITS RCPTMAX=2",
    "SIZE 10",
    "X_PIPE_CONNECT",
    "AUTH PLAIN",
];

/// An EHLO reply advertising the extensions whose bits are set, with `sep` line ends and
/// the last one left off when `unended`.
fn ehlo_reply(bits: u16, sep: &str, unended: bool) -> Vec<u8> {
    let mut lines = vec!["mx.example.org hello".to_string()];
    for (i, e) in EXTENSIONS.iter().enumerate() {
        if bits & (1 << i) != 0 {
            lines.push(e.to_string());
        }
    }
    let n = lines.len();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        out.push_str(if i + 1 == n { "250 " } else { "250-" });
        out.push_str(l);
        if i + 1 < n || !unended {
            out.push_str(sep);
        }
    }
    out.into_bytes()
}

fn no_panic(r: pipeconnect_result) {
    assert!(r != PIPECONNECT_ERR_PANIC, "a panic reached the C boundary");
}

fn cstring(b: &[u8]) -> CString {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    CString::new(&b[..end]).expect("no NUL")
}

fuzz_target!(|data: &[u8]| unsafe {
    let mut c = Cursor::new(data);
    let mode = c.u8();

    // The cache, with an entry in either TLS state from fuzzer-chosen extensions.
    let mut cache: *mut pipeconnect_cache = null_mut();
    assert_eq!(pipeconnect_cache_new(16, 0, &mut cache), PIPECONNECT_OK);
    let server = CString::new(if mode & 1 != 0 {
        "2001:db8::25"
    } else {
        "192.0.2.25"
    })
    .unwrap();
    for tls in [PIPECONNECT_TLS_CLEARTEXT, PIPECONNECT_TLS_ENCRYPTED] {
        let bits = c.u16();
        if bits & 0x8000 == 0 {
            continue;
        }
        let mut key: *mut pipeconnect_key = null_mut();
        assert_eq!(
            pipeconnect_key_new(server.as_ptr(), 25, tls, &mut key),
            PIPECONNECT_OK
        );
        let reply = ehlo_reply(bits, "\r\n", false);
        no_panic(pipeconnect_cache_learn(
            cache,
            key,
            reply.as_ptr(),
            reply.len(),
            0,
        ));
        pipeconnect_key_free(key);
    }

    // The request.
    let keywords = cstring(c.slice(64));
    let flags = if mode & 2 != 0 {
        c.u32()
    } else {
        c.u8() as u32 & 0x3f
    };
    let phase = if mode & 4 != 0 {
        c.u32()
    } else {
        c.u8() as u32 % 2
    };
    let rcpt_count = if mode & 8 != 0 {
        c.u32()
    } else {
        c.u8() as u32 % 8
    };
    let relies_on = c.u32() & if mode & 16 != 0 { u32::MAX } else { 0x3fff };
    let required = c.u16() as u32 & if mode & 32 != 0 { 0xffff } else { 0 };
    let req = pipeconnect_tracker_request {
        struct_size: std::mem::size_of::<pipeconnect_tracker_request>(),
        server: server.as_ptr(),
        port: 25,
        phase,
        flags,
        rcpt_count,
        message_size: c.u32() as u64,
        relies_on,
        required,
        ignored_keywords: if mode & 64 != 0 {
            keywords.as_ptr()
        } else {
            std::ptr::null()
        },
        local: std::ptr::null(),
        ehlo_name: std::ptr::null(),
    };
    let ignored = if mode & 64 != 0 {
        keyword_bits(keywords.to_str().unwrap_or(""))
    } else {
        0
    };
    let mut tracker: *mut pipeconnect_tracker = null_mut();
    let mut plan = pipeconnect_tracker_plan {
        struct_size: std::mem::size_of::<pipeconnect_tracker_plan>(),
        mode: 99,
        reason: 99,
        command_count: 99,
        extensions: 0,
        size_limit: 0,
    };
    let r = pipeconnect_tracker_begin(cache, &req, &mut tracker, &mut plan, null_mut());
    no_panic(r);
    if mode & 128 != 0 {
        pipeconnect_cache_free(cache); // the tracker keeps what it needs
        cache = null_mut();
    }
    if r != PIPECONNECT_OK {
        assert!(tracker.is_null(), "a tracker written on error");
        pipeconnect_cache_free(cache);
        return;
    }
    let early_allowed = flags & PIPECONNECT_TRACKER_EARLY_ALLOWED != 0;
    match plan.mode {
        PIPECONNECT_TRACKER_MODE_CLASSIC => assert_eq!(plan.command_count, 0),
        PIPECONNECT_TRACKER_MODE_TRANSACTION => {
            assert_eq!(plan.command_count, rcpt_count as usize + 3);
            assert!(early_allowed && plan.extensions & required == required);
        }
        PIPECONNECT_TRACKER_MODE_STARTTLS => {
            assert_eq!(plan.command_count, 2);
            assert!(early_allowed && phase == PIPECONNECT_PHASE_CLEARTEXT);
            assert!(plan.extensions & required == required);
        }
        PIPECONNECT_TRACKER_MODE_EHLO => {
            assert_eq!(plan.command_count, 1);
            assert!(early_allowed && rcpt_count == 0 && phase != PIPECONNECT_PHASE_AFTER_STARTTLS);
        }
        m => panic!("unknown mode {m}"),
    }
    assert_eq!(
        plan.extensions & ignored,
        0,
        "an ignored extension in the plan"
    );
    let classic = plan.mode == PIPECONNECT_TRACKER_MODE_CLASSIC;

    // The replies.
    let mut settled: Option<u32> = None;
    while !c.is_empty() {
        let pick = c.u8();
        let kind = if pick & 0x80 != 0 {
            c.u32()
        } else {
            pick as u32 % 10
        };
        let code = if pick & 0x40 != 0 {
            c.u16() as u32
        } else {
            CODES[c.u8() as usize % CODES.len()]
        };
        let text: Vec<u8> = match c.u8() % 4 {
            0 => c.slice(512).to_vec(),
            1 => ehlo_reply(c.u16(), "\n", true),
            2 => ehlo_reply(c.u16(), "\r\n", false),
            _ => Vec::new(),
        };
        let mut step = pipeconnect_tracker_step {
            struct_size: std::mem::size_of::<pipeconnect_tracker_step>(),
            action: 99,
            verdict: 99,
            flags: 0,
            extensions: 0,
            size_limit: 0,
        };
        let ptr = if text.is_empty() {
            std::ptr::null()
        } else {
            text.as_ptr()
        };
        let r = pipeconnect_tracker_reply(tracker, kind, code, ptr, text.len(), &mut step);
        no_panic(r);
        let valid = kind <= PIPECONNECT_CMD_QUIT && (100..=599).contains(&code);
        if !valid {
            assert_eq!(r, PIPECONNECT_ERR_INVALID_ARGUMENT);
            continue;
        }
        assert_eq!(r, PIPECONNECT_OK);
        assert!(step.action <= PIPECONNECT_TRACKER_ACTION_DEFER);
        if step.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED != 0 {
            assert!(kind == PIPECONNECT_CMD_BODY || kind == PIPECONNECT_CMD_BDAT_LAST);
            assert_eq!(code, 250);
            assert_eq!(step.action, PIPECONNECT_TRACKER_ACTION_PROCEED);
        }
        if classic {
            assert_ne!(step.action, PIPECONNECT_TRACKER_ACTION_RECONNECT);
        }
        if let Some(a) = settled {
            assert_eq!(step.action, a);
            assert_ne!(step.flags & PIPECONNECT_EVENT_FOLLOWS_FAILURE, 0);
        } else {
            if step.extensions != 0 {
                assert!(kind == PIPECONNECT_CMD_EHLO && code == 250);
            }
            if step.action != PIPECONNECT_TRACKER_ACTION_PROCEED {
                settled = Some(step.action);
            }
        }
        assert_eq!(
            step.extensions & ignored,
            0,
            "an ignored extension in a step"
        );
    }
    pipeconnect_tracker_free(tracker);
    pipeconnect_cache_free(cache);
});
