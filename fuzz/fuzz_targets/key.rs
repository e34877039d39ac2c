//! Key parsing (server, local address, EHLO name as text) and the canonical bytes a store
//! keeps: a key built from text survives its bytes, and decoding arbitrary bytes either
//! fails or gives a key whose bytes decode to the same key. Address text is accepted
//! exactly when an independent reading (the standard parser; IPv6 alone in brackets;
//! IPv4-mapped addresses as IPv4; the unspecified addresses refused) accepts it, so
//! surrounding white space, `[192.0.2.1]`, `::` and `0.0.0.0` never make a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::ffi::key::PIPECONNECT_KEY_STRING_MAX;
use pipeconnect::key::normalise;
use pipeconnect::{PeerKey, TlsState};
use pipeconnect_fuzz::Cursor;
use std::net::{IpAddr, Ipv6Addr};

fn check(key: &PeerKey) {
    let bytes = key.canonical_bytes();
    let back = PeerKey::from_bytes(&bytes).expect("canonical bytes decode");
    assert_eq!(&back, key);
    assert_eq!(back.digest(), key.digest());
    assert_eq!(back.to_string(), key.to_string());
    assert!(
        key.to_string().len() < PIPECONNECT_KEY_STRING_MAX,
        "longer than the C API promises"
    );
    let other = key.in_state(TlsState::Encrypted);
    assert_eq!(other.tls(), TlsState::Encrypted);
    assert_eq!(other.server(), key.server());
}

/// What address text should name, read independently of the library.
fn expected_address(t: &str) -> Option<IpAddr> {
    let ip = match t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(inner) => IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?),
        None => t.parse::<IpAddr>().ok()?,
    };
    let ip = normalise(ip);
    (!ip.is_unspecified()).then_some(ip)
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    if mode & 1 == 1 {
        if let Ok(key) = PeerKey::from_bytes(c.rest()) {
            check(&key);
        }
        return;
    }
    let port = c.u16();
    let tls = TlsState::from_u8(c.u8() % 2).unwrap_or(TlsState::Cleartext);
    let server = String::from_utf8_lossy(c.slice(64)).into_owned();
    let local = String::from_utf8_lossy(c.slice(64)).into_owned();
    let name = String::from_utf8_lossy(c.rest()).into_owned();
    let parsed = PeerKey::parse(&server, port, tls);
    if port != 0 {
        assert_eq!(
            parsed.as_ref().ok().map(|k| k.server()),
            expected_address(&server),
            "address text {server:?}"
        );
    }
    let Ok(mut key) = parsed else {
        return;
    };
    check(&key);
    if mode & 2 != 0 {
        let narrowed = key.clone().with_local(&local);
        assert_eq!(
            narrowed.as_ref().ok().and_then(|k| k.local()),
            expected_address(&local),
            "local address text {local:?}"
        );
        if let Ok(k) = narrowed {
            key = k;
            check(&key);
        }
    }
    if mode & 4 != 0 {
        if let Ok(k) = key.clone().with_ehlo_name(&name) {
            assert_eq!(k.ehlo_name(), Some(name.to_ascii_lowercase().as_str()));
            key = k;
            check(&key);
        }
    }
});
