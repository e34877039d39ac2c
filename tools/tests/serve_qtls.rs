//! QTLS on `pipeconnect serve` (SMTP QUICKSTART, experimental; docs/RULES.md 6.9): with
//! `--quickstart on` and STARTTLS, `QTLS` gets no reply, the bytes behind it are the start
//! of the TLS stream, and the greeting comes over TLS after the handshake.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{tls, with_timeout, Reply, Sink, Smtp};
use pipeconnect::caps::ParseOptions;
use pipeconnect::server::quickstart::parse_greeting;
use rustls::{ClientConnection, StreamOwned};

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// `QTLS\r\n` and the ClientHello of `conn`: the first write.
fn qtls_flight(conn: &mut ClientConnection) -> Vec<u8> {
    let mut flight = b"QTLS\r\n".to_vec();
    conn.write_tls(&mut flight).unwrap();
    flight
}

/// Completes the client handshake after a QTLS flight. Whole cleartext lines the sink wrote
/// before it read QTLS (they start with a digit; a TLS record never does) are skipped and
/// returned; everything from the first other byte on is TLS. The client's Finished leaves
/// with the first write over TLS.
fn handshake(mut tcp: TcpStream, mut conn: ClientConnection) -> (Smtp<TlsStream>, String) {
    let mut cleartext = Vec::new();
    let mut buf = Vec::new();
    let mut in_tls = false;
    while conn.is_handshaking() {
        let mut chunk = [0u8; 16384];
        let n = tcp.read(&mut chunk).expect("read during the handshake");
        assert!(
            n > 0,
            "closed during the handshake; cleartext {:?}",
            String::from_utf8_lossy(&cleartext)
        );
        buf.extend_from_slice(&chunk[..n]);
        while !in_tls && buf.first().is_some_and(u8::is_ascii_digit) {
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                break;
            };
            cleartext.extend(buf.drain(..=end));
        }
        if buf.first().is_some_and(|b| !b.is_ascii_digit()) {
            in_tls = true;
        }
        if in_tls {
            let mut rest = &buf[..];
            while !rest.is_empty() {
                conn.read_tls(&mut rest).unwrap();
                conn.process_new_packets().expect("TLS from the sink");
            }
            buf.clear();
        }
    }
    let text = String::from_utf8(cleartext).expect("ASCII cleartext");
    (Smtp::new(StreamOwned::new(conn, tcp)), text)
}

/// The reply as the bytes that came on the wire (CRLF line ends).
fn wire(code: u16, reply: &Reply) -> String {
    let last = reply.lines.len() - 1;
    reply
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{code}{}{l}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

/// Reads until the sink closes (a reset counts as a close); what came before.
fn read_to_close(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tcp.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("expected the sink to close, got {e}; read {got:?}"),
        }
    }
}

const TRANSACTION: &str = "MAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\nBDAT 4 LAST\r\nbodyQUIT\r\n";

#[test]
fn qtls_and_client_hello_before_the_banner_then_the_greeting_over_tls() {
    with_timeout(|procs| {
        let sink = Sink::start(
            procs,
            &[
                "--starttls",
                "on",
                "--quickstart",
                "on",
                "--banner-delay-ms",
                "1000",
            ],
        );
        // A cleartext greeting lists QTLS.
        let mut smtp = sink.connect();
        let banner = smtp.expect(220);
        assert!(banner.lines.iter().any(|l| l == "QTLS"), "{banner:?}");
        drop(smtp);

        // 1: QTLS and the ClientHello in one write before the banner: nothing in cleartext,
        // the handshake, then the greeting over TLS after the greet pause (no cookie).
        let mut conn = tls::client();
        let mut tcp = sink.connect().into_inner();
        let started = Instant::now();
        tcp.write_all(&qtls_flight(&mut conn)).unwrap();
        let (mut smtp, cleartext) = handshake(tcp, conn);
        assert_eq!(cleartext, "", "no banner and no reply in cleartext");
        let greeting = smtp.expect(220);
        let waited = started.elapsed().as_millis();
        assert!(waited >= 900, "the greet pause, over TLS: {waited} ms");
        let g = parse_greeting(wire(220, &greeting).as_bytes(), ParseOptions::default()).unwrap();
        assert!(g.quickstart && g.caps.worth_caching(), "{greeting:?}");
        let cookie = g.cookie.clone().expect("a QHLO= line");
        for absent in ["STARTTLS", "QTLS"] {
            assert!(!greeting.lines.iter().any(|l| l == absent), "{greeting:?}");
        }
        smtp.send(&format!("QHLO client.test\r\n{TRANSACTION}"));
        let reply = smtp.expect(250);
        assert!(reply.lines[0].contains("Hello client.test"), "{reply:?}");
        assert!(!reply.lines.iter().any(|l| l == "STARTTLS"), "{reply:?}");
        smtp.expect(250);
        smtp.expect(250);
        let done = smtp.expect(250);
        assert!(done.lines[0].starts_with("OK id="), "{done:?}");
        smtp.expect(221);
        drop(smtp);
        let line = sink.wait_log("conn=2 qtls ");
        assert!(line.contains(" banner=0 "), "{line}");
        assert!(!line.ends_with(" bytes=0"), "{line}");
        sink.wait_log("conn=2 tls=0 early=1 cmd=QTLS");
        sink.wait_log("conn=2 tls=1 early=0 cmd=QHLO client.test");
        sink.wait_log("conn=2 message id=1 bytes=4 rcpts=1");
        sink.wait_log("conn=2 closed");
        let log = sink.log_lines();
        let of_conn2: Vec<&String> = log.iter().filter(|l| l.contains("conn=2 ")).collect();
        let at = |needle: &str| of_conn2.iter().position(|l| l.contains(needle));
        assert!(at(" qtls ") < at(" banner "), "{of_conn2:?}");
        assert_eq!(
            log.iter().filter(|l| l.contains(" message ")).count(),
            1,
            "one message: {log:?}"
        );

        // 2: QHLO with the cookie of the greeting over TLS and the transaction right behind
        // the client's Finished: the greet pause is skipped.
        let mut conn = tls::client();
        let mut tcp = sink.connect().into_inner();
        let started = Instant::now();
        tcp.write_all(&qtls_flight(&mut conn)).unwrap();
        let (mut smtp, cleartext) = handshake(tcp, conn);
        assert_eq!(cleartext, "");
        smtp.send(&format!("QHLO client.test {cookie}\r\n{TRANSACTION}"));
        let again = smtp.expect(220);
        let waited = started.elapsed().as_millis();
        assert!(waited < 700, "the greeting took {waited} ms");
        assert_eq!(again.lines[1..], greeting.lines[1..], "same cookie");
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(221);
        drop(smtp);
        let line = sink.wait_log("conn=3 qhlo");
        assert!(line.ends_with(" cookie=valid"), "{line}");
        let line = sink.wait_log("conn=3 prebanner");
        assert!(line.contains(" class=early_flight reason=none "), "{line}");
        sink.wait_log("tls=1 early=1 cmd=QHLO client.test");
        sink.wait_log("conn=3 message id=2 bytes=4 rcpts=1");
    });
}

