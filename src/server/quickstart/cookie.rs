//! The QHLO cookie: a keyed MAC over the client's address and the fingerprint of the
//! capability list the server offers it, so that a server recognises a client it greeted
//! before with the same capabilities, without keeping any state per client.
//!
//! `cookie = hex(HMAC-SHA256(secret, "pipeconnect-qhlo-1" 0 address 0 fingerprint)[..16])`:
//! 32 lower-case hex digits. The address is normalised as cache keys are
//! (`::ffff:192.0.2.1` is `192.0.2.1`); the fingerprint is
//! `Capabilities::fingerprint()` of the server's keyword list (its EHLO reply's extension
//! lines), big-endian. The secret rotates: [`epoch_secret`] derives one secret per period
//! from a master secret, and a server checks a cookie against the current period's secret
//! and the previous one, so a cookie lives one to two periods.

use std::net::IpAddr;

use crate::key::{normalise, parse_address};
use crate::sha256::hmac_sha256;

/// Hex digits in a cookie (128 bits of MAC).
pub const COOKIE_LEN: usize = 32;
/// The shortest secret accepted.
pub const COOKIE_SECRET_MIN: usize = 16;
/// The longest secret accepted.
pub const COOKIE_SECRET_MAX: usize = 64;

const LABEL: &[u8] = b"pipeconnect-qhlo-1";

/// Why a cookie cannot be made or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// The secret is shorter than [`COOKIE_SECRET_MIN`] or longer than
    /// [`COOKIE_SECRET_MAX`] bytes.
    BadSecret,
    /// The client address is not a numeric IPv4 or IPv6 address.
    BadAddress,
}

fn check_secret(secret: &[u8]) -> Result<(), CookieError> {
    if (COOKIE_SECRET_MIN..=COOKIE_SECRET_MAX).contains(&secret.len()) {
        Ok(())
    } else {
        Err(CookieError::BadSecret)
    }
}

fn address(client: &str) -> Result<IpAddr, CookieError> {
    parse_address(client)
        .map(normalise)
        .map_err(|_| CookieError::BadAddress)
}

/// The cookie for `client` (a numeric address) and the capability list with this
/// `fingerprint`, under `secret`.
pub fn cookie(secret: &[u8], client: &str, fingerprint: u64) -> Result<String, CookieError> {
    check_secret(secret)?;
    let ip = address(client)?.to_string();
    let mac = hmac_sha256(
        secret,
        &[
            LABEL,
            b"\0",
            ip.as_bytes(),
            b"\0",
            &fingerprint.to_be_bytes(),
        ],
    );
    Ok(mac[..COOKIE_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Whether `presented` is the cookie for `client` and `fingerprint` under `secret`
/// (hex digits in any case; compared without an early exit).
pub fn cookie_valid(
    secret: &[u8],
    client: &str,
    fingerprint: u64,
    presented: &str,
) -> Result<bool, CookieError> {
    let expected = cookie(secret, client, fingerprint)?;
    let presented = presented.as_bytes();
    if presented.len() != expected.len() {
        return Ok(false);
    }
    let diff = expected
        .bytes()
        .zip(presented)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()));
    Ok(diff == 0)
}

/// The secret of rotation period `epoch` (for example `unix_time / period`), derived from
/// the server's `master` secret.
pub fn epoch_secret(master: &[u8], epoch: u64) -> Result<[u8; 32], CookieError> {
    check_secret(master)?;
    Ok(hmac_sha256(
        master,
        &[b"pipeconnect-qhlo-epoch\0", &epoch.to_be_bytes()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_cookie_names_one_client_and_one_capability_list() {
        let c = cookie(SECRET, "192.0.2.1", 42).unwrap();
        assert_eq!(c.len(), COOKIE_LEN);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(cookie(SECRET, "::ffff:192.0.2.1", 42).unwrap(), c);
        assert_ne!(cookie(SECRET, "192.0.2.2", 42).unwrap(), c);
        assert_ne!(cookie(SECRET, "192.0.2.1", 43).unwrap(), c);
        assert_ne!(cookie(b"another secret, 16+", "192.0.2.1", 42).unwrap(), c);
        assert!(cookie_valid(SECRET, "192.0.2.1", 42, &c).unwrap());
        assert!(cookie_valid(SECRET, "192.0.2.1", 42, &c.to_ascii_uppercase()).unwrap());
        assert!(!cookie_valid(SECRET, "192.0.2.1", 43, &c).unwrap());
        assert!(!cookie_valid(SECRET, "192.0.2.1", 42, &c[1..]).unwrap());
        assert!(!cookie_valid(SECRET, "192.0.2.1", 42, "").unwrap());
    }

    #[test]
    fn rotation_changes_the_cookie() {
        let s1 = epoch_secret(SECRET, 1).unwrap();
        let s2 = epoch_secret(SECRET, 2).unwrap();
        assert_ne!(s1, s2);
        let c1 = cookie(&s1, "2001:db8::1", 7).unwrap();
        assert!(cookie_valid(&s1, "2001:db8::1", 7, &c1).unwrap());
        assert!(!cookie_valid(&s2, "2001:db8::1", 7, &c1).unwrap());
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            cookie(b"short", "192.0.2.1", 1),
            Err(CookieError::BadSecret)
        );
        assert_eq!(
            cookie(&[0; 65], "192.0.2.1", 1),
            Err(CookieError::BadSecret)
        );
        assert_eq!(
            cookie(SECRET, "mx.example", 1),
            Err(CookieError::BadAddress)
        );
        assert_eq!(epoch_secret(b"", 1), Err(CookieError::BadSecret));
    }
}
