//! A small RESP2 client over a blocking socket, where every call has one absolute
//! deadline covering connect, AUTH, SELECT and the commands (each system call is given
//! only what is left of it). Only what the shared tier needs: commands in, replies out.

use super::tls::TlsSetup;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP, addresses tried in order (resolved when the tier was attached).
    Tcp(Vec<SocketAddr>),
    /// A Unix domain socket.
    Unix(PathBuf),
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` (None: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` (None: the null array).
    Array(Option<Vec<Reply>>),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The deadline passed.
    Timeout,
    /// The connection failed or broke.
    Io(String),
    /// The server said something this client does not understand, or an error.
    Protocol(String),
}

impl CallError {
    fn from_io(e: io::Error) -> CallError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => CallError::Timeout,
            _ => CallError::Io(e.to_string()),
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "shared-redis-tls")]
    Tls(Box<super::tls::TlsStream>),
}

/// An open connection (after AUTH and SELECT).
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

/// What is left of `deadline`, or a timeout when nothing is.
fn left(deadline: Instant) -> Result<Duration, CallError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d < Duration::from_micros(50) {
        Err(CallError::Timeout)
    } else {
        Ok(d)
    }
}

/// A command's arguments as one RESP array.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// How deep arrays may nest in a reply (the commands used need 2).
const DEPTH_MAX: usize = 4;
/// The most elements of one array (SCAN and MGET batches are far smaller).
const ARRAY_MAX: i64 = 1 << 16;

/// Parse one reply from the front of `b`: `Ok(Some((reply, used)))`, `Ok(None)` when
/// more bytes are needed.
pub fn parse(b: &[u8]) -> Result<Option<(Reply, usize)>, CallError> {
    parse_at(b, 0)
}

fn parse_at(b: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, CallError> {
    let bad = |m: &str| CallError::Protocol(m.to_string());
    let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    if eol == 0 {
        return Err(bad("empty reply line"));
    }
    let line = std::str::from_utf8(&b[1..eol]).map_err(|_| bad("reply line not UTF-8"))?;
    let after = eol + 2;
    let int = || line.parse::<i64>().map_err(|_| bad("bad length"));
    match b[0] {
        b'+' => Ok(Some((Reply::Simple(line.to_string()), after))),
        b'-' => Ok(Some((Reply::Error(line.to_string()), after))),
        b':' => Ok(Some((Reply::Int(int()?), after))),
        b'$' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let n = usize::try_from(n).map_err(|_| bad("bad length"))?;
            if n > 64 << 20 {
                return Err(bad("bulk string too long"));
            }
            if b.len() < after + n + 2 {
                return Ok(None);
            }
            if &b[after + n..after + n + 2] != b"\r\n" {
                return Err(bad("bulk string not ended"));
            }
            Ok(Some((
                Reply::Bulk(Some(b[after..after + n].to_vec())),
                after + n + 2,
            )))
        }
        b'*' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), after)));
            }
            if n > ARRAY_MAX {
                return Err(bad("array too long"));
            }
            if depth >= DEPTH_MAX {
                return Err(bad("arrays nested too deep"));
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            let mut used = after;
            for _ in 0..n {
                match parse_at(&b[used..], depth + 1)? {
                    Some((r, u)) => {
                        items.push(r);
                        used += u;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), used)))
        }
        _ => Err(bad("unknown reply type")),
    }
}

