//! Time limits of the C example client (examples-c/client, `pc-deliver`): each reply has an
//! absolute deadline that bytes trickling in do not move, and the whole delivery has one
//! deadline that a reconnect shares. Servers here trickle a banner one byte every 200 ms or
//! accept and never answer; every delivery must end at its configured limit (±10%), with a
//! temporary failure (exit status 75).
//!
//! Needs the tools crate built in the same profile (`cargo build --workspace`; the
//! Makefile does it before `cargo test`), for the sink that teaches the cache.
mod common;

use common::sink::Sink;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Exit status of pc-deliver when every failed delivery failed temporarily.
const EXIT_TEMPFAIL: i32 = 75;
/// The banner a trickling server sends, one byte at a time.
const BANNER: &[u8] = b"220 slow.test.example ESMTP trickling\r\n";
/// Between two bytes of the trickled banner.
const TRICKLE_GAP: Duration = Duration::from_millis(200);

/// pc-deliver, compiled once per test run against this build.
fn client() -> &'static Path {
    common::pc_deliver()
}

/// How a test server treats each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// The banner one byte every 200 ms, never a whole line in time; reads and drops input.
    Trickle,
    /// Accepts, reads and drops what comes, never sends a byte.
    Silent,
}

/// A test server on a loopback port; counts the connections it accepted. Its threads end
/// with the test process.
struct SlowServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl SlowServer {
    fn start(listen: &str, behaviour: Behaviour) -> SlowServer {
        let listener = TcpListener::bind(listen).expect("bind the test server");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || serve(stream, behaviour));
            }
        });
        SlowServer { addr, accepted }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, behaviour: Behaviour) {
    // Whatever the client sends is read and dropped, so that its writes never block.
    let mut reader = match stream.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    };
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut stream = stream;
    match behaviour {
        Behaviour::Trickle => {
            for byte in BANNER.iter().cycle().take(BANNER.len() * 50) {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(TRICKLE_GAP);
            }
        }
        Behaviour::Silent => thread::sleep(Duration::from_secs(60)),
    }
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One delivery to 127.0.0.1:`port`; its output and how long the process took.
fn deliver(port: &str, store: Option<&Path>, limits: &[&str]) -> (Output, Duration) {
    let mut cmd = Command::new(client());
    cmd.args(["--server", "127.0.0.1", "--port", port])
        .args(["--ehlo", "client.test.example"])
        .args(["--from", "sender@test.example", "--to", "rcpt@test.example"])
        .args(["--mode", "oneflight"]);
    match store {
        Some(s) => cmd.arg("--store").arg(s),
        None => cmd.arg("--memory"),
    };
    cmd.args(limits).stdin(Stdio::null());
    let start = Instant::now();
    let o = cmd.output().expect("run pc-deliver");
    (o, start.elapsed())
}

/// The delivery failed temporarily (result and exit status), after `limit` ±10%.
fn assert_tempfail_at(o: &Output, took: Duration, limit: Duration) {
    assert_eq!(o.status.code(), Some(EXIT_TEMPFAIL), "{}", show(o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("result=tempfail"), "{}", show(o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("timed out"),
        "{}",
        show(o)
    );
    let (low, high) = (limit.mul_f64(0.9), limit.mul_f64(1.1));
    assert!(
        took >= low && took <= high,
        "took {took:?}, limit {limit:?} (±10%):\n{}",
        show(o)
    );
}

/// A store that holds an entry for a port now served by `behaviour`: a delivery to a sink
/// teaches it, then the sink goes and the slow server takes its port.
fn learned_then(dir: &Path, behaviour: Behaviour) -> (PathBuf, SlowServer) {
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(
        &common::scratch("time-limits-sink"),
        "sink",
        "127.0.0.1:0",
        &[],
    );
    let port = sink.addr.port().to_string();
    let (o, _) = deliver(&port, Some(&store), &[]);
    assert!(o.status.success(), "learning: {}", show(&o));
    let listen = sink.addr.to_string();
    drop(sink);
    (store, SlowServer::start(&listen, behaviour))
}

#[test]
fn a_trickled_banner_ends_at_the_reply_deadline() {
    let server = SlowServer::start("127.0.0.1:0", Behaviour::Trickle);
    // Nothing cached: a classic connection, waiting for the banner. With an idle timeout
    // of a second (SO_RCVTIMEO) a byte every 200 ms would keep it waiting for ever.
    let (o, took) = deliver(&server.port(), None, &["--reply-timeout-ms", "1000"]);
    assert_tempfail_at(&o, took, Duration::from_millis(1000));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no complete reply within 1000 ms"),
        "{}",
        show(&o)
    );
    assert_eq!(server.accepted(), 1, "a classic delivery has no reconnect");
}

#[test]
fn a_trickled_banner_ends_at_the_delivery_deadline() {
    let server = SlowServer::start("127.0.0.1:0", Behaviour::Trickle);
    let (o, took) = deliver(
        &server.port(),
        None,
        &[
            "--reply-timeout-ms",
            "30000",
            "--delivery-timeout-ms",
            "1500",
        ],
    );
    assert_tempfail_at(&o, took, Duration::from_millis(1500));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("time limit (1500 ms)"),
        "{}",
        show(&o)
    );
}

