//! One session: an intent, settings and a cache entry derived from the input, then server
//! bytes (raw, or reply lines and EHLO replies built from fuzzer choices) fed in
//! fuzzer-chosen splits, with every command the session releases taken as a caller would.
//!
//! Invariants checked on every event:
//! - replies are matched in order: each event answers the oldest command taken and not
//!   yet answered (the banner first), with that command's kind;
//! - MESSAGE_ACCEPTED only on the reply to the end of data or BDAT LAST, only with the
//!   code 250, only after a 250 to MAIL (and for DATA, a 354), and at most once;
//! - memory stays bounded: queued events and commands never exceed what the intent's
//!   commands can produce, and event text stays within EVENT_TEXT_MAX;
//! - the summary says the message was accepted exactly when an event did;
//! - no reply answers a command the caller had not taken (so had not sent) when the
//!   bytes were fed (finding S1, fixed: such a reply is `UnexpectedReply`);
//! - QUIT, planned where the session allows it, is answered like any other command;
//!   a 221 to an unplanned QUIT comes only once nothing else is awaited.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::policy::flight::Invalidation;
use pipeconnect::policy::{CommandKind, Settings};
use pipeconnect::session::event::{
    EVENT_AUTH_CHALLENGE, EVENT_MESSAGE_ACCEPTED, EVENT_TEXT_MAX, SUMMARY_MESSAGE_ACCEPTED,
};
use pipeconnect::session::{
    AuthIntent, Body, BodyMode, Event, Intent, PlannedCommand, Recipients, Session,
    AUTH_CHALLENGES_MAX,
};
use pipeconnect::{Cache, CacheConfig, Capabilities, ParseOptions, PeerKey, TlsState};
use pipeconnect_fuzz::{splits, Cursor};
use std::collections::VecDeque;
use std::sync::Arc;

/// `FUZZ_DEBUG=1`: print every command taken, every feed and every event.
fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}

const CODES: [u16; 24] = [
    220, 250, 251, 252, 354, 334, 235, 221, 421, 450, 451, 452, 454, 500, 501, 503, 530, 535, 550,
    552, 554, 200, 300, 599,
];

const EXTENSIONS: [&str; 14] = [
    "PIPELINING",
    "PIPECONNECT",
    "CHUNKING",
    "SIZE 1000000",
    "STARTTLS",
    "AUTH PLAIN LOGIN",
    "8BITMIME",
    "SMTPUTF8",
    "LIMITS RCPTMAX=2 MAILMAX=1",
    "X_PIPE_CONNECT",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "SIZE 10",
    "AUTH=LOGIN",
];

