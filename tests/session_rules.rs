//! The rules of docs/RULES.md through the session helper, against a scripted server, on
//! every kind of connection: plain cleartext, STARTTLS (the transaction in the encrypted
//! phase) and TLS on connect, each with an IPv4 and an IPv6 key; strict and relaxed
//! where they differ.

use pipeconnect::policy::{CommandKind, Invalidation, Settings, StopReason, Verdict};
use pipeconnect::session::event::*;
use pipeconnect::session::{
    AuthIntent, BodyMode, Event, Intent, PlannedCommand, Recipients, Session, SessionError,
};
use pipeconnect::{Cache, CacheConfig, Capabilities, Extension, ParseOptions, PeerKey, TlsState};
use std::sync::Arc;

const NOW: u64 = 1_700_000_000;

// ---- the scripted server ----

fn ehlo_reply(ext: &[&str]) -> String {
    let mut r = String::from("250-mx.example.org Hello client.example.net\r\n");
    for (i, l) in ext.iter().enumerate() {
        let sep = if i + 1 == ext.len() { ' ' } else { '-' };
        r.push_str(&format!("250{sep}{l}\r\n"));
    }
    if ext.is_empty() {
        r = "250 mx.example.org Hello\r\n".into();
    }
    r
}

const CLEAR: &[&str] = &[
    "SIZE 52428800",
    "8BITMIME",
    "PIPELINING",
    "PIPECONNECT",
    "CHUNKING",
    "STARTTLS",
    "HELP",
];
const ENCRYPTED: &[&str] = &[
    "SIZE 52428800",
    "8BITMIME",
    "PIPELINING",
    "PIPECONNECT",
    "AUTH PLAIN LOGIN",
    "CHUNKING",
    "HELP",
];

/// Answers each command in order; `overrides` replace the default reply for the first
/// command of a kind (and recipient) they match, once.
struct Server {
    clear: Vec<String>,
    encrypted_ext: Vec<String>,
    encrypted: bool,
    banner: String,
    overrides: Vec<(CommandKind, Option<usize>, String)>,
    /// Close after the banner (as Exim does after `554 SMTP synchronization error`).
    close_after_banner: bool,
    closed: bool,
}

impl Server {
    fn new() -> Server {
        Server {
            clear: CLEAR.iter().map(|s| s.to_string()).collect(),
            encrypted_ext: ENCRYPTED.iter().map(|s| s.to_string()).collect(),
            encrypted: false,
            banner: "220 mx.example.org ESMTP\r\n".into(),
            overrides: Vec::new(),
            close_after_banner: false,
            closed: false,
        }
    }

    fn with(mut self, kind: CommandKind, rcpt: Option<usize>, reply: &str) -> Server {
        self.overrides.push((kind, rcpt, reply.to_string()));
        self
    }

    fn ext(&self) -> Vec<&str> {
        let v = if self.encrypted {
            &self.encrypted_ext
        } else {
            &self.clear
        };
        v.iter().map(String::as_str).collect()
    }

    fn connect(&mut self) -> Vec<u8> {
        if self.close_after_banner {
            self.closed = true;
        }
        self.banner.clone().into_bytes()
    }

    fn answer(&mut self, cmds: &[PlannedCommand]) -> Vec<u8> {
        let mut out = String::new();
        for c in cmds {
            if self.closed {
                break;
            }
            if let Some(i) = self
                .overrides
                .iter()
                .position(|(k, r, _)| *k == c.kind && (r.is_none() || *r == c.rcpt_index))
            {
                out.push_str(&self.overrides.remove(i).2);
                continue;
            }
            out.push_str(&match c.kind {
                CommandKind::Ehlo => ehlo_reply(&self.ext()),
                CommandKind::StartTls => "220 2.0.0 Ready to start TLS\r\n".into(),
                CommandKind::Auth => "235 2.7.0 Authentication succeeded\r\n".into(),
                CommandKind::Mail => "250 2.1.0 OK\r\n".into(),
                CommandKind::Rcpt => "250 2.1.5 Accepted\r\n".into(),
                CommandKind::Data => "354 Enter message\r\n".into(),
                CommandKind::BdatLast | CommandKind::Body => "250 2.0.0 OK id=1abc\r\n".into(),
                CommandKind::Quit => "221 2.0.0 Bye\r\n".into(),
                CommandKind::Banner => unreachable!(),
            });
        }
        out.into_bytes()
    }
}

// ---- connections ----

#[derive(Clone)]
struct Conn {
    name: &'static str,
    key: PeerKey,
    starttls: bool,
}

impl Conn {
    /// The key of the TLS phase that carries the transaction.
    fn tx_key(&self) -> PeerKey {
        if self.starttls {
            self.key.in_state(TlsState::Encrypted)
        } else {
            self.key.clone()
        }
    }
    fn tls_on_connect(&self) -> bool {
        self.key.tls() == TlsState::Encrypted
    }
    fn intent(&self, rcpts: usize, size: u64) -> Intent {
        let mut i = Intent::new("client.example.net", rcpts, size);
        i.starttls = self.starttls;
        i.mail_from = Some("sender@example.net".into());
        i.rcpts = Recipients::Addresses((0..rcpts).map(|n| format!("r{n}@example.org")).collect());
        i
    }
}

fn conns() -> Vec<Conn> {
    let k = |a: &str, port, tls| PeerKey::parse(a, port, tls).unwrap();
    vec![
        Conn {
            name: "plain v4",
            key: k("192.0.2.25", 25, TlsState::Cleartext),
            starttls: false,
        },
        Conn {
            name: "plain v6",
            key: k("2001:db8::25", 25, TlsState::Cleartext),
            starttls: false,
        },
        Conn {
            name: "starttls v4",
            key: k("192.0.2.26", 25, TlsState::Cleartext),
            starttls: true,
        },
        Conn {
            name: "starttls v6",
            key: k("2001:db8::26", 587, TlsState::Cleartext),
            starttls: true,
        },
        Conn {
            name: "tls-on-connect v4",
            key: k("192.0.2.27", 465, TlsState::Encrypted),
            starttls: false,
        },
        Conn {
            name: "tls-on-connect v6",
            key: k("2001:db8::27", 465, TlsState::Encrypted),
            starttls: false,
        },
    ]
}

fn new_cache() -> Arc<Cache> {
    let c = Arc::new(Cache::in_memory(CacheConfig::default()));
    c.clock().set(NOW);
    c
}

fn caps(ext: &[&str]) -> Capabilities {
    Capabilities::parse_ehlo(ehlo_reply(ext).as_bytes(), ParseOptions::default()).unwrap()
}

/// Cache what the default server says, in every TLS state the connection uses.
fn prime(cache: &Cache, c: &Conn) {
    if !c.tls_on_connect() {
        cache.learn(&c.key, caps(CLEAR));
    }
    if c.starttls || c.tls_on_connect() {
        cache.learn(&c.key.in_state(TlsState::Encrypted), caps(ENCRYPTED));
    }
}

fn server_for(c: &Conn) -> Server {
    let mut s = Server::new();
    s.encrypted = c.tls_on_connect();
    s
}

fn kinds(cmds: &[PlannedCommand]) -> Vec<CommandKind> {
    cmds.iter().map(|c| c.kind).collect()
}

use CommandKind::{BdatLast as BDAT, Data as DATA, Ehlo as EHLO, Mail as MAIL, Rcpt as RCPT};

// ---- the driver ----

struct Drive {
    s: Session,
    srv: Server,
    inbox: Vec<u8>,
    events: Vec<Event>,
    flights: Vec<Vec<PlannedCommand>>,
}

