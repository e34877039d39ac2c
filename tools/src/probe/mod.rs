//! `pipeconnect probe HOST:PORT [--starttls]`: connect classically, read the banner and
//! the EHLO reply (and, with `--starttls`, the EHLO reply after a TLS handshake), and say
//! what each TLS state advertises, whether early pipelining is usable, and how many round
//! trips it would save. The replies are read with the library's reply parser and EHLO
//! capability reader, so the probe sees a server exactly as the library does.
//!
//! The last line is machine-readable:
//! `summary: pipeconnect=<yes|no> starttls=<yes|no|not-offered|not-asked>
//! encrypted_pipeconnect=<yes|no|-> chunking=<yes|no> round_trips_saved=<n>`.

mod options;
pub mod report;
pub(crate) mod tls;
mod wire;

use std::io;
use std::net::{TcpStream, ToSocketAddrs};

use pipeconnect::caps::Extension;
use pipeconnect::{Capabilities, ParseOptions, Reply};

use self::options::{Options, USAGE};
use self::report::StateReport;
use self::wire::Wire;

/// Runs the subcommand; returns the process exit code (0 probed, 1 failed, 2 usage).
pub fn main(args: Vec<String>) -> i32 {
    crate::cli::run_subcommand("probe", USAGE, Options::parse(args), |o| {
        probe(&o)
            .map(|()| 0)
            .map_err(|e| format!("{}: {e}", o.target))
    })
}

fn connect(options: &Options) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in options.target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, options.timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(options.timeout))?;
                s.set_write_timeout(Some(options.timeout))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The host part of `host:port` (without IPv6 brackets), for SNI.
fn host_part(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn first_line(reply: &Reply) -> String {
    let text = reply.lines().first().cloned().unwrap_or_default();
    format!("{} {}", reply.code(), String::from_utf8_lossy(&text))
}

/// EHLO, its reply read as capabilities.
fn ehlo(wire: &mut Wire, options: &Options) -> io::Result<StateReport> {
    wire.send(format!("EHLO {}\r\n", options.ehlo).as_bytes())?;
    let reply = wire.reply()?;
    if reply.code() != 250 {
        return Err(io::Error::other(format!(
            "EHLO refused: {}",
            first_line(&reply)
        )));
    }
    let parse = |legacy_keywords| {
        Capabilities::from_reply(&reply, ParseOptions { legacy_keywords })
            .map_err(|e| io::Error::other(format!("EHLO reply: {e}")))
    };
    let caps = parse(options.legacy_keywords)?;
    let strict = parse(false)?;
    let legacy_only = caps.has(Extension::PipeConnect) && !strict.has(Extension::PipeConnect);
    Ok(StateReport { caps, legacy_only })
}

fn print_state(name: &str, state: &StateReport) {
    println!("{name}: {}", report::extensions(&state.caps));
    println!("{name} early pipelining: {}", report::early_sentence(state));
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn probe(options: &Options) -> io::Result<()> {
    let tcp = connect(options)?;
    let peer = tcp.peer_addr()?;
    let mut wire = Wire::plain(tcp);
    println!("probe {} ({peer}) ehlo={}", options.target, options.ehlo);
    let banner = wire.reply()?;
    println!("banner: {}", first_line(&banner));
    if !(200..300).contains(&banner.code()) {
        return Err(io::Error::other(format!(
            "the server refuses service: {}",
            first_line(&banner)
        )));
    }
    let clear = ehlo(&mut wire, options)?;
    print_state("cleartext", &clear);

    let offered = clear.caps.has(Extension::StartTls);
    let mut encrypted = None;
    let starttls_word = match (options.starttls, offered) {
        (false, _) => "not-asked",
        (true, false) => {
            println!("starttls: not offered");
            "not-offered"
        }
        (true, true) => {
            wire.send(b"STARTTLS\r\n")?;
            let reply = wire.reply()?;
            if reply.code() != 220 {
                return Err(io::Error::other(format!(
                    "STARTTLS refused: {}",
                    first_line(&reply)
                )));
            }
            // RFC 3207: anything that arrived after the 220 and before the handshake
            // could have been injected by a third party.
            if wire.has_leftover() {
                return Err(io::Error::other(
                    "cleartext bytes after the 220 to STARTTLS: refused (possible injection)",
                ));
            }
            wire = wire.start_tls(host_part(&options.target))?;
            println!("starttls: {}; {}", first_line(&reply), wire.describe());
            let enc = ehlo(&mut wire, options)?;
            print_state("encrypted", &enc);
            encrypted = Some(enc);
            "yes"
        }
    };
    if !options.starttls && offered {
        println!("starttls: offered (run with --starttls to probe the encrypted state)");
    }

    let saving = report::saving(&clear, encrypted.as_ref());
    println!(
        "saving: {}",
        report::saving_sentence(&saving, encrypted.is_some())
    );
    // The transaction runs in the last state probed.
    let tx_caps = encrypted.as_ref().map_or(&clear.caps, |e| &e.caps);
    println!(
        "summary: pipeconnect={} starttls={starttls_word} encrypted_pipeconnect={} \
         chunking={} round_trips_saved={}",
        yes(clear.early_usable()),
        encrypted.as_ref().map_or("-", |e| yes(e.early_usable())),
        yes(tx_caps.has(Extension::Chunking)),
        report::halves(saving.total_halves()),
    );
    wire.quit();
    Ok(())
}
