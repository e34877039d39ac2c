//! Mail transactions through `pipeconnect serve`: pipelined BDAT, DATA, recipients refused
//! permanently or temporarily, limits, AUTH PLAIN.

mod common;

use common::{with_timeout, Sink};

#[test]
fn pipelined_transaction_in_one_write_gets_replies_in_order() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &[]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        let body = "Subject: t\r\n\r\nhello\r\n";
        smtp.send(&format!(
            "EHLO client.test\r\nMAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\nRCPT TO:<c@test>\r\n\
             BDAT {} LAST\r\n{body}",
            body.len()
        ));
        let ehlo = smtp.expect(250);
        assert!(ehlo.lines[0].contains("Hello client.test"), "{ehlo:?}");
        assert_eq!(smtp.expect(250).lines, ["OK"]);
        assert_eq!(smtp.expect(250).lines, ["Accepted"]);
        assert_eq!(smtp.expect(250).lines, ["Accepted"]);
        assert_eq!(smtp.expect(250).lines, ["OK id=1"]);
        // The transaction is over: the next one starts afresh.
        smtp.send("RCPT TO:<d@test>\r\nQUIT\r\n");
        smtp.expect(503);
        smtp.expect(221);
        smtp.expect_closed();

        sink.wait_log(&format!("conn=1 message id=1 bytes={} rcpts=2", body.len()));
        let lines = sink.log_lines();
        let commands: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_once(" cmd=").map(|(_, cmd)| cmd))
            .collect();
        assert_eq!(
            commands,
            [
                "EHLO client.test",
                "MAIL FROM:<a@test>",
                "RCPT TO:<b@test>",
                "RCPT TO:<c@test>",
                &format!("BDAT {} LAST", body.len()),
                "RCPT TO:<d@test>",
                "QUIT"
            ]
        );
    });
}

#[test]
fn rejected_and_tempfailed_recipients() {
    with_timeout(|procs| {
        let sink = Sink::start(
            procs,
            &[
                "--reject-rcpt",
                "nobody@test",
                "--tempfail-rcpt",
                "later@test",
                "--reject-rcpt",
                "gone@test",
            ],
        );
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO client.test\r\nMAIL FROM:<a@test>\r\nRCPT TO:<nobody@test>\r\nRCPT TO:<later@test>\r\nRCPT TO:<Gone@Test>\r\nRCPT TO:<ok@test>\r\nDATA\r\n");
        smtp.expect(250);
        smtp.expect(250);
        let rejected = smtp.expect(550);
        assert!(rejected.lines[0].contains("nobody@test"), "{rejected:?}");
        let tempfailed = smtp.expect(451);
        assert!(tempfailed.lines[0].contains("later@test"), "{tempfailed:?}");
        smtp.expect(550);
        smtp.expect(250);
        smtp.expect(354);
        // Dot-stuffed: the stored message is "a\r\n.b\r\n", 7 bytes.
        smtp.send("a\r\n..b\r\n.\r\n");
        assert_eq!(smtp.expect(250).lines, ["OK id=1"]);
        sink.wait_log("conn=1 message id=1 bytes=7 rcpts=1");
    });
}

#[test]
fn data_with_no_valid_recipient_is_refused() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--reject-rcpt", "nobody@test"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@test>\r\nDATA\r\n");
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(550);
        smtp.expect(554);
    });
}

#[test]
fn rcptmax_answers_452_beyond_the_limit() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--limits-rcptmax", "2"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO c\r\nMAIL FROM:<a@test>\r\nRCPT TO:<1@test>\r\nRCPT TO:<2@test>\r\nRCPT TO:<3@test>\r\nBDAT 1 LAST\r\nx");
        let ehlo = smtp.expect(250);
        assert!(
            ehlo.lines.iter().any(|l| l == "LIMITS RCPTMAX=2"),
            "{ehlo:?}"
        );
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(452);
        smtp.expect(250);
        sink.wait_log("message id=1 bytes=1 rcpts=2");
    });
}

#[test]
fn bdat_chunks_are_counted() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &[]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO c\r\nMAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\nBDAT 3\r\nabcBDAT 0\r\nBDAT 4 LAST\r\nd\r\n.DATA\r\n");
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        assert_eq!(smtp.expect(250).lines, ["3 bytes received"]);
        assert_eq!(smtp.expect(250).lines, ["0 bytes received"]);
        assert_eq!(smtp.expect(250).lines, ["OK id=1"]);
        // DATA after the transaction ended: no MAIL.
        smtp.expect(503);
        sink.wait_log("message id=1 bytes=7 rcpts=1");
    });
}

#[test]
fn size_limit_is_advertised_and_enforced() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--size", "10"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO c\r\nMAIL FROM:<a@test> SIZE=11\r\nMAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\nBDAT 11 LAST\r\n01234567890");
        let ehlo = smtp.expect(250);
        assert_eq!(ehlo.lines[1], "SIZE 10");
        smtp.expect(552);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(552);
        smtp.send("NOOP\r\n");
        smtp.expect(250);
        assert!(!sink.log_lines().iter().any(|l| l.contains("message")));
    });
}

#[test]
fn auth_plain_with_and_without_initial_response() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--auth-plain", "on"]);
        // \0user\0secret
        let credentials = "AHVzZXIAc2VjcmV0";

        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send(&format!(
            "EHLO c\r\nAUTH PLAIN {credentials}\r\nMAIL FROM:<a@test>\r\n"
        ));
        smtp.expect(250);
        smtp.expect(235);
        smtp.expect(250);

        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO c\r\nAUTH PLAIN\r\n");
        smtp.expect(250);
        smtp.expect(334);
        smtp.send(&format!("{credentials}\r\n"));
        smtp.expect(235);
        smtp.send("AUTH PLAIN\r\n");
        smtp.expect(503);

        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO c\r\nAUTH PLAIN not-base64\r\nAUTH LOGIN\r\nAUTH PLAIN\r\n");
        smtp.expect(250);
        smtp.expect(501);
        smtp.expect(504);
        smtp.expect(334);
        smtp.send("*\r\n");
        smtp.expect(501);
        smtp.send("QUIT\r\n");
        smtp.expect(221);
        drop(smtp);

        sink.wait_log("conn=1 tls=0 early=0 cmd=AUTH PLAIN <redacted>");
        sink.wait_log("conn=3 closed");
        let log = sink.log_lines().join("\n");
        assert!(!log.contains(credentials), "{log}");
        assert!(!log.contains("not-base64"), "{log}");
    });
}
