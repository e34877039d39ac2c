//! The C example client (examples-c/client, `pc-deliver`) against the test sink
//! (`pipeconnect serve`) on loopback: learning, early flights, one flight, a refused
//! recipient, recovery from a 554 synchronization error, and a run under valgrind.
//!
//! Needs the tools crate built in the same profile (`cargo build --workspace`; the
//! Makefile does it before `cargo test`).
mod common;

use common::sink::{tools_bin, Sink};

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

/// pc-deliver, compiled once per test run against this build.
fn client() -> &'static Path {
    common::pc_deliver()
}

/// Options for a sink whose log must tell early commands apart: the banner waits a little,
/// so that an early flight is surely in before it even on a busy machine (with no delay the
/// sink may write its banner before the client's first write arrives, and log it as not
/// early).
const EARLY_SINK: &[&str] = &["--banner-delay-ms", "100"];

/// The lines of connection `conn` in a sink log.
fn conn_lines(log: &str, conn: u32) -> Vec<String> {
    let tag = format!("conn={conn} ");
    log.lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_string)
        .collect()
}

/// Runs pc-deliver with the common arguments plus `extra`, under `wrapper` if given.
fn run_client(wrapper: &[&str], sink: &Sink, store: Option<&Path>, extra: &[&str]) -> Output {
    let mut cmd = if let Some((first, rest)) = wrapper.split_first() {
        let mut c = Command::new(first);
        c.args(rest).arg(client());
        c
    } else {
        Command::new(client())
    };
    cmd.args(["--server", "127.0.0.1", "--port", &sink.port()])
        .args([
            "--ehlo",
            "client.test.example",
            "--from",
            "sender@test.example",
        ])
        .args(["--timeout-ms", "10000"]);
    match store {
        Some(s) => cmd.arg("--store").arg(s),
        None => cmd.arg("--memory"),
    };
    cmd.args(extra);
    cmd.output().expect("run pc-deliver")
}