impl Drive {
    fn begin(
        cache: &Arc<Cache>,
        c: &Conn,
        intent: Intent,
        settings: Settings,
        mut srv: Server,
    ) -> Drive {
        let s = Session::begin(cache.clone(), c.key.clone(), intent, settings).unwrap();
        let inbox = srv.connect();
        Drive {
            s,
            srv,
            inbox,
            events: Vec::new(),
            flights: Vec::new(),
        }
    }

    /// Send what may go, feed what came back; false when nothing moved.
    fn step(&mut self) -> bool {
        let cmds = self.s.next_commands();
        if !cmds.is_empty() {
            self.inbox.extend(self.srv.answer(&cmds));
            self.flights.push(cmds);
        }
        if self.inbox.is_empty() {
            return false;
        }
        let bytes = std::mem::take(&mut self.inbox);
        self.s.feed(&bytes).unwrap();
        let mut tls = false;
        while let Some(e) = self.s.next_event() {
            tls |= e.kind == CommandKind::StartTls && e.verdict == Verdict::Continue;
            self.events.push(e);
        }
        if tls {
            self.s.tls_started().unwrap();
            self.srv.encrypted = true;
        }
        true
    }

    fn run(mut self) -> (Drive, Summary) {
        while self.step() {}
        let sum = self.s.finish();
        (self, sum)
    }

    /// The flights of the transaction's TLS phase (after the STARTTLS flight, if any).
    fn tx_flights(&self) -> Vec<Vec<CommandKind>> {
        let start = self
            .flights
            .iter()
            .position(|f| f.iter().any(|c| c.kind == CommandKind::StartTls))
            .map_or(0, |i| i + 1);
        self.flights[start..].iter().map(|f| kinds(f)).collect()
    }

    fn event(&self, kind: CommandKind) -> &Event {
        self.events.iter().find(|e| e.kind == kind).expect("event")
    }

    fn rcpt_event(&self, i: usize) -> &Event {
        self.events
            .iter()
            .find(|e| e.kind == CommandKind::Rcpt && e.rcpt_index == Some(i))
            .expect("rcpt event")
    }
}

fn run(
    cache: &Arc<Cache>,
    c: &Conn,
    intent: Intent,
    settings: Settings,
    srv: Server,
) -> (Drive, Summary) {
    Drive::begin(cache, c, intent, settings, srv).run()
}

// ---- rules ----

#[test]
fn rule_nothing_cached_runs_classic_and_learns() {
    for c in conns() {
        let cache = new_cache();
        let (d, sum) = run(
            &cache,
            &c,
            c.intent(2, 2048),
            Settings::early(),
            server_for(&c),
        );
        assert!(d.flights[0].iter().all(|p| !p.early), "{}", c.name);
        assert_eq!(
            d.flights[0].len(),
            1,
            "{}: classic starts with EHLO alone",
            c.name
        );
        assert!(d.tx_flights().iter().all(|f| !f.is_empty()));
        assert_eq!(sum.verdict, Verdict::Continue, "{}", c.name);
        assert!(sum.has(SUMMARY_MESSAGE_ACCEPTED) && sum.has(SUMMARY_CACHE_STORED));
        assert!(!sum.has(SUMMARY_CLEARTEXT_EARLY) && !sum.has(SUMMARY_ENCRYPTED_EARLY));
        assert_eq!(sum.rcpt_accepted, 2);
        assert!(cache.lookup(&c.tx_key()).is_some(), "{}: learned", c.name);
        if c.starttls {
            assert!(
                cache.lookup(&c.key).is_some(),
                "{}: cleartext learned too",
                c.name
            );
        }
    }
}

/// Everything cached: the transaction is one flight, replies in order, one group.
#[test]
fn rule_cached_connection_sends_one_flight_and_checks_replies_in_order() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let (d, sum) = run(
            &cache,
            &c,
            c.intent(2, 2048),
            Settings::early(),
            server_for(&c),
        );
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, MAIL, RCPT, RCPT, BDAT]],
            "{}",
            c.name
        );
        assert!(d.flights.iter().flatten().all(|p| p.early), "{}", c.name);
        if c.starttls {
            assert_eq!(kinds(&d.flights[0]), vec![EHLO, CommandKind::StartTls]);
        }
        let seqs: Vec<usize> = d.events.iter().map(|e| e.seq).collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "{}: events in command order", c.name);
        assert_eq!(d.events[0].kind, CommandKind::Banner);
        assert!(d.events.iter().all(|e| e.verdict == Verdict::Continue));
        assert_eq!(sum.verdict, Verdict::Continue);
        assert_eq!(sum.groups, if c.starttls { 2 } else { 1 }, "{}", c.name);
        assert!(sum.has(SUMMARY_MESSAGE_ACCEPTED));
        assert!(!sum.has(SUMMARY_CACHE_INVALIDATED) && !sum.has(SUMMARY_CACHE_STORED));
    }
}

#[test]
fn rule_cleartext_info_not_used_after_starttls() {
    for c in conns().into_iter().filter(|c| c.starttls) {
        let cache = new_cache();
        cache.learn(&c.key, caps(CLEAR));
        let (d, sum) = run(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::early(),
            server_for(&c),
        );
        assert!(
            d.flights[0].iter().all(|p| p.early),
            "{}: cleartext flight is early",
            c.name
        );
        assert_eq!(
            d.tx_flights()[0],
            vec![EHLO],
            "{}: encrypted phase classic",
            c.name
        );
        assert!(d.flights[1].iter().all(|p| !p.early));
        assert!(sum.has(SUMMARY_CLEARTEXT_EARLY) && !sum.has(SUMMARY_ENCRYPTED_EARLY));
        // It learned the encrypted state for next time, under the encrypted key.
        assert!(cache.lookup(&c.tx_key()).is_some());
    }
}

#[test]
fn rule_cleartext_info_not_used_on_port_465() {
    for c in conns().into_iter().filter(Conn::tls_on_connect) {
        let cache = new_cache();
        cache.learn(&c.key.in_state(TlsState::Cleartext), caps(CLEAR));
        let s = Session::begin(
            cache.clone(),
            c.key.clone(),
            c.intent(1, 100),
            Settings::early(),
        )
        .unwrap();
        assert_eq!(s.flight().reason, StopReason::NoEntry, "{}", c.name);
        assert_eq!(s.flight().allowed, 0);
    }
}

#[test]
fn rule_encrypted_info_needs_cleartext_early_after_starttls() {
    for c in conns().into_iter().filter(|c| c.starttls) {
        let cache = new_cache();
        cache.learn(&c.tx_key(), caps(ENCRYPTED));
        let mut d = Drive::begin(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::early(),
            server_for(&c),
        );
        assert_eq!(d.s.flight().reason, StopReason::NoEntry);
        while d.s.phase() != pipeconnect::policy::ConnPhase::AfterStartTls {
            assert!(d.step());
        }
        assert_eq!(
            d.s.flight().reason,
            StopReason::EncryptedWithoutCleartextEarly,
            "{}",
            c.name
        );
        let (d, sum) = d.run();
        assert_eq!(d.tx_flights()[0], vec![EHLO]);
        assert_eq!(sum.verdict, Verdict::Continue);
    }
}

#[test]
fn rule_tls_on_connect_uses_encrypted_info_alone() {
    for c in conns().into_iter().filter(Conn::tls_on_connect) {
        let cache = new_cache();
        cache.learn(&c.key, caps(ENCRYPTED));
        let (d, sum) = run(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::early(),
            server_for(&c),
        );
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, MAIL, RCPT, BDAT]],
            "{}",
            c.name
        );
        assert!(sum.has(SUMMARY_ENCRYPTED_EARLY));
    }
}

