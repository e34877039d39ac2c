//! `pipeconnect probe` against `pipeconnect serve`: what it reports for each TLS state, the
//! saving it computes, and how it fails.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

use common::{with_timeout, Sink, BIN};

fn probe(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("probe")
        .args(args)
        .args(["--timeout-ms", "5000"])
        .output()
        .expect("run pipeconnect probe")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn summary(o: &Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_string()
}

#[test]
fn cleartext_server_with_chunking_saves_two_and_a_half_round_trips() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &[]);
        let o = probe(&[&sink.addr.to_string()]);
        assert!(o.status.success(), "{o:?}");
        let out = stdout(&o);
        assert!(out.contains("banner: 220 localhost ESMTP"), "{out}");
        assert!(
            out.contains("cleartext: PIPELINING PIPECONNECT CHUNKING"),
            "{out}"
        );
        assert!(out.contains("cleartext early pipelining: usable"), "{out}");
        assert_eq!(
            summary(&o),
            "summary: pipeconnect=yes starttls=not-asked encrypted_pipeconnect=- \
             chunking=yes round_trips_saved=2.5"
        );
        // The probe ends with QUIT, classic all the way: nothing was sent early.
        let quit = sink.wait_log("cmd=QUIT");
        assert!(quit.contains("early=0"), "{quit}");
        assert!(!sink.log_lines().iter().any(|l| l.contains("early=1")));
    });
}

#[test]
fn starttls_probes_both_states() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--starttls", "on", "--auth-plain", "on"]);
        let o = probe(&[&sink.addr.to_string(), "--starttls"]);
        assert!(o.status.success(), "{o:?}");
        let out = stdout(&o);
        assert!(
            out.contains("cleartext: PIPELINING PIPECONNECT STARTTLS"),
            "{out}"
        );
        assert!(out.contains("starttls: 220 "), "{out}");
        assert!(out.contains("TLS13_") || out.contains("TLS_ECDHE"), "{out}");
        let encrypted = out
            .lines()
            .find(|l| l.starts_with("encrypted: "))
            .unwrap_or_else(|| panic!("no encrypted line:\n{out}"));
        assert!(encrypted.contains("PIPECONNECT"), "{out}");
        assert!(!encrypted.contains("STARTTLS"), "{out}");
        assert!(encrypted.contains("AUTH=PLAIN"), "{out}");
        assert_eq!(
            summary(&o),
            "summary: pipeconnect=yes starttls=yes encrypted_pipeconnect=yes \
             chunking=yes round_trips_saved=3.5"
        );
        sink.wait_log("tls=1 early=0 cmd=EHLO");
    });
}

#[test]
fn starttls_asked_but_not_offered() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--chunking", "off"]);
        let o = probe(&[&sink.addr.to_string(), "--starttls"]);
        assert!(o.status.success(), "{o:?}");
        assert!(
            stdout(&o).contains("starttls: not offered"),
            "{}",
            stdout(&o)
        );
        assert_eq!(
            summary(&o),
            "summary: pipeconnect=yes starttls=not-offered encrypted_pipeconnect=- \
             chunking=no round_trips_saved=1.5"
        );
    });
}

#[test]
fn server_without_pipeconnect_saves_nothing() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--pipeconnect", "off"]);
        let o = probe(&[&sink.addr.to_string()]);
        assert!(o.status.success(), "{o:?}");
        let out = stdout(&o);
        assert!(
            out.contains("cleartext early pipelining: not offered (no PIPECONNECT)"),
            "{out}"
        );
        assert!(out.contains("saving: none"), "{out}");
        assert_eq!(
            summary(&o),
            "summary: pipeconnect=no starttls=not-asked encrypted_pipeconnect=- \
             chunking=yes round_trips_saved=0"
        );
    });
}

#[test]
fn refused_service_and_dead_ports_exit_1() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-code", "554"]);
        let o = probe(&[&sink.addr.to_string()]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("refuses service: 554"),
            "{o:?}"
        );

        // A port with nobody listening.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let o = probe(&[&format!("127.0.0.1:{port}")]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
    });
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [&[][..], &["nohostport"][..], &["a:1", "--bogus"][..]] {
        let o = Command::new(BIN).arg("probe").args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
    }
    let o = Command::new(BIN)
        .args(["probe", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("usage: pipeconnect probe"));
}
