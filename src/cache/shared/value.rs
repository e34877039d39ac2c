//! The bytes the shared tier keeps in Redis for one record: versioned, and closed by a
//! checksum or, when the fleet shares a secret, an HMAC-SHA256 signature. Both cover the
//! Redis key, so a value copied under another key fails; the signature covers the
//! learned-at and expiry times, so a replayed value cannot outlive its TTL.
//!
//! ```text
//!  0  'P'            magic
//!  1  1              format version
//!  2  kind           1 capability entry, 2 hold-down record
//!  3  flags          bit 0: signed (32-byte HMAC) else an 8-byte SHA-256 prefix
//!  4  learned at     u64 LE, Unix seconds
//! 12  expires at     u64 LE, Unix seconds
//! 20  payload length u16 LE
//! 22  payload        encoded capabilities, or an encoded hold-down record
//!  …  checksum (8 bytes) or signature (32 bytes) over key ‖ bytes 0..22+len
//! ```

use crate::sha256::{equal_in_constant_time, hmac_sha256, sha256};

const MAGIC: u8 = b'P';
const VERSION: u8 = 1;
const FLAG_SIGNED: u8 = 1;
const HEAD: usize = 22;
const CHECKSUM_LEN: usize = 8;
const SIGNATURE_LEN: usize = 32;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A capability entry.
    Entry = 1,
    /// A hold-down record.
    HoldDown = 2,
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What it is.
    pub kind: Kind,
    /// When it was learned (or the hold-down began).
    pub learned_at: u64,
    /// When it stops being valid anywhere.
    pub expires_at: u64,
    /// The encoded capabilities or hold-down.
    pub payload: Vec<u8>,
}

/// Why a value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not a value of this format or version, or cut short.
    Malformed,
    /// The checksum does not match (corrupt, or written under another key).
    BadChecksum,
    /// The signature does not match, or a signature was expected and is missing, or
    /// the value is signed and this process has no secret.
    BadSignature,
}

/// Encode `record` stored under `key`, signed with `secret` when given.
pub fn encode(key: &[u8], record: &Record, secret: Option<&[u8]>) -> Vec<u8> {
    let len = record.payload.len().min(u16::MAX as usize);
    let mut v = Vec::with_capacity(HEAD + len + SIGNATURE_LEN);
    v.push(MAGIC);
    v.push(VERSION);
    v.push(record.kind as u8);
    v.push(if secret.is_some() { FLAG_SIGNED } else { 0 });
    v.extend_from_slice(&record.learned_at.to_le_bytes());
    v.extend_from_slice(&record.expires_at.to_le_bytes());
    v.extend_from_slice(&(len as u16).to_le_bytes());
    v.extend_from_slice(&record.payload[..len]);
    match secret {
        Some(s) => {
            let mac = hmac_sha256(s, &[&(key.len() as u32).to_le_bytes(), key, &v]);
            v.extend_from_slice(&mac);
        }
        None => {
            let sum = sha256(&[&(key.len() as u32).to_le_bytes(), key, &v]);
            v.extend_from_slice(&sum[..CHECKSUM_LEN]);
        }
    }
    v
}

/// Decode a value read under `key`. With a `secret`, only values signed with it are
/// accepted; without one, only unsigned values with a good checksum.
pub fn decode(key: &[u8], v: &[u8], secret: Option<&[u8]>) -> Result<Record, Rejected> {
    if v.len() < HEAD || v[0] != MAGIC || v[1] != VERSION || v[3] & !FLAG_SIGNED != 0 {
        return Err(Rejected::Malformed);
    }
    let kind = match v[2] {
        1 => Kind::Entry,
        2 => Kind::HoldDown,
        _ => return Err(Rejected::Malformed),
    };
    let len = u16::from_le_bytes([v[20], v[21]]) as usize;
    let signed = v[3] & FLAG_SIGNED != 0;
    let tail = if signed { SIGNATURE_LEN } else { CHECKSUM_LEN };
    if v.len() != HEAD + len + tail {
        return Err(Rejected::Malformed);
    }
    let (body, mark) = v.split_at(HEAD + len);
    let klen = (key.len() as u32).to_le_bytes();
    match (signed, secret) {
        (true, Some(s)) => {
            if !equal_in_constant_time(&hmac_sha256(s, &[&klen, key, body]), mark) {
                return Err(Rejected::BadSignature);
            }
        }
        (false, None) => {
            if sha256(&[&klen, key, body])[..CHECKSUM_LEN] != *mark {
                return Err(Rejected::BadChecksum);
            }
        }
        _ => return Err(Rejected::BadSignature),
    }
    let u64_at = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    Ok(Record {
        kind,
        learned_at: u64_at(4),
        expires_at: u64_at(12),
        payload: body[HEAD..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            kind: Kind::Entry,
            learned_at: 1_700_000_000,
            expires_at: 1_700_600_000,
            payload: b"caps".to_vec(),
        }
    }

    #[test]
    fn round_trip_unsigned_and_signed() {
        let v = encode(b"k", &rec(), None);
        assert_eq!(decode(b"k", &v, None), Ok(rec()));
        let s = encode(b"k", &rec(), Some(b"secret"));
        assert_eq!(decode(b"k", &s, Some(b"secret")), Ok(rec()));
    }

    #[test]
    fn refuses_other_key_corruption_and_forgery() {
        let v = encode(b"k", &rec(), None);
        assert_eq!(decode(b"k2", &v, None), Err(Rejected::BadChecksum));
        let mut c = v.clone();
        c[6] ^= 1;
        assert_eq!(decode(b"k", &c, None), Err(Rejected::BadChecksum));
        assert_eq!(
            decode(b"k", &v[..v.len() - 1], None),
            Err(Rejected::Malformed)
        );
        assert_eq!(decode(b"k", b"", None), Err(Rejected::Malformed));
        // Unsigned where a secret is required, signed with another secret, signed
        // where this process has none.
        assert_eq!(decode(b"k", &v, Some(b"s")), Err(Rejected::BadSignature));
        let s = encode(b"k", &rec(), Some(b"other"));
        assert_eq!(decode(b"k", &s, Some(b"s")), Err(Rejected::BadSignature));
        assert_eq!(decode(b"k", &s, None), Err(Rejected::BadSignature));
        // A signed value moved to another key, or with its expiry pushed out.
        let s = encode(b"k", &rec(), Some(b"s"));
        assert_eq!(decode(b"j", &s, Some(b"s")), Err(Rejected::BadSignature));
        let mut later = s.clone();
        later[13] ^= 1;
        assert_eq!(
            decode(b"k", &later, Some(b"s")),
            Err(Rejected::BadSignature)
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever Redis hands back, decoding refuses or accepts; it never panics, and
        /// a flipped byte of a good value is always refused.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                               flip in 0usize..64, secret in any::<bool>()) {
            let s: Option<&[u8]> = if secret { Some(b"s") } else { None };
            let _ = decode(b"k", &bytes, s);
            let good = encode(b"k", &Record {
                kind: Kind::Entry, learned_at: 5, expires_at: 9, payload: bytes.clone(),
            }, s);
            let mut bad = good.clone();
            let i = flip % bad.len();
            bad[i] ^= 0x01;
            prop_assert!(decode(b"k", &bad, s).is_err());
            prop_assert!(decode(b"k", &good, s).is_ok());
        }
    }
}
