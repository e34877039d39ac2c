//! The C API driven through its `extern "C"` functions as a C caller would: keys from
//! fuzzer text (NUL-terminated copies), EHLO replies and reply streams passed with the
//! exact lengths of the buffers that hold them, output buffers of fuzzer-chosen sizes
//! allocated at exactly those sizes (so a write past the end is caught by the
//! sanitizer), fuzzer-chosen flags and enum values (unknown ones included), and a
//! session fed in small splits, freed after (or before) its cache.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::ffi::cache::*;
use pipeconnect::ffi::caps::*;
use pipeconnect::ffi::detail::pipeconnect_error_detail;
use pipeconnect::ffi::key::*;
use pipeconnect::ffi::policy::*;
use pipeconnect::ffi::result::pipeconnect_result::{self, *};
use pipeconnect::ffi::session::*;
use pipeconnect_fuzz::{splits, Cursor};
use std::ffi::{c_char, CString};
use std::ptr::{null, null_mut};

/// A NUL-terminated copy of fuzzer bytes, cut at the first NUL.
fn cstring(b: &[u8]) -> CString {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    CString::new(&b[..end]).expect("no NUL")
}

/// No call may end in a panic (caught at the boundary as PIPECONNECT_ERR_PANIC).
fn no_panic(r: pipeconnect_result) {
    assert!(r != PIPECONNECT_ERR_PANIC, "a panic reached the C boundary");
}

