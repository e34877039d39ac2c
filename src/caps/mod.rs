//! What a server's EHLO reply said, as a compact record.
//!
//! Keywords are matched case-insensitively and whole: `PIPECONNECTX` is not
//! `PIPECONNECT`. The legacy keywords `PIPE_CONNECT` and `X_PIPE_CONNECT` (Exim 4.92 to
//! 4.95) count only when [`ParseOptions::legacy_keywords`] is set. Unknown keywords are
//! not kept one by one, but they enter the [`Capabilities::fingerprint`], so a change in
//! any advertised extension is detectable.

use crate::error::Error;
use crate::key::Fnv64;
use crate::reply::{Reply, ReplyLimits};

mod auth_names;
pub use auth_names::AuthNames;

/// The most AUTH mechanism names kept; more are dropped and
/// [`Capabilities::auth_truncated`] says so.
pub const AUTH_MECHS_MAX: usize = 16;
/// The longest AUTH mechanism name kept (RFC 4422 allows 20 characters); longer names
/// are not mechanisms and are dropped.
pub const AUTH_MECH_NAME_MAX: usize = 20;
/// The most bytes [`Capabilities::encode`] produces.
pub const ENCODED_MAX: usize = ENCODED_FIXED + AUTH_MECHS_MAX * (1 + AUTH_MECH_NAME_MAX);
/// The encoding's version (its first byte).
const ENCODING_VERSION: u8 = 2;
/// Bytes of the encoding before the AUTH names: version, presence bits, flags, SIZE,
/// three LIMITS values, fingerprint, AUTH count.
const ENCODED_FIXED: usize = 1 + 1 + 4 + 8 + 12 + 8 + 1;
/// Presence bits of the encoding (its second byte): which of the numbers were advertised.
/// A number's field holds 0 when its bit is clear; no value stands for "absent".
const HAS_SIZE: u8 = 1 << 0;
const HAS_MAIL_MAX: u8 = 1 << 1;
const HAS_RCPT_MAX: u8 = 1 << 2;
const HAS_RCPT_DOMAIN_MAX: u8 = 1 << 3;
const HAS_ALL: u8 = HAS_SIZE | HAS_MAIL_MAX | HAS_RCPT_MAX | HAS_RCPT_DOMAIN_MAX;

/// An extension the library tracks, as a bit in [`Capabilities::flags`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Extension {
    /// RFC 2920 command pipelining.
    Pipelining = 1 << 0,
    /// Early pipelining (`PIPECONNECT`, or a legacy keyword when asked for).
    PipeConnect = 1 << 1,
    /// RFC 3207 STARTTLS.
    StartTls = 1 << 2,
    /// RFC 3030 CHUNKING (BDAT).
    Chunking = 1 << 3,
    /// RFC 3030 BINARYMIME.
    BinaryMime = 1 << 4,
    /// RFC 6152 8BITMIME.
    EightBitMime = 1 << 5,
    /// RFC 6531 SMTPUTF8.
    SmtpUtf8 = 1 << 6,
    /// RFC 3461 DSN.
    Dsn = 1 << 7,
    /// RFC 1870 SIZE (with or without a number).
    Size = 1 << 8,
    /// RFC 2034 ENHANCEDSTATUSCODES.
    EnhancedStatusCodes = 1 << 9,
    /// PRDR (per-recipient data responses).
    Prdr = 1 << 10,
    /// RFC 8689 REQUIRETLS.
    RequireTls = 1 << 11,
    /// RFC 9422 LIMITS.
    Limits = 1 << 12,
    /// RFC 4954 AUTH (mechanisms in [`Capabilities::auth_mechanisms`]).
    Auth = 1 << 13,
}

impl Extension {
    /// Every tracked extension, in bit order.
    pub const ALL: [Extension; 14] = [
        Extension::Pipelining,
        Extension::PipeConnect,
        Extension::StartTls,
        Extension::Chunking,
        Extension::BinaryMime,
        Extension::EightBitMime,
        Extension::SmtpUtf8,
        Extension::Dsn,
        Extension::Size,
        Extension::EnhancedStatusCodes,
        Extension::Prdr,
        Extension::RequireTls,
        Extension::Limits,
        Extension::Auth,
    ];

