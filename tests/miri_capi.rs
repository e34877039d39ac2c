//! The C API driven from Rust exactly as a C caller drives it, small enough for Miri
//! (`make test-miri`: `cargo +nightly miri test --test miri_capi`), which checks every
//! pointer the library reads, writes and frees: a key made, narrowed and printed; an
//! EHLO reply parsed and queried; an in-process cache learning it; one whole early
//! session fed in small splits, with every command line formatted into caller buffers;
//! the cache freed before the session, which keeps working; and a tracker given replies
//! as an MTA holds them, its cache freed first. It also runs as an ordinary
//! test.
use pipeconnect::ffi::cache::*;
use pipeconnect::ffi::caps::*;
use pipeconnect::ffi::key::*;
use pipeconnect::ffi::policy::*;
use pipeconnect::ffi::result::pipeconnect_result::*;
use pipeconnect::ffi::session::*;
use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

const EHLO: &[u8] = b"250-mx.example.org hello\r\n250-SIZE 1000000\r\n250-PIPELINING\r\n\
250-PIPECONNECT\r\n250-CHUNKING\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n";

#[test]
fn a_c_caller_runs_key_caps_cache_and_an_early_session_in_small_splits() {
    unsafe {
        // Key.
        let mut key: *mut pipeconnect_key = null_mut();
        assert_eq!(
            pipeconnect_key_new(
                c"[2001:db8::25]".as_ptr(),
                25,
                PIPECONNECT_TLS_CLEARTEXT,
                &mut key
            ),
            PIPECONNECT_OK
        );
        assert_eq!(
            pipeconnect_key_set_ehlo_name(key, c"Client.Example.NET".as_ptr()),
            PIPECONNECT_OK
        );
        let mut small = [0 as c_char; 8];
        let mut written = 0usize;
        assert_eq!(
            pipeconnect_key_to_string(key, small.as_mut_ptr(), small.len(), &mut written),
            PIPECONNECT_ERR_BUFFER_TOO_SMALL
        );
        let mut text = vec![0 as c_char; written + 1];
        assert_eq!(
            pipeconnect_key_to_string(key, text.as_mut_ptr(), text.len(), &mut written),
            PIPECONNECT_OK
        );
        assert_eq!(
            CStr::from_ptr(text.as_ptr()).to_str().unwrap(),
            "[2001:db8::25]:25/cleartext as client.example.net"
        );

        // Capabilities.
        let mut caps: *mut pipeconnect_caps = null_mut();
        assert_eq!(
            pipeconnect_caps_parse(EHLO.as_ptr(), EHLO.len(), 0, &mut caps),
            PIPECONNECT_OK
        );
        let mut n = 0usize;
        assert_eq!(pipeconnect_caps_auth_count(caps, &mut n), PIPECONNECT_OK);
        assert_eq!(n, 2);
        let mut name: *const c_char = null();
        assert_eq!(
            pipeconnect_caps_auth_name(caps, 1, &mut name),
            PIPECONNECT_OK
        );
        assert_eq!(CStr::from_ptr(name).to_bytes(), b"LOGIN");
        let mut has = false;
        assert_eq!(
            pipeconnect_caps_has_auth(caps, c"plain".as_ptr(), &mut has),
            PIPECONNECT_OK
        );
        assert!(has);
        let mut size = 0u64;
        assert_eq!(pipeconnect_caps_size_limit(caps, &mut size), PIPECONNECT_OK);
        assert_eq!(size, 1_000_000);

        // Cache, with a pinned clock (no system time under Miri's isolation).
        let mut cache: *mut pipeconnect_cache = null_mut();
        assert_eq!(pipeconnect_cache_new(16, 0, &mut cache), PIPECONNECT_OK);
        assert_eq!(
            pipeconnect_cache_set_time(cache, 1_700_000_000),
            PIPECONNECT_OK
        );
        assert_eq!(
            pipeconnect_cache_learn_caps(cache, key, caps),
            PIPECONNECT_OK
        );
        pipeconnect_caps_free(caps);
        let mut hit: *mut pipeconnect_caps = null_mut();
        assert_eq!(
            pipeconnect_cache_lookup(cache, key, &mut hit),
            PIPECONNECT_OK
        );
        let mut at = 0u64;
        assert_eq!(pipeconnect_caps_learned_at(hit, &mut at), PIPECONNECT_OK);
        assert_eq!(at, 1_700_000_000);
        pipeconnect_caps_free(hit);

        // A session: everything early, then the cache handle freed before the session.
        let rcpts = [c"a@example.org".as_ptr(), c"b@example.org".as_ptr()];
        let mut intent: pipeconnect_intent = std::mem::zeroed();
        intent.struct_size = std::mem::size_of::<pipeconnect_intent>();
        intent.ehlo_name = c"client.example.net".as_ptr();
        intent.mail_from = c"sender@example.net".as_ptr();
        intent.rcpts = rcpts.as_ptr();
        intent.rcpt_count = 2;
        intent.body_size = 300;
        intent.body_mode = PIPECONNECT_BODY_AUTO;
        let mut settings: pipeconnect_settings = std::mem::zeroed();
        settings.struct_size = std::mem::size_of::<pipeconnect_settings>();
        settings.flags = PIPECONNECT_SETTINGS_EARLY_ALLOWED;
        let mut s: *mut pipeconnect_session = null_mut();
        assert_eq!(
            pipeconnect_session_begin(cache, key, &intent, &settings, &mut s, null_mut()),
            PIPECONNECT_OK
        );
        pipeconnect_cache_free(cache);
        pipeconnect_key_free(key);

        let mut lines = Vec::new();
        let mut cmds: [pipeconnect_session_command; 2] = std::mem::zeroed();
        cmds[0].struct_size = std::mem::size_of::<pipeconnect_session_command>();
        loop {
            let mut got = 0usize;
            assert_eq!(
                pipeconnect_session_flight(s, cmds.as_mut_ptr(), 2, &mut got),
                PIPECONNECT_OK
            );
            for cmd in &cmds[..got] {
                let mut buf = [0 as c_char; 600];
                let mut len = 0usize;
                assert_eq!(
                    pipeconnect_session_command_line(s, cmd, buf.as_mut_ptr(), buf.len(), &mut len),
                    PIPECONNECT_OK
                );
                lines.push(CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string());
            }
            if got < 2 {
                break;
            }
        }
        assert_eq!(
            lines,
            [
                "EHLO client.example.net\r\n",
                "MAIL FROM:<sender@example.net> SIZE=300\r\n",
                "RCPT TO:<a@example.org>\r\n",
                "RCPT TO:<b@example.org>\r\n",
                "BDAT 300 LAST\r\n",
            ]
        );

        let mut server = b"220 mx.example.org ESMTP\r\n".to_vec();
        server.extend_from_slice(EHLO);
        server.extend_from_slice(
            b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as X\r\n",
        );
        let mut accepted = false;
        let mut events = 0;
        for piece in server.chunks(7) {
            let owned = piece.to_vec();
            let mut made = 0usize;
            assert_eq!(
                pipeconnect_session_feed(s, owned.as_ptr(), owned.len(), &mut made),
                PIPECONNECT_OK
            );
            let mut ev: pipeconnect_event = std::mem::zeroed();
            ev.struct_size = std::mem::size_of::<pipeconnect_event>();
            while pipeconnect_session_next_event(s, &mut ev) == PIPECONNECT_OK {
                events += 1;
                let text = std::slice::from_raw_parts(ev.text, ev.text_len);
                assert!(!text.is_empty());
                assert_eq!(ev.verdict, PIPECONNECT_VERDICT_CONTINUE, "{}", ev.code);
                accepted |= ev.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED != 0;
            }
        }
        assert_eq!(events, 6);
        assert!(accepted);
        let mut done = false;
        assert_eq!(pipeconnect_session_is_done(s, &mut done), PIPECONNECT_OK);
        assert!(done);
        let mut sum: pipeconnect_summary = std::mem::zeroed();
        sum.struct_size = std::mem::size_of::<pipeconnect_summary>();
        assert_eq!(pipeconnect_session_finish(s, &mut sum), PIPECONNECT_OK);
        assert_eq!(sum.verdict, PIPECONNECT_VERDICT_CONTINUE);
        assert!(sum.flags & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED != 0);
        assert!(sum.flags & PIPECONNECT_SUMMARY_CLEARTEXT_EARLY != 0);
        assert_eq!(sum.rcpt_accepted, 2);
        pipeconnect_session_free(s);
    }
}

