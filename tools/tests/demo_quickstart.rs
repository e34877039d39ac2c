//! `pipeconnect demo --quickstart` (experimental): the round trips of each way, cleartext
//! and STARTTLS (QTLS among them), end to end through the slow link to the sink, and the
//! greet pause a recognised QHLO cookie skips.

mod common;

use std::process::Command;

use common::BIN;

#[test]
fn the_quickstart_table_shows_the_saving() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--quickstart",
            "--deliveries",
            "1",
            "--rtt-ms",
            "40",
            "--greet-pause-ms",
            "400",
        ])
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // way, waits to MAIL, waits to the final 250.
    for (way, to_mail, to_final) in [
        ("classic", 2, 3),
        ("pipeconnect", 0, 1),
        ("qs-greeting", 1, 2),
        ("qs-cookie", 0, 1),
        ("classic-tls", 5, 6),
        ("pipeconnect-tls", 2, 3),
        ("qs-cookie-tls", 1, 2),
        ("qs-qtls", 1, 2),
    ] {
        let row = stdout
            .lines()
            .skip_while(|l| !l.starts_with("way "))
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
    // Everyone but the recognised cookie waits out the 400 ms greet pause.
    assert!(ms("pipeconnect") >= 400.0, "{summary}");
    assert!(ms("qs-cookie") < 300.0, "{summary}");
    assert!(ms("qs-greeting") < ms("classic"), "{summary}");
    // STARTTLS with the ClientHello pipelined behind it, QHLO cookie, no greet pause.
    assert!(ms("pipeconnect-tls") >= 400.0, "{summary}");
    assert!(ms("qs-cookie-tls") < 300.0, "{summary}");
    // QTLS with the ClientHello before the banner, then QHLO with the cookie of the
    // greeting over TLS behind the Finished: fewer round trips than PIPECONNECT with
    // STARTTLS, and no greet pause.
    assert!(ms("qs-qtls") < 300.0, "{summary}");
    assert!(ms("qs-qtls") < ms("pipeconnect-tls"), "{summary}");
}
