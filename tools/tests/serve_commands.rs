//! `pipeconnect serve` with a classic (non-early) client: the EHLO reply and the basic commands.

mod common;

use common::{with_timeout, Sink};

#[test]
fn classic_ehlo_gets_the_enabled_keywords_in_order() {
    with_timeout(|procs| {
        let sink = Sink::start(
            procs,
            &[
                "--hostname",
                "mx.test",
                "--size",
                "1000000",
                "--starttls",
                "on",
                "--auth-plain",
                "on",
                "--limits-rcptmax",
                "10",
            ],
        );
        let mut smtp = sink.connect();
        let banner = smtp.expect(220);
        assert!(banner.lines[0].starts_with("mx.test "), "{banner:?}");
        smtp.send("EHLO client.test\r\n");
        let reply = smtp.expect(250);
        assert_eq!(reply.lines[0], "mx.test Hello client.test");
        assert_eq!(
            reply.lines[1..],
            [
                "SIZE 1000000",
                "8BITMIME",
                "PIPELINING",
                "PIPECONNECT",
                "AUTH PLAIN",
                "CHUNKING",
                "STARTTLS",
                "SMTPUTF8",
                "LIMITS RCPTMAX=10",
                "HELP"
            ]
        );
        smtp.send("QUIT\r\n");
        smtp.expect(221);
        smtp.expect_closed();
        drop(smtp);

        let line = sink.wait_log("cmd=EHLO client.test");
        assert!(
            line.starts_with("t_ms=") && line.contains(" conn=1 tls=0 early=0 cmd="),
            "{line}"
        );
        sink.wait_log("conn=1 closed");
        let lines = sink.log_lines();
        assert_eq!(lines[0], "conn=1 accepted");
        assert!(
            lines[1].starts_with("conn=1 prebanner t_ms=") && lines[1].contains(" class=nothing "),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("conn=1 banner t_ms="), "{lines:?}");
    });
}

#[test]
fn disabled_extensions_are_not_advertised() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--pipelining", "off", "--chunking", "off"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO client.test\r\n");
        let reply = smtp.expect(250);
        // No PIPECONNECT without PIPELINING, and the defaults leave STARTTLS and AUTH off.
        assert_eq!(reply.lines[1..], ["8BITMIME", "SMTPUTF8", "HELP"]);
        // BDAT is unknown without CHUNKING.
        smtp.send("BDAT 0 LAST\r\n");
        smtp.expect(500);
    });
}

#[test]
fn commands_in_the_wrong_order_or_unknown_are_refused() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &[]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("MAIL FROM:<a@test>\r\n");
        smtp.expect(503);
        smtp.send("HELO client.test\r\n");
        smtp.expect(250);
        smtp.send("RCPT TO:<b@test>\r\n");
        smtp.expect(503);
        smtp.send("DATA\r\n");
        smtp.expect(503);
        smtp.send("VRFY someone\r\n");
        smtp.expect(500);
        smtp.send("MAIL FROM:x\r\n");
        smtp.expect(250);
        smtp.send("MAIL FROM:<a@test>\r\n");
        smtp.expect(503);
        smtp.send("RSET\r\n");
        smtp.expect(250);
        smtp.send("NOOP\r\n");
        smtp.expect(250);
        smtp.send("HELP\r\n");
        smtp.expect(214);
        let long = format!("NOOP {}\r\n", "x".repeat(2000));
        smtp.send(&long);
        smtp.expect(500);
        smtp.send("NOOP\r\n");
        smtp.expect(250);
        smtp.send("QUIT\r\n");
        smtp.expect(221);
        smtp.expect_closed();
        let line = sink.wait_log("cmd=NOOP xxx");
        assert!(line.ends_with("x..."), "{line}");
    });
}

#[test]
fn a_5xx_banner_refuses_everything_but_quit() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-code", "554"]);
        let mut smtp = sink.connect();
        smtp.expect(554);
        smtp.send("EHLO client.test\r\n");
        smtp.expect(503);
        smtp.send("QUIT\r\n");
        smtp.expect(221);
        smtp.expect_closed();
    });
}

#[test]
fn a_4xx_banner_closes_the_connection() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-code", "421"]);
        let mut smtp = sink.connect();
        smtp.expect(421);
        smtp.expect_closed();
    });
}

#[test]
fn max_connections_makes_the_sink_exit() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--max-connections", "2"]);
        for _ in 0..2 {
            let mut smtp = sink.connect();
            smtp.expect(220);
            smtp.send("QUIT\r\n");
            smtp.expect(221);
        }
        assert!(
            procs.wait_all_exit(common::IO_TIMEOUT),
            "sink still running"
        );
        sink.wait_log("conn=2 closed");
    });
}
