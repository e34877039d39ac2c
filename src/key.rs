//! The cache key: which server, on which port, in which TLS state, and optionally from
//! which local address and under which EHLO name.
//!
//! Addresses are normalised so that two spellings of one address are one key:
//! `2001:0db8:0:0::1`, `[2001:db8::1]` and `2001:DB8::1` are equal, and an IPv4-mapped
//! IPv6 address (`::ffff:192.0.2.1`) is the IPv4 address it maps.

use crate::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The longest EHLO name accepted in a key (a domain name's limit).
pub const EHLO_NAME_MAX: usize = 255;

/// The TLS state in which an EHLO was sent, and in which cached information may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TlsState {
    /// Before STARTTLS, or a connection without TLS.
    Cleartext = 0,
    /// After a completed TLS handshake (STARTTLS, or TLS on connect).
    Encrypted = 1,
}

impl TlsState {
    /// The state for a C value: 0 cleartext, 1 encrypted.
    pub fn from_u8(v: u8) -> Option<TlsState> {
        match v {
            0 => Some(TlsState::Cleartext),
            1 => Some(TlsState::Encrypted),
            _ => None,
        }
    }

    /// `"cleartext"` or `"encrypted"`.
    pub fn name(self) -> &'static str {
        match self {
            TlsState::Cleartext => "cleartext",
            TlsState::Encrypted => "encrypted",
        }
    }
}

/// What a cached record is about. Two keys are equal when every part is equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerKey {
    server: IpAddr,
    port: u16,
    tls: TlsState,
    local: Option<IpAddr>,
    ehlo_name: Option<String>,
}

/// Parse an address as text: IPv4, IPv6, or IPv6 in brackets; normalised. Exactly the
/// address: surrounding white space or a line end (a value read from a file and not
/// trimmed), an IPv4 address in brackets, and the unspecified addresses `0.0.0.0` and
/// `::` (which no server listens on, and which name no local address) are refused.
pub fn parse_address(text: &str) -> Result<IpAddr, Error> {
    let t = text;
    let (inner, bracketed) = match (t.strip_prefix('['), t.strip_suffix(']')) {
        (Some(_), Some(_)) if t.len() >= 2 => (&t[1..t.len() - 1], true),
        (None, None) => (t, false),
        _ => return Err(Error::InvalidAddress),
    };
    // The standard parser takes neither white space nor a zone, but be explicit.
    if inner.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Error::InvalidAddress);
    }
    let ip: IpAddr = inner.parse().map_err(|_| Error::InvalidAddress)?;
    if bracketed && ip.is_ipv4() {
        return Err(Error::InvalidAddress);
    }
    let ip = normalise(ip);
    if ip.is_unspecified() {
        return Err(Error::InvalidAddress);
    }
    Ok(ip)
}

/// The one spelling of an address used in keys: an IPv4-mapped IPv6 address becomes the
/// IPv4 address it maps.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn check_ehlo_name(name: &str) -> Result<String, Error> {
    if name.is_empty() || name.len() > EHLO_NAME_MAX || !name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidEhloName);
    }
    Ok(name.to_ascii_lowercase())
}

impl PeerKey {
    /// A key for `server` (text, see [`parse_address`]) on `port` in `tls` state.
    pub fn parse(server: &str, port: u16, tls: TlsState) -> Result<PeerKey, Error> {
        Self::new(parse_address(server)?, port, tls)
    }

    /// A key for a parsed address; port 0 is refused.
    pub fn new(server: IpAddr, port: u16, tls: TlsState) -> Result<PeerKey, Error> {
        if port == 0 {
            return Err(Error::InvalidArgument);
        }
        Ok(PeerKey {
            server: normalise(server),
            port,
            tls,
            local: None,
            ehlo_name: None,
        })
    }

    /// The same key, narrowed to connections from the local address `local`.
    pub fn with_local(mut self, local: &str) -> Result<PeerKey, Error> {
        self.local = Some(parse_address(local)?);
        Ok(self)
    }