fuzz_target!(|data: &[u8]| unsafe {
    let mut c = Cursor::new(data);
    let mode = c.u8();

    // Key.
    let server = cstring(c.slice(48));
    let mut key: *mut pipeconnect_key = null_mut();
    let tls = if mode & 1 != 0 {
        c.u32()
    } else {
        (mode >> 1) as u32 & 1
    };
    let r = pipeconnect_key_new(server.as_ptr(), c.u16(), tls, &mut key);
    no_panic(r);
    if r != PIPECONNECT_OK {
        assert!(key.is_null(), "an output written on error");
        let fallback = CString::new("192.0.2.1").unwrap();
        assert_eq!(
            pipeconnect_key_new(fallback.as_ptr(), 25, 0, &mut key),
            PIPECONNECT_OK
        );
    }
    if mode & 4 != 0 {
        let local = cstring(c.slice(48));
        no_panic(pipeconnect_key_set_local(key, local.as_ptr()));
    }
    let name = cstring(c.slice(300));
    if mode & 8 != 0 {
        no_panic(pipeconnect_key_set_ehlo_name(key, name.as_ptr()));
    }
    let buf_len = c.u16() as usize % 400;
    let mut buf = vec![0 as c_char; buf_len];
    let mut written = 0usize;
    let r = pipeconnect_key_to_string(
        key,
        if buf_len == 0 {
            null_mut()
        } else {
            buf.as_mut_ptr()
        },
        buf_len,
        &mut written,
    );
    no_panic(r);
    if r == PIPECONNECT_OK {
        assert!(written < buf_len && buf[written] == 0);
    } else if r == PIPECONNECT_ERR_BUFFER_TOO_SMALL {
        assert!(written >= buf_len && written < PIPECONNECT_KEY_STRING_MAX);
    }

    // Capabilities.
    let reply = c.slice(600).to_vec();
    let pflags = c.u32() & if mode & 16 != 0 { u32::MAX } else { 1 };
    let mut caps: *mut pipeconnect_caps = null_mut();
    let r = pipeconnect_caps_parse(reply.as_ptr(), reply.len(), pflags, &mut caps);
    no_panic(r);
    if r == PIPECONNECT_OK {
        let mut f = 0u32;
        assert_eq!(pipeconnect_caps_flags(caps, &mut f), PIPECONNECT_OK);
        let mut has = false;
        no_panic(pipeconnect_caps_has(caps, c.u32(), &mut has));
        let mut n = 0usize;
        assert_eq!(pipeconnect_caps_auth_count(caps, &mut n), PIPECONNECT_OK);
        for i in 0..=n {
            let mut p: *const c_char = null();
            let r = pipeconnect_caps_auth_name(caps, i, &mut p);
            if i < n {
                assert_eq!(r, PIPECONNECT_OK);
                let s = std::ffi::CStr::from_ptr(p);
                let mut has = false;
                assert_eq!(
                    pipeconnect_caps_has_auth(caps, s.as_ptr(), &mut has),
                    PIPECONNECT_OK
                );
                assert!(has);
            } else {
                assert_eq!(r, PIPECONNECT_ERR_INVALID_ARGUMENT);
            }
        }
        let mech = cstring(c.slice(32));
        no_panic(pipeconnect_caps_has_auth(caps, mech.as_ptr(), &mut has));
        let mut size = 0u64;
        no_panic(pipeconnect_caps_size_limit(caps, &mut size));
    }

    // Cache, learning the reply with its exact length.
    let mut cache: *mut pipeconnect_cache = null_mut();
    assert_eq!(
        pipeconnect_cache_new(c.u8() as usize, 0, &mut cache),
        PIPECONNECT_OK
    );
    no_panic(pipeconnect_cache_learn(
        cache,
        key,
        reply.as_ptr(),
        reply.len(),
        pflags,
    ));
    if !caps.is_null() {
        no_panic(pipeconnect_cache_learn_caps(cache, key, caps));
    }
    let mut hit: *mut pipeconnect_caps = null_mut();
    if pipeconnect_cache_lookup(cache, key, &mut hit) == PIPECONNECT_OK {
        let mut at = 0u64;
        assert_eq!(pipeconnect_caps_learned_at(hit, &mut at), PIPECONNECT_OK);
        pipeconnect_caps_free(hit);
    }

    // A session.
    let rcpt_names: Vec<CString> = (0..(1 + c.u8() % 3))
        .map(|i| CString::new(format!("r{i}@example.org")).unwrap())
        .collect();
    let rcpt_ptrs: Vec<*const c_char> = rcpt_names.iter().map(|s| s.as_ptr()).collect();
    let mech = CString::new("PLAIN").unwrap();
    let from = CString::new("sender@example.net").unwrap();
    let mut intent: pipeconnect_intent = std::mem::zeroed();
    intent.struct_size = std::mem::size_of::<pipeconnect_intent>();
    intent.ehlo_name = if mode & 32 != 0 {
        name.as_ptr()
    } else {
        null()
    };
    intent.flags = c.u32() & if mode & 64 != 0 { u32::MAX } else { 0xf };
    intent.auth_mechanism = mech.as_ptr();
    intent.mail_from = from.as_ptr();
    intent.rcpts = if c.bool() { rcpt_ptrs.as_ptr() } else { null() };
    intent.rcpt_count = rcpt_ptrs.len();
    intent.body_size = c.u32() as u64;
    intent.body_mode = c.u8() as u32 % 3;
    let mut settings: pipeconnect_settings = std::mem::zeroed();
    settings.struct_size = std::mem::size_of::<pipeconnect_settings>();
    let sb = c.u8();
    settings.flags = sb as u32 % 16;
    settings.max_first_flight_body = c.u32() as u64;
    let mut s: *mut pipeconnect_session = null_mut();
    let mut why: pipeconnect_error_detail = std::mem::zeroed();
    why.struct_size = std::mem::size_of::<pipeconnect_error_detail>();
    let r = pipeconnect_session_begin(
        cache,
        key,
        &intent,
        &settings,
        &mut s,
        if sb & 0x10 != 0 { &mut why } else { null_mut() },
    );
    no_panic(r);
    if r != PIPECONNECT_OK {
        assert!(s.is_null(), "an output written on error");
    }
    if mode & 128 != 0 {
        pipeconnect_cache_free(cache);
        cache = null_mut();
    }
    if r == PIPECONNECT_OK {
        let cap = 1 + c.u8() as usize % 8;
        let mut cmds: Vec<pipeconnect_session_command> = vec![std::mem::zeroed(); cap];
        cmds[0].struct_size = std::mem::size_of::<pipeconnect_session_command>();
        let line_len = c.u16() as usize % 700;
        let mut line = vec![0 as c_char; line_len];
        let lens = c.slice(32);
        let stream = c.rest().to_vec();
        for piece in splits(&stream, lens) {
            loop {
                let mut n = 0usize;
                assert_eq!(
                    pipeconnect_session_flight(s, cmds.as_mut_ptr(), cap, &mut n),
                    PIPECONNECT_OK
                );
                assert!(n <= cap);
                for cmd in &cmds[..n] {
                    let mut w = 0usize;
                    let r = pipeconnect_session_command_line(
                        s,
                        cmd,
                        if line_len == 0 {
                            null_mut()
                        } else {
                            line.as_mut_ptr()
                        },
                        line_len,
                        &mut w,
                    );
                    no_panic(r);
                    if r == PIPECONNECT_OK {
                        assert!(w < line_len && line[w] == 0);
                    }
                }
                if n < cap {
                    break;
                }
            }
            // A copy of exactly the piece's length, so a read past it is caught.
            let owned = piece.to_vec();
            let mut events = 0usize;
            let r = pipeconnect_session_feed(s, owned.as_ptr(), owned.len(), &mut events);
            no_panic(r);
            let mut ev: pipeconnect_event = std::mem::zeroed();
            ev.struct_size = std::mem::size_of::<pipeconnect_event>();
            while pipeconnect_session_next_event(s, &mut ev) == PIPECONNECT_OK {
                if ev.text_len > 0 {
                    let t = std::slice::from_raw_parts(ev.text, ev.text_len);
                    std::hint::black_box(t.iter().map(|&b| b as u32).sum::<u32>());
                }
            }
            if ev.flags & PIPECONNECT_EVENT_CONNECTION_DONE != 0 {
                let _ = pipeconnect_session_tls_started(s);
            }
            if r != PIPECONNECT_OK {
                break;
            }
        }
        let mut done = false;
        assert_eq!(pipeconnect_session_is_done(s, &mut done), PIPECONNECT_OK);
        let mut allowed = 0usize;
        let mut reason = 0u32;
        assert_eq!(
            pipeconnect_session_reason(s, &mut allowed, &mut reason),
            PIPECONNECT_OK
        );
        if sb & 0x20 != 0 {
            // QUIT where the session allows it (BAD_STATE otherwise), then its line.
            if pipeconnect_session_quit(s) == PIPECONNECT_OK {
                let mut n = 0usize;
                no_panic(pipeconnect_session_flight(
                    s,
                    cmds.as_mut_ptr(),
                    cap,
                    &mut n,
                ));
            }
        }
        let mut sum: pipeconnect_summary = std::mem::zeroed();
        sum.struct_size = std::mem::size_of::<pipeconnect_summary>();
        assert_eq!(pipeconnect_session_finish(s, &mut sum), PIPECONNECT_OK);
        pipeconnect_session_free(s);
    }
    pipeconnect_cache_free(cache);
    pipeconnect_caps_free(caps);
    pipeconnect_key_free(key);
});