/// The server dropped PIPECONNECT: the entry goes, and what was not yet sent goes
/// classically (here the recipients beyond the cached RCPTMAX, released after the EHLO
/// reply, not early). After STARTTLS nothing goes early even with an encrypted entry.
#[test]
fn rule_pipeconnect_gone_invalidates_and_rest_is_classic() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let limited: Vec<&str> = CLEAR.iter().chain(&["LIMITS RCPTMAX=1"]).copied().collect();
        let limited_enc: Vec<&str> = ENCRYPTED
            .iter()
            .chain(&["LIMITS RCPTMAX=1"])
            .copied()
            .collect();
        cache.learn(
            &c.tx_key(),
            caps(if c.tx_key().tls() == TlsState::Cleartext {
                &limited
            } else {
                &limited_enc
            }),
        );
        let mut srv = server_for(&c);
        let drop = |v: &[String]| {
            v.iter()
                .filter(|l| *l != "PIPECONNECT")
                .cloned()
                .collect::<Vec<_>>()
        };
        srv.clear = drop(&srv.clear);
        srv.encrypted_ext = drop(&srv.encrypted_ext);
        let (d, sum) = run(&cache, &c, c.intent(3, 100), Settings::early(), srv);
        let ehlo = d.event(EHLO);
        assert!(
            ehlo.has(EVENT_CACHE_INVALIDATED) && ehlo.has(EVENT_EARLY_STOPPED),
            "{}",
            c.name
        );
        assert_eq!(ehlo.verdict, Verdict::Continue);
        assert!(
            cache.lookup(&c.key.in_state(c.key.tls())).is_none(),
            "{}: entry gone",
            c.name
        );
        let tx = d.tx_flights();
        if c.starttls {
            assert_eq!(
                tx[0],
                vec![EHLO],
                "{}: withdrawn for the rest of the connection",
                c.name
            );
            assert!(d.flights[1].iter().all(|p| !p.early));
            // The encrypted EHLO reply lacks PIPECONNECT too: that entry goes as well.
            assert!(cache.lookup(&c.tx_key()).is_none());
        } else {
            assert_eq!(tx[0], vec![EHLO, MAIL, RCPT], "{}", c.name);
            assert_eq!(
                tx[1],
                vec![RCPT, RCPT, BDAT],
                "{}: the rest, classic",
                c.name
            );
            assert!(d.flights[1].iter().all(|p| !p.early));
        }
        assert_eq!(sum.verdict, Verdict::Continue);
        assert_eq!(sum.rcpt_accepted, 3);
        assert!(sum.has(SUMMARY_EARLY_STOPPED));
    }
}

#[test]
fn rule_554_banner_after_early_flight_reconnects_and_invalidates() {
    for mode in [Invalidation::Strict, Invalidation::Relaxed] {
        for c in conns() {
            let cache = new_cache();
            prime(&cache, &c);
            let mut srv = server_for(&c);
            srv.banner = "554 SMTP synchronization error\r\n".into();
            srv.close_after_banner = true;
            let settings = Settings {
                invalidation: mode,
                ..Settings::early()
            };
            let (d, sum) = run(&cache, &c, c.intent(2, 100), settings, srv);
            let b = d.event(CommandKind::Banner);
            assert_eq!(b.verdict, Verdict::Reconnect, "{} {mode:?}", c.name);
            assert!(b.has(EVENT_CACHE_INVALIDATED) && b.has(EVENT_CONNECTION_DONE));
            assert_eq!(sum.verdict, Verdict::Reconnect);
            assert_eq!(sum.rcpt_rejected, 0, "not message-specific");
            let banner_key = c.key.clone();
            assert!(
                cache.lookup(&banner_key).is_none(),
                "{}: entry gone",
                c.name
            );
            // The reconnection is classic.
            let s =
                Session::begin(cache.clone(), c.key.clone(), c.intent(2, 100), settings).unwrap();
            assert_eq!(s.flight().reason, StopReason::NoEntry);
        }
    }
}

#[test]
fn rule_missing_banner_after_early_flight_invalidates() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut s = Session::begin(
            cache.clone(),
            c.key.clone(),
            c.intent(1, 100),
            Settings::early(),
        )
        .unwrap();
        let taken = s.next_commands();
        assert!(!taken.is_empty());
        // A body that went out may be held by the server: back to the queue, never out
        // again at once; without one, reconnect classic.
        let body = taken
            .iter()
            .any(|c| matches!(c.kind, CommandKind::BdatLast | CommandKind::Body));
        let sum = s.finish();
        let want = if body {
            Verdict::Tempfail
        } else {
            Verdict::Reconnect
        };
        assert_eq!(sum.verdict, want, "{}", c.name);
        assert!(sum.has(SUMMARY_CACHE_INVALIDATED));
        assert!(cache.lookup(&c.key).is_none());
        assert_eq!(s.feed(b"220 late\r\n"), Err(SessionError::BadState));

        // Only the first command taken: reconnect.
        prime(&cache, &c);
        let mut s = Session::begin(
            cache.clone(),
            c.key.clone(),
            c.intent(1, 100),
            Settings::early(),
        )
        .unwrap();
        assert_eq!(s.take_commands(1).len(), 1);
        assert_eq!(s.finish().verdict, Verdict::Reconnect, "{}", c.name);
    }
}

#[test]
fn rule_failed_ehlo_after_early_flight_reconnects_and_invalidates() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c)
            .with(EHLO, None, "550 5.7.1 go away\r\n")
            .with(MAIL, None, "503 5.5.1 EHLO first\r\n");
        let (d, sum) = run(&cache, &c, c.intent(1, 100), Settings::early(), srv);
        let e = d.event(EHLO);
        assert_eq!(e.verdict, Verdict::Reconnect, "{}", c.name);
        assert!(e.has(EVENT_CACHE_INVALIDATED) && e.has(EVENT_CONNECTION_DONE));
        if !c.starttls {
            let m = d.event(MAIL);
            assert!(m.has(EVENT_FOLLOWS_FAILURE));
            assert_eq!(m.verdict, Verdict::Reconnect);
        }
        assert_eq!(sum.verdict, Verdict::Reconnect);
        assert!(cache.lookup(&c.key).is_none());
    }
}

#[test]
fn rule_early_starttls_error_invalidates_and_reconnects() {
    for c in conns().into_iter().filter(|c| c.starttls) {
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c).with(
            CommandKind::StartTls,
            None,
            "454 4.7.0 TLS not available\r\n",
        );
        let (d, sum) = run(&cache, &c, c.intent(1, 100), Settings::early(), srv);
        let e = d.event(CommandKind::StartTls);
        assert_eq!(e.verdict, Verdict::Reconnect, "{}", c.name);
        assert!(e.has(EVENT_CACHE_INVALIDATED));
        assert_eq!(sum.verdict, Verdict::Reconnect);
        assert!(cache.lookup(&c.key).is_none());
        assert!(
            cache.lookup(&c.tx_key()).is_some(),
            "the encrypted entry is another key"
        );
    }
}

#[test]
fn rule_rejected_rcpt_invalidates_strict_not_relaxed() {
    for mode in [Invalidation::Strict, Invalidation::Relaxed] {
        for c in conns() {
            let cache = new_cache();
            prime(&cache, &c);
            let srv = server_for(&c).with(RCPT, Some(1), "550 5.1.1 No such user\r\n");
            let settings = Settings {
                invalidation: mode,
                ..Settings::early()
            };
            let (d, sum) = run(&cache, &c, c.intent(2, 100), settings, srv);
            let r = d.rcpt_event(1);
            assert_eq!(r.verdict, Verdict::Rejected, "{} {mode:?}", c.name);
            let gone = cache.lookup(&c.tx_key()).is_none();
            assert_eq!(gone, mode == Invalidation::Strict, "{} {mode:?}", c.name);
            assert_eq!(r.has(EVENT_CACHE_INVALIDATED), mode == Invalidation::Strict);
            assert_eq!(sum.verdict, Verdict::Continue);
            assert_eq!((sum.rcpt_accepted, sum.rcpt_rejected), (1, 1));
        }
    }
}

