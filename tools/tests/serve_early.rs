//! Input sent before the banner: tolerated with PIPECONNECT on (and logged early=1), a
//! synchronization error with it off.

mod common;

use common::{with_timeout, Sink};

#[test]
fn early_ehlo_is_accepted_with_pipeconnect_on() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-delay-ms", "150"]);
        let mut smtp = sink.connect();
        // Sent at once, well before the banner.
        smtp.send("EHLO early.test\r\n");
        // Like Exim, the banner is held back and leaves in the same write as the EHLO reply.
        smtp.read_once();
        let first_read = smtp.buffered_text();
        assert!(first_read.starts_with("220 "), "{first_read:?}");
        assert!(first_read.ends_with("250 HELP\r\n"), "{first_read:?}");
        smtp.expect(220);
        let reply = smtp.expect(250);
        assert!(reply.lines.iter().any(|l| l == "PIPECONNECT"), "{reply:?}");
        smtp.send("QUIT\r\n");
        smtp.expect(221);

        let banner = sink.wait_log("conn=1 banner t_ms=");
        let t_ms: u64 = banner.rsplit('=').next().unwrap().parse().unwrap();
        assert!(t_ms >= 150, "{banner}");
        let ehlo = sink.wait_log("cmd=EHLO early.test");
        assert!(ehlo.contains(" conn=1 tls=0 early=1 cmd="), "{ehlo}");
        // The log gives when the command arrived, before the banner left.
        let arrived: u64 = ehlo["t_ms=".len()..ehlo.find(' ').unwrap()]
            .parse()
            .unwrap();
        assert!(arrived < 100 && arrived < t_ms, "{ehlo} / {banner}");
        let quit = sink.wait_log("cmd=QUIT");
        assert!(quit.contains(" early=0 "), "{quit}");
        let quit_at: u64 = quit["t_ms=".len()..quit.find(' ').unwrap()]
            .parse()
            .unwrap();
        assert!(quit_at >= t_ms, "{quit} / {banner}");
    });
}

#[test]
fn a_whole_early_flight_is_answered_in_order() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-delay-ms", "100"]);
        let mut smtp = sink.connect();
        smtp.send(
            "EHLO early.test\r\nMAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\nBDAT 4 LAST\r\nbody",
        );
        smtp.expect(220);
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        let done = smtp.expect(250);
        assert!(done.lines[0].starts_with("OK id="), "{done:?}");
        sink.wait_log("conn=1 message id=1 bytes=4 rcpts=1");
        for cmd in ["cmd=EHLO", "cmd=MAIL", "cmd=RCPT", "cmd=BDAT"] {
            let line = sink.wait_log(cmd);
            assert!(line.contains(" early=1 "), "{line}");
        }
    });
}

#[test]
fn early_ehlo_gets_554_with_pipeconnect_off() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--pipeconnect", "off", "--banner-delay-ms", "100"]);
        let mut smtp = sink.connect();
        smtp.send("EHLO early.test\r\n");
        let reply = smtp.expect(554);
        assert_eq!(reply.lines, ["SMTP synchronization error"]);
        smtp.expect_closed();
        drop(smtp);

        sink.wait_log("conn=1 syncerror t_ms=");
        sink.wait_log("conn=1 closed");
        let lines = sink.log_lines();
        assert!(!lines.iter().any(|l| l.contains("cmd=")), "{lines:?}");
        assert!(!lines.iter().any(|l| l.contains(" banner ")), "{lines:?}");
    });
}

#[test]
fn a_classic_client_is_served_with_pipeconnect_off() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--pipeconnect", "off", "--banner-delay-ms", "50"]);
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("EHLO classic.test\r\n");
        let reply = smtp.expect(250);
        assert!(reply.lines.iter().any(|l| l == "PIPELINING"), "{reply:?}");
        assert!(!reply.lines.iter().any(|l| l == "PIPECONNECT"), "{reply:?}");
        let line = sink.wait_log("cmd=EHLO classic.test");
        assert!(line.contains(" early=0 "), "{line}");
    });
}

/// The classification of the library's pre-banner classifier, one line per connection.
#[test]
fn the_prebanner_classification_is_logged() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-delay-ms", "150"]);
        // 1: an early flight.
        let mut smtp = sink.connect();
        smtp.send("EHLO early.test\r\nMAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\n");
        smtp.expect(220);
        smtp.expect(250);
        smtp.send("QUIT\r\n");
        drop(smtp);
        let line = sink.wait_log("conn=1 prebanner");
        assert!(
            line.contains(" class=early_flight reason=none commands=3 bytes=55 incomplete=0"),
            "{line}"
        );
        // 2: a classic client.
        let mut smtp = sink.connect();
        smtp.expect(220);
        smtp.send("QUIT\r\n");
        drop(smtp);
        let line = sink.wait_log("conn=2 prebanner");
        assert!(
            line.contains(" class=nothing reason=none commands=0 bytes=0"),
            "{line}"
        );
        // 3: a bot's HELO before the banner: logged, and served as Exim serves it.
        let mut smtp = sink.connect();
        smtp.send("HELO bot.test\r\n");
        smtp.expect(220);
        smtp.expect(250);
        drop(smtp);
        let line = sink.wait_log("conn=3 prebanner");
        assert!(
            line.contains(" class=pregreet reason=helo_first "),
            "{line}"
        );
    });
}

#[test]
fn pregreet_reject_turns_a_violation_away() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--banner-delay-ms", "100", "--pregreet", "reject"]);
        let mut smtp = sink.connect();
        smtp.send("MAIL FROM:<spam@bot.test>\r\n");
        smtp.expect(554);
        smtp.expect_closed();
        drop(smtp);
        let line = sink.wait_log("conn=1 prebanner");
        assert!(
            line.contains(" class=pregreet reason=command_first "),
            "{line}"
        );
        sink.wait_log("conn=1 syncerror");
        // An early flight is still served.
        let mut smtp = sink.connect();
        smtp.send("EHLO early.test\r\n");
        smtp.expect(220);
        smtp.expect(250);
        drop(smtp);
        let line = sink.wait_log("conn=2 prebanner");
        assert!(line.contains(" class=early_flight "), "{line}");
    });
}

#[test]
fn early_input_without_pipeconnect_is_logged_as_pregreet() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--pipeconnect", "off", "--banner-delay-ms", "100"]);
        let mut smtp = sink.connect();
        smtp.send("EHLO early.test\r\n");
        smtp.expect(554);
        drop(smtp);
        let line = sink.wait_log("conn=1 prebanner");
        assert!(
            line.contains(" class=pregreet reason=not_offered commands=1 bytes=17 "),
            "{line}"
        );
    });
}
