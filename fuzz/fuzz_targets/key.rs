//! Key parsing (server, local address, EHLO name as text) and the canonical bytes a store
//! keeps: a key built from text survives its bytes, and decoding arbitrary bytes either
//! fails or gives a key whose bytes decode to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::{PeerKey, TlsState};
use pipeconnect_fuzz::Cursor;

fn check(key: &PeerKey) {
    let bytes = key.canonical_bytes();
    let back = PeerKey::from_bytes(&bytes).expect("canonical bytes decode");
    assert_eq!(&back, key);
    assert_eq!(back.digest(), key.digest());
    assert_eq!(back.to_string(), key.to_string());
    assert!(
        key.to_string().len() < 320,
        "longer than the C API promises"
    );
    let other = key.in_state(TlsState::Encrypted);
    assert_eq!(other.tls(), TlsState::Encrypted);
    assert_eq!(other.server(), key.server());
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
    let Ok(mut key) = PeerKey::parse(&server, port, tls) else {
        return;
    };
    check(&key);
    if mode & 2 != 0 {
        if let Ok(k) = key.clone().with_local(&local) {
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