/// Greylisting is why EP-01 relaxed the rule.
#[test]
fn rule_greylisting_tempfail_invalidates_strict_not_relaxed() {
    for mode in [Invalidation::Strict, Invalidation::Relaxed] {
        for c in conns() {
            let cache = new_cache();
            prime(&cache, &c);
            let srv = server_for(&c).with(RCPT, Some(0), "451 4.7.1 Greylisted, try later\r\n");
            let settings = Settings {
                invalidation: mode,
                ..Settings::early()
            };
            let (d, sum) = run(&cache, &c, c.intent(1, 100), settings, srv);
            assert_eq!(d.rcpt_event(0).verdict, Verdict::Tempfail);
            // The body was refused because of that: it follows the failure.
            let b = d.event(BDAT);
            assert!(b.has(EVENT_FOLLOWS_FAILURE), "{}", c.name);
            assert_eq!(b.verdict, Verdict::Tempfail);
            assert!(!b.has(EVENT_MESSAGE_ACCEPTED));
            assert_eq!(
                cache.lookup(&c.tx_key()).is_none(),
                mode == Invalidation::Strict
            );
            assert_eq!(sum.rcpt_deferred, 1);
            assert_eq!(sum.verdict, Verdict::Tempfail);
        }
    }
}

#[test]
fn rule_classic_transaction_errors_never_invalidate() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let settings = Settings {
            early_allowed: false,
            ..Settings::default()
        };
        let srv = server_for(&c).with(RCPT, Some(0), "550 5.1.1 No such user\r\n");
        let (d, _) = run(&cache, &c, c.intent(2, 100), settings, srv);
        assert!(!d.rcpt_event(0).has(EVENT_CACHE_INVALIDATED));
        assert!(cache.lookup(&c.tx_key()).is_some(), "{}", c.name);
    }
}

fn with_auth(mut i: Intent, mech: &str, ir: bool, required: bool) -> Intent {
    i.auth = Some(AuthIntent {
        mechanism: mech.into(),
        initial_response: ir,
        required,
    });
    i
}

/// CHUNKING cached: EHLO + AUTH PLAIN (initial response) + MAIL + 2 RCPT + BDAT LAST
/// with a 2 KiB body is one flight.
#[test]
fn rule_chunking_one_flight_2k_body() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        if !c.starttls && !c.tls_on_connect() {
            cache.learn(&c.key, caps(ENCRYPTED)); // AUTH offered in cleartext here
        }
        let intent = with_auth(c.intent(2, 2048), "PLAIN", true, true);
        let (d, sum) = run(
            &cache,
            &c,
            intent,
            Settings::early(),
            server_for(&c).with(EHLO, None, &ehlo_reply(ENCRYPTED)),
        );
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, CommandKind::Auth, MAIL, RCPT, RCPT, BDAT]],
            "{}",
            c.name
        );
        assert_eq!(d.flights.last().unwrap().last().unwrap().size, 2048);
        assert_eq!(sum.verdict, Verdict::Continue);
        assert!(sum.has(SUMMARY_MESSAGE_ACCEPTED));
    }
}

/// A 1 MiB body: the flight ends DATA-style, before the body; the body goes as BDAT
/// LAST once the RCPT replies are in and one accepted.
#[test]
fn rule_1mib_body_ends_data_style() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut d = Drive::begin(
            &cache,
            &c,
            c.intent(2, 1 << 20),
            Settings::early(),
            server_for(&c),
        );
        if c.starttls {
            while d.s.phase() != pipeconnect::policy::ConnPhase::AfterStartTls {
                assert!(d.step());
            }
        }
        assert_eq!(
            d.s.flight().reason,
            StopReason::BodyTooLargeForOneFlight,
            "{}",
            c.name
        );
        let (d, sum) = d.run();
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, MAIL, RCPT, RCPT], vec![BDAT]],
            "{}",
            c.name
        );
        assert_eq!(d.flights.last().unwrap()[0].size, 1 << 20);
        assert_eq!(sum.verdict, Verdict::Continue);

        // Every recipient refused: the body never goes.
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c).with(RCPT, Some(0), "550 5.1.1 no\r\n").with(
            RCPT,
            Some(1),
            "550 5.1.1 no\r\n",
        );
        let (d, sum) = run(&cache, &c, c.intent(2, 1 << 20), Settings::early(), srv);
        assert!(
            d.flights.iter().flatten().all(|p| p.kind != BDAT),
            "{}",
            c.name
        );
        assert_eq!(sum.verdict, Verdict::Rejected);
        assert_eq!(sum.rcpt_rejected, 2);
        assert_eq!(sum.replies_outstanding, 0);
    }
}

/// Without CHUNKING the flight ends with DATA; the body goes after the 354.
#[test]
fn rule_data_ends_flight_and_the_body_waits_for_354() {
    for c in conns() {
        let cache = new_cache();
        let no_chunking = |v: &[&str]| {
            v.iter()
                .filter(|l| **l != "CHUNKING")
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let clear = no_chunking(CLEAR);
        let enc = no_chunking(ENCRYPTED);
        if !c.tls_on_connect() {
            cache.learn(
                &c.key,
                caps(&clear.iter().map(String::as_str).collect::<Vec<_>>()),
            );
        }
        cache.learn(
            &c.key.in_state(TlsState::Encrypted),
            caps(&enc.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        let mut srv = server_for(&c);
        srv.clear = clear;
        srv.encrypted_ext = enc;
        let (d, sum) = run(&cache, &c, c.intent(2, 100), Settings::early(), srv);
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, MAIL, RCPT, RCPT, DATA], vec![CommandKind::Body]],
            "{}",
            c.name
        );
        let end = d.event(CommandKind::Body);
        assert!(end.has(EVENT_MESSAGE_ACCEPTED));
        assert_eq!(sum.verdict, Verdict::Continue);
    }
}

#[test]
fn rule_body_mode_data_never_uses_bdat() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut i = c.intent(1, 100);
        i.body.mode = BodyMode::Data;
        let (d, _) = run(&cache, &c, i, Settings::early(), server_for(&c));
        assert_eq!(
            d.tx_flights()[0],
            vec![EHLO, MAIL, RCPT, DATA],
            "{}",
            c.name
        );
    }
}

#[test]
fn rule_rcptmax_stops_flight() {
    for c in conns() {
        for fresh_max in [2, 10] {
            let cache = new_cache();
            prime(&cache, &c);
            let base = if c.tx_key().tls() == TlsState::Cleartext {
                CLEAR
            } else {
                ENCRYPTED
            };
            let cached: Vec<&str> = base.iter().chain(&["LIMITS RCPTMAX=2"]).copied().collect();
            cache.learn(&c.tx_key(), caps(&cached));
            let fresh_limit = format!("LIMITS RCPTMAX={fresh_max}");
            let fresh: Vec<&str> = base.iter().copied().chain([fresh_limit.as_str()]).collect();
            let srv = server_for(&c).with(EHLO, None, &ehlo_reply(&fresh));
            let srv = if c.starttls {
                // The cleartext EHLO keeps its own reply; override the encrypted one.
                let mut s = server_for(&c);
                s.encrypted_ext = fresh.iter().map(|s| s.to_string()).collect();
                s
            } else {
                srv
            };
            let (d, sum) = run(&cache, &c, c.intent(5, 100), Settings::early(), srv);
            let tx = d.tx_flights();
            assert_eq!(
                tx[0],
                vec![EHLO, MAIL, RCPT, RCPT],
                "{}: stops at the cached limit",
                c.name
            );
            if fresh_max == 2 {
                assert_eq!(tx[1], vec![BDAT], "{}", c.name);
                assert_eq!(sum.rcpt_not_attempted, 3, "{}", c.name);
            } else {
                assert_eq!(tx[1], vec![RCPT, RCPT, RCPT, BDAT], "{}", c.name);
                assert_eq!(sum.rcpt_not_attempted, 0);
            }
            assert_eq!(sum.verdict, Verdict::Continue);
        }
    }
}

