//! `pipeconnect serve`: an SMTP test sink on loopback that can advertise PIPECONNECT and
//! tolerate input sent before its banner, as Exim 4.96 does. Messages are counted and dropped.

mod auth;
mod channel;
mod command;
mod data;
mod ehlo;
mod log;
mod options;
mod qhlo;
mod reply;
mod session;
mod tls;
mod transport;

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use crate::limit::Limiter;
use crate::listen::bind_and_announce;

use self::log::Log;
use self::options::{Options, USAGE};

/// Connections served at once; more are answered 421 and closed.
const MAX_CONCURRENT: usize = 64;

/// What every connection thread shares.
pub struct Shared {
    pub options: Options,
    /// Present when STARTTLS is on.
    pub tls: Option<Arc<ServerConfig>>,
    pub log: Log,
    /// Present with `--quickstart on`.
    pub qhlo: Option<qhlo::QhloKeys>,
    message_ids: AtomicU64,
}

impl Shared {
    /// A new message id: 1, 2, 3… across all connections.
    pub fn next_message_id(&self) -> u64 {
        self.message_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Runs the subcommand; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    crate::cli::run_subcommand("serve", USAGE, Options::parse(args), |o| {
        serve(o).map(|()| 0)
    })
}

fn serve(options: Options) -> io::Result<()> {
    let log = Log::open(options.log.as_deref())?;
    let tls = match options.starttls {
        true => Some(tls::server_config(&options.hostname)?),
        false => None,
    };
    let qhlo = match options.quickstart {
        true => Some(qhlo::QhloKeys::new()?),
        false => None,
    };
    let listener = bind_and_announce(&options.listen)?;
    let shared = Arc::new(Shared {
        options,
        tls,
        log,
        qhlo,
        message_ids: AtomicU64::new(0),
    });
    let limiter = Limiter::new(MAX_CONCURRENT);
    let mut accepted = 0u64;
    while shared
        .options
        .max_connections
        .is_none_or(|max| accepted < max)
    {
        let tcp = match listener.accept() {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                eprintln!("pipeconnect serve: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let accepted_at = Instant::now();
        accepted += 1;
        let conn = accepted;
        shared.log.accepted(conn);
        let Some(slot) = limiter.try_acquire() else {
            refuse(tcp, &shared);
            shared.log.refused(conn);
            shared.log.closed(conn);
            continue;
        };
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("conn-{conn}"))
            .spawn(move || {
                let _slot = slot;
                session::run(tcp, conn, accepted_at, &thread_shared);
            });
        if let Err(e) = spawned {
            eprintln!("pipeconnect serve: cannot start a thread: {e}");
            shared.log.closed(conn);
        }
    }
    limiter.wait_idle();
    Ok(())
}

/// Turns a connection away without a thread: 421 and close.
fn refuse(mut tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
    let text = format!(
        "421 {} too many connections, try again later\r\n",
        shared.options.hostname
    );
    let _ = tcp.write_all(text.as_bytes());
}