fn ehlo_reply(bits: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(b"250-mx.example.org hello\r\n");
    for (i, e) in EXTENSIONS.iter().enumerate() {
        if bits & (1 << i) != 0 {
            out.extend_from_slice(format!("250-{e}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"250 HELP\r\n");
}

struct Checker {
    taken: VecDeque<PlannedCommand>,
    banner_due: bool,
    mail_ok: bool,
    data_354: bool,
    accepted: bool,
    took: usize,
    starttls_ok: bool,
    /// The highest seq taken so far.
    taken_max: usize,
    /// For the queued events, oldest first: how many came from one feed, and
    /// `taken_max` when that feed was made.
    marks: VecDeque<(usize, usize)>,
}

impl Checker {
    fn event(&mut self, ev: &Event) {
        if debug() {
            eprintln!(
                "event {} {:?} {} flags={:#x} front={:?}",
                ev.seq,
                ev.kind,
                ev.code,
                ev.flags,
                self.taken.front().map(|c| c.seq)
            );
        }
        assert!(ev.text.len() <= EVENT_TEXT_MAX);
        let sent_upto = loop {
            match self.marks.front_mut() {
                Some((n, upto)) if *n > 0 => {
                    *n -= 1;
                    break *upto;
                }
                Some(_) => {
                    self.marks.pop_front();
                }
                None => panic!("an event from no feed: {ev:?}"),
            }
        };
        let untaken = ev.seq > sent_upto;
        match ev.kind {
            CommandKind::Mail if ev.code == 250 => self.mail_ok = true,
            CommandKind::Data if ev.code == 354 => self.data_354 = true,
            CommandKind::StartTls if ev.code == 220 => self.starttls_ok = true,
            _ => {}
        }
        // A 221 once the session is done and nothing is awaited is taken as the reply to
        // a QUIT the caller sent without planning it (src/session/quit.rs): the one
        // reply that may answer no command handed out.
        if untaken
            && ev.kind == CommandKind::Quit
            && ev.code == 221
            && !self.banner_due
            && self.taken.is_empty()
        {
            assert!(!ev.has(EVENT_MESSAGE_ACCEPTED), "accepted on QUIT: {ev:?}");
            return;
        }
        // Finding S1 (fixed): a reply to a command not yet handed out is refused.
        assert!(!untaken, "a reply to a command not taken when fed: {ev:?}");
        let kind = if self.banner_due {
            assert_eq!(ev.seq, 0, "the first reply answers the banner: {ev:?}");
            assert_eq!(ev.kind, CommandKind::Banner);
            self.banner_due = false;
            CommandKind::Banner
        } else {
            let cmd = *self
                .taken
                .front()
                .unwrap_or_else(|| panic!("an event for no command taken: {ev:?}"));
            assert_eq!(ev.seq, cmd.seq, "out of order: {ev:?} for {cmd:?}");
            assert_eq!(ev.kind, cmd.kind, "wrong kind: {ev:?} for {cmd:?}");
            if !ev.has(EVENT_AUTH_CHALLENGE) {
                self.taken.pop_front();
            }
            cmd.kind
        };
        if ev.has(EVENT_MESSAGE_ACCEPTED) {
            assert!(
                matches!(kind, CommandKind::Body | CommandKind::BdatLast),
                "accepted on {kind:?}"
            );
            assert_eq!(ev.code, 250, "accepted on code {}", ev.code);
            assert!(self.mail_ok, "accepted without a 250 to MAIL");
            if kind == CommandKind::Body {
                assert!(self.data_354, "accepted body without a 354 to DATA");
            }
            assert!(!self.accepted, "accepted twice");
        }
        self.accepted |= ev.has(EVENT_MESSAGE_ACCEPTED);
    }

    fn take(&mut self, s: &mut Session) {
        for cmd in s.next_commands() {
            self.took += 1;
            self.taken_max = self.taken_max.max(cmd.seq);
            if debug() {
                eprintln!("take {} {:?}", cmd.seq, cmd.kind);
            }
            self.taken.push_back(cmd);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let a = c.u8();
    let b = c.u8();
    let settings = Settings {
        early_allowed: a & 1 != 0,
        legacy_keywords: a & 2 != 0,
        invalidation: if a & 4 != 0 {
            Invalidation::Relaxed
        } else {
            Invalidation::Strict
        },
        max_first_flight_body: if a & 8 != 0 { c.u32() as u64 } else { 65536 },
    };
    let tls = if a & 16 != 0 {
        TlsState::Encrypted
    } else {
        TlsState::Cleartext
    };
    let rcpt_count = match c.u8() {
        255 => 1000,
        n => 1 + (n % 5) as usize,
    };
    let intent = Intent {
        ehlo_name: (b & 1 == 0).then(|| "client.example.net".to_string()),
        starttls: b & 2 != 0 && tls == TlsState::Cleartext,
        auth: (b & 4 != 0).then(|| AuthIntent {
            mechanism: if b & 8 != 0 { "PLAIN" } else { "LOGIN" }.to_string(),
            initial_response: b & 16 != 0,
            required: b & 32 != 0,
        }),
        mail_from: Some("sender@example.net".to_string()),
        rcpts: if b & 64 != 0 && rcpt_count < 10 {
            Recipients::Addresses(
                (0..rcpt_count)
                    .map(|i| format!("r{i}@example.org"))
                    .collect(),
            )
        } else {
            Recipients::Count(rcpt_count)
        },
        body: Body {
            size: c.u16() as u64,
            mode: if b & 128 != 0 {
                BodyMode::Data
            } else {
                BodyMode::Auto
            },
        },
    };
    let cache = Arc::new(Cache::in_memory(CacheConfig::default()));
    let key = PeerKey::parse("192.0.2.25", 25, tls).expect("key");
    // What the cache knows: nothing, or an EHLO reply built from fuzzer choices, for the
    // key's state (and the cleartext one).
    let learn = c.u16();
    if learn & 0x8000 == 0 {
        let mut r = Vec::new();
        ehlo_reply(learn, &mut r);
        let opts = ParseOptions {
            legacy_keywords: settings.legacy_keywords,
        };
        if let Ok(caps) = Capabilities::parse_ehlo(&r, opts) {
            cache.learn(&key, caps.clone());
            cache.learn(&key.in_state(TlsState::Encrypted), caps);
        }
    }
    let Ok(mut s) = Session::begin(cache.clone(), key, intent, settings) else {
        return;
    };
    let mut ck = Checker {
        taken: VecDeque::new(),
        banner_due: true,
        mail_ok: false,
        data_354: false,
        accepted: false,
        took: 0,
        starttls_ok: false,
        taken_max: 0,
        marks: VecDeque::new(),
    };
    let bound_events = 1 + rcpt_count + 16 + AUTH_CHALLENGES_MAX as usize;
    let bound_cmds = rcpt_count + 16;
    let mut buf = Vec::new();
    for _ in 0..64 {
        if c.is_empty() {
            break;
        }
        ck.take(&mut s);
        assert!(s.pending_commands() == 0);
        let op = c.u8();
        buf.clear();
        match op % 8 {
            0..=2 => buf.extend_from_slice(c.slice(300)),
            3..=5 => {
                let code = if op & 0x80 != 0 {
                    c.u16() % 1000
                } else {
                    CODES[c.u8() as usize % CODES.len()]
                };
                let sep = if op & 0x40 != 0 { '-' } else { ' ' };
                buf.extend_from_slice(format!("{code:03}{sep}2.0.0 text\r\n").as_bytes());
            }
            6 => ehlo_reply(c.u16(), &mut buf),
            _ => {
                if ck.starttls_ok {
                    let _ = s.tls_started();
                    ck.starttls_ok = false;
                } else {
                    // QUIT: refused (BadState) until nothing more can follow it.
                    let _ = s.quit();
                }
                continue;
            }
        }
        let lens = c.slice(8);
        let mut failed = false;
        for piece in splits(&buf, lens) {
            let before = s.pending_events();
            let r = s.feed(piece);
            ck.marks
                .push_back((s.pending_events() - before, ck.taken_max));
            if debug() {
                eprintln!("feed {:?} -> {r:?}", String::from_utf8_lossy(piece));
            }
            assert!(s.pending_events() <= bound_events, "events grow");
            assert!(s.pending_commands() <= bound_cmds, "commands grow");
            if op & 0x20 == 0 {
                while let Some(ev) = s.next_event() {
                    ck.event(&ev);
                }
                ck.take(&mut s);
            }
            if r.is_err() {
                failed = true;
                break;
            }
        }
        while let Some(ev) = s.next_event() {
            ck.event(&ev);
        }
        if failed {
            break;
        }
    }
    while let Some(ev) = s.next_event() {
        ck.event(&ev);
    }
    let sum = s.finish();
    assert_eq!(
        sum.has(SUMMARY_MESSAGE_ACCEPTED),
        ck.accepted,
        "summary and events disagree: {sum:?}"
    );
    assert!(s.feed(b"250 ok\r\n").is_err(), "fed after finish");
    let _ = ck.took;
});
