//! STARTTLS on `pipeconnect serve`, with a rustls client that accepts the sink's self-signed
//! certificate (`common/tls.rs`).

mod common;

use std::net::TcpStream;

use common::{with_timeout, Sink, Smtp};
use rustls::{ClientConnection, StreamOwned};

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Runs the client handshake over a connection whose STARTTLS got its 220.
fn handshake(smtp: Smtp<TcpStream>) -> Smtp<TlsStream> {
    let conn = common::tls::client();
    let mut tls = StreamOwned::new(conn, smtp.into_inner());
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    assert!(tls.conn.protocol_version().is_some());
    Smtp::new(tls)
}

#[test]
fn starttls_handshake_then_a_fresh_session() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on", "--auth-plain", "on"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO client.test\r\n");
        let reply = smtp.expect(250);
        assert!(reply.lines.iter().any(|l| l == "STARTTLS"), "{reply:?}");
        smtp.send("STARTTLS\r\n");
        smtp.expect(220);

        let mut smtp = handshake(smtp);
        // A fresh state: EHLO is needed again.
        smtp.send("MAIL FROM:<a@test>\r\n");
        smtp.expect(503);
        smtp.send("EHLO client.test\r\n");
        let reply = smtp.expect(250);
        assert!(!reply.lines.iter().any(|l| l == "STARTTLS"), "{reply:?}");
        assert!(reply.lines.iter().any(|l| l == "AUTH PLAIN"), "{reply:?}");
        smtp.send("STARTTLS\r\n");
        smtp.expect(503);
        smtp.send("MAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\nBDAT 2 LAST\r\nhi");
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        smtp.send("QUIT\r\n");
        smtp.expect(221);

        let line = sink.wait_log("cmd=EHLO client.test");
        assert!(line.contains(" tls=0 "), "{line}");
        let tls_lines: Vec<String> = sink
            .log_lines()
            .into_iter()
            .filter(|l| l.contains(" tls=1 "))
            .collect();
        assert!(
            tls_lines
                .iter()
                .any(|l| l.ends_with("cmd=EHLO client.test")),
            "{tls_lines:?}"
        );
        sink.wait_log("conn=1 message id=1 bytes=2 rcpts=1");
    });
}

#[test]
fn cleartext_sent_after_starttls_is_discarded() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        // An injection attempt: commands behind STARTTLS in the same cleartext packet.
        smtp.send("EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<injected@test>\r\n");
        smtp.expect(250);
        smtp.expect(220);
        let mut smtp = handshake(smtp);
        smtp.send("EHLO client.test\r\n");
        // The first reply over TLS answers EHLO, not the injected MAIL.
        let reply = smtp.expect(250);
        assert!(reply.lines[0].contains("Hello client.test"), "{reply:?}");
        smtp.send("QUIT\r\n");
        smtp.expect(221);
        sink.wait_log("tls=1 early=0 cmd=QUIT");
        let log = sink.log_lines().join("\n");
        assert!(!log.contains("injected"), "{log}");
    });
}

/// QUICKSTART (experimental): with `--quickstart on`, a ClientHello sent right behind
/// STARTTLS, before its 220 (and here before the banner), is the start of the TLS stream.
#[test]
fn quickstart_pipelined_starttls_with_the_client_hello() {
    use std::io::{Read, Write};
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on", "--quickstart", "on"]);
        let mut conn = common::tls::client();
        let mut flight = b"EHLO client.test\r\nSTARTTLS\r\n".to_vec();
        conn.write_tls(&mut flight).unwrap();
        let mut tcp = sink.connect().into_inner();
        tcp.write_all(&flight).unwrap();
        // Cleartext up to the 220 to STARTTLS; what follows is TLS.
        let marker = b"220 Ready to start TLS\r\n";
        let mut got = Vec::new();
        let end = loop {
            if let Some(i) = got.windows(marker.len()).position(|w| w == marker) {
                break i + marker.len();
            }
            let mut chunk = [0u8; 16384];
            let n = tcp.read(&mut chunk).unwrap();
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        };
        let text = String::from_utf8_lossy(&got[..end]);
        assert!(text.contains("250 "), "{text}");
        let mut rest = &got[end..];
        while !rest.is_empty() {
            conn.read_tls(&mut rest).unwrap();
        }
        conn.process_new_packets().unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        let mut smtp = Smtp::new(tls);
        smtp.send("EHLO client.test\r\n");
        smtp.expect(250);
        let line = sink.wait_log("conn=1 pipelined_tls");
        assert!(!line.ends_with(" bytes=0"), "{line}");
        sink.wait_log("tls=1 early=0 cmd=EHLO client.test");
    });
}

#[test]
fn without_quickstart_bytes_behind_starttls_are_discarded() {
    use std::io::Read;
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO client.test\r\n");
        smtp.expect(250);
        // A would-be ClientHello behind STARTTLS is thrown away (RFC 3207): the sink waits
        // for a handshake that never starts.
        smtp.send_bytes(b"STARTTLS\r\n\x16\x03\x01\x00\x05hello");
        smtp.expect(220);
        let mut tcp = smtp.into_inner();
        tcp.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        let r = tcp.read(&mut buf);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "{r:?}"
        );
        assert!(!sink.log_lines().iter().any(|l| l.contains("pipelined_tls")));
    });
}