#[test]
fn qtls_after_the_banner_the_client_skips_the_cleartext() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on", "--quickstart", "on"]);
        let mut tcp = sink.connect().into_inner();
        // The banner is written before QTLS arrives; the client has not read it.
        std::thread::sleep(Duration::from_millis(300));
        let mut conn = tls::client();
        let mut flight = b"EHLO client.test\r\n".to_vec();
        flight.extend(qtls_flight(&mut conn));
        tcp.write_all(&flight).unwrap();
        let (mut smtp, cleartext) = handshake(tcp, conn);
        // The banner and the reply to the EHLO before QTLS, then TLS.
        assert!(cleartext.starts_with("220-"), "{cleartext}");
        assert!(
            cleartext.contains("250-localhost Hello client.test"),
            "{cleartext}"
        );
        assert!(cleartext.ends_with("\r\n250 QTLS\r\n"), "{cleartext}");
        let greeting = smtp.expect(220);
        assert!(
            greeting.lines.iter().any(|l| l.starts_with("QHLO=")),
            "{greeting:?}"
        );
        smtp.send(&format!("EHLO client.test\r\n{TRANSACTION}"));
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(221);
        let line = sink.wait_log("conn=1 qtls ");
        assert!(line.contains(" banner=1 "), "{line}");
        sink.wait_log("conn=1 message id=1 bytes=4 rcpts=1");
    });
}

#[test]
fn qtls_without_quickstart_gets_500_and_nothing_is_read_as_tls() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on"]);
        let mut conn = tls::client();
        let mut smtp = sink.connect();
        // Before the banner, as a QTLS client would: the sink answers it as SMTP.
        smtp.send_bytes(&qtls_flight(&mut conn));
        let banner = smtp.expect(220);
        assert_eq!(banner.lines.len(), 1, "{banner:?}");
        smtp.expect(500);
        // Whatever lines the ClientHello held are unknown commands; then QUIT is read.
        smtp.send("\r\nQUIT\r\n");
        loop {
            let reply = smtp.read_reply();
            if reply.code == 221 {
                break;
            }
            assert!(reply.code >= 500, "{reply:?}");
        }
        drop(smtp);
        sink.wait_log("conn=1 closed");
        let log = sink.log_lines();
        assert!(
            !log.iter()
                .any(|l| l.contains(" qtls ") || l.contains(" tls=1 ")),
            "{log:?}"
        );

        // With QUICKSTART but without STARTTLS: not offered, 503.
        let sink = Sink::start(procs, &["--quickstart", "on"]);
        let mut smtp = sink.connect();
        let greeting = smtp.expect(220);
        assert!(!greeting.lines.iter().any(|l| l == "QTLS"), "{greeting:?}");
        smtp.send("QTLS\r\n");
        smtp.expect(503);
        smtp.send("QUIT\r\n");
        smtp.expect(221);
    });
}

#[test]
fn garbage_after_qtls_ends_the_connection_and_the_sink_keeps_serving() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on", "--quickstart", "on"]);
        // Before the banner.
        let mut tcp = sink.connect().into_inner();
        tcp.write_all(b"QTLS\r\nthis is not TLS at all\r\n")
            .unwrap();
        let got = read_to_close(&mut tcp);
        // Nothing in cleartext; at most a TLS alert.
        assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
        let line = sink.wait_log("conn=1 qtls ");
        assert!(line.contains(" banner=0 "), "{line}");
        sink.wait_log("conn=1 closed");
        assert!(!sink.log_lines().iter().any(|l| l.contains("conn=1 banner")));

        // After the banner.
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send_bytes(b"QTLS\r\n\x16\x03\x01\x00\x05hello\x00garbage\r\n");
        let mut tcp = smtp.into_inner();
        let got = read_to_close(&mut tcp);
        assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
        let line = sink.wait_log("conn=2 qtls ");
        assert!(line.contains(" banner=1 "), "{line}");
        sink.wait_log("conn=2 closed");

        // The sink keeps serving.
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO client.test\r\n");
        smtp.expect(250);
        smtp.send("QUIT\r\n");
        smtp.expect(221);
    });
}
