//! The reply parser on arbitrary bytes in arbitrary splits, under fuzzer-chosen limits.
//! Checks: the split never changes the replies or the error; every reply is within the
//! limits; after an error the parser stays failed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::{ReplyLimits, ReplyParser};
use pipeconnect_fuzz::{splits, Cursor};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let limits = if c.bool() {
        ReplyLimits::default()
    } else {
        ReplyLimits {
            max_line: 1 + c.u8() as usize * 4,
            max_lines: 1 + (c.u8() % 16) as usize,
            max_bytes: 1 + c.u16() as usize,
        }
    };
    let lens = c.slice(32);
    let stream = c.rest();

    let mut whole = ReplyParser::new(limits);
    let mut whole_out = Vec::new();
    let whole_res = whole.feed(stream, &mut whole_out);

    let mut split = ReplyParser::new(limits);
    let mut split_out = Vec::new();
    let mut split_res = Ok(());
    for piece in splits(stream, lens) {
        split_res = split.feed(piece, &mut split_out);
        if split_res.is_err() {
            break;
        }
    }
    assert_eq!(whole_res, split_res, "the split changed the outcome");
    assert_eq!(whole_out, split_out, "the split changed the replies");
    assert_eq!(whole.is_idle(), split.is_idle());

    for r in &whole_out {
        assert!((100..=599).contains(&r.code()), "code {}", r.code());
        assert!(!r.lines().is_empty() && r.lines().len() <= limits.max_lines);
        let bytes: usize = r.lines().iter().map(|l| l.len()).sum();
        assert!(bytes <= limits.max_bytes);
        assert!(r.lines().iter().all(|l| l.len() <= limits.max_line));
    }
    if let Err(e) = whole_res {
        assert_eq!(whole.failure(), Some(e));
        let mut more = Vec::new();
        assert_eq!(whole.feed(b"250 ok\r\n", &mut more), Err(e));
        assert!(more.is_empty());
    }
});