#[test]
fn rule_auth_plain_initial_response_continues() {
    for c in conns()
        .into_iter()
        .filter(|c| c.tx_key().tls() == TlsState::Encrypted)
    {
        for mech in ["PLAIN", "plain"] {
            let cache = new_cache();
            prime(&cache, &c);
            let (d, sum) = run(
                &cache,
                &c,
                with_auth(c.intent(1, 100), mech, true, true),
                Settings::early(),
                server_for(&c),
            );
            assert_eq!(
                d.tx_flights(),
                vec![vec![EHLO, CommandKind::Auth, MAIL, RCPT, BDAT]],
                "{}",
                c.name
            );
            assert_eq!(sum.verdict, Verdict::Continue);
        }
    }
}

/// AUTH LOGIN needs round trips: AUTH ends the flight; the 334 challenges are handed to
/// the caller; MAIL goes after the 235.
#[test]
fn rule_auth_without_ir_ends_flight() {
    for c in conns()
        .into_iter()
        .filter(|c| c.tx_key().tls() == TlsState::Encrypted)
    {
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c).with(CommandKind::Auth, None, "334 VXNlcm5hbWU6\r\n");
        let mut d = Drive::begin(
            &cache,
            &c,
            with_auth(c.intent(1, 100), "LOGIN", false, true),
            Settings::early(),
            srv,
        );
        while !d.events.iter().any(|e| e.kind == CommandKind::Auth) {
            assert!(d.step(), "{}", c.name);
        }
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, CommandKind::Auth]],
            "{}",
            c.name
        );
        let ch = d.event(CommandKind::Auth);
        assert!(ch.has(EVENT_AUTH_CHALLENGE) && ch.verdict == Verdict::Continue);
        assert_eq!(
            d.s.pending_commands(),
            0,
            "nothing goes during the SASL exchange"
        );
        // The caller sends its SASL lines itself; the server answers them.
        d.s.feed(b"334 UGFzc3dvcmQ6\r\n").unwrap();
        assert_eq!(d.s.pending_commands(), 0);
        d.s.feed(b"235 2.7.0 ok\r\n").unwrap();
        assert_eq!(kinds(&d.s.next_commands()), vec![MAIL, RCPT, BDAT]);
    }
}

#[test]
fn rule_required_auth_failure_ends_connection_and_invalidates() {
    for mode in [Invalidation::Strict, Invalidation::Relaxed] {
        for c in conns()
            .into_iter()
            .filter(|c| c.tx_key().tls() == TlsState::Encrypted)
        {
            let cache = new_cache();
            prime(&cache, &c);
            let srv = server_for(&c)
                .with(CommandKind::Auth, None, "535 5.7.8 bad credentials\r\n")
                .with(MAIL, None, "530 5.7.0 Authentication required\r\n");
            let settings = Settings {
                invalidation: mode,
                ..Settings::early()
            };
            let (d, sum) = run(
                &cache,
                &c,
                with_auth(c.intent(1, 100), "PLAIN", true, true),
                settings,
                srv,
            );
            let a = d.event(CommandKind::Auth);
            assert_eq!(a.verdict, Verdict::HostError);
            assert!(a.has(EVENT_CONNECTION_DONE) && a.has(EVENT_CACHE_INVALIDATED));
            assert!(d.event(MAIL).has(EVENT_FOLLOWS_FAILURE));
            assert_eq!(sum.verdict, Verdict::HostError);
            assert!(cache.lookup(&c.tx_key()).is_none(), "{} {mode:?}", c.name);
        }
    }
}

#[test]
fn rule_optional_auth_failure_goes_on_unauthenticated() {
    for c in conns()
        .into_iter()
        .filter(|c| c.tx_key().tls() == TlsState::Encrypted)
    {
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c).with(CommandKind::Auth, None, "535 5.7.8 bad credentials\r\n");
        let settings = Settings {
            invalidation: Invalidation::Relaxed,
            ..Settings::early()
        };
        let (d, sum) = run(
            &cache,
            &c,
            with_auth(c.intent(1, 100), "PLAIN", true, false),
            settings,
            srv,
        );
        assert_eq!(d.event(CommandKind::Auth).verdict, Verdict::Continue);
        assert_eq!(sum.verdict, Verdict::Continue);
        assert!(cache.lookup(&c.tx_key()).is_some());
    }
}

#[test]
fn rule_ehlo_name_unknown_no_early() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut i = c.intent(1, 100);
        i.ehlo_name = None;
        let mut d = Drive::begin(&cache, &c, i, Settings::early(), server_for(&c));
        assert_eq!(
            d.s.flight().reason,
            StopReason::EhloNameUnknown,
            "{}",
            c.name
        );
        assert!(d.s.next_commands().is_empty());
        // The caller formats its own EHLO line then.
        d.step();
        let ehlo = d.s.next_commands();
        assert_eq!(kinds(&ehlo), vec![EHLO]);
        assert_eq!(d.s.command_line(&ehlo[0]), Err(SessionError::CannotFormat));
    }
}

#[test]
fn rule_not_allowed_still_learns() {
    for c in conns() {
        let cache = new_cache();
        let (d, _) = run(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::default(),
            server_for(&c),
        );
        assert!(d.flights.iter().flatten().all(|p| !p.early));
        assert!(cache.lookup(&c.tx_key()).is_some(), "{}", c.name);
    }
}

#[test]
fn rule_legacy_keyword_only_when_asked() {
    for c in conns() {
        for legacy in [false, true] {
            let cache = new_cache();
            let mut srv = server_for(&c);
            for v in [&mut srv.clear, &mut srv.encrypted_ext] {
                for l in v.iter_mut() {
                    if l == "PIPECONNECT" {
                        *l = "X_PIPE_CONNECT".into();
                    }
                }
            }
            let settings = Settings {
                legacy_keywords: legacy,
                ..Settings::early()
            };
            run(&cache, &c, c.intent(1, 100), settings, srv);
            assert_eq!(
                cache.lookup(&c.tx_key()).is_some(),
                legacy,
                "{} {legacy}",
                c.name
            );
            let s =
                Session::begin(cache.clone(), c.key.clone(), c.intent(1, 100), settings).unwrap();
            assert_eq!(s.flight().allowed > 0, legacy, "{}", c.name);
        }
    }
}

#[test]
fn rule_keyword_matched_whole_and_pipelining_required() {
    for bad in [&["PIPELINING", "PIPECONNECTX"][..], &["PIPECONNECT"][..]] {
        for c in conns() {
            let cache = new_cache();
            let mut srv = server_for(&c);
            srv.clear = bad
                .iter()
                .map(|s| s.to_string())
                .chain(["STARTTLS".into()])
                .collect();
            srv.encrypted_ext = bad.iter().map(|s| s.to_string()).collect();
            run(&cache, &c, c.intent(1, 100), Settings::early(), srv);
            assert!(cache.lookup(&c.tx_key()).is_none(), "{} {bad:?}", c.name);
        }
    }
}