impl Connection {
    /// Connect, then AUTH (when `auth` is given: user or none, password) and SELECT
    /// (when `db` is not 0), all before `deadline`.
    pub fn open(
        endpoint: &Endpoint,
        tls: Option<&TlsSetup>,
        auth: Option<(Option<&str>, &str)>,
        db: u32,
        deadline: Instant,
    ) -> Result<Connection, CallError> {
        let stream = match endpoint {
            Endpoint::Tcp(addrs) => {
                let mut last = CallError::Io("no address".to_string());
                let mut got = None;
                for a in addrs {
                    match TcpStream::connect_timeout(a, left(deadline)?) {
                        Ok(s) => {
                            got = Some(s);
                            break;
                        }
                        Err(e) => last = CallError::from_io(e),
                    }
                }
                let s = got.ok_or(last)?;
                let _ = s.set_nodelay(true);
                match tls {
                    #[cfg(feature = "shared-redis-tls")]
                    Some(setup) => Stream::Tls(Box::new(super::tls::wrap(setup, s, deadline)?)),
                    #[cfg(not(feature = "shared-redis-tls"))]
                    Some(never) => match *never {},
                    None => Stream::Tcp(s),
                }
            }
            Endpoint::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(CallError::from_io)?),
        };
        let mut c = Connection {
            stream,
            buf: Vec::with_capacity(512),
            start: 0,
        };
        let mut setup: Vec<Vec<Vec<u8>>> = Vec::new();
        if let Some((user, pass)) = auth {
            let mut a = vec![b"AUTH".to_vec()];
            if let Some(u) = user {
                a.push(u.as_bytes().to_vec());
            }
            a.push(pass.as_bytes().to_vec());
            setup.push(a);
        }
        if db != 0 {
            setup.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()]);
        }
        if !setup.is_empty() {
            let refs: Vec<Vec<&[u8]>> = setup
                .iter()
                .map(|c| c.iter().map(|a| a.as_slice()).collect())
                .collect();
            for r in c.pipeline(&refs, deadline)? {
                if let Reply::Error(e) = r {
                    return Err(CallError::Protocol(e));
                }
            }
        }
        Ok(c)
    }

    /// Give the next system call only what is left of `deadline`.
    fn arm(&mut self, deadline: Instant) -> Result<(), CallError> {
        let d = left(deadline)?;
        let r = match &mut self.stream {
            Stream::Tcp(s) => s
                .set_read_timeout(Some(d))
                .and(s.set_write_timeout(Some(d))),
            Stream::Unix(s) => s
                .set_read_timeout(Some(d))
                .and(s.set_write_timeout(Some(d))),
            #[cfg(feature = "shared-redis-tls")]
            Stream::Tls(s) => {
                s.sock.deadline = deadline;
                Ok(())
            }
        };
        r.map_err(CallError::from_io)
    }

    /// Send `commands` in one write and read one reply for each, before `deadline`.
    pub fn pipeline(
        &mut self,
        commands: &[Vec<&[u8]>],
        deadline: Instant,
    ) -> Result<Vec<Reply>, CallError> {
        let mut out = Vec::with_capacity(128);
        for c in commands {
            encode(c, &mut out);
        }
        let mut sent = 0;
        while sent < out.len() {
            self.arm(deadline)?;
            let n = match &mut self.stream {
                Stream::Tcp(s) => s.write(&out[sent..]),
                Stream::Unix(s) => s.write(&out[sent..]),
                #[cfg(feature = "shared-redis-tls")]
                Stream::Tls(s) => s.write(&out[sent..]),
            };
            match n {
                Ok(0) => return Err(CallError::Io("connection closed".to_string())),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CallError::from_io(e)),
            }
        }
        #[cfg(feature = "shared-redis-tls")]
        if let Stream::Tls(s) = &mut self.stream {
            s.flush().map_err(CallError::from_io)?;
        }
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            if let Some((r, used)) = parse(&self.buf[self.start..])? {
                self.start += used;
                replies.push(r);
                continue;
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.arm(deadline)?;
            let mut chunk = [0u8; 4096];
            let n = match &mut self.stream {
                Stream::Tcp(s) => s.read(&mut chunk),
                Stream::Unix(s) => s.read(&mut chunk),
                #[cfg(feature = "shared-redis-tls")]
                Stream::Tls(s) => s.read(&mut chunk),
            };
            match n {
                Ok(0) => return Err(CallError::Io("connection closed by the server".to_string())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CallError::from_io(e)),
            }
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(replies)
    }

    /// One command.
    pub fn call(&mut self, args: &[&[u8]], deadline: Instant) -> Result<Reply, CallError> {
        let mut r = self.pipeline(&[args.to_vec()], deadline)?;
        Ok(r.pop().unwrap_or(Reply::Bulk(None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_parses() {
        let mut out = Vec::new();
        encode(&[b"GET", b"k"], &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(
            parse(b"$3\r\nabc\r\n+OK").unwrap(),
            Some((Reply::Bulk(Some(b"abc".to_vec())), 9))
        );
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Reply::Bulk(None), 5)));
        assert_eq!(
            parse(b"*2\r\n$1\r\na\r\n$-1\r\n").unwrap(),
            Some((
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"a".to_vec())),
                    Reply::Bulk(None)
                ])),
                16
            ))
        );
        assert_eq!(parse(b"*2\r\n$1\r\na\r\n").unwrap(), None);
        assert_eq!(parse(b":42\r\n").unwrap(), Some((Reply::Int(42), 5)));
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
        // A hostile server: arrays nested without end, or announced huge.
        assert!(parse(&b"*1\r\n".repeat(10_000)).is_err());
        assert!(parse(b"*99999999\r\n").is_err());
        assert!(parse(b"$99999999999\r\n").is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes from a server parse to a reply, an error or "more needed"; never a
        /// panic.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(
            prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'1'),
                        Just(b'-'), Just(b':'), Just(b'+'), any::<u8>()], 0..120)) {
            let _ = parse(&bytes);
        }
    }
}
