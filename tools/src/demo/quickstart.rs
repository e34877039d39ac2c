//! `pipeconnect demo --quickstart`: SMTP QUICKSTART (experimental) beside classic and
//! PIPECONNECT, on a slow link to a sink with a greet pause.
//!
//! The sink runs with `--quickstart on` and a greet pause (`--banner-delay-ms`, 1 s by
//! default) in front of its banner; a small client here (cleartext, one message, BDAT
//! LAST) delivers in four ways:
//!
//! - `classic`: banner; EHLO; MAIL, RCPT, BDAT LAST with the body (RFC 2920);
//! - `pipeconnect`: EHLO, MAIL, RCPT, BDAT LAST and the body before the banner, from the
//!   capabilities an EHLO reply left in the library's cache;
//! - `qs-greeting`: a client with nothing cached reads the capabilities from the greeting
//!   (parsed and cached by the library like an EHLO reply) and sends QHLO, MAIL, RCPT,
//!   BDAT LAST and the body at once: the EHLO round trip is gone;
//! - `qs-cookie`: QHLO with the cookie of an earlier greeting, MAIL, RCPT, BDAT LAST and the
//!   body before the banner: one round trip, and the sink skips its greet pause.
//!
//! and, against a second sink with STARTTLS (TLS 1.3, rustls; the encrypted capabilities
//! cached under the encrypted key):
//!
//! - `classic-tls`: banner; EHLO; STARTTLS; the handshake; EHLO; the transaction;
//! - `pipeconnect-tls`: EHLO and STARTTLS before the banner; the handshake; EHLO and the
//!   transaction at once (encrypted early flight);
//! - `qs-cookie-tls`: QHLO with the cookie, STARTTLS and the TLS ClientHello before the
//!   banner (the sink's `--quickstart on` reads bytes behind STARTTLS as TLS); the client's
//!   Finished, EHLO and the transaction at once: two round trips, no greet pause;
//! - `qs-qtls`: QTLS and the ClientHello in the first write, before the banner, to a sink
//!   whose greeting listed QTLS; no banner and no reply in cleartext: the handshake, then
//!   the client's Finished with QHLO (with the cookie of the last greeting over TLS) and the
//!   transaction right behind it, from the encrypted capabilities cached; the greeting comes
//!   over TLS with the replies: two round trips, and a recognised cookie skips the greet
//!   pause, which the sink holds in front of its greeting over TLS. (With nothing cached
//!   for the encrypted state, the client waits for that greeting first.)
//!
//! and, when the C example client is there (`--client PATH`, else `pc-deliver` beside this
//! program), the same two QUICKSTART ways through it, one process per delivery sharing a
//! store file (the cookie kept by the library's cache, not by this program):
//!
//! - `pcd-qs-greeting`: `pc-deliver --quickstart` with nothing cached (a fresh store file
//!   each time): the greeting's capabilities, then QHLO and the transaction at once;
//! - `pcd-qs-cookie`: `pc-deliver --quickstart` with the cookie an earlier process kept:
//!   QHLO with it and the transaction before the banner.
//!
//! (pc-deliver reports its waits and the time to the final 250; the waits to MAIL are the
//! waits before its last write, and the time to MAIL is not measured: `-`.)
//!
//! Each way makes one learning delivery first (not counted). The table gives, per way,
//! the waits for the server before MAIL is written and before the final 250, and the
//! median times of both from the start of connect(). The cookie is kept by this client,
//! not by the library's cache (which stores capabilities only).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use rustls::{ClientConnection, StreamOwned};

use crate::probe::tls::client_connection;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pipeconnect::caps::ParseOptions;
use pipeconnect::reply::Reply;
use pipeconnect::server::quickstart::parse_greeting;
use pipeconnect::{Cache, CacheConfig, Capabilities, PeerKey, TlsState};

use super::options::Options;
use super::procs::{Background, Work};

/// The cleartext ways, in table order.
pub const WAYS: [&str; 4] = ["classic", "pipeconnect", "qs-greeting", "qs-cookie"];
/// The STARTTLS ways (a second sink with STARTTLS), in table order.
pub const TLS_WAYS: [&str; 4] = ["classic-tls", "pipeconnect-tls", "qs-cookie-tls", "qs-qtls"];
/// The ways through the C client `pc-deliver --quickstart` (when it is there).
pub const PCD_WAYS: [&str; 2] = ["pcd-qs-greeting", "pcd-qs-cookie"];