    /// The same key, narrowed to connections that greet with `name` (case-insensitive).
    pub fn with_ehlo_name(mut self, name: &str) -> Result<PeerKey, Error> {
        self.ehlo_name = Some(check_ehlo_name(name)?);
        Ok(self)
    }

    /// The same server, port, local address and EHLO name in another TLS state.
    pub fn in_state(&self, tls: TlsState) -> PeerKey {
        PeerKey {
            tls,
            ..self.clone()
        }
    }

    /// The server's address.
    pub fn server(&self) -> IpAddr {
        self.server
    }
    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The TLS state the key is about.
    pub fn tls(&self) -> TlsState {
        self.tls
    }
    /// The local address, when the key is narrowed to one.
    pub fn local(&self) -> Option<IpAddr> {
        self.local
    }
    /// The EHLO name (lower case), when the key is narrowed to one.
    pub fn ehlo_name(&self) -> Option<&str> {
        self.ehlo_name.as_deref()
    }

    /// A stable 64-bit digest of the key (FNV-1a over its canonical bytes), the same in
    /// every process and on every run: the file store places records by it.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv64::new();
        h.write(&self.canonical_bytes());
        h.finish()
    }

    /// The key as bytes, in a canonical encoding ([`PeerKey::from_bytes`] reverses it).
    /// Layout: version 1, tls, port (BE u16), server, local (family 0 none, 4, 6 + bytes),
    /// EHLO name length (u8) and bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.push(1u8);
        out.push(self.tls as u8);
        out.extend_from_slice(&self.port.to_be_bytes());
        push_addr(&mut out, Some(self.server));
        push_addr(&mut out, self.local);
        match &self.ehlo_name {
            Some(n) => {
                out.push(n.len() as u8);
                out.extend_from_slice(n.as_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// Decode [`PeerKey::canonical_bytes`]; any malformed input is [`Error::CorruptRecord`].
    pub fn from_bytes(bytes: &[u8]) -> Result<PeerKey, Error> {
        let mut r = bytes;
        let bad = Error::CorruptRecord;
        let version = take(&mut r, 1).ok_or(bad)?[0];
        if version != 1 {
            return Err(bad);
        }
        let tls = TlsState::from_u8(take(&mut r, 1).ok_or(bad)?[0]).ok_or(bad)?;
        let p = take(&mut r, 2).ok_or(bad)?;
        let port = u16::from_be_bytes([p[0], p[1]]);
        let server = take_addr(&mut r)?.ok_or(bad)?;
        let local = take_addr(&mut r)?;
        let n = take(&mut r, 1).ok_or(bad)?[0] as usize;
        let ehlo_name = if n == 0 {
            None
        } else {
            let b = take(&mut r, n).ok_or(bad)?;
            let s = std::str::from_utf8(b).map_err(|_| bad)?;
            Some(check_ehlo_name(s).map_err(|_| bad)?)
        };
        if !r.is_empty() {
            return Err(bad);
        }
        let mut key = PeerKey::new(server, port, tls).map_err(|_| bad)?;
        key.local = local;
        key.ehlo_name = ehlo_name;
        Ok(key)
    }
}

fn push_addr(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (a, b) = r.split_at(n);
    *r = b;
    Some(a)
}

fn take_addr(r: &mut &[u8]) -> Result<Option<IpAddr>, Error> {
    let bad = Error::CorruptRecord;
    match take(r, 1).ok_or(bad)?[0] {
        0 => Ok(None),
        4 => {
            let b = take(r, 4).ok_or(bad)?;
            Ok(Some(IpAddr::from([b[0], b[1], b[2], b[3]])))
        }
        6 => {
            let b = take(r, 16).ok_or(bad)?;
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            Ok(Some(normalise(IpAddr::V6(Ipv6Addr::from(o)))))
        }
        _ => Err(bad),
    }
}

/// FNV-1a, 64 bit: small, stable across builds and processes.
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for PeerKey {
    /// `addr:port/state`, IPv6 in brackets, then ` from <local>` and ` as <ehlo>` when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.server {
            IpAddr::V4(a) => write!(f, "{}:{}", a, self.port)?,
            IpAddr::V6(a) => write!(f, "[{}]:{}", a, self.port)?,
        }
        write!(f, "/{}", self.tls.name())?;
        if let Some(l) = self.local {
            write!(f, " from {}", l)?;
        }
        if let Some(n) = &self.ehlo_name {
            write!(f, " as {}", n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spellings_of_one_ipv6_address_are_one_key() {
        let a = PeerKey::parse("[2001:db8::1]", 25, TlsState::Cleartext).unwrap();
        let b = PeerKey::parse("2001:0db8:0:0::1", 25, TlsState::Cleartext).unwrap();
        let c = PeerKey::parse("2001:DB8::0:1", 25, TlsState::Cleartext).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_key() {
        let a = PeerKey::parse("::ffff:192.0.2.1", 25, TlsState::Cleartext).unwrap();
        let b = PeerKey::parse("192.0.2.1", 25, TlsState::Cleartext).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn parts_of_the_key_distinguish() {
        let a = PeerKey::parse("192.0.2.1", 25, TlsState::Cleartext).unwrap();
        assert_ne!(a, a.in_state(TlsState::Encrypted));
        assert_ne!(
            a,
            PeerKey::parse("192.0.2.1", 587, TlsState::Cleartext).unwrap()
        );
        assert_ne!(
            a,
            PeerKey::parse("192.0.2.2", 25, TlsState::Cleartext).unwrap()
        );
        assert_ne!(a, a.clone().with_local("198.51.100.7").unwrap());
        assert_ne!(a, a.clone().with_ehlo_name("client.example").unwrap());
        assert_eq!(
            a.clone().with_ehlo_name("Client.Example").unwrap(),
            a.clone().with_ehlo_name("client.example").unwrap()
        );
    }

    #[test]
    fn invalid_inputs_are_errors() {
        for bad in [
            "",
            "192.0.2",
            "300.1.1.1",
            "[::1",
            "::1]",
            "host.example",
            "[]",
            " 192.0.2.1",
            "192.0.2.1 ",
            "192.0.2.1\n",
            "192.0.2.1\r\n",
            "\t2001:db8::1",
            "[2001:db8::1]\n",
            "[192.0.2.1]",
            "0.0.0.0",
            "::",
            "[::]",
            "::ffff:0.0.0.0",
        ] {
            assert_eq!(
                PeerKey::parse(bad, 25, TlsState::Cleartext),
                Err(Error::InvalidAddress),
                "{bad:?}"
            );
        }
        assert_eq!(
            PeerKey::parse("192.0.2.1", 0, TlsState::Cleartext),
            Err(Error::InvalidArgument)
        );
        let k = PeerKey::parse("192.0.2.1", 25, TlsState::Cleartext).unwrap();
        assert_eq!(k.clone().with_local("0.0.0.0"), Err(Error::InvalidAddress));
        assert_eq!(k.clone().with_ehlo_name(""), Err(Error::InvalidEhloName));
        assert_eq!(k.clone().with_ehlo_name("a b"), Err(Error::InvalidEhloName));
        assert_eq!(
            k.with_ehlo_name(&"a".repeat(256)),
            Err(Error::InvalidEhloName)
        );
    }

    #[test]
    fn canonical_bytes_round_trip_and_reject_garbage() {
        let k = PeerKey::parse("2001:db8::5", 2525, TlsState::Encrypted)
            .unwrap()
            .with_local("10.0.0.1")
            .unwrap()
            .with_ehlo_name("mta.example")
            .unwrap();
        let b = k.canonical_bytes();
        assert_eq!(PeerKey::from_bytes(&b), Ok(k));
        for cut in 0..b.len() {
            assert!(PeerKey::from_bytes(&b[..cut]).is_err());
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(PeerKey::from_bytes(&extra).is_err());
    }

    #[test]
    fn display_shows_brackets_for_ipv6() {
        let k = PeerKey::parse("2001:db8::1", 25, TlsState::Encrypted).unwrap();
        assert_eq!(k.to_string(), "[2001:db8::1]:25/encrypted");
    }
}