#[test]
fn rule_changed_extension_rewrites_entry() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut srv = server_for(&c);
        for v in [&mut srv.clear, &mut srv.encrypted_ext] {
            for l in v.iter_mut() {
                if l.starts_with("SIZE") {
                    *l = "SIZE 1000000".into();
                }
            }
        }
        cache.clock().set(NOW + 60);
        let (d, sum) = run(&cache, &c, c.intent(1, 100), Settings::early(), srv);
        let e = d.events.iter().rev().find(|e| e.kind == EHLO).unwrap();
        assert!(e.has(EVENT_CACHE_STORED), "{}", c.name);
        assert_eq!(e.changed_extensions, Extension::Size.bit());
        let entry = cache.lookup(&c.tx_key()).unwrap();
        assert_eq!(entry.caps.size_limit(), Some(1_000_000));
        assert_eq!(entry.learned_at, NOW + 60);
        assert!(sum.has(SUMMARY_CACHE_STORED));
        assert_eq!(sum.verdict, Verdict::Continue);
    }
}

#[test]
fn rule_unchanged_ehlo_leaves_entry() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        cache.clock().set(NOW + 3600);
        let (d, sum) = run(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::early(),
            server_for(&c),
        );
        assert!(d
            .events
            .iter()
            .all(|e| e.flags & (EVENT_CACHE_STORED | EVENT_CACHE_INVALIDATED) == 0));
        assert_eq!(
            cache.lookup(&c.tx_key()).unwrap().learned_at,
            NOW,
            "{}: keeps its age",
            c.name
        );
        assert!(!sum.has(SUMMARY_CACHE_STORED));
    }
}

#[test]
fn rule_entry_expires_after_ttl() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        cache.clock().set(NOW + cache.ttl_secs());
        let s = Session::begin(
            cache.clone(),
            c.key.clone(),
            c.intent(1, 100),
            Settings::early(),
        )
        .unwrap();
        assert_eq!(s.flight().reason, StopReason::NoEntry, "{}", c.name);
    }
}

#[test]
fn rule_ipv6_spellings_share_one_entry() {
    let cache = new_cache();
    let learned = PeerKey::parse("2001:0db8:0:0::25", 25, TlsState::Cleartext).unwrap();
    cache.learn(&learned, caps(CLEAR));
    let other = PeerKey::parse("[2001:DB8::25]", 25, TlsState::Cleartext).unwrap();
    let s = Session::begin(
        cache.clone(),
        other,
        Intent::new("c.example", 1, 10),
        Settings::early(),
    )
    .unwrap();
    assert!(s.flight().allowed > 0);
}

/// Cleartext after the 220 to STARTTLS is refused, whether it comes in the same read, in
/// a later one, or as part of a line.
#[test]
fn rule_cleartext_bytes_after_starttls_fail() {
    for c in conns().into_iter().filter(|c| c.starttls) {
        for (name, feeds) in [
            ("same read", vec!["220 2.0.0 go\r\n250 injected\r\n"]),
            ("later read", vec!["220 2.0.0 go\r\n", "250 injected\r\n"]),
            ("part of a line", vec!["220 2.0.0 go\r\n25"]),
        ] {
            let cache = new_cache();
            prime(&cache, &c);
            let mut s = Session::begin(
                cache.clone(),
                c.key.clone(),
                c.intent(1, 100),
                Settings::early(),
            )
            .unwrap();
            s.next_commands();
            let mut bytes = String::from("220 mx ESMTP\r\n");
            bytes.push_str(&ehlo_reply(CLEAR));
            s.feed(bytes.as_bytes()).unwrap();
            let mut result = Ok(0);
            for f in &feeds {
                result = s.feed(f.as_bytes());
                if result.is_err() {
                    break;
                }
            }
            let via_feed = result == Err(SessionError::CleartextAfterStartTls);
            let at_tls = s.tls_started();
            assert_eq!(
                at_tls,
                Err(SessionError::CleartextAfterStartTls),
                "{} {name}",
                c.name
            );
            assert!(via_feed || name == "part of a line", "{name}");
            assert!(s.next_commands().is_empty(), "nothing more to send");
            let sum = s.finish();
            assert!(sum.has(SUMMARY_FAILED));
            assert_eq!(sum.verdict, Verdict::Reconnect, "after an early flight");
        }
    }
}

#[test]
fn rule_tls_started_needs_a_220() {
    let c = &conns()[2];
    let cache = new_cache();
    let mut s = Session::begin(cache, c.key.clone(), c.intent(1, 100), Settings::early()).unwrap();
    assert_eq!(s.tls_started(), Err(SessionError::BadState));
}

#[test]
fn rule_unexpected_reply_is_an_error() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut d = Drive::begin(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::early(),
            server_for(&c),
        );
        while d.step() {}
        assert!(d.s.is_done());
        let before = d.events.len();
        assert_eq!(
            d.s.feed(b"250 who asked\r\n"),
            Err(SessionError::UnexpectedReply),
            "{}",
            c.name
        );
        assert_eq!(
            d.s.feed(b"250 again\r\n"),
            Err(SessionError::UnexpectedReply),
            "sticky"
        );
        assert!(d.s.next_event().is_none());
        assert_eq!(d.events.len(), before);
    }
    // A classic connection expects the banner alone until its EHLO is released; the
    // events made before the error stay.
    let c = &conns()[0];
    let mut s = Session::begin(
        new_cache(),
        c.key.clone(),
        c.intent(1, 100),
        Settings::early(),
    )
    .unwrap();
    assert_eq!(s.feed(b"220 hi\r\n"), Ok(1));
    let ehlo = s.next_commands();
    assert_eq!(kinds(&ehlo), vec![EHLO]);
    // A refused EHLO ends the connection: nothing is awaited any more.
    assert_eq!(
        s.feed(b"550 no\r\n250 extra\r\n"),
        Err(SessionError::UnexpectedReply)
    );
    assert_eq!(s.next_event().unwrap().kind, CommandKind::Banner);
    assert_eq!(
        s.next_event().unwrap().kind,
        CommandKind::Ehlo,
        "the EHLO's event stays"
    );
    assert!(s.next_event().is_none());
    assert!(s.next_commands().is_empty(), "nothing goes after the error");
}

#[test]
fn rule_no_pipelining_is_lockstep() {
    let c = &conns()[0];
    let cache = new_cache();
    let mut srv = server_for(c);
    srv.clear = vec!["SIZE 1000000".into(), "8BITMIME".into()];
    let (d, sum) = run(&cache, c, c.intent(2, 100), Settings::early(), srv);
    for f in &d.flights {
        assert_eq!(f.len(), 1, "one command at a time");
    }
    assert_eq!(
        d.flights.iter().map(|f| f[0].kind).collect::<Vec<_>>(),
        vec![EHLO, MAIL, RCPT, RCPT, DATA, CommandKind::Body]
    );
    assert_eq!(sum.verdict, Verdict::Continue);
    assert!(cache.lookup(&c.key).is_none(), "not worth caching");
}

#[test]
fn rule_classic_pipelining_groups_after_ehlo() {
    for c in conns() {
        let cache = new_cache();
        let (d, sum) = run(
            &cache,
            &c,
            c.intent(3, 100),
            Settings::early(),
            server_for(&c),
        );
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO], vec![MAIL, RCPT, RCPT, RCPT, BDAT]],
            "{}",
            c.name
        );
        assert_eq!(sum.groups, if c.starttls { 4 } else { 2 });
    }
}

#[test]
fn rule_mail_rejection_is_followed_not_repeated() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c)
            .with(MAIL, None, "550 5.7.1 sender refused\r\n")
            .with(RCPT, None, "503 5.5.1 MAIL first\r\n")
            .with(BDAT, None, "503 5.5.1 MAIL first\r\n");
        let (d, sum) = run(&cache, &c, c.intent(1, 100), Settings::early(), srv);
        assert_eq!(d.event(MAIL).verdict, Verdict::Rejected);
        for k in [RCPT, BDAT] {
            let e = d.event(k);
            assert!(e.has(EVENT_FOLLOWS_FAILURE), "{} {k}", c.name);
            assert_eq!(e.verdict, Verdict::Rejected);
        }
        assert_eq!(sum.verdict, Verdict::Rejected);
    }
}

