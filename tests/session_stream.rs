//! Reply bytes as they come off a socket: any split gives the same events, and nothing a
//! server sends makes a session grow without bound.

use pipeconnect::policy::{CommandKind, Settings, Verdict};
use pipeconnect::session::event::*;
use pipeconnect::session::{AuthIntent, Event, Intent, Session, SessionError, Summary};
use pipeconnect::{Cache, CacheConfig, Capabilities, Error, ParseOptions, PeerKey, TlsState};
use proptest::prelude::*;
use std::sync::Arc;

/// A recorded conversation's replies: banner, a multi-line EHLO reply, MAIL, two RCPT
/// (one refused, multi-line), 354, and the end-of-data 250. One line ends in a bare LF.
const STREAM: &[u8] = b"220 mx.example.org ESMTP Exim 4.96 Mon, 01 Jan 2024 00:00:00 +0000\r\n\
250-mx.example.org Hello client.example.net [192.0.2.1]\r\n\
250-SIZE 52428800\r\n\
250-8BITMIME\r\n\
250-PIPELINING\r\n\
250-PIPECONNECT\r\n\
250 HELP\r\n\
250 OK\r\n\
250 Accepted\n\
550-5.1.1 <r1@example.org>: no such user here\r\n\
550 5.1.1 try another address\r\n\
354 Enter message, ending with \".\" on a line by itself\r\n\
250 OK id=1q2w3e-000001-AB\r\n";

const EHLO: &[u8] = b"250-mx.example.org Hello\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n\
250-PIPELINING\r\n250-PIPECONNECT\r\n250 HELP\r\n";

fn key() -> PeerKey {
    PeerKey::parse("2001:db8::25", 25, TlsState::Cleartext).unwrap()
}

fn session(cached: bool) -> Session {
    let cache = Arc::new(Cache::in_memory(CacheConfig::default()));
    cache.clock().set(1_700_000_000);
    if cached {
        cache.learn(
            &key(),
            Capabilities::parse_ehlo(EHLO, ParseOptions::default()).unwrap(),
        );
    }
    Session::begin(
        cache,
        key(),
        Intent::new("client.example.net", 2, 300),
        Settings::early(),
    )
    .unwrap()
}

/// Feed `chunks` one by one, taking commands after each like a client would.
fn replay(cached: bool, chunks: &[&[u8]]) -> (Vec<Event>, Summary, Vec<CommandKind>) {
    let mut s = session(cached);
    let mut sent: Vec<CommandKind> = s.next_commands().iter().map(|c| c.kind).collect();
    let mut events = Vec::new();
    for c in chunks {
        s.feed(c).unwrap();
        sent.extend(s.next_commands().iter().map(|c| c.kind));
        while let Some(e) = s.next_event() {
            events.push(e);
        }
    }
    (events, s.finish(), sent)
}

/// Where the server's turns end in [`STREAM`]: it can only answer what the client sent,
/// so a reply never shares a read with the reply that let the client send its command
/// (the banner before a classic EHLO, the EHLO reply before MAIL, 354 before the body).
fn turns() -> Vec<usize> {
    let end_of = |needle: &[u8]| {
        STREAM
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + needle.len())
            .unwrap()
    };
    vec![
        end_of(b"+0000\r\n"),
        end_of(b"250 HELP\r\n"),
        end_of(b"by itself\r\n"),
    ]
}

/// `stream` cut at `cuts` and always at the server's turns.
fn split<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.extend(turns());
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([stream.len()]) {
        out.push(&stream[start..c]);
        start = c;
    }
    out
}

#[test]
fn the_recorded_stream_fed_a_turn_at_a_time() {
    for cached in [false, true] {
        let (events, sum, _) = replay(cached, &split(STREAM, &[]));
        let kinds: Vec<CommandKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                CommandKind::Banner,
                CommandKind::Ehlo,
                CommandKind::Mail,
                CommandKind::Rcpt,
                CommandKind::Rcpt,
                CommandKind::Data,
                CommandKind::Body
            ]
        );
        assert_eq!(events[4].verdict, Verdict::Rejected);
        assert_eq!(events[4].rcpt_index, Some(1));
        assert_eq!(
            events[4].text,
            b"5.1.1 <r1@example.org>: no such user here\n5.1.1 try another address"
        );
        assert_eq!(events[4].enhanced.unwrap().subject, 1);
        assert!(events[6].has(EVENT_MESSAGE_ACCEPTED));
        assert_eq!(events[1].has(EVENT_EARLY), cached);
        assert_eq!(sum.verdict, Verdict::Continue);
        assert_eq!((sum.rcpt_accepted, sum.rcpt_rejected), (1, 1));
    }
}

