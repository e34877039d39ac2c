//! SMTP QUICKSTART (experimental, docs/RULES.md Part 6) end to end: the C example client
//! (`pc-deliver --quickstart`) against the test sink (`pipeconnect serve --quickstart on`)
//! on loopback, one process per delivery sharing a store file:
//!
//! - the first delivery learns the capabilities and the QHLO cookie from the greeting;
//!   the next process sends `QHLO name cookie` before the banner and the sink skips its
//!   greet pause (1 s: the delivery takes well under that);
//! - without `--quickstart`, no QHLO is ever sent;
//! - a sink without QUICKSTART answers the cookie's QHLO with 500: the client reconnects
//!   classic and the message arrives exactly once;
//! - a stale cookie (the sink's secret changed) gets the pause, the message arrives once,
//!   and the greeting's fresh cookie skips the pause the next time.
//!
//! Needs the tools crate built in the same profile (`cargo build --workspace`).
mod common;

use common::sink::{tools_bin, Sink};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

/// The sinks' greet pause.
const PAUSE_MS: f64 = 1000.0;

fn conn_lines(log: &str, conn: u32) -> String {
    let tag = format!("conn={conn} ");
    log.lines()
        .filter(|l| l.contains(&tag))
        .collect::<Vec<_>>()
        .join("\n")
}

