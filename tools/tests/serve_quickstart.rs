//! SMTP QUICKSTART in the sink (experimental, `--quickstart on`): capabilities and a QHLO
//! cookie in a multi-line greeting, read by the library like an EHLO reply; a client that
//! comes back with `QHLO name cookie` before the banner skips the 1 s greet pause.

mod common;

use std::time::Instant;

use common::{with_timeout, Reply, Sink};
use pipeconnect::caps::{Extension, ParseOptions};
use pipeconnect::server::quickstart::parse_greeting;

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

#[test]
fn a_recognised_qhlo_cookie_skips_the_greet_pause() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &["--quickstart", "on", "--banner-delay-ms", "1000"]);
        // 1: a classic connection learns the capabilities and the cookie from the greeting.
        let mut smtp = sink.connect();
        let started = Instant::now();
        let greeting = smtp.expect(220);
        assert!(started.elapsed().as_millis() >= 900, "the greet pause");
        let g = parse_greeting(wire(220, &greeting).as_bytes(), ParseOptions::default()).unwrap();
        assert!(g.quickstart, "{greeting:?}");
        assert!(g.caps.worth_caching() && g.caps.has(Extension::Chunking));
        let cookie = g.cookie.clone().expect("a QHLO= line");
        smtp.send("QHLO client.test\r\n");
        let reply = smtp.expect(250);
        assert!(reply.lines.iter().any(|l| l == "QUICKSTART"), "{reply:?}");
        smtp.send("QUIT\r\n");
        smtp.expect(221);
        drop(smtp);

        // 2: QHLO with the cookie before the banner: no greet pause, an early flight.
        let mut smtp = sink.connect();
        let started = Instant::now();
        smtp.send(&format!(
            "QHLO client.test {cookie}\r\nMAIL FROM:<a@test>\r\nRCPT TO:<b@test>\r\n\
             BDAT 4 LAST\r\nbodyQUIT\r\n"
        ));
        let again = smtp.expect(220);
        let waited = started.elapsed().as_millis();
        assert!(waited < 700, "the greeting took {waited} ms");
        assert_eq!(
            again.lines[1..],
            greeting.lines[1..],
            "same capabilities, same cookie"
        );
        smtp.expect(250);
        smtp.expect(250);
        smtp.expect(250);
        let done = smtp.expect(250);
        assert!(done.lines[0].starts_with("OK id="), "{done:?}");
        smtp.expect(221);
        drop(smtp);
        let line = sink.wait_log("conn=2 qhlo");
        assert!(line.ends_with(" cookie=valid"), "{line}");
        let line = sink.wait_log("conn=2 prebanner");
        assert!(
            line.contains(" class=early_flight reason=none commands=4 "),
            "{line}"
        );

        // 3: a cookie that is not this sink's: the whole greet pause.
        let mut smtp = sink.connect();
        let started = Instant::now();
        smtp.send("QHLO client.test 00000000000000000000000000000000\r\n");
        smtp.expect(220);
        assert!(started.elapsed().as_millis() >= 900);
        smtp.expect(250);
        drop(smtp);
        let line = sink.wait_log("conn=3 qhlo");
        assert!(line.ends_with(" cookie=invalid"), "{line}");
    });
}

#[test]
fn quickstart_is_off_unless_asked_for() {
    with_timeout(|procs| {
        let sink = Sink::start(procs, &[]);
        let mut smtp = sink.connect();
        let greeting = smtp.expect(220);
        assert_eq!(greeting.lines.len(), 1, "{greeting:?}");
        smtp.send("QHLO client.test\r\n");
        smtp.expect(500);
        smtp.send("EHLO client.test\r\n");
        let reply = smtp.expect(250);
        assert!(!reply.lines.iter().any(|l| l == "QUICKSTART"), "{reply:?}");
    });
}
