//! The client's QHLO cookie (SMTP QUICKSTART, experimental; docs/RULES.md 6.3), kept in the
//! cache beside the capabilities it came with.
//!
//! A cookie is per server and per client address, and a client must find it again in its
//! next process (an MTA delivers in one process per message). The cache's records hold
//! capabilities only, and the file store's format is fixed, so the cookie is kept as an
//! ordinary capability record under a **companion key**: the entry's key in the cleartext
//! state (a cookie goes before the banner, in cleartext) with the EHLO name `*qhlo-cookie`
//! (or `*qhlo-cookie:<name>` for a key narrowed to an EHLO name). A `*` is in no domain
//! name or address literal, so no connection greets with it and no session ever looks
//! that key up. The cookie's bytes, in upper-case hex, are the record's AUTH names (at most
//! [`COOKIE_MAX`] bytes, 13 names of up to 20 digits), and the record's fingerprint is a fixed
//! tag, so a record that is not a cookie is never read as one.
//!
//! The companion record lives and dies like an entry: the same TTL, the same eviction, a
//! `forget_server` drops it. It stays in this process's cache and the file store and never
//! goes to a shared tier (a cookie is for one client address, not for a fleet). It does not
//! take part in the capabilities' fingerprint (§6.3) nor in any early-flight decision: a
//! client uses a cookie only where the library already allows an early flight.

use super::{Cache, Entry};
use crate::caps::{AuthNames, Capabilities, AUTH_MECHS_MAX, AUTH_MECH_NAME_MAX};
use crate::key::{PeerKey, TlsState, EHLO_NAME_MAX};

/// The longest cookie kept, in bytes (each byte takes two hex digits of the record).
pub const COOKIE_MAX: usize = 128;

const _: () = assert!(2 * COOKIE_MAX <= AUTH_MECHS_MAX * AUTH_MECH_NAME_MAX);

/// The EHLO name of a companion key (no real EHLO name starts with `*`).
const MARK: &str = "*qhlo-cookie";

/// The fingerprint that tags a cookie record: FNV-1a 64 of "pipeconnect qhlo cookie 1".
fn tag() -> u64 {
    let mut h = crate::key::Fnv64::new();
    h.write(b"pipeconnect qhlo cookie 1");
    h.finish()
}

/// Whether `cookie` can be kept: 1 to [`COOKIE_MAX`] printable ASCII characters, no
/// space (as a greeting's `QHLO=` value is read).
pub fn cookie_acceptable(cookie: &str) -> bool {
    !cookie.is_empty() && cookie.len() <= COOKIE_MAX && cookie.bytes().all(|b| b.is_ascii_graphic())
}

/// The companion key that holds `key`'s cookie; `None` when the key's EHLO name is too
/// long to be marked.
pub fn cookie_key(key: &PeerKey) -> Option<PeerKey> {
    let name = match key.ehlo_name() {
        Some(n) => format!("{MARK}:{n}"),
        None => MARK.to_string(),
    };
    if name.len() > EHLO_NAME_MAX {
        return None;
    }
    let mut k = PeerKey::new(key.server(), key.port(), TlsState::Cleartext).ok()?;
    if let Some(local) = key.local() {
        k = k.with_local(&local.to_string()).ok()?;
    }
    k.with_ehlo_name(&name).ok()
}

/// Whether `key` is a companion key (its record is a cookie, not capabilities).
pub fn is_cookie_key(key: &PeerKey) -> bool {
    key.ehlo_name().is_some_and(|n| n.starts_with(MARK))
}

/// The cookie as a capability record.
pub fn encode(cookie: &str) -> Option<Capabilities> {
    if !cookie_acceptable(cookie) {
        return None;
    }
    let hex: String = cookie.bytes().map(|b| format!("{b:02X}")).collect();
    let mut names = AuthNames::default();
    for chunk in hex.as_bytes().chunks(AUTH_MECH_NAME_MAX) {
        // Hex digits only: always UTF-8.
        if !names.push(std::str::from_utf8(chunk).ok()?) {
            return None;
        }
    }
    Some(Capabilities::tagged_record(names, tag()))
}

/// The cookie a record holds; `None` when it is not a cookie record.
pub fn decode(caps: &Capabilities) -> Option<String> {
    if caps.fingerprint() != tag() || caps.flags() != 0 {
        return None;
    }
    let hex: String = caps.auth_mechanisms().concat();
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = hex
        .as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect();
    let cookie = String::from_utf8(bytes?).ok()?;
    cookie_acceptable(&cookie).then_some(cookie)
}

impl Cache {
    /// Keep `cookie` (from a greeting's `QHLO=` line) for `key`'s server, replacing the one
    /// kept before. Returns false, and keeps nothing, when the cookie or the key cannot be
    /// kept (see [`cookie_acceptable`]). Counted as an insert.
    pub fn learn_qhlo_cookie(&self, key: &PeerKey, cookie: &str) -> bool {
        let (Some(ck), Some(caps)) = (cookie_key(key), encode(cookie)) else {
            return false;
        };
        self.backend.insert(
            &ck,
            Entry {
                caps,
                learned_at: self.clock.now(),
            },
        );
        true
    }

    /// The live cookie kept for `key`'s server, if any (an expired one is removed).
    pub fn qhlo_cookie(&self, key: &PeerKey) -> Option<String> {
        let ck = cookie_key(key)?;
        let now = self.clock.now();
        let entry = self
            .backend
            .lookup(&ck, &|e: &Entry| self.is_live(e, now))?;
        decode(&entry.caps)
    }

