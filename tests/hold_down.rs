//! The hold-down (docs/RULES.md, "Hold-down"), through whole sessions on a pinned clock,
//! in both backings: a server that refuses early flights is held down, the hold-down
//! expires, lengthens on repeated refusals, and decays after early successes that came
//! after it ended, so that a server that settles gets early pipelining back.

mod common;

use pipeconnect::cache::file::StoreOptions;
use pipeconnect::cache::{Cache, CacheConfig, HoldDownConfig};
use pipeconnect::policy::{CommandKind, Settings, StopReason, Verdict};
use pipeconnect::session::{Intent, Recipients, Session};
use pipeconnect::{PeerKey, TlsState};
use std::sync::Arc;

const T0: u64 = 1_800_000_000;
const HOUR: u64 = 3600;

/// What sits behind the server's address for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Advertises PIPECONNECT; takes early input.
    Pipeconnect,
    /// Does not advertise it; answers early input with Exim's 554 banner.
    Refuses,
    /// Takes early input but its EHLO reply no longer advertises PIPECONNECT.
    DropsPipeconnect,
    /// Closing: 421 as banner.
    Busy,
    /// Answers early MAIL with a 354 (out of step).
    OutOfStep,
}

const EHLO_PC: &[u8] = b"250-mx.example.org\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n\
250-CHUNKING\r\n250 SIZE 18446744073709551615\r\n";
const EHLO_NO_PC: &[u8] =
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SIZE 18446744073709551615\r\n";

#[derive(Debug)]
struct Delivered {
    early: bool,
    reason: StopReason,
    verdict: Verdict,
}

fn key() -> PeerKey {
    PeerKey::parse("192.0.2.80", 25, TlsState::Cleartext).unwrap()
}

fn intent() -> Intent {
    let mut i = Intent::new("client.example.net", 1, 2048);
    i.mail_from = Some("sender@example.net".into());
    i.rcpts = Recipients::Addresses(vec!["rcpt@example.org".into()]);
    i
}

fn reply(kind: CommandKind, b: Backend) -> Vec<u8> {
    match kind {
        CommandKind::Ehlo if b == Backend::Pipeconnect || b == Backend::OutOfStep => {
            EHLO_PC.to_vec()
        }
        CommandKind::Ehlo => EHLO_NO_PC.to_vec(),
        CommandKind::Mail if b == Backend::OutOfStep => b"354 what\r\n".to_vec(),
        CommandKind::Data => b"354 go on\r\n".to_vec(),
        _ => b"250 ok\r\n".to_vec(),
    }
}

/// One delivery attempt on one connection to `b`.
fn attempt(cache: &Arc<Cache>, b: Backend) -> Delivered {
    let mut s = Session::begin(cache.clone(), key(), intent(), Settings::early()).unwrap();
    let reason = s.flight().reason;
    let mut pending = s.next_commands();
    let early = !pending.is_empty();
    let banner: &[u8] = match b {
        Backend::Refuses if early => b"554 SMTP synchronization error\r\n",
        Backend::Busy => b"421 busy, try later\r\n",
        _ => b"220 mx.example.org ESMTP\r\n",
    };
    let _ = s.feed(banner);
    loop {
        pending.extend(s.next_commands());
        if pending.is_empty() || s.is_done() {
            break;
        }
        let mut out = Vec::new();
        for c in pending.drain(..) {
            out.extend(reply(c.kind, b));
        }
        if s.feed(&out).is_err() {
            break;
        }
    }
    let sum = s.finish();
    Delivered {
        early,
        reason,
        verdict: sum.verdict,
    }
}

/// A delivery as an MTA makes it: one attempt, and on `Reconnect` a second one (to
/// `then`, the backend the reconnect lands on).
fn deliver(cache: &Arc<Cache>, first: Backend, then: Backend) -> Delivered {
    let d = attempt(cache, first);
    if d.verdict == Verdict::Reconnect {
        let again = attempt(cache, then);
        assert!(!again.early, "a reconnect is classic");
        return Delivered {
            verdict: Verdict::Reconnect,
            ..d
        };
    }
    d
}

fn config() -> HoldDownConfig {
    HoldDownConfig {
        decay_after: 5,
        ..HoldDownConfig::default()
    }
}

fn memory() -> Arc<Cache> {
    let c = Cache::in_memory(CacheConfig {
        hold_down: config(),
        ..CacheConfig::default()
    });
    c.clock().set(T0);
    Arc::new(c)
}