#[test]
fn a_silent_server_after_an_early_flight_costs_one_delivery_deadline() {
    let dir = common::scratch("client-limits-silent-reconnect");
    let (store, server) = learned_then(&dir, Behaviour::Silent);
    // The early connection (its flight without the body) gets no reply within 1 s; the
    // library advises a reconnect, which gets only what is left of the delivery's 1.5 s,
    // not a time limit of its own.
    let (o, took) = deliver(
        &server.port(),
        Some(&store),
        &[
            "--mode",
            "early",
            "--reply-timeout-ms",
            "1000",
            "--delivery-timeout-ms",
            "1500",
        ],
    );
    assert_tempfail_at(&o, took, Duration::from_millis(1500));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("reconnected=1"),
        "{}",
        show(&o)
    );
    assert_eq!(
        server.accepted(),
        2,
        "the early connection and the reconnect"
    );
}

#[test]
fn a_silent_server_after_the_body_went_early_is_not_sent_again_at_once() {
    let dir = common::scratch("client-limits-silent-body");
    let (store, server) = learned_then(&dir, Behaviour::Silent);
    // The whole message went in the early flight and nothing came back: the server may
    // hold it, so the delivery ends as a temporary failure at the reply limit, with no
    // second connection carrying the message again.
    let (o, took) = deliver(
        &server.port(),
        Some(&store),
        &[
            "--reply-timeout-ms",
            "1000",
            "--delivery-timeout-ms",
            "5000",
        ],
    );
    assert_tempfail_at(&o, took, Duration::from_millis(1000));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("reconnected=0"),
        "{}",
        show(&o)
    );
    assert_eq!(server.accepted(), 1, "no second copy of the message");
}

#[test]
fn a_silent_server_leaves_no_time_for_a_reconnect_past_the_deadline() {
    let dir = common::scratch("client-limits-silent-once");
    let (store, server) = learned_then(&dir, Behaviour::Silent);
    // The reply limit is longer than the delivery's: the early connection uses all of it,
    // and the delivery ends there instead of reconnecting with a fresh limit.
    let (o, took) = deliver(
        &server.port(),
        Some(&store),
        &[
            "--reply-timeout-ms",
            "30000",
            "--delivery-timeout-ms",
            "1200",
        ],
    );
    assert_tempfail_at(&o, took, Duration::from_millis(1200));
    assert_eq!(server.accepted(), 1, "no reconnect after the deadline");
}

#[test]
fn a_silent_server_without_early_pipelining_ends_at_the_reply_deadline() {
    let server = SlowServer::start("127.0.0.1:0", Behaviour::Silent);
    let (o, took) = deliver(&server.port(), None, &["--reply-timeout-ms", "800"]);
    assert_tempfail_at(&o, took, Duration::from_millis(800));
    assert_eq!(server.accepted(), 1);
}

#[test]
fn time_limits_must_be_positive() {
    for bad in [
        &["--reply-timeout-ms", "0"][..],
        &["--delivery-timeout-ms", "0"][..],
        &["--delivery-timeout-ms", "-5"][..],
        &["--quit-wait-ms", "x"][..],
    ] {
        let o = Command::new(client())
            .args(["--server", "127.0.0.1", "--port", "25", "--memory"])
            .args(["--from", "a@test.example", "--to", "b@test.example"])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", show(&o));
    }
}

/// A server that, like Exim 4.96, holds its 221 after QUIT until the client's FIN (here
/// up to 3 s). Sends on `report` how long after the QUIT the FIN came (None: not within
/// the 3 s).
fn corked_quit_server(report: mpsc::Sender<Option<Duration>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test server");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let report = report.clone();
            thread::spawn(move || {
                let _ = speak_smtp_then_wait_for_fin(stream, &report);
            });
        }
    });
    addr
}

fn speak_smtp_then_wait_for_fin(
    stream: TcpStream,
    report: &mpsc::Sender<Option<Duration>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 corked.test.example ESMTP\r\n")?;
    let mut in_data = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                out.write_all(b"250 OK id=1\r\n")?;
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-corked.test.example\r\n250 PIPELINING\r\n")?,
            "MAIL" | "RCPT" => out.write_all(b"250 OK\r\n")?,
            "DATA" => {
                in_data = true;
                out.write_all(b"354 go ahead\r\n")?;
            }
            "QUIT" => break,
            _ => out.write_all(b"500 what\r\n")?,
        }
    }
    // QUIT: the 221 waits for the FIN.
    let quit_at = Instant::now();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut rest = [0u8; 64];
    let fin = matches!(reader.read(&mut rest), Ok(0));
    let _ = report.send(fin.then(|| quit_at.elapsed()));
    out.write_all(b"221 corked.test.example closing\r\n")?;
    Ok(())
}

#[test]
fn quit_is_followed_at_once_by_the_fin_and_the_221_is_not_awaited() {
    let (tx, rx) = mpsc::channel();
    let addr = corked_quit_server(tx);
    let (o, took) = deliver(&addr.port().to_string(), None, &["--mode", "classic"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("result=ok"),
        "{}",
        show(&o)
    );
    let fin_after_quit = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server saw the QUIT");
    let fin_after_quit = fin_after_quit.expect("no FIN within 3 s of the QUIT");
    assert!(
        fin_after_quit < Duration::from_millis(200),
        "FIN {fin_after_quit:?} after the QUIT"
    );
    // A client that waited for the 221 would wait for the server's 3 s.
    assert!(took < Duration::from_secs(2), "took {took:?}: {}", show(&o));
}