const EHLO_NAME: &str = "client.demo.example";
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One delivery's figures.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub waits_to_mail: u32,
    pub waits_to_final: u32,
    pub ms_to_mail: f64,
    pub ms_to_final: f64,
}

/// What the client keeps between deliveries.
struct State {
    cache: Cache,
    key: PeerKey,
    /// The same server, encrypted.
    key_tls: PeerKey,
    cookies: HashMap<String, String>,
    /// The servers (cleartext keys) whose greeting or EHLO reply listed QTLS.
    qtls: HashSet<String>,
}

/// The byte stream: cleartext, then TLS after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(t) => t.write_all(bytes),
            // Through the connection's writer, so that a Finished still queued (after QTLS)
            // leaves in the same write as the first commands.
            Stream::Tls(t) => {
                t.conn.writer().write_all(bytes)?;
                while t.conn.wants_write() {
                    t.conn.write_tls(&mut t.sock)?;
                }
                Ok(())
            }
        }
    }
}

struct Conn {
    stream: Option<Stream>,
    /// Received and not yet taken as replies (after a STARTTLS 220: TLS bytes).
    buf: Vec<u8>,
    waits: u32,
    started: Instant,
}

/// The end of the first complete reply in `buf` and the reply, if there is one.
fn first_reply(buf: &[u8]) -> Option<(usize, Reply)> {
    let mut at = 0;
    let mut lines = Vec::new();
    while let Some(i) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += i + 1;
        let code: u16 = std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()?;
        lines.push(line.get(4..).unwrap_or(b"").to_vec());
        if line.get(3) != Some(&b'-') {
            return Some((at, Reply::new(code, lines)));
        }
    }
    None
}

fn replies_ready(buf: &[u8], n: usize) -> bool {
    let mut at = 0;
    for _ in 0..n {
        match first_reply(&buf[at..]) {
            Some((end, _)) => at += end,
            None => return false,
        }
    }
    true
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn, String> {
        let started = Instant::now();
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            stream: Some(Stream::Plain(tcp)),
            buf: Vec::new(),
            waits: 0,
            started,
        })
    }

    fn stream(&mut self) -> Result<&mut Stream, String> {
        self.stream
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream()?
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    fn ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// The next replies, checked against `codes`; one wait if any had to be read. Bytes
    /// after them stay buffered (after a STARTTLS 220: the server's TLS flight).
    fn expect(&mut self, codes: &[u16]) -> Result<Vec<Reply>, String> {
        if !replies_ready(&self.buf, codes.len()) {
            self.waits += 1;
        }
        let mut chunk = [0u8; 16 * 1024];
        while !replies_ready(&self.buf, codes.len()) {
            let n = self
                .stream()?
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the sink closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let mut got = Vec::new();
        for &c in codes {
            let (end, r) = first_reply(&self.buf).ok_or("a reply vanished")?;
            self.buf.drain(..end);
            if r.code() != c {
                let text = String::from_utf8_lossy(&r.text()).into_owned();
                return Err(format!("expected {c}, got {} {text}", r.code()));
            }
            got.push(r);
        }
        Ok(got)
    }

    /// The TLS handshake after a 220 to STARTTLS. `pipelined`: a connection whose
    /// ClientHello already went behind the STARTTLS; its server flight may be buffered, and
    /// the handshake costs no wait of its own. Otherwise the ClientHello goes now: one wait.
    fn start_tls(&mut self, pipelined: Option<ClientConnection>) -> Result<(), String> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err("STARTTLS on a TLS stream".into());
        };
        let mut conn = match pipelined {
            Some(conn) => conn,
            None => {
                self.waits += 1;
                if !self.buf.is_empty() {
                    return Err("cleartext after the 220 to STARTTLS".into());
                }
                client_connection("localhost").map_err(|e| e.to_string())?
            }
        };
        let mut early = &self.buf[..];
        while !early.is_empty() {
            conn.read_tls(&mut early).map_err(|e| format!("TLS: {e}"))?;
            conn.process_new_packets()
                .map_err(|e| format!("TLS: {e}"))?;
        }
        self.buf.clear();
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    /// The TLS handshake after QTLS went with the ClientHello: one wait for the server's
    /// flight. Cleartext the server wrote before it read QTLS (its banner, when it had been
    /// written already) comes first and is skipped: whole lines that start with a digit,
    /// since a TLS record never does. From the first other byte on, everything is TLS. The
    /// client's Finished stays queued and leaves with the first write over TLS.
    fn start_qtls(&mut self, mut conn: ClientConnection) -> Result<(), String> {
        let Some(Stream::Plain(mut tcp)) = self.stream.take() else {
            return Err("QTLS on a TLS stream".into());
        };
        let mut in_tls = false;
        let mut waited = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            while !in_tls && self.buf.first().is_some_and(u8::is_ascii_digit) {
                let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                    break;
                };
                self.buf.drain(..=end);
            }
            if !self.buf.is_empty() && (in_tls || !self.buf[0].is_ascii_digit()) {
                in_tls = true;
                let mut early = &self.buf[..];
                while !early.is_empty() {
                    conn.read_tls(&mut early).map_err(|e| format!("TLS: {e}"))?;
                    conn.process_new_packets()
                        .map_err(|e| format!("TLS: {e}"))?;
                }
                self.buf.clear();
                if !conn.is_handshaking() {
                    break;
                }
            }
            if !waited {
                self.waits += 1;
                waited = true;
            }
            let n = tcp.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the sink closed the connection during the handshake".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.stream = Some(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))));
        Ok(())
    }

    fn quit(mut self) {
        let _ = self.send(b"QUIT\r\n");
        if let Some(Stream::Plain(t)) = &self.stream {
            let _ = t.shutdown(std::net::Shutdown::Write);
        }
    }
}

