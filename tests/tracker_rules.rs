//! The tracker (`pipeconnect::tracker`): early pipelining for an MTA that writes its own
//! commands and reads its own replies. Each test plans a connection from the cache, feeds
//! the replies such an MTA would read, and checks the plan, the step and the cache.

use pipeconnect::cache::{Cache, CacheConfig};
use pipeconnect::caps::{Capabilities, Extension, ParseOptions};
use pipeconnect::policy::{CommandKind, ConnPhase, Invalidation, Settings, StopReason, Verdict};
use pipeconnect::session::event::{
    EVENT_CACHE_INVALIDATED, EVENT_CACHE_STORED, EVENT_EARLY_STOPPED, EVENT_FOLLOWS_FAILURE,
    EVENT_MESSAGE_ACCEPTED, EVENT_OUT_OF_STEP,
};
use pipeconnect::tracker::{keyword_bits, Action, Mode, Request, StartTlsUse, Tracker};
use pipeconnect::{PeerKey, TlsState};
use std::sync::Arc;

/// Exim's EHLO reply with PIPECONNECT, as Postfix holds it: LF-joined, no final line end.
const EHLO_PC: &str = "250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n\
250-PIPELINING\n250-PIPECONNECT\n250-DSN\n250-STARTTLS\n250 CHUNKING";
const EHLO_PC_NO_TLS: &str = "250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n\
250-PIPELINING\n250-PIPECONNECT\n250-DSN\n250 CHUNKING";
const EHLO_NO_PC: &str = "250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n\
250-PIPELINING\n250-DSN\n250-STARTTLS\n250 CHUNKING";
const EHLO_NO_DSN: &str = "250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n\
250-PIPELINING\n250-PIPECONNECT\n250-STARTTLS\n250 CHUNKING";

const RELIES: u32 = Extension::Pipelining.bit()
    | Extension::Size.bit()
    | Extension::EightBitMime.bit()
    | Extension::Dsn.bit()
    | Extension::SmtpUtf8.bit();

fn cache() -> Arc<Cache> {
    let c = Cache::in_memory(CacheConfig::default());
    c.clock().set(1_800_000_000);
    Arc::new(c)
}

fn key(tls: TlsState) -> PeerKey {
    PeerKey::parse("192.0.2.25", 25, tls).unwrap()
}

fn request(rcpts: usize) -> Request {
    Request {
        key: key(TlsState::Cleartext),
        phase: ConnPhase::Cleartext,
        cleartext_early_used: false,
        starttls: StartTlsUse::Never,
        rcpt_count: rcpts,
        message_size: 2048,
        relies_on: RELIES,
        required: 0,
        ignored: 0,
        settings: Settings::early(),
    }
}

fn learn(c: &Arc<Cache>, tls: TlsState, reply: &str) {
    let mut wire = reply.replace('\n', "\r\n");
    wire.push_str("\r\n");
    let caps = Capabilities::parse_ehlo(wire.as_bytes(), ParseOptions::default()).unwrap();
    c.learn(&key(tls), caps);
}

fn begin(c: &Arc<Cache>, req: &Request) -> (Tracker, pipeconnect::tracker::Plan) {
    Tracker::begin(c.clone(), req).unwrap()
}

#[test]
fn nothing_cached_is_classic_and_the_ehlo_reply_is_learned() {
    let c = cache();
    let (mut t, plan) = begin(&c, &request(1));
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::NoEntry)
    );
    assert_eq!(plan.commands, 0);
    let s = t.on_reply(CommandKind::Banner, 220, b"220 mx.example.org ESMTP");
    assert_eq!((s.action, s.verdict), (Action::Proceed, Verdict::Continue));
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes());
    assert_eq!(s.action, Action::Proceed);
    assert_ne!(s.flags & EVENT_CACHE_STORED, 0);
    assert_ne!(s.extensions & Extension::PipeConnect.bit(), 0);
    assert_eq!(s.size_limit, Some(52_428_800));
    assert!(c.lookup(&key(TlsState::Cleartext)).is_some());

    let (_, plan) = begin(&c, &request(3));
    assert_eq!(plan.mode, Mode::Transaction);
    assert_eq!(plan.commands, 1 + 1 + 3 + 1, "EHLO, MAIL, three RCPT, DATA");
    assert_eq!(plan.reason, StopReason::EndOfSequence);
    assert_ne!(plan.extensions & Extension::Dsn.bit(), 0);
    assert_eq!(plan.size_limit, Some(52_428_800));
}