    /// The bit of this extension.
    pub const fn bit(self) -> u32 {
        self as u32
    }

    /// The keyword as a server advertises it.
    pub fn keyword(self) -> &'static str {
        match self {
            Extension::Pipelining => "PIPELINING",
            Extension::PipeConnect => "PIPECONNECT",
            Extension::StartTls => "STARTTLS",
            Extension::Chunking => "CHUNKING",
            Extension::BinaryMime => "BINARYMIME",
            Extension::EightBitMime => "8BITMIME",
            Extension::SmtpUtf8 => "SMTPUTF8",
            Extension::Dsn => "DSN",
            Extension::Size => "SIZE",
            Extension::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Extension::Prdr => "PRDR",
            Extension::RequireTls => "REQUIRETLS",
            Extension::Limits => "LIMITS",
            Extension::Auth => "AUTH",
        }
    }
}

/// All bits that name a tracked extension.
pub const ALL_EXTENSION_BITS: u32 = (1 << 14) - 1;

/// How to read an EHLO reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Also take `PIPE_CONNECT` and `X_PIPE_CONNECT` as early pipelining.
    pub legacy_keywords: bool,
}

/// RFC 9422 LIMITS values; `None` when not advertised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// MAILMAX: transactions per connection.
    pub mail_max: Option<u32>,
    /// RCPTMAX: recipients per transaction.
    pub rcpt_max: Option<u32>,
    /// RCPTDOMAINMAX: distinct recipient domains per transaction.
    pub rcpt_domain_max: Option<u32>,
}

/// What one EHLO reply advertised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capabilities {
    flags: u32,
    size: Option<u64>,
    limits: Limits,
    auth: AuthNames,
    auth_truncated: bool,
    fingerprint: u64,
}

impl Capabilities {
    /// Read an EHLO reply given as raw bytes, exactly as received (one complete reply).
    pub fn parse_ehlo(bytes: &[u8], opts: ParseOptions) -> Result<Capabilities, Error> {
        let reply = Reply::parse(bytes, ReplyLimits::default())?;
        Self::from_reply(&reply, opts)
    }