/// The tracker as an MTA with its own SMTP engine calls it: learn a classic EHLO reply
/// held LF-joined without its last line end, plan an early transaction with an ignored
/// keyword, free the cache, then pass the replies of the flight.
#[test]
fn a_c_caller_tracks_a_connection_whose_replies_it_reads_itself() {
    use pipeconnect::ffi::tracker::*;
    const HELD: &[u8] = b"250-mx.example.org hello\n250-SIZE 1000000\n250-PIPELINING\n\
250-PIPECONNECT\n250-DSN\n250 8BITMIME";
    unsafe {
        let mut cache: *mut pipeconnect_cache = null_mut();
        assert_eq!(pipeconnect_cache_new(8, 0, &mut cache), PIPECONNECT_OK);
        let request = |rcpts: u32, ignored: *const c_char| pipeconnect_tracker_request {
            struct_size: std::mem::size_of::<pipeconnect_tracker_request>(),
            server: c"192.0.2.25".as_ptr(),
            port: 25,
            phase: PIPECONNECT_PHASE_CLEARTEXT,
            flags: PIPECONNECT_TRACKER_EARLY_ALLOWED,
            rcpt_count: rcpts,
            message_size: 300,
            relies_on: PIPECONNECT_EXT_SIZE | PIPECONNECT_EXT_DSN,
            required: 0,
            ignored_keywords: ignored,
            local: null(),
            ehlo_name: null(),
        };
        let new_plan = || pipeconnect_tracker_plan {
            struct_size: std::mem::size_of::<pipeconnect_tracker_plan>(),
            mode: 99,
            reason: 99,
            command_count: 0,
            extensions: 0,
            size_limit: 0,
        };
        let reply = |t: *mut pipeconnect_tracker, kind: u32, code: u32, text: &[u8]| {
            let mut step = pipeconnect_tracker_step {
                struct_size: std::mem::size_of::<pipeconnect_tracker_step>(),
                action: 99,
                verdict: 99,
                flags: 0,
                extensions: 0,
                size_limit: 0,
            };
            let ptr = if text.is_empty() {
                null()
            } else {
                text.as_ptr()
            };
            assert_eq!(
                pipeconnect_tracker_reply(t, kind, code, ptr, text.len(), &mut step),
                PIPECONNECT_OK
            );
            step
        };

        // Classic: the EHLO reply is learned.
        let mut t: *mut pipeconnect_tracker = null_mut();
        let mut plan = new_plan();
        let req = request(2, null());
        assert_eq!(
            pipeconnect_tracker_begin(cache, &req, &mut t, &mut plan, null_mut()),
            PIPECONNECT_OK
        );
        assert_eq!(plan.mode, PIPECONNECT_TRACKER_MODE_CLASSIC);
        let s = reply(t, PIPECONNECT_CMD_EHLO, 250, HELD);
        assert!(s.flags & PIPECONNECT_EVENT_CACHE_STORED != 0);
        pipeconnect_tracker_free(t);

        // Early, with DSN discarded; the cache freed before the tracker.
        let req = request(2, c"dsn".as_ptr());
        let mut plan = new_plan();
        assert_eq!(
            pipeconnect_tracker_begin(cache, &req, &mut t, &mut plan, null_mut()),
            PIPECONNECT_OK
        );
        pipeconnect_cache_free(cache);
        assert_eq!(plan.mode, PIPECONNECT_TRACKER_MODE_TRANSACTION);
        assert_eq!(plan.command_count, 5);
        assert_eq!(plan.extensions & PIPECONNECT_EXT_DSN, 0);
        for (kind, code) in [
            (PIPECONNECT_CMD_BANNER, 220),
            (PIPECONNECT_CMD_EHLO, 250),
            (PIPECONNECT_CMD_MAIL, 250),
            (PIPECONNECT_CMD_RCPT, 250),
            (PIPECONNECT_CMD_RCPT, 550),
            (PIPECONNECT_CMD_DATA, 354),
        ] {
            let s = reply(t, kind, code, HELD);
            assert_eq!(s.action, PIPECONNECT_TRACKER_ACTION_PROCEED);
        }
        let s = reply(t, PIPECONNECT_CMD_BODY, 250, &[]);
        assert!(s.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED != 0);
        pipeconnect_tracker_free(t);
    }
}
