//! The pre-banner classifier: any split of the input gives the same verdict as the whole;
//! arbitrary bytes never panic and stay within the limits.

use pipeconnect::server::prebanner::{classify, Class, Prebanner, PrebannerLimits, Reason};
use proptest::prelude::*;

/// Pieces of real flights and of garbage, so that random inputs reach every state.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO client.test\r\n".to_vec()),
        Just(b"MAIL FROM:<a@b>\r\n".to_vec()),
        Just(b"RCPT TO:<x@y>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"BDAT 4 LAST\r\nbody".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"AUTH PLAIN AGEAYg==\r\n".to_vec()),
        Just(b"QUIT\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"HELO x\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..12).prop_map(|v| v.concat())
}

fn limits() -> impl Strategy<Value = PrebannerLimits> {
    (1u64..300, 1u32..8, 0u64..20).prop_map(|(max_bytes, max_commands, max_body)| PrebannerLimits {
        max_bytes,
        max_commands,
        max_body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_split_gives_the_same_verdict(
        data in input(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        offered in any::<bool>(),
        limits in prop_oneof![Just(PrebannerLimits::default()), limits()],
    ) {
        let whole = classify(offered, limits, &data);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut p = Prebanner::new(offered, limits);
        let mut start = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            p.feed(&data[start..c]);
            start = c;
        }
        prop_assert_eq!(p.verdict(), whole);
        // And byte by byte.
        let mut q = Prebanner::new(offered, limits);
        for b in &data {
            q.feed(std::slice::from_ref(b));
        }
        prop_assert_eq!(q.verdict(), whole);
    }

    #[test]
    fn arbitrary_bytes_stay_within_the_limits(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        offered in any::<bool>(),
        limits in limits(),
    ) {
        let v = classify(offered, limits, &data);
        prop_assert!(v.bytes <= limits.max_bytes);
        prop_assert!(v.commands <= limits.max_commands);
        prop_assert_eq!(v.class == Class::Nothing, data.is_empty());
        if !offered && !data.is_empty() {
            prop_assert_eq!(v.class, Class::Pregreet);
        }
        if v.class == Class::EarlyFlight {
            prop_assert_eq!(v.reason, Reason::None);
        }
    }
}

/// The flight Exim 4.96 sends to a server it cached PIPECONNECT for (a small message
/// with CHUNKING), as seen on loopback.
#[test]
fn exim_client_flight_is_early() {
    let flight = b"EHLO client.test\r\nMAIL FROM:<sender@client.test> SIZE=300\r\n\
RCPT TO:<rcpt@sink.test>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n";
    let v = classify(true, PrebannerLimits::default(), flight);
    assert_eq!((v.class, v.reason), (Class::EarlyFlight, Reason::None));
    assert_eq!(v.commands, 4);
    assert!(!v.incomplete);
}