    /// Read an EHLO reply that was already parsed.
    pub fn from_reply(reply: &Reply, opts: ParseOptions) -> Result<Capabilities, Error> {
        if reply.code() != 250 {
            return Err(Error::NotAnEhloReply);
        }
        let mut caps = Capabilities {
            flags: 0,
            size: None,
            limits: Limits::default(),
            auth: AuthNames::default(),
            auth_truncated: false,
            fingerprint: 0,
        };
        let mut normalised: Vec<String> = Vec::new();
        // The first line is the server's greeting, not an extension.
        for line in reply.lines().iter().skip(1) {
            let text = String::from_utf8_lossy(line);
            let mut words = text.split_ascii_whitespace();
            let Some(first) = words.next() else { continue };
            let (keyword, inline_param) = match first.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (first.to_ascii_uppercase(), None),
            };
            let params: Vec<&str> = inline_param.into_iter().chain(words).collect();
            caps.take_keyword(&keyword, &params, opts);
            let mut norm = keyword.clone();
            for p in &params {
                norm.push(' ');
                norm.push_str(&p.to_ascii_uppercase());
            }
            normalised.push(norm);
        }
        normalised.sort();
        normalised.dedup();
        let mut h = Fnv64::new();
        for n in &normalised {
            h.write(n.as_bytes());
            h.write(b"\n");
        }
        caps.fingerprint = h.finish();
        Ok(caps)
    }

    fn take_keyword(&mut self, keyword: &str, params: &[&str], opts: ParseOptions) {
        let ext = match keyword {
            "PIPELINING" => Extension::Pipelining,
            "PIPECONNECT" => Extension::PipeConnect,
            "PIPE_CONNECT" | "X_PIPE_CONNECT" if opts.legacy_keywords => Extension::PipeConnect,
            "STARTTLS" => Extension::StartTls,
            "CHUNKING" => Extension::Chunking,
            "BINARYMIME" => Extension::BinaryMime,
            "8BITMIME" => Extension::EightBitMime,
            "SMTPUTF8" => Extension::SmtpUtf8,
            "DSN" => Extension::Dsn,
            "ENHANCEDSTATUSCODES" => Extension::EnhancedStatusCodes,
            "PRDR" => Extension::Prdr,
            "REQUIRETLS" => Extension::RequireTls,
            "SIZE" => {
                self.size = params.first().and_then(|p| p.parse::<u64>().ok());
                Extension::Size
            }
            "LIMITS" => {
                for p in params {
                    let Some((name, value)) = p.split_once('=') else {
                        continue;
                    };
                    let Ok(v) = value.parse::<u32>() else {
                        continue;
                    };
                    match name.to_ascii_uppercase().as_str() {
                        "MAILMAX" => self.limits.mail_max = Some(v),
                        "RCPTMAX" => self.limits.rcpt_max = Some(v),
                        "RCPTDOMAINMAX" => self.limits.rcpt_domain_max = Some(v),
                        _ => {}
                    }
                }
                Extension::Limits
            }
            "AUTH" => {
                for p in params {
                    self.add_auth(p);
                }
                Extension::Auth
            }
            _ => return,
        };
        self.flags |= ext.bit();
    }

    fn add_auth(&mut self, name: &str) {
        let valid = !name.is_empty()
            && name.len() <= AUTH_MECH_NAME_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return;
        }
        let upper = name.to_ascii_uppercase();
        if self.auth.contains(&upper) {
            return;
        }
        if !self.auth.push(&upper) {
            self.auth_truncated = true;
        }
    }

    /// The bits of [`Extension`]s advertised.
    pub fn flags(&self) -> u32 {
        self.flags
    }
    /// Whether `ext` was advertised.
    pub fn has(&self, ext: Extension) -> bool {
        self.flags & ext.bit() != 0
    }
    /// The SIZE limit in bytes, when SIZE carried a number (0 means "no fixed limit").
    pub fn size_limit(&self) -> Option<u64> {
        self.size
    }
    /// The LIMITS values.
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// The AUTH mechanism names, upper case, in the server's order.
    pub fn auth_mechanisms(&self) -> Vec<&str> {
        self.auth.iter().collect()
    }
    /// Whether the server offered more mechanisms than [`AUTH_MECHS_MAX`].
    pub fn auth_truncated(&self) -> bool {
        self.auth_truncated
    }
    /// Whether the mechanism `name` (any case) was offered.
    pub fn has_auth(&self, name: &str) -> bool {
        self.auth.contains(name)
    }
    /// A 64-bit digest of every extension line (keyword and parameters, upper case,
    /// sorted), the greeting line excluded: equal replies give equal fingerprints.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether early pipelining may be cached from this reply: PIPECONNECT and
    /// PIPELINING both advertised (Exim writes no record otherwise).
    pub fn worth_caching(&self) -> bool {
        self.has(Extension::PipeConnect) && self.has(Extension::Pipelining)
    }

    /// The tracked facts in which `self` and `other` differ, as extension bits (SIZE's
    /// number, the LIMITS values and the AUTH names count with their extension).
    pub fn changed_bits(&self, other: &Capabilities) -> u32 {
        let mut bits = self.flags ^ other.flags;
        if self.size != other.size {
            bits |= Extension::Size.bit();
        }
        if self.limits != other.limits {
            bits |= Extension::Limits.bit();
        }
        if self.auth != other.auth {
            bits |= Extension::Auth.bit();
        }
        bits
    }

    /// A record that holds other data than a reply's capabilities in the AUTH names, told
    /// apart by its fingerprint `tag` (the cache's QHLO cookie: `cache::qhlo_cookie`).
    pub(crate) fn tagged_record(auth: AuthNames, tag: u64) -> Capabilities {
        Capabilities {
            flags: 0,
            size: None,
            limits: Limits::default(),
            auth,
            auth_truncated: false,
            fingerprint: tag,
        }
    }

    /// A fixed, versioned encoding of at most [`ENCODED_MAX`] bytes. Whether SIZE
    /// carried a number and which LIMITS values were advertised are explicit presence
    /// bits, so every value a server may send (`SIZE 18446744073709551615`,
    /// `RCPTMAX=4294967295`) survives the round trip.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_MAX);
        let numbers = [
            (self.limits.mail_max, HAS_MAIL_MAX),
            (self.limits.rcpt_max, HAS_RCPT_MAX),
            (self.limits.rcpt_domain_max, HAS_RCPT_DOMAIN_MAX),
        ];
        let mut present = if self.size.is_some() { HAS_SIZE } else { 0 };
        for (v, bit) in numbers {
            if v.is_some() {
                present |= bit;
            }
        }
        out.push(ENCODING_VERSION);
        out.push(present);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.size.unwrap_or(0).to_le_bytes());
        for (v, _) in numbers {
            out.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        }
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        out.push(self.auth.len() as u8 | if self.auth_truncated { 0x80 } else { 0 });
        for m in self.auth.iter() {
            out.push(m.len() as u8);
            out.extend_from_slice(m.as_bytes());
        }
        out
    }

    /// Decode [`Capabilities::encode`]; anything malformed is [`Error::CorruptRecord`]
    /// (a field that is non-zero while its presence bit is clear included).
    pub fn decode(bytes: &[u8]) -> Result<Capabilities, Error> {
        let bad = Error::CorruptRecord;
        if bytes.len() < ENCODED_FIXED || bytes.len() > ENCODED_MAX || bytes[0] != ENCODING_VERSION
        {
            return Err(bad);
        }
        let present = bytes[1];
        if present & !HAS_ALL != 0 {
            return Err(bad);
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let flags = u32_at(2);
        if flags & !ALL_EXTENSION_BITS != 0 {
            return Err(bad);
        }
        let size = match (present & HAS_SIZE != 0, u64_at(6)) {
            (true, v) => Some(v),
            (false, 0) => None,
            (false, _) => return Err(bad),
        };
        let opt32 = |bit: u8, v: u32| match (present & bit != 0, v) {
            (true, v) => Ok(Some(v)),
            (false, 0) => Ok(None),
            (false, _) => Err(bad),
        };
        let limits = Limits {
            mail_max: opt32(HAS_MAIL_MAX, u32_at(14))?,
            rcpt_max: opt32(HAS_RCPT_MAX, u32_at(18))?,
            rcpt_domain_max: opt32(HAS_RCPT_DOMAIN_MAX, u32_at(22))?,
        };
        let fingerprint = u64_at(26);
        let count_byte = bytes[ENCODED_FIXED - 1];
        let count = (count_byte & 0x7f) as usize;
        if count > AUTH_MECHS_MAX {
            return Err(bad);
        }
        let mut rest = &bytes[ENCODED_FIXED..];
        let mut auth = AuthNames::default();
        for _ in 0..count {
            let (&n, tail) = rest.split_first().ok_or(bad)?;
            let n = n as usize;
            if n == 0 || n > AUTH_MECH_NAME_MAX || tail.len() < n {
                return Err(bad);
            }
            let name = std::str::from_utf8(&tail[..n]).map_err(|_| bad)?;
            if !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(bad);
            }
            auth.push(name);
            rest = &tail[n..];
        }
        if !rest.is_empty() {
            return Err(bad);
        }
        Ok(Capabilities {
            flags,
            size,
            limits,
            auth,
            auth_truncated: count_byte & 0x80 != 0,
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXIM_496: &[u8] = b"250-mx.test.example Hello client.test [127.0.0.1]\r\n\
250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-AUTH PLAIN\r\n\
250-CHUNKING\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 HELP\r\n";

    fn parse(b: &[u8]) -> Capabilities {
        Capabilities::parse_ehlo(b, ParseOptions::default()).unwrap()
    }

    #[test]
    fn exim_496_reply() {
        let c = parse(EXIM_496);
        for e in [
            Extension::Pipelining,
            Extension::PipeConnect,
            Extension::Chunking,
            Extension::StartTls,
            Extension::Auth,
            Extension::Size,
            Extension::EightBitMime,
            Extension::SmtpUtf8,
        ] {
            assert!(c.has(e), "{e:?}");
        }
        assert!(!c.has(Extension::Dsn));
        assert_eq!(c.size_limit(), Some(52_428_800));
        assert_eq!(c.auth_mechanisms(), ["PLAIN"]);
        assert!(c.worth_caching());
    }

    #[test]
    fn keywords_match_whole_and_any_case() {
        let c = parse(b"250-mx\r\n250-pipeconnectx\r\n250-PIPELININGS\r\n250 starttls\r\n");
        assert!(!c.has(Extension::PipeConnect));
        assert!(!c.has(Extension::Pipelining));
        assert!(c.has(Extension::StartTls));
        let c = parse(b"250-mx\r\n250-PipeConnect\r\n250 pipelining\r\n");
        assert!(c.worth_caching());
    }

    #[test]
    fn greeting_line_is_not_an_extension() {
        let c = parse(b"250-PIPECONNECT greets you\r\n250 PIPELINING\r\n");
        assert!(!c.has(Extension::PipeConnect));
    }

    #[test]
    fn legacy_keywords_only_when_asked() {
        for kw in ["PIPE_CONNECT", "X_PIPE_CONNECT"] {
            let r = format!("250-mx\r\n250-PIPELINING\r\n250 {kw}\r\n");
            assert!(!parse(r.as_bytes()).has(Extension::PipeConnect));
            let c = Capabilities::parse_ehlo(
                r.as_bytes(),
                ParseOptions {
                    legacy_keywords: true,
                },
            )
            .unwrap();
            assert!(c.has(Extension::PipeConnect));
        }
    }

    #[test]
    fn limits_and_auth() {
        let c = parse(
            b"250-mx\r\n250-LIMITS MAILMAX=5 rcptmax=100 RCPTDOMAINMAX=x FOO=1\r\n\
250-AUTH=LOGIN\r\n250 AUTH plain login CRAM-MD5 xoauth2\r\n",
        );
        assert_eq!(c.limits().mail_max, Some(5));
        assert_eq!(c.limits().rcpt_max, Some(100));
        assert_eq!(c.limits().rcpt_domain_max, None);
        assert_eq!(
            c.auth_mechanisms(),
            &["LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"]
        );
        assert!(c.has_auth("cram-md5"));
        assert!(!c.has_auth("EXTERNAL"));
    }

    #[test]
    fn auth_names_are_bounded() {
        let names: Vec<String> = (0..40).map(|i| format!("M{i}")).collect();
        let r = format!(
            "250-mx\r\n250 AUTH {} {}\r\n",
            names.join(" "),
            "X".repeat(30)
        );
        let c = parse(r.as_bytes());
        assert_eq!(c.auth_mechanisms().len(), AUTH_MECHS_MAX);
        assert!(c.auth_truncated());
        assert!(c.encode().len() <= ENCODED_MAX);
    }

    #[test]
    fn fingerprint_sees_any_extension_change_but_not_the_greeting_or_order() {
        let a = parse(b"250-mx one\r\n250-PIPELINING\r\n250 X-FOO\r\n");
        let b = parse(b"250-mx two\r\n250-X-FOO\r\n250 pipelining\r\n");
        let c = parse(b"250-mx one\r\n250-PIPELINING\r\n250 X-BAR\r\n");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn not_an_ehlo_reply() {
        assert_eq!(
            Capabilities::parse_ehlo(b"550 go away\r\n", ParseOptions::default()),
            Err(Error::NotAnEhloReply)
        );
        assert!(Capabilities::parse_ehlo(b"garbage", ParseOptions::default()).is_err());
    }

    #[test]
    fn changed_bits_name_what_changed() {
        let a = parse(EXIM_496);
        let b = parse(
            &EXIM_496
                .split(|&x| x == b'\n')
                .filter(|l| !l.starts_with(b"250-CHUNKING"))
                .collect::<Vec<_>>()
                .join(&b'\n'),
        );
        assert_eq!(a.changed_bits(&b), Extension::Chunking.bit());
        let c = parse(b"250-mx\r\n250 SIZE 1000\r\n");
        let d = parse(b"250-mx\r\n250 SIZE 2000\r\n");
        assert_eq!(c.changed_bits(&d), Extension::Size.bit());
    }

    #[test]
    fn a_record_without_auth_or_limits_round_trips() {
        let c = parse(b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n");
        assert_eq!(c.encode().len(), 35);
        assert_eq!(Capabilities::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn the_largest_numbers_are_values_not_absence() {
        // Values that an encoding with sentinels would read back as "not advertised",
        // so that every EHLO reply carrying them would look changed and rewrite the entry.
        let c = parse(
            b"250-mx\r\n250-SIZE 18446744073709551615\r\n\
250-LIMITS MAILMAX=4294967295 RCPTMAX=4294967295 RCPTDOMAINMAX=4294967295\r\n\
250-PIPELINING\r\n250 PIPECONNECT\r\n",
        );
        assert_eq!(c.size_limit(), Some(u64::MAX));
        assert_eq!(c.limits().rcpt_max, Some(u32::MAX));
        let back = Capabilities::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            back.changed_bits(&c),
            0,
            "an unchanged reply changes nothing"
        );
        // Zero is a value too (SIZE 0: no fixed limit), distinct from absent.
        let zero = parse(b"250-mx\r\n250-SIZE 0\r\n250 LIMITS RCPTMAX=0\r\n");
        let back = Capabilities::decode(&zero.encode()).unwrap();
        assert_eq!(back.size_limit(), Some(0));
        assert_eq!(back.limits().rcpt_max, Some(0));
        assert_eq!(back.limits().mail_max, None);
        let none = parse(b"250-mx\r\n250 SIZE\r\n");
        assert_eq!(
            Capabilities::decode(&none.encode()).unwrap().size_limit(),
            None
        );
    }

    #[test]
    fn a_number_without_its_presence_bit_is_corrupt() {
        let c = parse(b"250-mx\r\n250 PIPELINING\r\n");
        let e = c.encode();
        for (at, what) in [
            (6, "size"),
            (14, "mailmax"),
            (18, "rcptmax"),
            (22, "domainmax"),
        ] {
            let mut bad = e.clone();
            bad[at] ^= 1;
            assert!(Capabilities::decode(&bad).is_err(), "{what}");
        }
        let mut bad = e.clone();
        bad[1] |= 0x10;
        assert!(Capabilities::decode(&bad).is_err(), "unknown presence bit");
        let mut old = e.clone();
        old[0] = 1;
        assert!(
            Capabilities::decode(&old).is_err(),
            "the old encoding is not read"
        );
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let c = parse(b"250-mx\r\n250-LIMITS RCPTMAX=3\r\n250-SIZE\r\n250-PIPELINING\r\n250 AUTH PLAIN EXTERNAL\r\n");
        let e = c.encode();
        assert_eq!(Capabilities::decode(&e).unwrap(), c);
        for cut in 0..e.len() {
            assert!(Capabilities::decode(&e[..cut]).is_err());
        }
        let mut bad = e.clone();
        bad[5] ^= 0xff;
        assert!(Capabilities::decode(&bad).is_err());
        let mut bad = e.clone();
        bad[36] ^= 0x20;
        assert!(Capabilities::decode(&bad).is_err());
    }

    // Found by the `caps` fuzz target (before records had presence bits): SIZE
    // 18446744073709551615 and a LIMITS value of 4294967295 equalled the old record's "no
    // number" marker, so the cached entry lost them. They now survive exactly.
    #[test]
    fn the_largest_numbers_survive_the_stored_record() {
        let c = parse(
            b"250-mx\r\n250-SIZE 18446744073709551615\r\n250 LIMITS RCPTMAX=4294967295 MAILMAX=7\r\n",
        );
        assert_eq!(c.size_limit(), Some(u64::MAX));
        assert_eq!(c.limits().rcpt_max, Some(u32::MAX));
        let back = Capabilities::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.size_limit(), Some(u64::MAX));
        assert_eq!(back.limits().mail_max, Some(7));
    }
}