#[test]
fn without_permission_nothing_goes_early_but_the_tracker_still_learns() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let mut req = request(1);
    req.settings.early_allowed = false;
    let (mut t, plan) = begin(&c, &req);
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::NotAllowed)
    );
    // A classic 554 banner is the MTA's business, and removes nothing.
    let s = t.on_reply(CommandKind::Banner, 554, b"");
    assert_eq!((s.action, s.verdict), (Action::Proceed, Verdict::HostError));
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_NO_DSN.as_bytes());
    assert_ne!(
        s.flags & EVENT_CACHE_STORED,
        0,
        "the changed reply is learned"
    );
    let e = c.lookup(&key(TlsState::Cleartext)).unwrap();
    assert!(!e.caps.has(Extension::Dsn));
}

#[test]
fn ignored_keywords_are_never_offered() {
    assert_eq!(
        keyword_bits("dsn, Pipeconnect\tSILENT-DISCARD  8bitmime"),
        Extension::Dsn.bit() | Extension::PipeConnect.bit() | Extension::EightBitMime.bit()
    );
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let mut req = request(1);
    req.ignored = keyword_bits("dsn 8bitmime");
    let (mut t, plan) = begin(&c, &req);
    assert_eq!(plan.mode, Mode::Transaction);
    assert_eq!(
        plan.extensions & (Extension::Dsn.bit() | Extension::EightBitMime.bit()),
        0
    );
    let s = t.on_reply(CommandKind::Banner, 220, b"");
    assert_eq!(s.action, Action::Proceed);
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes());
    assert_eq!(s.action, Action::Proceed);
    assert_eq!(s.extensions & Extension::Dsn.bit(), 0);

    for (words, reason) in [
        ("pipeconnect", StopReason::NoPipeconnect),
        ("PIPELINING", StopReason::NoPipelining),
    ] {
        req.ignored = keyword_bits(words);
        let (_, plan) = begin(&c, &req);
        assert_eq!((plan.mode, plan.reason), (Mode::Classic, reason), "{words}");
    }
}

#[test]
fn a_required_extension_that_is_not_cached_keeps_the_connection_classic() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let mut req = request(1);
    req.required = Extension::SmtpUtf8.bit();
    let (_, plan) = begin(&c, &req);
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::ExtensionMissing)
    );
    req.required = Extension::Dsn.bit();
    assert_eq!(begin(&c, &req).1.mode, Mode::Transaction);
}

#[test]
fn starttls_goes_early_with_ehlo_and_the_encrypted_phase_follows() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    learn(&c, TlsState::Encrypted, EHLO_PC_NO_TLS);
    let mut req = request(2);
    req.starttls = StartTlsUse::IfOffered;
    let (mut t, plan) = begin(&c, &req);
    assert_eq!((plan.mode, plan.commands), (Mode::StartTls, 2));
    assert_eq!(
        t.on_reply(CommandKind::Banner, 220, b"").action,
        Action::Proceed
    );
    assert_eq!(
        t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes())
            .action,
        Action::Proceed
    );
    assert_eq!(
        t.on_reply(CommandKind::StartTls, 220, b"").action,
        Action::Proceed
    );

    // After the handshake: early only when the cleartext phase was early.
    let mut enc = request(2);
    enc.key = key(TlsState::Encrypted);
    enc.phase = ConnPhase::AfterStartTls;
    let (_, plan) = begin(&c, &enc);
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::EncryptedWithoutCleartextEarly)
    );
    enc.cleartext_early_used = true;
    let (mut t, plan) = begin(&c, &enc);
    assert_eq!((plan.mode, plan.commands), (Mode::Transaction, 5));
    // No banner after STARTTLS: the first reply is EHLO's.
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_PC_NO_TLS.as_bytes());
    assert_eq!(s.action, Action::Proceed);

    // Cleartext information never licenses the encrypted phase.
    let mut wrong = enc.clone();
    wrong.key = key(TlsState::Cleartext);
    assert!(Tracker::begin(c.clone(), &wrong).is_err());
}

#[test]
fn starttls_required_but_not_cached_keeps_the_connection_classic() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC_NO_TLS);
    let mut req = request(1);
    req.starttls = StartTlsUse::Required;
    let (_, plan) = begin(&c, &req);
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::StartTlsNotOffered)
    );
    req.starttls = StartTlsUse::IfOffered;
    assert_eq!(begin(&c, &req).1.mode, Mode::Transaction);
}

#[test]
fn a_refused_early_flight_reconnects_forgets_and_holds_the_server_down() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, plan) = begin(&c, &request(1));
    assert_eq!(plan.mode, Mode::Transaction);
    // Exim's answer to input before its banner from a host it did not offer PIPECONNECT.
    let s = t.on_reply(CommandKind::Banner, 554, b"554 SMTP synchronization error");
    assert_eq!(
        (s.action, s.verdict),
        (Action::Reconnect, Verdict::Reconnect)
    );
    assert_ne!(s.flags & EVENT_CACHE_INVALIDATED, 0);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());
    assert!(c.held_down(&key(TlsState::Cleartext)).is_some());
    // The rest of the flight's replies change nothing.
    let s = t.on_reply(CommandKind::Ehlo, 554, b"");
    assert_eq!(s.action, Action::Reconnect);
    assert_ne!(s.flags & EVENT_FOLLOWS_FAILURE, 0);

    // Learned again, the server stays held down for a while.
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (_, plan) = begin(&c, &request(1));
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::HeldDown)
    );
}