#[test]
fn rule_421_mid_transaction_closes() {
    let c = &conns()[0];
    let cache = new_cache();
    prime(&cache, c);
    let srv = server_for(c).with(RCPT, Some(0), "421 4.3.2 shutting down\r\n");
    let mut d = Drive::begin(&cache, c, c.intent(2, 100), Settings::early(), srv);
    d.step();
    let r = d.rcpt_event(0);
    assert!(r.has(EVENT_CONNECTION_DONE));
    assert_eq!(r.verdict, Verdict::Tempfail);
    assert!(d.s.is_done());
    let sum = d.s.finish();
    assert_eq!(sum.verdict, Verdict::Tempfail);
}

#[test]
fn intents_are_checked() {
    let c = &conns()[0];
    let cache = new_cache();
    let mut i = c.intent(1, 1);
    i.rcpts = Recipients::Addresses(vec!["a@b\r\nRCPT TO:<x@y>".into()]);
    assert!(matches!(
        Session::begin(cache.clone(), c.key.clone(), i, Settings::early()),
        Err(SessionError::InvalidIntent(_))
    ));
    let tls = &conns()[4];
    let mut i = tls.intent(1, 1);
    i.starttls = true;
    assert!(matches!(
        Session::begin(cache.clone(), tls.key.clone(), i, Settings::early()),
        Err(SessionError::InvalidIntent(_))
    ));
    let narrowed = c.key.clone().with_ehlo_name("other.example").unwrap();
    assert!(matches!(
        Session::begin(cache, narrowed, c.intent(1, 1), Settings::early()),
        Err(SessionError::InvalidIntent(_))
    ));
}

#[test]
fn command_lines_are_formatted_from_the_intent() {
    let c = &conns()[0];
    let cache = new_cache();
    prime(&cache, c);
    let mut s = Session::begin(cache, c.key.clone(), c.intent(2, 2048), Settings::early()).unwrap();
    let lines: Vec<String> = s
        .next_commands()
        .iter()
        .map(|p| s.command_line(p).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            "EHLO client.example.net\r\n",
            "MAIL FROM:<sender@example.net> SIZE=2048\r\n",
            "RCPT TO:<r0@example.org>\r\n",
            "RCPT TO:<r1@example.org>\r\n",
            "BDAT 2048 LAST\r\n",
        ]
    );
}

/// A connection that failed before anything was sent is not early pipelining's fault.
#[test]
fn rule_unsent_flight_does_not_invalidate() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut s = Session::begin(
            cache.clone(),
            c.key.clone(),
            c.intent(1, 100),
            Settings::early(),
        )
        .unwrap();
        assert!(s.flight().allowed > 0);
        let sum = s.finish();
        assert!(!sum.has(SUMMARY_CACHE_INVALIDATED), "{}", c.name);
        assert_eq!(sum.verdict, Verdict::Tempfail);
        assert!(cache.lookup(&c.key).is_some());
    }
}

/// Once the server accepted the message, a broken stream does not ask for a resend.
#[test]
fn rule_accepted_message_is_never_resent() {
    for c in conns() {
        let cache = new_cache();
        prime(&cache, &c);
        let mut d = Drive::begin(
            &cache,
            &c,
            c.intent(1, 100),
            Settings::early(),
            server_for(&c),
        );
        while d.step() {}
        // A 221 here would be the reply to a QUIT sent unplanned (issue 9): no error.
        assert_eq!(
            d.s.feed(b"250 who asked\r\n"),
            Err(SessionError::UnexpectedReply)
        );
        let sum = d.s.finish();
        assert_eq!(sum.verdict, Verdict::Continue, "{}", c.name);
        assert!(sum.has(SUMMARY_MESSAGE_ACCEPTED) && sum.has(SUMMARY_FAILED));
        assert!(cache.lookup(&c.tx_key()).is_some());
    }
}

/// A refused AUTH with MAIL, RCPT and the body pipelined behind it: a server may still
/// take the message without authentication (Exim does). Whatever the AUTH verdict, a 2xx
/// to the body means the message was delivered: the session must say so, so that the MTA
/// never sends it twice.
#[test]
fn rule_message_accepted_after_a_refused_auth_is_never_resent() {
    for c in conns()
        .into_iter()
        .filter(|c| c.tx_key().tls() == TlsState::Encrypted)
    {
        let cache = new_cache();
        prime(&cache, &c);
        let srv = server_for(&c).with(
            CommandKind::Auth,
            None,
            "535 5.7.8 Incorrect authentication data\r\n",
        );
        let (d, sum) = run(
            &cache,
            &c,
            with_auth(c.intent(2, 100), "PLAIN", true, true),
            Settings::early(),
            srv,
        );
        assert_eq!(
            d.tx_flights(),
            vec![vec![EHLO, CommandKind::Auth, MAIL, RCPT, RCPT, BDAT]],
            "{}",
            c.name
        );
        let auth = d.event(CommandKind::Auth);
        assert_ne!(auth.verdict, Verdict::Continue, "{}", c.name);
        let body = d.event(BDAT);
        assert!(body.flags & EVENT_MESSAGE_ACCEPTED != 0, "{}", c.name);
        assert_eq!(body.verdict, Verdict::Continue, "{}", c.name);
        assert_eq!(sum.verdict, Verdict::Continue, "{}", c.name);
        assert!(sum.flags & SUMMARY_MESSAGE_ACCEPTED != 0, "{}", c.name);
        assert_eq!(sum.rcpt_accepted, 2, "{}", c.name);
    }
}

// ---- issue 9: every reply checked against the code its command allows ----

/// A 221 read with the final 250 (QUIT pipelined behind the body, planned or not) is no
/// error and keeps the entry.
#[test]
fn rule_221_with_the_final_250_keeps_the_entry() {
    for planned in [false, true] {
        for c in conns() {
            let cache = new_cache();
            prime(&cache, &c);
            let mut d = Drive::begin(
                &cache,
                &c,
                c.intent(1, 100),
                Settings::early(),
                server_for(&c),
            );
            // Run until the body command is handed out, then plan QUIT behind it.
            while d.step() {}
            if planned {
                assert_eq!(d.s.quit(), Ok(()), "{}", c.name);
                let q = d.s.next_commands();
                assert_eq!(kinds(&q), vec![CommandKind::Quit]);
                assert_eq!(d.s.quit(), Err(SessionError::BadState), "once");
            }
            assert_eq!(d.s.feed(b"221 2.0.0 Bye\r\n"), Ok(1), "{}", c.name);
            let ev = d.s.next_event().unwrap();
            assert_eq!(ev.kind, CommandKind::Quit);
            assert_eq!(ev.verdict, Verdict::Continue);
            assert!(!ev.has(EVENT_OUT_OF_STEP) && ev.has(EVENT_CONNECTION_DONE));
            let sum = d.s.finish();
            assert_eq!(sum.verdict, Verdict::Continue, "{}", c.name);
            assert!(sum.has(SUMMARY_MESSAGE_ACCEPTED) && !sum.has(SUMMARY_FAILED));
            assert!(!sum.has(SUMMARY_CACHE_INVALIDATED));
            assert!(cache.lookup(&c.tx_key()).is_some());
            assert_eq!(sum.replies_outstanding, 0);
        }
    }
}