fn messages(log: &str) -> usize {
    log.matches(" message id=").count()
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One pc-deliver process (one delivery) that must succeed; the fields of its line.
fn deliver(addr: SocketAddr, store: &Path, extra: &[&str]) -> HashMap<String, String> {
    let o = Command::new(common::pc_deliver())
        .args(["--server", "127.0.0.1", "--port", &addr.port().to_string()])
        .args([
            "--ehlo",
            "client.test.example",
            "--from",
            "sender@test.example",
        ])
        .args(["--to", "rcpt@test.example", "--reply-timeout-ms", "10000"])
        .arg("--store")
        .arg(store)
        .args(extra)
        .output()
        .expect("run pc-deliver");
    assert!(o.status.success(), "pc-deliver failed: {}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("delivery ")).collect();
    assert_eq!(lines.len(), 1, "{}", show(&o));
    let d: HashMap<String, String> = lines[0]
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(d["result"], "ok", "{}", show(&o));
    d
}

fn ms(d: &HashMap<String, String>) -> f64 {
    d["ms"].parse().unwrap()
}

/// `pipeconnect cache dump STORE`.
fn dump(store: &Path) -> String {
    let o = Command::new(tools_bin())
        .args(["cache", "dump"])
        .arg(store)
        .output()
        .expect("run pipeconnect cache dump");
    assert!(o.status.success(), "{}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const QS_SINK: &[&str] = &["--quickstart", "on", "--banner-delay-ms", "1000"];
const QS: &[&str] = &["--quickstart"];

#[test]
fn the_greeting_teaches_the_cookie_and_the_next_process_skips_the_greet_pause() {
    let dir = common::scratch("client-qs-cookie");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(&dir, "sink", "127.0.0.1:0", QS_SINK);

    // Nothing cached: the greeting (after the pause) carries the capabilities and the
    // cookie; QHLO and the whole transaction follow it at once.
    let first = deliver(sink.addr, &store, QS);
    assert_eq!(first["quickstart"], "greeting", "{first:?}");
    assert_eq!(first["early"], "0", "nothing went before the banner");
    assert_eq!(
        first["waits"], "2",
        "the greeting, then QHLO..BDAT LAST at once"
    );
    assert!(ms(&first) >= PAUSE_MS * 0.9, "{first:?}");
    let kept = dump(&store);
    assert!(kept.contains("qhlo-cookie "), "{kept}");

    // Another process: QHLO with the cookie before the banner; the sink ends its pause.
    let second = deliver(sink.addr, &store, QS);
    assert_eq!(second["quickstart"], "cookie", "{second:?}");
    assert_eq!(second["early"], "1");
    assert_eq!(second["waits"], "1", "one flight");
    assert_eq!(second["reconnected"], "0");
    assert!(
        ms(&second) < PAUSE_MS / 2.0,
        "with the cookie the greet pause is skipped: {second:?}"
    );
    eprintln!(
        "QUICKSTART through pc-deliver, 1 s greet pause: greeting {:.1} ms, cookie {:.1} ms",
        ms(&first),
        ms(&second)
    );

    let log = sink.log_after(2);
    let c1 = conn_lines(&log, 1);
    let c2 = conn_lines(&log, 2);
    assert!(c1.contains("early=0 cmd=QHLO client.test.example"), "{log}");
    assert!(!c1.contains("early=1"), "{log}");
    assert!(c2.contains("qhlo") && c2.contains("cookie=valid"), "{log}");
    assert!(
        c2.contains("early=1 cmd=QHLO client.test.example "),
        "{log}"
    );
    assert!(c2.contains("early=1 cmd=BDAT"), "{log}");
    assert_eq!(messages(&log), 2, "each message exactly once:\n{log}");
}

#[test]
fn quickstart_is_off_unless_asked_for() {
    let dir = common::scratch("client-qs-off");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(
        &dir,
        "sink",
        "127.0.0.1:0",
        &["--quickstart", "on", "--banner-delay-ms", "100"],
    );
    let first = deliver(sink.addr, &store, &[]);
    let second = deliver(sink.addr, &store, &[]);
    assert!(!first.contains_key("quickstart") && !second.contains_key("quickstart"));
    assert_eq!(first["early"], "0");
    assert_eq!(second["early"], "1", "PIPECONNECT as always: {second:?}");
    let log = sink.log_after(2);
    assert!(
        !log.contains("cmd=QHLO"),
        "no QHLO unless asked for:\n{log}"
    );
    assert!(conn_lines(&log, 2).contains("early=1 cmd=EHLO"), "{log}");
    assert!(!dump(&store).contains("qhlo-cookie"), "no cookie kept");
    assert_eq!(messages(&log), 2, "{log}");
    // --quickstart with classic mode is a usage error (QHLO goes in an early flight).
    let o = Command::new(common::pc_deliver())
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &sink.addr.port().to_string(),
        ])
        .args([
            "--memory",
            "--from",
            "a@test.example",
            "--to",
            "b@test.example",
        ])
        .args(["--mode", "classic", "--quickstart"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn a_server_that_does_not_know_qhlo_gets_the_message_once_on_a_classic_connection() {
    let dir = common::scratch("client-qs-refused");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(&dir, "quickstart", "127.0.0.1:0", QS_SINK);
    let learn = deliver(sink.addr, &store, QS);
    assert_eq!(learn["quickstart"], "greeting");
    assert_eq!(messages(&sink.log_after(1)), 1);
    // The same address and port, now a server without QUICKSTART: QHLO is a 500.
    let addr = sink.stop();
    let plain = Sink::start(
        &dir,
        "plain",
        &addr.to_string(),
        &["--banner-delay-ms", "100"],
    );
    let d = deliver(addr, &store, QS);
    assert_eq!(d["quickstart"], "cookie", "{d:?}");
    assert_eq!(
        d["reconnected"], "1",
        "QHLO refused: a new, classic connection"
    );
    assert_eq!(d["early"], "0");
    let log = plain.log_after(2);
    let c1 = conn_lines(&log, 1);
    let c2 = conn_lines(&log, 2);
    assert!(
        c1.contains("early=1 cmd=QHLO client.test.example "),
        "{log}"
    );
    assert!(
        c1.contains("early=1 cmd=BDAT"),
        "the body went with it:\n{log}"
    );
    assert!(!c1.contains("message id="), "{log}");
    assert!(c2.contains("early=0 cmd=EHLO client.test.example"), "{log}");
    assert!(c2.contains("message id="), "{log}");
    assert_eq!(messages(&log), 1, "the message exactly once:\n{log}");
    // The cookie went with the refusal: no QHLO again.
    assert!(!dump(&store).contains("qhlo-cookie"));
    let again = deliver(addr, &store, QS);
    assert_eq!(again["quickstart"], "none", "{again:?}");
    let log = plain.log_after(3);
    assert_eq!(log.matches("cmd=QHLO").count(), 1, "{log}");
    assert_eq!(messages(&log), 2, "{log}");
}

#[test]
fn a_stale_cookie_gets_the_greet_pause_and_the_message_once() {
    let dir = common::scratch("client-qs-stale");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(&dir, "before", "127.0.0.1:0", QS_SINK);
    assert_eq!(deliver(sink.addr, &store, QS)["quickstart"], "greeting");
    assert_eq!(messages(&sink.log_after(1)), 1);
    // A new sink process on the same port draws a new secret: the cookie is stale.
    let addr = sink.stop();
    let sink = Sink::start(&dir, "after", &addr.to_string(), QS_SINK);
    let stale = deliver(addr, &store, QS);
    assert_eq!(stale["quickstart"], "cookie", "{stale:?}");
    assert_eq!(
        stale["reconnected"], "0",
        "an unrecognised cookie is no error"
    );
    assert!(ms(&stale) >= PAUSE_MS * 0.9, "the pause applies: {stale:?}");
    // Its greeting carried a fresh cookie: the next process skips the pause.
    let fresh = deliver(addr, &store, QS);
    assert_eq!(fresh["quickstart"], "cookie");
    assert!(ms(&fresh) < PAUSE_MS / 2.0, "{fresh:?}");
    eprintln!(
        "stale cookie {:.1} ms, refreshed cookie {:.1} ms",
        ms(&stale),
        ms(&fresh)
    );
    let log = sink.log_after(2);
    assert!(conn_lines(&log, 1).contains("cookie=invalid"), "{log}");
    assert!(conn_lines(&log, 2).contains("cookie=valid"), "{log}");
    assert_eq!(messages(&log), 2, "each message exactly once:\n{log}");
}

#[test]
fn the_quickstart_demo_has_rows_for_pc_deliver() {
    let o = Command::new(tools_bin())
        .args([
            "demo",
            "--quickstart",
            "--deliveries",
            "1",
            "--rtt-ms",
            "40",
        ])
        .args(["--greet-pause-ms", "400", "--client"])
        .arg(common::pc_deliver())
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", show(&o));
    // way, waits to MAIL, waits to the final 250: as the demo's own client.
    for (way, to_mail, to_final) in [("pcd-qs-greeting", 1, 2), ("pcd-qs-cookie", 0, 1)] {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(way))
            .unwrap_or_else(|| panic!("no row for {way}:\n{stdout}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1].parse::<u32>().unwrap(), to_mail, "{row}");
        assert_eq!(cols[2].parse::<u32>().unwrap(), to_final, "{row}");
    }
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary: "))
        .expect("summary line");
    let ms = |name: &str| -> f64 {
        summary
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}_ms=")))
            .unwrap_or_else(|| panic!("{name} in {summary}"))
            .parse()
            .unwrap()
    };
    assert!(ms("pcd-qs-greeting") >= 400.0, "{summary}");
    assert!(
        ms("pcd-qs-cookie") < 300.0,
        "the cookie skips the pause: {summary}"
    );
}