fn transaction(body: &[u8]) -> Vec<u8> {
    let mut t = format!(
        "MAIL FROM:<sender@demo.example> SIZE={0}\r\nRCPT TO:<rcpt@demo.example>\r\n\
         BDAT {0} LAST\r\n",
        body.len()
    )
    .into_bytes();
    t.extend_from_slice(body);
    t
}

fn deliver(way: &str, addr: SocketAddr, state: &mut State, body: &[u8]) -> Result<Run, String> {
    let mut c = Conn::open(addr)?;
    let ms_to_mail;
    let waits_to_mail;
    match way {
        "classic" => {
            c.expect(&[220])?;
            c.send(format!("EHLO {EHLO_NAME}\r\n").as_bytes())?;
            let ehlo = c.expect(&[250])?;
            let caps = Capabilities::from_reply(&ehlo[0], ParseOptions::default())
                .map_err(|e| format!("EHLO reply: {e:?}"))?;
            state.cache.learn(&state.key, caps);
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            c.send(&transaction(body))?;
            c.expect(&[250, 250, 250])?;
        }
        "pipeconnect" => {
            let entry = state.cache.lookup(&state.key);
            if !entry.is_some_and(|e| e.caps.worth_caching()) {
                return Err("nothing cached for an early flight".into());
            }
            let mut flight = format!("EHLO {EHLO_NAME}\r\n").into_bytes();
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            flight.extend(transaction(body));
            c.send(&flight)?;
            c.expect(&[220, 250, 250, 250, 250])?;
        }
        "qs-greeting" => {
            let greeting = c.expect(&[220])?;
            let text = wire(&greeting[0]);
            let g = parse_greeting(&text, ParseOptions::default())
                .map_err(|e| format!("greeting: {e:?}"))?;
            if !g.quickstart {
                return Err("the greeting has no QUICKSTART".into());
            }
            state.cache.learn(&state.key, g.caps);
            if let Some(cookie) = g.cookie {
                state.cookies.insert(state.key.to_string(), cookie);
            }
            let mut flight = format!("QHLO {EHLO_NAME}\r\n").into_bytes();
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            flight.extend(transaction(body));
            c.send(&flight)?;
            c.expect(&[250, 250, 250, 250])?;
        }
        "qs-cookie" => {
            let Some(cookie) = state.cookies.get(&state.key.to_string()).cloned() else {
                return Err("no cookie from an earlier greeting".into());
            };
            let mut flight = format!("QHLO {EHLO_NAME} {cookie}\r\n").into_bytes();
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            flight.extend(transaction(body));
            c.send(&flight)?;
            let replies = c.expect(&[220, 250, 250, 250, 250])?;
            // A greeting keeps its cookie fresh.
            if let Ok(g) = parse_greeting(&wire(&replies[0]), ParseOptions::default()) {
                if let Some(cookie) = g.cookie {
                    state.cookies.insert(state.key.to_string(), cookie);
                }
            }
        }
        "classic-tls" => {
            let banner = c.expect(&[220])?;
            keep_cookie(state, &banner[0]);
            c.send(format!("EHLO {EHLO_NAME}\r\n").as_bytes())?;
            learn(state, false, &c.expect(&[250])?[0])?;
            c.send(b"STARTTLS\r\n")?;
            c.expect(&[220])?;
            c.start_tls(None)?;
            c.send(format!("EHLO {EHLO_NAME}\r\n").as_bytes())?;
            learn(state, true, &c.expect(&[250])?[0])?;
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            c.send(&transaction(body))?;
            c.expect(&[250, 250, 250])?;
        }
        "pipeconnect-tls" => {
            for key in [&state.key, &state.key_tls] {
                if !state
                    .cache
                    .lookup(key)
                    .is_some_and(|e| e.caps.worth_caching())
                {
                    return Err("nothing cached for an early flight".into());
                }
            }
            c.send(format!("EHLO {EHLO_NAME}\r\nSTARTTLS\r\n").as_bytes())?;
            c.expect(&[220, 250, 220])?;
            c.start_tls(None)?;
            let mut flight = format!("EHLO {EHLO_NAME}\r\n").into_bytes();
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            flight.extend(transaction(body));
            c.send(&flight)?;
            c.expect(&[250, 250, 250, 250])?;
        }
        "qs-cookie-tls" => {
            let Some(cookie) = state.cookies.get(&state.key.to_string()).cloned() else {
                return Err("no cookie from an earlier greeting".into());
            };
            if !state
                .cache
                .lookup(&state.key_tls)
                .is_some_and(|e| e.caps.worth_caching())
            {
                return Err("nothing cached for the encrypted state".into());
            }
            // QHLO with the cookie, STARTTLS and the ClientHello, before the banner.
            let mut tls = client_connection("localhost").map_err(|e| e.to_string())?;
            let mut flight = format!("QHLO {EHLO_NAME} {cookie}\r\nSTARTTLS\r\n").into_bytes();
            tls.write_tls(&mut flight)
                .map_err(|e| format!("TLS: {e}"))?;
            c.send(&flight)?;
            let replies = c.expect(&[220, 250, 220])?;
            keep_cookie(state, &replies[0]);
            c.start_tls(Some(tls))?;
            let mut flight = format!("EHLO {EHLO_NAME}\r\n").into_bytes();
            waits_to_mail = c.waits;
            ms_to_mail = c.ms();
            flight.extend(transaction(body));
            c.send(&flight)?;
            c.expect(&[250, 250, 250, 250])?;
        }
        "qs-qtls" => {
            if !state.qtls.contains(&state.key.to_string()) {
                return Err("the server has not listed QTLS".into());
            }
            // QTLS and the ClientHello, before the banner: nothing comes back in cleartext.
            let mut tls = client_connection("localhost").map_err(|e| e.to_string())?;
            let mut flight = b"QTLS\r\n".to_vec();
            tls.write_tls(&mut flight)
                .map_err(|e| format!("TLS: {e}"))?;
            c.send(&flight)?;
            c.start_qtls(tls)?;
            let cached = state
                .cache
                .lookup(&state.key_tls)
                .is_some_and(|e| e.caps.worth_caching());
            if cached {
                // The Finished, QHLO with the cookie (EHLO without one) and the transaction
                // at once; the greeting comes with the replies.
                let mut flight = qtls_hello(state).into_bytes();
                waits_to_mail = c.waits;
                ms_to_mail = c.ms();
                flight.extend(transaction(body));
                c.send(&flight)?;
                let replies = c.expect(&[220, 250, 250, 250, 250])?;
                learn_greeting(state, &replies[0])?;
            } else {
                // Nothing cached for the encrypted state: the greeting's capabilities first.
                let greeting = c.expect(&[220])?;
                learn_greeting(state, &greeting[0])?;
                let mut flight = qtls_hello(state).into_bytes();
                waits_to_mail = c.waits;
                ms_to_mail = c.ms();
                flight.extend(transaction(body));
                c.send(&flight)?;
                c.expect(&[250, 250, 250, 250])?;
            }
        }
        _ => return Err(format!("unknown way {way}")),
    }
    let run = Run {
        waits_to_mail,
        waits_to_final: c.waits,
        ms_to_mail,
        ms_to_final: c.ms(),
    };
    c.quit();
    Ok(run)
}