proptest! {
    /// The same events, summary and commands whatever the split within the server's
    /// turns, early or classic.
    #[test]
    fn any_split_gives_the_same_events(
        cuts in proptest::collection::vec(0usize..10_000, 0..40),
        cached in any::<bool>(),
    ) {
        let whole = replay(cached, &split(STREAM, &[]));
        let bytewise: Vec<&[u8]> = STREAM.chunks(1).collect();
        let parts = split(STREAM, &cuts);
        let split_run = replay(cached, &parts);
        prop_assert_eq!(&split_run.0, &whole.0);
        prop_assert_eq!(split_run.1, whole.1);
        prop_assert_eq!(replay(cached, &bytewise).0, whole.0);
    }
}

#[test]
fn a_line_without_end_is_bounded() {
    let mut s = session(true);
    s.next_commands();
    let chunk = vec![b'2'; 1024];
    let mut err = None;
    for _ in 0..64 {
        if let Err(e) = s.feed(&chunk) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(SessionError::Reply(Error::ReplyLineTooLong)));
    assert_eq!(
        s.feed(b"250 ok\r\n"),
        Err(SessionError::Reply(Error::ReplyLineTooLong))
    );
    let sum = s.finish();
    assert!(sum.has(SUMMARY_FAILED));
    assert_eq!(
        sum.verdict,
        Verdict::Reconnect,
        "broken stream after an early flight"
    );
}

#[test]
fn event_text_is_cut() {
    let mut s = session(true);
    s.next_commands();
    let mut banner = String::new();
    for _ in 0..40 {
        banner.push_str(&format!("220-{}\r\n", "x".repeat(200)));
    }
    banner.push_str("220 end\r\n");
    s.feed(banner.as_bytes()).unwrap();
    let e = s.next_event().unwrap();
    assert_eq!(e.text.len(), EVENT_TEXT_MAX);
    assert!(e.has(EVENT_TEXT_TRUNCATED));
}

#[test]
fn replies_nobody_asked_for_do_not_queue() {
    let mut s = session(true);
    s.next_commands();
    for turn in split(STREAM, &[]) {
        s.feed(turn).unwrap();
        s.next_commands();
    }
    while s.next_event().is_some() {}
    let flood = "250 more\r\n".repeat(10_000);
    assert_eq!(s.feed(flood.as_bytes()), Err(SessionError::UnexpectedReply));
    assert_eq!(s.pending_events(), 0);
}

#[test]
fn endless_auth_challenges_are_out_of_step() {
    let cache = Arc::new(Cache::in_memory(CacheConfig::default()));
    let mut intent = Intent::new("client.example.net", 1, 10);
    intent.auth = Some(AuthIntent {
        mechanism: "LOGIN".into(),
        initial_response: false,
        required: true,
    });
    let mut s = Session::begin(cache, key(), intent, Settings::early()).unwrap();
    s.feed(b"220 hi\r\n").unwrap();
    s.next_commands();
    s.feed(b"250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN\r\n")
        .unwrap();
    assert_eq!(s.next_commands().len(), 1);
    let mut last = None;
    for _ in 0..(pipeconnect::session::AUTH_CHALLENGES_MAX + 1) {
        s.feed(b"334 VXNlcm5hbWU6\r\n").unwrap();
        while let Some(e) = s.next_event() {
            last = Some(e);
        }
    }
    let last = last.unwrap();
    assert!(last.has(EVENT_OUT_OF_STEP) && last.has(EVENT_CONNECTION_DONE));
    assert!(s.is_done());
    assert!(s.pending_events() == 0);
}