fn file(name: &str) -> (Arc<Cache>, std::path::PathBuf) {
    let d = common::scratch(&format!("hold-down-{name}"));
    let c = Cache::open_file(
        &d.join("store"),
        &StoreOptions {
            sets: 16,
            ways: 4,
            hold_down: config(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    c.clock().set(T0);
    (Arc::new(c), d)
}

/// When the running hold-down of the key ends, if one runs.
fn held_until(cache: &Cache) -> Option<u64> {
    cache.held_down(&key()).map(|h| h.until)
}

fn at(cache: &Cache, t: u64) {
    cache.clock().set(t);
}

/// Refuse an early flight at `t` (after making sure one goes), and return the length of
/// the hold-down it began.
fn refuse_at(cache: &Arc<Cache>, t: u64) -> u64 {
    at(cache, t);
    // The entry is there (learned by the last classic delivery) and no hold-down runs.
    assert!(cache.lookup(&key()).is_some());
    let d = deliver(cache, Backend::Refuses, Backend::Pipeconnect);
    assert!(d.early, "an early flight went at {t}: {d:?}");
    assert_eq!(d.verdict, Verdict::Reconnect);
    held_until(cache).expect("held down") - t
}

fn the_server_that_settles_gets_early_pipelining_back(cache: Arc<Cache>) {
    let c = &cache;
    // Learn, then go early.
    assert!(!deliver(c, Backend::Pipeconnect, Backend::Pipeconnect).early);
    assert!(deliver(c, Backend::Pipeconnect, Backend::Pipeconnect).early);
    assert_eq!(c.stats().hold_downs_entered, 0);

    // A refusal: held down one hour, through the entry's invalidation and relearning.
    assert_eq!(refuse_at(c, T0 + 10), HOUR);
    assert_eq!(c.stats().hold_downs_entered, 1);
    assert_eq!(c.stats().hold_downs_current, 1);
    // Either TLS state of the server is held.
    assert!(c.held_down(&key().in_state(TlsState::Encrypted)).is_some());
    // Held: classic with its reason; the key keeps learning meanwhile.
    at(c, T0 + 10 + HOUR / 2);
    for b in [Backend::Pipeconnect, Backend::Refuses] {
        let d = deliver(c, b, b);
        assert!(!d.early);
        assert_eq!(d.reason, StopReason::HeldDown, "{b:?}");
        assert_eq!(d.verdict, Verdict::Continue);
    }
    // The classic delivery to a backend without PIPECONNECT removed the entry; the
    // hold-down outlived it, and the next delivery relearns.
    assert!(c.lookup(&key()).is_none());
    let d = deliver(c, Backend::Pipeconnect, Backend::Pipeconnect);
    assert_eq!((d.early, d.reason), (false, StopReason::NoEntry));
    assert!(c.lookup(&key()).is_some(), "kept learning");
    assert_eq!(
        c.stats().early_skipped_held_down,
        2,
        "skips with an entry only"
    );
    assert_eq!(held_until(c), Some(T0 + 10 + HOUR));

    // It expires: early again.
    at(c, T0 + 10 + HOUR);
    assert_eq!(c.stats().hold_downs_current, 0);
    assert!(deliver(c, Backend::Pipeconnect, Backend::Pipeconnect).early);

    // Repeated refusals lengthen it: 4 h, then 16 h, capped at 24 h.
    let mut t = T0 + 2 * HOUR;
    assert_eq!(refuse_at(c, t), 4 * HOUR);
    at(c, t + 4 * HOUR - 1);
    assert_eq!(
        deliver(c, Backend::Pipeconnect, Backend::Pipeconnect).reason,
        StopReason::HeldDown
    );
    t += 4 * HOUR;
    assert_eq!(refuse_at(c, t), 16 * HOUR);
    t += 16 * HOUR;
    assert_eq!(refuse_at(c, t), 24 * HOUR);
    t += 24 * HOUR;
    assert_eq!(refuse_at(c, t), 24 * HOUR, "capped");
    assert_eq!(c.stats().hold_downs_entered, 5);

    // The server settles: after the hold-down ended, early successes take it down a step
    // every 5 (the configured decay), so the next refusal costs less.
    t += 24 * HOUR;
    at(c, t);
    for _ in 0..5 * 4 {
        assert!(deliver(c, Backend::Pipeconnect, Backend::Pipeconnect).early);
    }
    // Level 5 less 4 steps: the next refusal is the second step.
    assert_eq!(refuse_at(c, t + 60), 4 * HOUR);
    // And a long enough run takes the record away entirely.
    t += 60 + 4 * HOUR;
    at(c, t);
    for _ in 0..5 * 2 {
        assert!(deliver(c, Backend::Pipeconnect, Backend::Pipeconnect).early);
    }
    assert!(c.hold_downs().is_empty(), "{:?}", c.hold_downs());
    assert_eq!(refuse_at(c, t + 60), HOUR, "back at the first step");
}

#[test]
fn memory_hold_down_expires_lengthens_and_decays() {
    the_server_that_settles_gets_early_pipelining_back(memory());
}

#[test]
fn file_hold_down_expires_lengthens_and_decays() {
    let (c, d) = file("cycle");
    the_server_that_settles_gets_early_pipelining_back(c);
    std::fs::remove_dir_all(d).unwrap();
}

fn only_refusals_that_say_the_server_did_not_expect_it(cache: Arc<Cache>) {
    let c = &cache;
    let prime = || {
        assert!(c.held_down(&key()).is_none());
        if c.lookup(&key()).is_none() {
            deliver(c, Backend::Pipeconnect, Backend::Pipeconnect);
        }
    };
    // 421: nothing about PIPECONNECT.
    prime();
    let d = deliver(c, Backend::Busy, Backend::Pipeconnect);
    assert!(d.early);
    assert!(c.held_down(&key()).is_none(), "421 is not a refusal");
    // An EHLO reply that drops PIPECONNECT after an early flight.
    prime();
    assert!(deliver(c, Backend::DropsPipeconnect, Backend::Pipeconnect).early);
    assert!(c.held_down(&key()).is_some());
    at(c, T0 + HOUR);
    // An out-of-step reply after an early flight.
    prime();
    let d = deliver(c, Backend::OutOfStep, Backend::Pipeconnect);
    assert!(d.early);
    let h = c
        .held_down(&key())
        .expect("held after an out-of-step reply");
    assert_eq!(h.level, 2);
    // Hold-downs off for this handle: a refusal is recorded nowhere and holds nothing.
    c.set_hold_down_config(HoldDownConfig::OFF);
    assert!(c.held_down(&key()).is_none());
    at(c, T0 + 20 * HOUR);
    prime();
    assert!(deliver(c, Backend::Refuses, Backend::Pipeconnect).early);
    assert!(deliver(c, Backend::Refuses, Backend::Pipeconnect).early);
    assert_eq!(c.stats().hold_downs_entered, 2);
}

#[test]
fn memory_only_refusals_enter_a_hold_down() {
    only_refusals_that_say_the_server_did_not_expect_it(memory());
}

#[test]
fn file_only_refusals_enter_a_hold_down() {
    let (c, d) = file("which");
    only_refusals_that_say_the_server_did_not_expect_it(c);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn file_hold_down_is_shared_by_every_opener_and_survives_forget() {
    let (a, d) = file("shared");
    let b = Cache::open_file(&d.join("store"), &StoreOptions::default()).unwrap();
    b.clock().set(T0);
    deliver(&a, Backend::Pipeconnect, Backend::Pipeconnect);
    assert_eq!(refuse_at(&a, T0), HOUR);
    assert!(b.held_down(&key()).is_some(), "another opener sees it");
    assert!(b.forget(&key()));
    assert!(
        b.held_down(&key()).is_some(),
        "forgetting the entry keeps the tombstone"
    );
    assert_eq!(b.stats().hold_downs_current, 1);
    // An unchanged EHLO reply with SIZE 2^64-1 leaves the entry alone: presence bits,
    // not a sentinel.
    b.learn(
        &key(),
        pipeconnect::Capabilities::parse_ehlo(EHLO_PC, Default::default()).unwrap(),
    );
    let inserts = b.stats().inserts;
    at(&a, T0 + 30);
    let d2 = deliver(&a, Backend::Pipeconnect, Backend::Pipeconnect);
    assert_eq!(d2.reason, StopReason::HeldDown);
    assert_eq!(
        b.stats().inserts,
        inserts,
        "an unchanged EHLO rewrote the entry"
    );
    // The operator's forget of the server drops the hold-down too.
    b.forget_server(key().server(), None);
    assert!(b.held_down(&key()).is_none());
    std::fs::remove_dir_all(d).unwrap();
}