#[test]
fn a_busy_banner_after_an_early_flight_reconnects_without_a_hold_down() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    let s = t.on_reply(CommandKind::Banner, 421, b"421 busy");
    assert_eq!(s.action, Action::Reconnect);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());
    assert!(c.held_down(&key(TlsState::Cleartext)).is_none());
}

#[test]
fn an_ehlo_reply_without_pipeconnect_after_an_early_flight_reconnects() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    t.on_reply(CommandKind::Banner, 220, b"");
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_NO_PC.as_bytes());
    assert_eq!(s.action, Action::Reconnect);
    assert_ne!(s.flags & EVENT_EARLY_STOPPED, 0);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());
    assert!(c.held_down(&key(TlsState::Cleartext)).is_some());
}

#[test]
fn a_changed_extension_the_commands_relied_on_reconnects_and_the_entry_is_renewed() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    t.on_reply(CommandKind::Banner, 220, b"");
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_NO_DSN.as_bytes());
    assert_eq!(
        (s.action, s.verdict),
        (Action::Reconnect, Verdict::Reconnect)
    );
    assert_ne!(s.flags & EVENT_CACHE_STORED, 0);
    assert!(c.held_down(&key(TlsState::Cleartext)).is_none());
    // The next connection goes early on the new facts.
    let (_, plan) = begin(&c, &request(1));
    assert_eq!(plan.mode, Mode::Transaction);
    assert_eq!(plan.extensions & Extension::Dsn.bit(), 0);

    // A change the commands did not rely on is learned and the delivery goes on.
    let mut req = request(1);
    req.relies_on = 0;
    let (mut t, _) = begin(&c, &req);
    t.on_reply(CommandKind::Banner, 220, b"");
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes());
    assert_eq!(s.action, Action::Proceed);
    assert_ne!(s.flags & EVENT_CACHE_STORED, 0);
}

#[test]
fn a_whole_early_transaction_proceeds_and_reports_the_acceptance() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(2));
    let replies: [(CommandKind, u16); 7] = [
        (CommandKind::Banner, 220),
        (CommandKind::Ehlo, 250),
        (CommandKind::Mail, 250),
        (CommandKind::Rcpt, 250),
        (CommandKind::Rcpt, 251),
        (CommandKind::Data, 354),
        (CommandKind::Body, 250),
    ];
    let mut last = None;
    for (kind, code) in replies {
        let s = t.on_reply(kind, code, EHLO_PC.as_bytes());
        assert_eq!(
            (s.action, s.verdict),
            (Action::Proceed, Verdict::Continue),
            "{kind:?}"
        );
        last = Some(s);
    }
    assert_ne!(last.unwrap().flags & EVENT_MESSAGE_ACCEPTED, 0);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_some());
}

#[test]
fn out_of_step_replies_never_deliver() {
    // Before the body: reconnect (nothing can have been accepted).
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    t.on_reply(CommandKind::Banner, 220, b"");
    t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes());
    t.on_reply(CommandKind::Mail, 250, b"");
    t.on_reply(CommandKind::Rcpt, 250, b"");
    let s = t.on_reply(CommandKind::Data, 250, b"");
    assert_eq!(s.action, Action::Reconnect);
    assert_ne!(s.flags & EVENT_OUT_OF_STEP, 0);
    assert!(c.held_down(&key(TlsState::Cleartext)).is_some());

    // After the body: defer, never resend at once.
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    for (kind, code) in [
        (CommandKind::Banner, 220),
        (CommandKind::Ehlo, 250),
        (CommandKind::Mail, 250),
        (CommandKind::Rcpt, 250),
        (CommandKind::Data, 354),
    ] {
        assert_eq!(
            t.on_reply(kind, code, EHLO_PC.as_bytes()).action,
            Action::Proceed
        );
    }
    let s = t.on_reply(CommandKind::Body, 220, b"");
    assert_eq!((s.action, s.verdict), (Action::Defer, Verdict::Tempfail));
    assert_eq!(s.flags & EVENT_MESSAGE_ACCEPTED, 0);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());
}

