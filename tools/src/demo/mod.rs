//! `pipeconnect demo`: the saving of early pipelining, on a simulated slow link.
//!
//! Starts the test sink (`pipeconnect serve`, with PIPECONNECT and CHUNKING) and a slow
//! link in front of it (`pipeconnect delay`, half the round trip time each way), both as
//! child processes of this same program, then runs the C example client `pc-deliver`
//! (examples-c/client) once per delivery, in three modes:
//!
//! - `classic`: no early pipelining; RFC 2920 pipelining of MAIL, RCPT and DATA;
//! - `early`: the early flight EHLO, MAIL, RCPT, DATA before the banner; the body after
//!   the 354;
//! - `oneflight`: EHLO, MAIL, RCPT, `BDAT <n> LAST` and the body, all before the banner.
//!
//! Each mode starts with one learning delivery (not counted), so the early modes have a
//! cache entry; the client processes share it through one store file, as the delivery
//! processes of a forking MTA do. The table gives, per mode, the waits for the server per
//! delivery and the median time from connect() to the final 250. The last line is
//! exactly `summary: rtt_ms=<n> classic_ms=<median> early_ms=<median>
//! oneflight_ms=<median>`.

mod options;
mod procs;
pub mod quickstart;
pub mod table;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use self::options::{Options, USAGE};
use self::procs::{Background, Work};
use self::table::{parse_line, Delivery, ModeResult, MODES};

/// How long one client run may take before the demo gives up on it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the subcommand; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    crate::cli::run_subcommand("demo", USAGE, Options::parse(args), |o| run(&o))
}

fn default_client() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    Ok(exe.with_file_name("pc-deliver"))
}

/// Progress on stderr: one line rewritten in place on a terminal, plain lines otherwise.
struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    fn done(&self) {
        if self.tty {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

fn run(options: &Options) -> Result<i32, String> {
    if options.quickstart {
        return quickstart::run(options);
    }
    let client = match &options.client {
        Some(p) => p.clone(),
        None => default_client()?,
    };
    if !client.is_file() {
        return Err(format!(
            "the C client {} is missing: build it with `sh examples-c/client/build.sh` \
             (make demo does), or give --client PATH",
            client.display()
        ));
    }
    let work = Work::new(options.keep)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let sink_log = work.path("sink.log");
    let sink = Background::start(
        &exe,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--pipeconnect",
            "on",
            "--chunking",
            "on",
            "--log",
            path_str(&sink_log)?,
        ],
        &work.path("serve.err"),
    )?;
    let one_way = (options.rtt_ms / 2).to_string();
    let upstream = sink.addr.to_string();
    let link = Background::start(
        &exe,
        &[
            "delay",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--one-way-ms",
            &one_way,
        ],
        &work.path("delay.err"),
    )?;
    let store = work.path("pipeconnect.store");
    println!(
        "pipeconnect demo: {} deliveries per mode through a link with {} ms round trip time \
         (sink {}, link {}, client {})",
        options.deliveries,
        options.rtt_ms,
        sink.addr,
        link.addr,
        client.display()
    );

    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
    };
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for mode in MODES {
        let mut timed = Vec::new();
        for i in 0..=options.deliveries {
            let label = if i == 0 {
                format!("{mode}: learning delivery")
            } else {
                format!("{mode}: delivery {i}/{}", options.deliveries)
            };
            if progress.tty {
                progress.show(&format!("demo {label} ..."));
            }
            let d = deliver(&client, link.addr.port(), &store, mode, options)
                .map_err(|e| format!("{label}: {e}"))?;
            progress.show(&format!(
                "demo {label}: {:.1} ms, {} waits, early={}, {}",
                d.ms, d.waits, d.early as u8, d.result
            ));
            if d.result != "ok" {
                failures.push(format!("{label}: result={}", d.result));
            }
            if i > 0 {
                if mode != "classic" && !d.early {
                    failures.push(format!("{label}: no early flight (early=0)"));
                }
                timed.push(d);
            }
        }
        results.push(ModeResult {
            mode,
            deliveries: timed,
        });
    }
    progress.done();

    let expected = (u64::from(options.deliveries) + 1) * MODES.len() as u64;
    let received = count_messages(&sink_log);
    if received != expected {
        failures.push(format!(
            "the sink logged {received} messages, expected {expected}"
        ));
    }
    drop(link);
    drop(sink);

    print!("{}", table::render(&results, options.rtt_ms));
    if options.keep {
        eprintln!(
            "demo: kept {} (store file, sink log)",
            work.root().display()
        );
    }
    if failures.is_empty() {
        Ok(0)
    } else {
        for f in &failures {
            eprintln!("pipeconnect demo: {f}");
        }
        Ok(1)
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// One run of the C client: one delivery, its own process and connection.
fn deliver(
    client: &Path,
    port: u16,
    store: &Path,
    mode: &str,
    options: &Options,
) -> Result<Delivery, String> {
    let mut cmd = Command::new(client);
    cmd.args([
        "--server",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--store",
        path_str(store)?,
        "--mode",
        mode,
        "--ehlo",
        "client.demo.example",
        "--from",
        "sender@demo.example",
        "--to",
        "rcpt@demo.example",
        "--body-size",
        &options.body_size.to_string(),
        "--count",
        "1",
    ]);
    let out = procs::output_within(&mut cmd, CLIENT_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(parse_line).ok_or_else(|| {
        format!(
            "the client printed no delivery line (exit {}):\n{}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if line.mode != mode {
        return Err(format!(
            "the client ran mode {} instead of {mode}",
            line.mode
        ));
    }
    Ok(line)
}

/// The `message` lines in the sink's log.
fn count_messages(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .map(|t| t.lines().filter(|l| l.contains(" message id=")).count() as u64)
        .unwrap_or(0)
}
