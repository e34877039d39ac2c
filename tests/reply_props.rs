//! Property tests of the reply parser: any split of a stream gives the same replies as the
//! whole; arbitrary bytes never panic and never grow past the limits.

use pipeconnect::reply::{Reply, ReplyLimits, ReplyParser};
use proptest::prelude::*;

fn reply_strategy() -> impl Strategy<Value = (u16, Vec<String>, bool)> {
    (
        prop_oneof![
            Just(220u16),
            Just(250),
            Just(354),
            Just(421),
            Just(451),
            Just(550),
            Just(554)
        ],
        prop::collection::vec("[ -~]{0,40}", 1..6),
        any::<bool>(),
    )
}

fn render(replies: &[(u16, Vec<String>, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (code, lines, crlf) in replies {
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{code}{sep}{l}").as_bytes());
            out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
    }
    out
}

fn feed_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Reply> {
    let mut p = ReplyParser::new(ReplyLimits::default());
    let mut out = Vec::new();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.sort_unstable();
    for c in points.into_iter().chain(std::iter::once(stream.len())) {
        p.feed(&stream[at..c], &mut out).unwrap();
        at = c;
    }
    assert!(p.is_idle());
    out
}

proptest! {
    #[test]
    fn any_split_gives_the_same_replies(
        replies in prop::collection::vec(reply_strategy(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let stream = render(&replies);
        let whole = feed_in_pieces(&stream, &[]);
        let split = feed_in_pieces(&stream, &cuts);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole.len(), replies.len());
        for (r, (code, lines, _)) in whole.iter().zip(&replies) {
            prop_assert_eq!(r.code(), *code);
            prop_assert_eq!(r.lines().len(), lines.len());
            // Text keeps everything after the separator (a trailing CR of the text itself
            // is indistinguishable from a line end, and the strategy makes none).
            for (got, want) in r.lines().iter().zip(lines) {
                prop_assert_eq!(got.as_slice(), want.as_bytes());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..20),
    ) {
        let limits = ReplyLimits { max_line: 256, max_lines: 8, max_bytes: 1024 };
        let mut p = ReplyParser::new(limits);
        let mut out = Vec::new();
        for c in &chunks {
            if p.feed(c, &mut out).is_err() {
                break;
            }
        }
        for r in &out {
            prop_assert!(r.lines().len() <= 8);
            prop_assert!(r.lines().iter().all(|l| l.len() <= 256));
        }
    }
}