/// The first command over TLS after QTLS: QHLO with the cookie of the last greeting over
/// TLS, or EHLO when there is none.
fn qtls_hello(state: &State) -> String {
    match state.cookies.get(&state.key_tls.to_string()) {
        Some(cookie) => format!("QHLO {EHLO_NAME} {cookie}\r\n"),
        None => format!("EHLO {EHLO_NAME}\r\n"),
    }
}

/// The cookie of a cleartext greeting, kept for the next connection, and whether it
/// listed QTLS.
fn keep_cookie(state: &mut State, greeting: &Reply) {
    note_qtls(state, greeting);
    if let Ok(g) = parse_greeting(&wire(greeting), ParseOptions::default()) {
        if let Some(cookie) = g.cookie {
            state.cookies.insert(state.key.to_string(), cookie);
        }
    }
}

/// Remembers that a cleartext greeting or EHLO reply listed QTLS (a keyword the library's
/// capabilities do not track).
fn note_qtls(state: &mut State, reply: &Reply) {
    let listed = reply.lines().iter().skip(1).any(|l| {
        let word = l.split(|&b| b == b' ').next().unwrap_or(b"");
        word.eq_ignore_ascii_case(b"QTLS")
    });
    if listed {
        state.qtls.insert(state.key.to_string());
    }
}

