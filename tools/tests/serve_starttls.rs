//! STARTTLS on `pipeconnect serve`, with a rustls client that accepts the sink's self-signed
//! certificate.

mod common;

use std::net::TcpStream;
use std::sync::Arc;

use common::{with_timeout, Sink, Smtp};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// Accepts any certificate (the sink's is self-signed and new at every start) but still checks
/// the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Runs the client handshake over a connection whose STARTTLS got its 220.
fn handshake(smtp: Smtp<TcpStream>) -> Smtp<TlsStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
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