/// QUIT may be planned only once nothing else can follow it.
#[test]
fn rule_quit_waits_for_the_body_command() {
    let c = &conns()[0];
    let mut s = Session::begin(
        new_cache(),
        c.key.clone(),
        c.intent(1, 100),
        Settings::early(),
    )
    .unwrap();
    assert_eq!(
        s.quit(),
        Err(SessionError::BadState),
        "classic, before EHLO"
    );
    let cache = new_cache();
    prime(&cache, c);
    let mut s = Session::begin(cache, c.key.clone(), c.intent(1, 100), Settings::early()).unwrap();
    // The whole transaction is in the early flight: QUIT may follow it at once.
    assert_eq!(s.quit(), Ok(()));
    let flight = kinds(&s.next_commands());
    assert_eq!(flight.last(), Some(&CommandKind::Quit));
    assert_eq!(flight[flight.len() - 2], BDAT);
}

/// A stream shifted by one reply, with QUIT pipelined: the 221 lands on BDAT LAST. Never
/// an acceptance; a body went out, so TEMPFAIL; the entry is gone.
#[test]
fn rule_221_on_bdat_last_is_out_of_step() {
    let c = &conns()[0];
    let cache = new_cache();
    prime(&cache, c);
    let mut s = Session::begin(
        cache.clone(),
        c.key.clone(),
        c.intent(1, 100),
        Settings::early(),
    )
    .unwrap();
    s.quit().unwrap();
    let flight = kinds(&s.next_commands());
    assert_eq!(flight, vec![EHLO, MAIL, RCPT, BDAT, CommandKind::Quit]);
    let ehlo = ehlo_reply(CLEAR);
    // The RCPT's reply is missing: MAIL's 250 answers it... and the 221 lands on BDAT.
    let stream = format!("220 mx\r\n{ehlo}250 ok\r\n250 ok\r\n221 bye\r\n");
    s.feed(stream.as_bytes()).unwrap();
    let mut accepted = false;
    let mut bdat = None;
    while let Some(e) = s.next_event() {
        accepted |= e.has(EVENT_MESSAGE_ACCEPTED);
        if e.kind == BDAT {
            bdat = Some(e);
        }
    }
    let bdat = bdat.unwrap();
    assert!(bdat.has(EVENT_OUT_OF_STEP) && bdat.code == 221);
    assert_eq!(bdat.verdict, Verdict::Tempfail);
    assert!(!accepted);
    let sum = s.finish();
    assert_eq!(sum.verdict, Verdict::Tempfail);
    assert!(!sum.has(SUMMARY_MESSAGE_ACCEPTED) && sum.has(SUMMARY_CACHE_INVALIDATED));
    assert!(cache.lookup(&c.key).is_none());
}

/// The stream of issue 9: four 250 lines then a 220, answering an early flight. Read in
/// step it would deliver nothing; it must never be reported accepted.
#[test]
fn rule_four_250_then_220_is_never_accepted() {
    for (body_in_flight, want) in [(true, Verdict::Tempfail), (false, Verdict::Reconnect)] {
        let c = &conns()[0];
        let cache = new_cache();
        prime(&cache, c);
        let mut settings = Settings::early();
        if !body_in_flight {
            settings.max_first_flight_body = 10;
        }
        let mut s =
            Session::begin(cache.clone(), c.key.clone(), c.intent(1, 100), settings).unwrap();
        let flight = kinds(&s.next_commands());
        assert_eq!(flight.contains(&BDAT), body_in_flight, "{flight:?}");
        let fed = s.feed(b"250 a\r\n250 b\r\n250 c\r\n250 d\r\n220 e\r\n");
        if body_in_flight {
            assert_eq!(fed, Ok(5));
        } else {
            // Four commands were sent (with the banner, four replies awaited): the fifth
            // answers nothing.
            assert_eq!(fed, Err(SessionError::UnexpectedReply));
        }
        let first = s.next_event().unwrap();
        assert_eq!(first.kind, CommandKind::Banner);
        assert!(first.has(EVENT_OUT_OF_STEP) && first.has(EVENT_CACHE_INVALIDATED));
        assert_eq!(first.code, 250);
        while let Some(e) = s.next_event() {
            assert!(!e.has(EVENT_MESSAGE_ACCEPTED), "{e:?}");
        }
        assert!(s.next_commands().is_empty());
        let sum = s.finish();
        assert_eq!(sum.verdict, want);
        assert!(!sum.has(SUMMARY_MESSAGE_ACCEPTED));
        assert_eq!(sum.rcpt_accepted, 0);
        assert!(cache.lookup(&c.key).is_none());
    }
}

/// Each command kind given a positive reply that is not its own: out of step, the
/// message never accepted, the entry gone.
#[test]
fn rule_wrong_positive_code_per_command_is_out_of_step() {
    let wrong = [
        (CommandKind::Ehlo, "220 hi\r\n"),
        (CommandKind::Mail, "251 odd\r\n"),
        (CommandKind::Rcpt, "354 go on\r\n"),
        (BDAT, "220 ready\r\n"),
    ];
    for (kind, reply) in wrong {
        let c = &conns()[0];
        let cache = new_cache();
        prime(&cache, c);
        let srv = server_for(c).with(kind, None, reply);
        let (d, sum) = run(&cache, c, c.intent(1, 100), Settings::early(), srv);
        let ev = d.event(kind);
        assert!(ev.has(EVENT_OUT_OF_STEP), "{kind}");
        assert!(
            d.events.iter().all(|e| !e.has(EVENT_MESSAGE_ACCEPTED)),
            "{kind}"
        );
        assert!(!sum.has(SUMMARY_MESSAGE_ACCEPTED), "{kind}");
        assert!(cache.lookup(&c.key).is_none(), "{kind}");
        // The flight carried BDAT LAST and its body: the server may hold the message.
        assert_eq!(sum.verdict, Verdict::Tempfail, "{kind}");
    }
}

/// Found by the property test: a banner refused with 4xx, then 250 to everything. The
/// server never greeted the client, so its 250 to BDAT LAST proves nothing: no
/// acceptance (at worst a duplicate later, never a loss).
#[test]
fn rule_positive_replies_after_a_refused_banner_deliver_nothing() {
    let c = &conns()[0];
    let cache = new_cache();
    prime(&cache, c);
    let mut s = Session::begin(
        cache.clone(),
        c.key.clone(),
        c.intent(1, 100),
        Settings::early(),
    )
    .unwrap();
    assert_eq!(kinds(&s.next_commands()), vec![EHLO, MAIL, RCPT, BDAT]);
    let ehlo = ehlo_reply(CLEAR);
    let stream = format!("451 not now\r\n{ehlo}250 ok\r\n250 ok\r\n250 ok\r\n");
    assert_eq!(s.feed(stream.as_bytes()), Ok(5));
    while let Some(e) = s.next_event() {
        assert!(!e.has(EVENT_MESSAGE_ACCEPTED), "{e:?}");
    }
    let sum = s.finish();
    assert!(!sum.has(SUMMARY_MESSAGE_ACCEPTED));
    assert_eq!(sum.verdict, Verdict::Reconnect);
}

/// A planned QUIT whose 221 has not come does not keep the session from being done: the
/// delivery's outcome never depends on it.
#[test]
fn rule_a_missing_221_does_not_hold_the_session() {
    let c = &conns()[0];
    let cache = new_cache();
    prime(&cache, c);
    let mut d = Drive::begin(
        &cache,
        c,
        c.intent(1, 100),
        Settings::early(),
        server_for(c),
    );
    while d.step() {}
    d.s.quit().unwrap();
    assert!(!d.s.is_done(), "the QUIT waits to be taken");
    assert_eq!(kinds(&d.s.next_commands()), vec![CommandKind::Quit]);
    assert!(d.s.is_done());
    let sum = d.s.finish();
    assert_eq!(sum.verdict, Verdict::Continue);
    assert_eq!(sum.replies_outstanding, 1);
    assert!(cache.lookup(&c.tx_key()).is_some());
}