/// A greeting over TLS (after QTLS): its capabilities into the cache under the encrypted
/// key, its cookie kept for the next QTLS connection.
fn learn_greeting(state: &mut State, greeting: &Reply) -> Result<(), String> {
    let g = parse_greeting(&wire(greeting), ParseOptions::default())
        .map_err(|e| format!("greeting over TLS: {e:?}"))?;
    if !g.quickstart {
        return Err("the greeting over TLS has no QUICKSTART".into());
    }
    state.cache.learn(&state.key_tls, g.caps);
    match g.cookie {
        Some(cookie) => state.cookies.insert(state.key_tls.to_string(), cookie),
        None => state.cookies.remove(&state.key_tls.to_string()),
    };
    Ok(())
}

/// An EHLO reply into the library's cache, under the cleartext or the encrypted key.
fn learn(state: &mut State, encrypted: bool, reply: &Reply) -> Result<(), String> {
    let caps = Capabilities::from_reply(reply, ParseOptions::default())
        .map_err(|e| format!("EHLO reply: {e:?}"))?;
    if !encrypted {
        note_qtls(state, reply);
    }
    let key = if encrypted {
        &state.key_tls
    } else {
        &state.key
    };
    state.cache.learn(key, caps);
    Ok(())
}

/// A reply as the bytes of the wire, for the library's parsers.
fn wire(reply: &Reply) -> Vec<u8> {
    let lines = reply.lines();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        out.extend_from_slice(format!("{}", reply.code()).as_bytes());
        out.push(sep);
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The table, and the summary line
/// `summary: rtt_ms=<n> greet_pause_ms=<n> classic_ms=.. pipeconnect_ms=.. qs-greeting_ms=.. qs-cookie_ms=..`.
pub fn render(results: &[(&str, Vec<Run>)], rtt_ms: u64, pause_ms: u64) -> String {
    let mut out = format!(
        "{:<15} {:>14} {:>14} {:>12} {:>14}\n",
        "way", "waits to MAIL", "waits to 250", "MAIL ms", "final 250 ms"
    );
    let mut summary = format!("summary: rtt_ms={rtt_ms} greet_pause_ms={pause_ms}");
    for (way, runs) in results {
        let first = runs.first().copied().unwrap_or(Run {
            waits_to_mail: 0,
            waits_to_final: 0,
            ms_to_mail: 0.0,
            ms_to_final: 0.0,
        });
        let mail = median(runs.iter().map(|r| r.ms_to_mail).collect());
        let done = median(runs.iter().map(|r| r.ms_to_final).collect());
        let mail = if mail.is_nan() {
            "-".to_string()
        } else {
            format!("{mail:.1}")
        };
        out.push_str(&format!(
            "{way:<15} {:>14} {:>14} {mail:>12} {done:>14.1}\n",
            first.waits_to_mail, first.waits_to_final
        ));
        summary.push_str(&format!(" {way}_ms={done:.0}"));
    }
    out.push_str(&summary);
    out.push('\n');
    out
}

/// The sink (`--quickstart on`, a greet pause, STARTTLS when asked) behind a slow link.
fn start_pair(
    exe: &std::path::Path,
    work: &Work,
    name: &str,
    options: &Options,
    starttls: bool,
) -> Result<(Background, Background, std::path::PathBuf), String> {
    let sink_log = work.path(&format!("{name}.log"));
    let pause = options.greet_pause_ms.to_string();
    let log = sink_log
        .to_str()
        .ok_or_else(|| "the work folder is not UTF-8".to_string())?
        .to_string();
    let sink = Background::start(
        exe,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--quickstart",
            "on",
            "--starttls",
            if starttls { "on" } else { "off" },
            "--banner-delay-ms",
            &pause,
            "--log",
            &log,
        ],
        &work.path(&format!("{name}.err")),
    )?;
    let one_way = (options.rtt_ms / 2).to_string();
    let upstream = sink.addr.to_string();
    let link = Background::start(
        exe,
        &[
            "delay",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--one-way-ms",
            &one_way,
        ],
        &work.path(&format!("{name}-delay.err")),
    )?;
    Ok((sink, link, sink_log))
}

