//! No false deliveries (issue 9): whatever a server sends, in whatever split, a session
//! reports the message accepted only when a 250 answered the end of data (or BDAT LAST)
//! in its proper place, every reply before it in step.

use pipeconnect::policy::{positive_code, CommandKind, Settings};
use pipeconnect::session::event::*;
use pipeconnect::session::{BodyMode, Event, Intent, PlannedCommand, Session};
use pipeconnect::{Cache, CacheConfig, Capabilities, ParseOptions, PeerKey, TlsState};
use proptest::prelude::*;
use std::sync::Arc;

const EHLO: &[u8] = b"250-mx.example.org Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n\
250-PIPECONNECT\r\n250-CHUNKING\r\n250 HELP\r\n";

fn key() -> PeerKey {
    PeerKey::parse("192.0.2.25", 25, TlsState::Cleartext).unwrap()
}

/// One reply of the random stream: its code, and for 250 whether it is a full EHLO reply.
#[derive(Debug, Clone, Copy)]
struct R {
    code: u16,
    ehlo: bool,
}

fn reply_strategy() -> impl Strategy<Value = R> {
    let code = prop_oneof![
        6 => Just(250u16),
        2 => Just(220u16),
        1 => Just(221u16),
        1 => Just(251u16),
        1 => Just(252u16),
        2 => Just(354u16),
        1 => Just(334u16),
        1 => Just(235u16),
        1 => Just(421u16),
        1 => Just(451u16),
        1 => Just(550u16),
        1 => Just(554u16),
        1 => Just(150u16),
    ];
    (code, any::<bool>()).prop_map(|(code, ehlo)| R { code, ehlo })
}

fn render(stream: &[R]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in stream {
        if r.code == 250 && r.ehlo {
            out.extend_from_slice(EHLO);
        } else {
            out.extend_from_slice(format!("{} x\r\n", r.code).as_bytes());
        }
    }
    out
}

fn split(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([stream.len()]) {
        out.push(stream[start..c].to_vec());
        start = c;
    }
    out
}

#[derive(Debug, Clone)]
struct Case {
    cached: bool,
    rcpts: usize,
    size: u64,
    data: bool,
    quit_after: Option<usize>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        1usize..4,
        prop_oneof![Just(100u64), Just(5_000_000u64)],
        any::<bool>(),
        proptest::option::of(0usize..12),
    )
        .prop_map(|(cached, rcpts, size, data, quit_after)| Case {
            cached,
            rcpts,
            size,
            data,
            quit_after,
        })
}

/// Drive a session over `chunks` as a client would: take commands after every feed, and
/// (when the case says so) ask for QUIT after that many feeds.
fn drive(case: &Case, chunks: &[Vec<u8>]) -> (Vec<Event>, Summary, Vec<PlannedCommand>) {
    let cache = Arc::new(Cache::in_memory(CacheConfig::default()));
    cache.clock().set(1_700_000_000);
    if case.cached {
        cache.learn(
            &key(),
            Capabilities::parse_ehlo(EHLO, ParseOptions::default()).unwrap(),
        );
    }
    let mut intent = Intent::new("client.example.net", case.rcpts, case.size);
    if case.data {
        intent.body.mode = BodyMode::Data;
    }
    let mut s = Session::begin(cache, key(), intent, Settings::early()).unwrap();
    let mut sent = s.next_commands();
    let mut events = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        if case.quit_after == Some(i) {
            // Refused (BadState) while more may follow: that is fine, it is a probe.
            let _ = s.quit();
        }
        let fed = s.feed(c);
        sent.extend(s.next_commands());
        while let Some(e) = s.next_event() {
            events.push(e);
        }
        if fed.is_err() {
            break;
        }
    }
    (events, s.finish(), sent)
}

