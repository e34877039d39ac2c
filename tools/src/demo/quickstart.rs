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
//! Each way makes one learning delivery first (not counted). The table gives, per way,
//! the waits for the server before MAIL is written and before the final 250, and the
//! median times of both from the start of connect(). The cookie is kept by this client,
//! not by the library's cache (which stores capabilities only).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pipeconnect::caps::ParseOptions;
use pipeconnect::reply::{Reply, ReplyLimits, ReplyParser};
use pipeconnect::server::quickstart::parse_greeting;
use pipeconnect::{Cache, CacheConfig, Capabilities, PeerKey, TlsState};

use super::options::Options;
use super::procs::{Background, Work};

/// The ways, in table order.
pub const WAYS: [&str; 4] = ["classic", "pipeconnect", "qs-greeting", "qs-cookie"];

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
    cookies: HashMap<String, String>,
}

struct Conn {
    tcp: TcpStream,
    parser: ReplyParser,
    ready: Vec<Reply>,
    waits: u32,
    started: Instant,
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn, String> {
        let started = Instant::now();
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            tcp,
            parser: ReplyParser::new(ReplyLimits::default()),
            ready: Vec::new(),
            waits: 0,
            started,
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.tcp.write_all(bytes).map_err(|e| format!("write: {e}"))
    }

    fn ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// The next `n` replies, checked against `codes`; one wait if any had to be read.
    fn expect(&mut self, codes: &[u16]) -> Result<Vec<Reply>, String> {
        if self.ready.len() < codes.len() {
            self.waits += 1;
        }
        let mut buf = [0u8; 16 * 1024];
        while self.ready.len() < codes.len() {
            let n = self.tcp.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the sink closed the connection".into());
            }
            self.parser
                .feed(&buf[..n], &mut self.ready)
                .map_err(|e| format!("reply: {e:?}"))?;
        }
        let got: Vec<Reply> = self.ready.drain(..codes.len()).collect();
        for (r, &c) in got.iter().zip(codes) {
            if r.code() != c {
                let text = String::from_utf8_lossy(&r.text()).into_owned();
                return Err(format!("expected {c}, got {} {text}", r.code()));
            }
        }
        Ok(got)
    }

    fn quit(mut self) {
        let _ = self.send(b"QUIT\r\n");
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
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
        "{:<12} {:>14} {:>14} {:>12} {:>14}\n",
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
        out.push_str(&format!(
            "{way:<12} {:>14} {:>14} {mail:>12.1} {done:>14.1}\n",
            first.waits_to_mail, first.waits_to_final
        ));
        summary.push_str(&format!(" {way}_ms={done:.0}"));
    }
    out.push_str(&summary);
    out.push('\n');
    out
}

/// Runs the QUICKSTART table; returns the exit code.
pub fn run(options: &Options) -> Result<i32, String> {
    let work = Work::new(options.keep)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let sink_log = work.path("sink.log");
    let pause = options.greet_pause_ms.to_string();
    let log = sink_log
        .to_str()
        .ok_or_else(|| "the work folder is not UTF-8".to_string())?;
    let sink = Background::start(
        &exe,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--quickstart",
            "on",
            "--banner-delay-ms",
            &pause,
            "--log",
            log,
        ],
        &work.path("serve.err"),
    )?;
    let one_way = (options.rtt_ms / 2).to_string();
    let upstream = sink.addr.to_string();
    let link = Background::start(
        &exe,
        &[
            "delay",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--one-way-ms",
            &one_way,
        ],
        &work.path("delay.err"),
    )?;
    println!(
        "pipeconnect demo --quickstart (experimental): {} deliveries per way, {} ms round \
         trip, a {} ms greet pause on the sink (sink {}, link {})",
        options.deliveries, options.rtt_ms, options.greet_pause_ms, sink.addr, link.addr
    );
    let key = PeerKey::new(link.addr.ip(), link.addr.port(), TlsState::Cleartext)
        .map_err(|e| format!("key: {e:?}"))?;
    let mut state = State {
        cache: Cache::in_memory(CacheConfig::default()),
        key,
        cookies: HashMap::new(),
    };
    let body: Vec<u8> = format!(
        "Subject: quickstart demo\r\n\r\n{}\r\n",
        "x".repeat(options.body_size as usize)
    )
    .into_bytes();
    let mut results = Vec::new();
    for way in WAYS {
        let mut runs = Vec::new();
        for i in 0..=options.deliveries {
            let run = deliver(way, link.addr, &mut state, &body)
                .map_err(|e| format!("{way}, delivery {i}: {e}"))?;
            if i > 0 {
                runs.push(run);
            }
        }
        results.push((way, runs));
    }
    drop(link);
    drop(sink);
    let log = std::fs::read_to_string(&sink_log).unwrap_or_default();
    let messages = log.lines().filter(|l| l.contains(" message id=")).count();
    let expected = (options.deliveries as usize + 1) * WAYS.len();
    print!(
        "{}",
        render(&results, options.rtt_ms, options.greet_pause_ms)
    );
    if messages != expected {
        eprintln!("pipeconnect demo: the sink logged {messages} messages, expected {expected}");
        return Ok(1);
    }
    Ok(0)
}