    /// Drop the cookie kept for `key`'s server; `true` if there was one.
    pub fn forget_qhlo_cookie(&self, key: &PeerKey) -> bool {
        cookie_key(key).is_some_and(|ck| self.backend.remove(&ck))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::file::StoreOptions;
    use crate::cache::CacheConfig;
    use crate::caps::ParseOptions;

    fn key() -> PeerKey {
        PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap()
    }

    #[test]
    fn a_cookie_round_trips_through_a_record() {
        for c in [
            "0123456789abcdef0123456789abcdef",
            "x",
            "A-b_c=d/e+f",
            &"z".repeat(COOKIE_MAX),
        ] {
            let caps = encode(c).unwrap();
            assert_eq!(decode(&caps).as_deref(), Some(c));
            // ... and through the record's encoding (the file store's bytes).
            let back = Capabilities::decode(&caps.encode()).unwrap();
            assert_eq!(decode(&back).as_deref(), Some(c));
        }
        assert!(encode("").is_none());
        assert!(encode("has space").is_none());
        assert!(encode(&"z".repeat(COOKIE_MAX + 1)).is_none());
        assert!(encode("caf\u{e9}").is_none());
    }

    #[test]
    fn capabilities_are_never_read_as_a_cookie() {
        let caps = Capabilities::parse_ehlo(
            b"250-mx\r\n250-AUTH ABCD\r\n250 PIPELINING\r\n",
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(decode(&caps), None);
    }

    #[test]
    fn the_companion_key_is_cleartext_and_keeps_local_and_name() {
        let k = key().in_state(TlsState::Encrypted);
        let ck = cookie_key(&k).unwrap();
        assert_eq!(ck.tls(), TlsState::Cleartext);
        assert_eq!(ck.ehlo_name(), Some(MARK));
        assert!(is_cookie_key(&ck) && !is_cookie_key(&k));
        let named = key()
            .with_local("198.51.100.1")
            .unwrap()
            .with_ehlo_name("client.example")
            .unwrap();
        let ck = cookie_key(&named).unwrap();
        assert_eq!(ck.local(), named.local());
        assert_eq!(ck.ehlo_name(), Some("*qhlo-cookie:client.example"));
        let long = key().with_ehlo_name(&"a".repeat(EHLO_NAME_MAX)).unwrap();
        assert!(cookie_key(&long).is_none());
    }

    #[test]
    fn the_cache_keeps_a_cookie_apart_from_the_capabilities() {
        let cache = Cache::in_memory(CacheConfig::default());
        let k = key();
        let caps = Capabilities::parse_ehlo(
            b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
            ParseOptions::default(),
        )
        .unwrap();
        cache.learn(&k, caps.clone());
        assert!(cache.learn_qhlo_cookie(&k, "00ff"));
        assert_eq!(cache.qhlo_cookie(&k).as_deref(), Some("00ff"));
        assert_eq!(
            cache.lookup(&k).unwrap().caps,
            caps,
            "the entry is untouched"
        );
        // The encrypted key's cookie is the cleartext one (it goes before the banner).
        assert_eq!(
            cache
                .qhlo_cookie(&k.in_state(TlsState::Encrypted))
                .as_deref(),
            Some("00ff")
        );
        assert!(cache.learn_qhlo_cookie(&k, "11ee"));
        assert_eq!(cache.qhlo_cookie(&k).as_deref(), Some("11ee"));
        // Invalidating the capabilities leaves the cookie; forgetting it drops it.
        cache.forget(&k);
        assert_eq!(cache.qhlo_cookie(&k).as_deref(), Some("11ee"));
        assert!(cache.forget_qhlo_cookie(&k));
        assert!(!cache.forget_qhlo_cookie(&k));
        assert_eq!(cache.qhlo_cookie(&k), None);
        assert!(!cache.learn_qhlo_cookie(&k, "bad cookie"));
        assert_eq!(cache.qhlo_cookie(&k), None);
    }

    #[test]
    fn a_cookie_expires_with_the_ttl() {
        let cache = Cache::in_memory(CacheConfig {
            ttl_secs: 10,
            ..CacheConfig::default()
        });
        cache.clock().set(1_000_000);
        assert!(cache.learn_qhlo_cookie(&key(), "abc"));
        cache.clock().set(1_000_009);
        assert_eq!(cache.qhlo_cookie(&key()).as_deref(), Some("abc"));
        cache.clock().set(1_000_010);
        assert_eq!(cache.qhlo_cookie(&key()), None);
    }

    #[test]
    fn the_file_store_keeps_a_cookie_across_handles() {
        let dir = std::env::temp_dir().join(format!("pc-qhlo-cookie-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("store");
        let _ = std::fs::remove_file(&path);
        let options = StoreOptions {
            sets: 16,
            ways: 2,
            ..Default::default()
        };
        {
            let cache = Cache::open_file(&path, &options).unwrap();
            assert!(cache.learn_qhlo_cookie(&key(), "0123456789abcdef0123456789abcdef"));
        }
        let cache = Cache::open_file(&path, &options).unwrap();
        assert_eq!(
            cache.qhlo_cookie(&key()).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert!(
            cache.lookup(&key()).is_none(),
            "no capability entry came of it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