/// The property, checked against the stream itself: the i-th event is the i-th reply
/// (same code), the events answer the banner and then the commands sent, in order, none
/// skipped (a command withdrawn before it was taken has no reply), and an
/// acceptance needs a 250 to the end of data or BDAT LAST with every reply before it the
/// positive code of its command or a 4xx/5xx, a 220 banner, a 250 to MAIL, an accepted
/// recipient, a 354 before a body, and no 421.
fn check(
    stream: &[R],
    events: &[Event],
    sum: &Summary,
    sent: &[PlannedCommand],
) -> Result<(), TestCaseError> {
    for (i, e) in events.iter().enumerate() {
        prop_assert_eq!(e.code, stream[i].code, "event {} code", i);
        if i == 0 {
            prop_assert_eq!((e.seq, e.kind), (0, CommandKind::Banner));
        } else {
            prop_assert!(e.seq > events[i - 1].seq, "in order");
        }
    }
    let last = events.last().map_or(0, |e| e.seq);
    for c in sent.iter().filter(|c| c.seq <= last) {
        prop_assert!(
            events.iter().any(|e| e.seq == c.seq && e.kind == c.kind),
            "{} (seq {}) sent but its reply went elsewhere",
            c.kind,
            c.seq
        );
    }
    let accepted: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].has(EVENT_MESSAGE_ACCEPTED))
        .collect();
    prop_assert!(accepted.len() <= 1);
    prop_assert_eq!(sum.has(SUMMARY_MESSAGE_ACCEPTED), !accepted.is_empty());
    let Some(&k) = accepted.first() else {
        return Ok(());
    };
    let e = &events[k];
    prop_assert!(matches!(e.kind, CommandKind::BdatLast | CommandKind::Body));
    prop_assert_eq!(e.code, 250);
    prop_assert_eq!(events[0].kind, CommandKind::Banner);
    prop_assert_eq!(events[0].code, 220);
    let before = &events[..k];
    for b in before {
        let class = b.code / 100;
        prop_assert!(
            class == 4 || class == 5 || positive_code(b.kind, b.code),
            "{} answered {} before the acceptance",
            b.kind,
            b.code
        );
        prop_assert!(b.code != 421);
    }
    let has = |kind: CommandKind, codes: &[u16]| {
        before
            .iter()
            .any(|b| b.kind == kind && codes.contains(&b.code))
    };
    prop_assert!(has(CommandKind::Ehlo, &[250]));
    prop_assert!(has(CommandKind::Mail, &[250]));
    prop_assert!(has(CommandKind::Rcpt, &[250, 251]));
    if e.kind == CommandKind::Body {
        prop_assert!(has(CommandKind::Data, &[354]));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_message_is_accepted_only_by_a_250_in_its_place(
        stream in proptest::collection::vec(reply_strategy(), 1..12),
        case in case_strategy(),
        cuts in proptest::collection::vec(0usize..4_000, 0..8),
    ) {
        let bytes = render(&stream);
        let (events, sum, sent) = drive(&case, std::slice::from_ref(&bytes));
        check(&stream, &events, &sum, &sent)?;
        let parts = split(&bytes, &cuts);
        let (events, sum, sent) = drive(&case, &parts);
        check(&stream, &events, &sum, &sent)?;
    }

    /// The same with the replies a well-behaved server gives, shifted by one (a reply
    /// dropped or repeated somewhere): never an acceptance unless the shift put a 250 in
    /// the end-of-data place with everything before it in step.
    #[test]
    fn shifted_streams_never_deliver_falsely(
        drop_at in 0usize..8,
        repeat in any::<bool>(),
        case in case_strategy(),
        cuts in proptest::collection::vec(0usize..4_000, 0..8),
    ) {
        let rcpts = case.rcpts;
        let mut good = vec![R { code: 220, ehlo: false }, R { code: 250, ehlo: true },
                            R { code: 250, ehlo: false }];
        good.extend(std::iter::repeat_n(R { code: 250, ehlo: false }, rcpts));
        if case.data {
            good.push(R { code: 354, ehlo: false });
        }
        good.push(R { code: 250, ehlo: false });
        good.push(R { code: 221, ehlo: false });
        let at = drop_at % good.len();
        if repeat {
            good.insert(at, good[at]);
        } else {
            good.remove(at);
        }
        let bytes = render(&good);
        let parts = split(&bytes, &cuts);
        let (events, sum, sent) = drive(&case, &parts);
        check(&good, &events, &sum, &sent)?;
    }
}
