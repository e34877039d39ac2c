//! EHLO capability parsing, and the encode/decode round trip of what it parsed; decoding
//! arbitrary bytes as a stored record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::caps::ENCODED_MAX;
use pipeconnect::{Capabilities, ParseOptions};
use pipeconnect_fuzz::Cursor;

fn round_trip(caps: &Capabilities) {
    let enc = caps.encode();
    assert!(enc.len() <= ENCODED_MAX, "encoding of {} bytes", enc.len());
    let back = Capabilities::decode(&enc).expect("an encoding decodes");
    assert_eq!(&back, caps, "decode(encode(caps)) differs");
    assert_eq!(back.encode(), enc);
    assert_eq!(back.fingerprint(), caps.fingerprint());
    assert_eq!(back.changed_bits(caps), 0);
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    let opts = ParseOptions {
        legacy_keywords: mode & 2 != 0,
    };
    let rest = c.rest();
    if mode & 1 == 0 {
        if let Ok(caps) = Capabilities::parse_ehlo(rest, opts) {
            assert!(caps.auth_mechanisms().len() <= pipeconnect::caps::AUTH_MECHS_MAX);
            for m in caps.auth_mechanisms() {
                assert!(caps.has_auth(m));
                assert!(caps.has_auth(&m.to_ascii_lowercase()));
            }
            round_trip(&caps);
        }
    } else if let Ok(caps) = Capabilities::decode(rest) {
        // What decodes must encode back to something that decodes to the same record.
        round_trip(&caps);
    }
});