/// Every way of `ways` against one sink: a learning delivery, then the timed ones.
fn run_ways(
    ways: &'static [&'static str],
    addr: SocketAddr,
    options: &Options,
    body: &[u8],
) -> Result<Vec<(&'static str, Vec<Run>)>, String> {
    let key = PeerKey::new(addr.ip(), addr.port(), TlsState::Cleartext)
        .map_err(|e| format!("key: {e:?}"))?;
    let key_tls = PeerKey::new(addr.ip(), addr.port(), TlsState::Encrypted)
        .map_err(|e| format!("key: {e:?}"))?;
    let mut state = State {
        cache: Cache::in_memory(CacheConfig::default()),
        key,
        key_tls,
        cookies: HashMap::new(),
        qtls: HashSet::new(),
    };
    let mut results = Vec::new();
    for &way in ways {
        let mut runs = Vec::new();
        for i in 0..=options.deliveries {
            let run = deliver(way, addr, &mut state, body)
                .map_err(|e| format!("{way}, delivery {i}: {e}"))?;
            if i > 0 {
                runs.push(run);
            }
        }
        results.push((way, runs));
    }
    Ok(results)
}

/// One `pc-deliver --quickstart` process, one delivery (oneflight); its figures. `expect`:
/// the `quickstart=` it must report.
fn pc_deliver(
    client: &Path,
    addr: SocketAddr,
    store: &Path,
    options: &Options,
    expect: &str,
) -> Result<Run, String> {
    let out = super::procs::output_within(
        Command::new(client)
            .args(["--server", "127.0.0.1", "--port", &addr.port().to_string()])
            .arg("--store")
            .arg(store)
            .args(["--mode", "oneflight", "--quickstart", "--ehlo", EHLO_NAME])
            .args(["--from", "sender@demo.example", "--to", "rcpt@demo.example"])
            .args(["--body-size", &options.body_size.to_string()]),
        IO_TIMEOUT,
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("delivery "))
        .ok_or_else(|| {
            format!(
                "pc-deliver printed no delivery line ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("")
    };
    if field("result") != "ok" || field("quickstart") != expect {
        return Err(format!("pc-deliver: expected quickstart={expect}: {line}"));
    }
    let waits: u32 = field("waits").parse().map_err(|_| line.to_string())?;
    Ok(Run {
        // The transaction went with the last write, after all waits but the last.
        waits_to_mail: waits.saturating_sub(1),
        waits_to_final: waits,
        ms_to_mail: f64::NAN,
        ms_to_final: field("ms").parse().map_err(|_| line.to_string())?,
    })
}

/// The `pc-deliver --quickstart` ways: a learning delivery, then the timed ones.
fn run_pc_deliver(
    client: &Path,
    addr: SocketAddr,
    work: &Work,
    options: &Options,
) -> Result<Vec<(&'static str, Vec<Run>)>, String> {
    let mut greeting = Vec::new();
    let mut cookie = Vec::new();
    for i in 0..=options.deliveries {
        // Nothing cached: a store file of its own.
        let store = work.path(&format!("pcd-greeting-{i}.store"));
        let run = pc_deliver(client, addr, &store, options, "greeting")?;
        if i > 0 {
            greeting.push(run);
        }
    }
    let store = work.path("pcd-cookie.store");
    for i in 0..=options.deliveries {
        let expect = if i == 0 { "greeting" } else { "cookie" };
        let run = pc_deliver(client, addr, &store, options, expect)?;
        if i > 0 {
            cookie.push(run);
        }
    }
    Ok(vec![(PCD_WAYS[0], greeting), (PCD_WAYS[1], cookie)])
}

/// The sink's log lines that contain `needle`.
fn log_count(log: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn messages(log: &std::path::Path) -> usize {
    log_count(log, " message id=")
}

/// Runs the QUICKSTART table; returns the exit code.
pub fn run(options: &Options) -> Result<i32, String> {
    let work = Work::new(options.keep)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let (sink, link, sink_log) = start_pair(&exe, &work, "sink", options, false)?;
    let (tls_sink, tls_link, tls_log) = start_pair(&exe, &work, "sink-tls", options, true)?;
    println!(
        "pipeconnect demo --quickstart (experimental): {} deliveries per way, {} ms round \
         trip, a {} ms greet pause on the sinks (cleartext: sink {} link {}; STARTTLS: sink \
         {} link {})",
        options.deliveries,
        options.rtt_ms,
        options.greet_pause_ms,
        sink.addr,
        link.addr,
        tls_sink.addr,
        tls_link.addr
    );
    let body: Vec<u8> = format!(
        "Subject: quickstart demo\r\n\r\n{}\r\n",
        "x".repeat(options.body_size as usize)
    )
    .into_bytes();
    let mut results = run_ways(&WAYS, link.addr, options, &body)?;
    let client = match &options.client {
        Some(c) => c.clone(),
        None => super::default_client()?,
    };
    let mut cleartext_ways = WAYS.len();
    if client.is_file() {
        results.extend(run_pc_deliver(&client, link.addr, &work, options)?);
        cleartext_ways += PCD_WAYS.len();
    } else {
        println!(
            "(no pcd-qs-* rows: the C client {} is missing; build it with \
             `sh examples-c/client/build.sh` or give --client PATH)",
            client.display()
        );
    }
    results.extend(run_ways(&TLS_WAYS, tls_link.addr, options, &body)?);
    drop((link, sink, tls_link, tls_sink));
    print!(
        "{}",
        render(&results, options.rtt_ms, options.greet_pause_ms)
    );
    let per_sink = |n: usize| (options.deliveries as usize + 1) * n;
    let (got, got_tls) = (messages(&sink_log), messages(&tls_log));
    if got != per_sink(cleartext_ways) || got_tls != per_sink(TLS_WAYS.len()) {
        eprintln!(
            "pipeconnect demo: the sinks logged {got} and {got_tls} messages, expected {} and {}",
            per_sink(cleartext_ways),
            per_sink(TLS_WAYS.len())
        );
        return Ok(1);
    }
    // Every qs-qtls connection sent QTLS before the banner, and the sink took it so.
    let qtls = log_count(&tls_log, " qtls ");
    let before_banner = log_count(&tls_log, " banner=0 ");
    if qtls != per_sink(1) || before_banner != qtls {
        eprintln!(
            "pipeconnect demo: the STARTTLS sink logged {qtls} QTLS, {before_banner} of them \
             before the banner; expected {} before the banner",
            per_sink(1)
        );
        return Ok(1);
    }
    Ok(0)
}