/// The `delivery` lines of a plain run, as maps of their fields.
fn deliveries(o: &Output) -> Vec<HashMap<String, String>> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("delivery "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One delivery that must succeed; its fields.
fn deliver_ok(sink: &Sink, store: Option<&Path>, extra: &[&str]) -> HashMap<String, String> {
    let o = run_client(&[], sink, store, extra);
    assert!(o.status.success(), "pc-deliver failed: {}", show(&o));
    let d = deliveries(&o);
    assert_eq!(d.len(), 1, "{}", show(&o));
    assert_eq!(d[0]["result"], "ok", "{}", show(&o));
    d.into_iter().next().unwrap()
}

/// `pipeconnect cache dump STORE`: the entries, one line each.
fn dump(store: &Path) -> String {
    let o = Command::new(tools_bin())
        .args(["cache", "dump"])
        .arg(store)
        .output()
        .expect("run pipeconnect cache dump");
    assert!(o.status.success(), "cache dump failed: {}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn first_delivery_learns_classically_and_the_next_process_sends_early() {
    let dir = common::scratch("client-learn");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(&dir, "sink", "127.0.0.1:0", EARLY_SINK);
    let to = ["--to", "rcpt@test.example", "--mode", "early"];

    let first = deliver_ok(&sink, Some(&store), &to);
    assert_eq!(first["early"], "0");
    assert_eq!(first["waits"], "4", "banner, EHLO, MAIL..DATA, body");
    // A second process finds what the first learned, through the store file.
    let second = deliver_ok(&sink, Some(&store), &to);
    assert_eq!(second["early"], "1");
    assert_eq!(second["waits"], "2", "EHLO..DATA early, then the body");
    assert_eq!(second["reconnected"], "0");

    let log = sink.log_after(2);
    let c1 = conn_lines(&log, 1).join("\n");
    let c2 = conn_lines(&log, 2).join("\n");
    assert!(c1.contains("early=0 cmd=EHLO client.test.example"), "{log}");
    assert!(!c1.contains("early=1"), "{log}");
    for cmd in [
        "early=1 cmd=EHLO client.test.example",
        "early=1 cmd=MAIL FROM:<sender@test.example>",
        "early=1 cmd=RCPT TO:<rcpt@test.example>",
        "early=1 cmd=DATA",
    ] {
        assert!(c2.contains(cmd), "second connection lacks {cmd:?}:\n{log}");
    }
    assert!(!c2.contains("cmd=BDAT"), "early mode ends at DATA:\n{log}");
    assert_eq!(log.matches(" message id=").count(), 2, "{log}");
    assert!(dump(&store).contains(&format!("127.0.0.1:{}/cleartext", sink.port())));
}

#[test]
fn in_memory_cache_serves_the_deliveries_of_one_process() {
    let dir = common::scratch("client-memory");
    let sink = Sink::start(&dir, "sink", "127.0.0.1:0", &[]);
    let o = run_client(
        &[],
        &sink,
        None,
        &[
            "--to",
            "rcpt@test.example",
            "--count",
            "3",
            "--mode",
            "oneflight",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let d = deliveries(&o);
    assert_eq!(d.len(), 3, "{}", show(&o));
    let early: Vec<&str> = d.iter().map(|x| x["early"].as_str()).collect();
    assert_eq!(early, ["0", "1", "1"], "{}", show(&o));
    assert_eq!(sink.log_after(3).matches(" message id=").count(), 3);
}

#[test]
fn tcp_fast_open_carries_the_early_flight() {
    let dir = common::scratch("client-tfo");
    let sink = Sink::start(&dir, "sink", "127.0.0.1:0", EARLY_SINK);
    let o = run_client(
        &[],
        &sink,
        None,
        &[
            "--to",
            "rcpt@test.example",
            "--count",
            "2",
            "--tfo",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&o));
    // Classic: nothing to send before the banner, so a plain connect().
    assert!(
        lines[0].contains("\"early\":0") && lines[0].contains("\"tfo\":0"),
        "{out}"
    );
    assert!(
        lines[1].contains("\"early\":1") && lines[1].contains("\"waits\":1"),
        "{out}"
    );
    // sendto(MSG_FASTOPEN) is used when the kernel lets clients use TFO (bit 1 of
    // net.ipv4.tcp_fastopen); otherwise the client falls back to connect() and write().
    let client_tfo = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fastopen")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|v| v & 1 != 0);
    let used = if client_tfo { "\"tfo\":1" } else { "\"tfo\":0" };
    assert!(lines[1].contains(used), "expected {used}: {out}");
    let log = sink.log_after(2);
    assert!(
        conn_lines(&log, 2).join("\n").contains("early=1 cmd=BDAT"),
        "{log}"
    );
}

#[test]
fn one_flight_delivers_the_message_with_one_wait() {
    let dir = common::scratch("client-oneflight");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(&dir, "sink", "127.0.0.1:0", EARLY_SINK);
    let args = [
        "--to",
        "rcpt@test.example",
        "--mode",
        "oneflight",
        "--body-size",
        "3000",
    ];
    let learn = deliver_ok(&sink, Some(&store), &args);
    assert_eq!(learn["early"], "0");
    assert_eq!(
        learn["waits"], "3",
        "banner, EHLO, MAIL..BDAT LAST with the body"
    );

    let d = deliver_ok(&sink, Some(&store), &args);
    assert_eq!(d["early"], "1");
    assert_eq!(d["waits"], "1", "{d:?}");
    let ms: f64 = d["ms"].parse().unwrap();
    assert!(ms > 0.0 && ms < 10_000.0, "{ms}");

    let log = sink.log_after(2);
    let c2 = conn_lines(&log, 2).join("\n");
    assert!(c2.contains("early=1 cmd=EHLO"), "{log}");
    assert!(c2.contains("early=1 cmd=BDAT 3000 LAST"), "{log}");
    assert!(
        c2.contains("conn=2 message id=2 bytes=3000 rcpts=1"),
        "{log}"
    );
    // The QUIT went after the message, not in the flight.
    assert!(c2.contains("early=0 cmd=QUIT"), "{log}");
}

#[test]
fn a_refused_recipient_is_reported_and_the_others_get_the_message() {
    let dir = common::scratch("client-reject");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(
        &dir,
        "sink",
        "127.0.0.1:0",
        &["--reject-rcpt", "bad@test.example"],
    );
    let good = ["--to", "good@test.example", "--mode", "oneflight"];
    deliver_ok(&sink, Some(&store), &good);

    // Early (relaxed rule: a refused recipient keeps the entry), one good, one bad.
    let o = run_client(
        &[],
        &sink,
        Some(&store),
        &[
            "--to",
            "good@test.example",
            "--to",
            "bad@test.example",
            "--mode",
            "oneflight",
            "--relaxed",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\"result\":\"ok\""), "{}", show(&o));
    assert!(out.contains("\"early\":1"), "{}", show(&o));
    assert!(
        out.contains("\"rcpt_accepted\":1,\"rcpt_rejected\":1"),
        "{}",
        show(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("<bad@test.example>: 550"), "{}", show(&o));
    assert!(
        dump(&store).contains("/cleartext"),
        "relaxed keeps the entry"
    );

    // Every recipient refused: the message is rejected, exit status 1.
    let o = run_client(
        &[],
        &sink,
        Some(&store),
        &["--to", "bad@test.example", "--mode", "oneflight"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let d = deliveries(&o);
    assert_eq!(d[0]["result"], "rejected", "{}", show(&o));
    assert_eq!(d[0]["early"], "1", "{}", show(&o));
    // The library's default (strict) rule: a 5xx after an early flight drops the entry.
    assert!(!dump(&store).contains("/cleartext"), "{}", dump(&store));

    let log = sink.log_after(3);
    assert_eq!(log.matches(" message id=").count(), 2, "{log}");
    assert!(
        log.contains("conn=2 message id=2 bytes=") && log.contains("rcpts=1"),
        "{log}"
    );
}

#[test]
fn a_sync_error_after_the_server_dropped_pipeconnect_is_retried_classic_at_once() {
    let dir = common::scratch("client-syncerror");
    let store = dir.join("pipeconnect.store");
    let first = Sink::start(&dir, "before", "127.0.0.1:0", &[]);
    let port = first.port();
    let args = ["--to", "rcpt@test.example", "--mode", "oneflight"];
    deliver_ok(&first, Some(&store), &args);
    assert!(dump(&store).contains(&format!("127.0.0.1:{port}/cleartext")));
    drop(first);

    // The same address, now without PIPECONNECT; the banner delay makes the early input
    // arrive before the banner for sure, so the sink answers 554 and closes, as Exim does.
    let listen = format!("127.0.0.1:{port}");
    let second = Sink::start(
        &dir,
        "after",
        &listen,
        &["--pipeconnect", "off", "--banner-delay-ms", "300"],
    );
    let d = deliver_ok(&second, Some(&store), &args);
    assert_eq!(d["reconnected"], "1", "{d:?}");
    assert_eq!(
        d["early"], "0",
        "the message went on the classic connection"
    );

    let log = second.log_after(2);
    assert!(log.contains("conn=1 syncerror"), "{log}");
    assert!(log.contains("conn=2 message id=1"), "{log}");
    assert!(!conn_lines(&log, 2).join("\n").contains("early=1"), "{log}");
    // The entry is gone (the classic EHLO reply lacks PIPECONNECT: nothing re-learned).
    assert!(!dump(&store).contains("/cleartext"), "{}", dump(&store));

    // And the next delivery is classic from the start, without a sync error.
    let d = deliver_ok(&second, Some(&store), &args);
    assert_eq!((d["early"].as_str(), d["reconnected"].as_str()), ("0", "0"));
    assert!(!second.log_after(3).contains("conn=3 syncerror"));
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["--port", "25", "--memory"][..],
        &["--server", "127.0.0.1", "--port", "0", "--memory"][..],
        &[
            "--server",
            "127.0.0.1",
            "--port",
            "25",
            "--from",
            "a@b",
            "--to",
            "c@d",
        ][..],
        &[
            "--server",
            "127.0.0.1",
            "--port",
            "25",
            "--memory",
            "--mode",
            "fast",
        ][..],
    ] {
        let o = Command::new(client()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
    }
}

#[test]
fn the_client_is_clean_under_valgrind() {
    let have = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "valgrind is required in CI (apt-get install valgrind)"
        );
        eprintln!("skipped: valgrind is not installed");
        return;
    }
    let dir = common::scratch("client-valgrind");
    let store = dir.join("pipeconnect.store");
    let sink = Sink::start(
        &dir,
        "sink",
        "127.0.0.1:0",
        &["--reject-rcpt", "bad@test.example"],
    );
    let vg = [
        "valgrind",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect,possible",
        "-q",
    ];
    // Learn, then early and one flight, a refused recipient, through the store file.
    for mode in ["classic", "early", "oneflight"] {
        let o = run_client(
            &vg,
            &sink,
            Some(&store),
            &[
                "--to",
                "rcpt@test.example",
                "--to",
                "bad@test.example",
                "--mode",
                mode,
                "--relaxed",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", show(&o));
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("=="),
            "{mode}: valgrind reported:\n{}",
            show(&o)
        );
    }
    let o = run_client(
        &vg,
        &sink,
        None,
        &["--to", "rcpt@test.example", "--count", "2"],
    );
    assert_eq!(o.status.code(), Some(0), "memory: {}", show(&o));
    let d = deliveries(&o);
    assert_eq!(d.len(), 2);
    assert_eq!(d[1]["early"], "1");
}