#[test]
fn rejected_recipients_are_the_mtas_business_and_strictness_decides_the_entry() {
    for (invalidation, kept) in [(Invalidation::Strict, false), (Invalidation::Relaxed, true)] {
        let c = cache();
        learn(&c, TlsState::Cleartext, EHLO_PC);
        let mut req = request(2);
        req.settings.invalidation = invalidation;
        let (mut t, _) = begin(&c, &req);
        t.on_reply(CommandKind::Banner, 220, b"");
        t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes());
        t.on_reply(CommandKind::Mail, 250, b"");
        let s = t.on_reply(CommandKind::Rcpt, 550, b"");
        assert_eq!((s.action, s.verdict), (Action::Proceed, Verdict::Rejected));
        let s = t.on_reply(CommandKind::Rcpt, 451, b"");
        assert_eq!((s.action, s.verdict), (Action::Proceed, Verdict::Tempfail));
        assert_eq!(
            c.lookup(&key(TlsState::Cleartext)).is_some(),
            kept,
            "{invalidation:?}"
        );
        assert!(c.held_down(&key(TlsState::Cleartext)).is_none());
    }
}

#[test]
fn an_unreadable_ehlo_reply_reconnects_after_an_early_flight_and_teaches_nothing() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    t.on_reply(CommandKind::Banner, 220, b"");
    let s = t.on_reply(CommandKind::Ehlo, 250, b"250-mx\n251 mixed codes");
    assert_eq!(s.action, Action::Reconnect);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());

    let c = cache();
    let (mut t, _) = begin(&c, &request(1));
    let s = t.on_reply(CommandKind::Ehlo, 250, b"\xff\x00garbage");
    assert_eq!(s.action, Action::Proceed);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());
}

#[test]
fn replies_held_with_crlf_or_lf_and_with_or_without_a_final_line_end_read_the_same() {
    let lf = EHLO_PC.to_string();
    let variants = [
        lf.clone(),
        format!("{lf}\n"),
        lf.replace('\n', "\r\n"),
        format!("{}\r\n", lf.replace('\n', "\r\n")),
    ];
    let mut seen = Vec::new();
    for v in &variants {
        let c = cache();
        let (mut t, _) = begin(&c, &request(1));
        let s = t.on_reply(CommandKind::Ehlo, 250, v.as_bytes());
        assert_ne!(s.flags & EVENT_CACHE_STORED, 0, "{v:?}");
        seen.push(
            c.lookup(&key(TlsState::Cleartext))
                .unwrap()
                .caps
                .fingerprint(),
        );
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn too_many_recipients_for_one_flight_stay_classic() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (_, plan) = begin(&c, &request(5000));
    assert_eq!(plan.mode, Mode::Classic);
}

#[test]
fn without_a_transaction_ehlo_alone_goes_early() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    learn(&c, TlsState::Encrypted, EHLO_PC_NO_TLS);
    // AUTH or XFORWARD between EHLO and MAIL: EHLO alone before the banner.
    let (mut t, plan) = begin(&c, &request(0));
    assert_eq!((plan.mode, plan.commands), (Mode::Ehlo, 1));
    assert_eq!(
        t.on_reply(CommandKind::Banner, 220, b"").action,
        Action::Proceed
    );
    let s = t.on_reply(CommandKind::Ehlo, 250, EHLO_PC.as_bytes());
    assert_eq!(s.action, Action::Proceed);
    assert_ne!(s.extensions & Extension::PipeConnect.bit(), 0);
    // The MTA's own commands after the EHLO reply are its business.
    assert_eq!(
        t.on_reply(CommandKind::Mail, 250, b"").action,
        Action::Proceed
    );

    // Refused like any early flight.
    let (mut t, _) = begin(&c, &request(0));
    assert_eq!(
        t.on_reply(CommandKind::Banner, 554, b"").action,
        Action::Reconnect
    );
    assert!(c.held_down(&key(TlsState::Cleartext)).is_some());

    // After STARTTLS the EHLO goes at once anyway: classic.
    let mut enc = request(0);
    enc.key = key(TlsState::Encrypted);
    enc.phase = ConnPhase::AfterStartTls;
    enc.cleartext_early_used = true;
    let (_, plan) = begin(&c, &enc);
    assert_eq!(
        (plan.mode, plan.reason),
        (Mode::Classic, StopReason::NotAllowed)
    );
}

#[test]
fn an_ehlo_text_longer_than_any_reply_is_unreadable_not_copied() {
    let c = cache();
    learn(&c, TlsState::Cleartext, EHLO_PC);
    let (mut t, _) = begin(&c, &request(1));
    t.on_reply(CommandKind::Banner, 220, b"");
    // A valid reply padded past the parser's 64 KiB limit with more keyword lines.
    let mut huge = EHLO_PC.replace("250 CHUNKING", "250-CHUNKING");
    while huge.len() <= 70_000 {
        huge.push_str("\n250-X-FILLER-KEYWORD");
    }
    huge.push_str("\n250 HELP");
    let s = t.on_reply(CommandKind::Ehlo, 250, huge.as_bytes());
    assert_eq!(s.action, Action::Reconnect);
    assert!(c.lookup(&key(TlsState::Cleartext)).is_none());
}
