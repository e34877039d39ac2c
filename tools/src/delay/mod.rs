//! `pipeconnect delay`: a TCP proxy on loopback that adds a fixed one-way delay in each
//! direction, so the round trips that early pipelining saves show up as time.

mod direction;
mod link;
mod options;
mod queue;
mod trace;

use std::fs::OpenOptions;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::limit::Limiter;
use crate::listen::bind_and_announce;

use self::options::{Options, USAGE};

/// Connections proxied at once (each takes four threads); more are closed at once.
const MAX_CONCURRENT: usize = 64;

/// Runs the subcommand; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    crate::cli::run_subcommand("delay", USAGE, Options::parse(args), |o| {
        proxy(o).map(|()| 0)
    })
}

fn proxy(options: Options) -> io::Result<()> {
    let listener = bind_and_announce(&options.listen)?;
    let upstream: Arc<str> = options.upstream.into();
    let limiter = Limiter::new(MAX_CONCURRENT);
    let log: Option<trace::TraceLog> = match &options.log {
        Some(path) => Some(Arc::new(Mutex::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        ))),
        None => None,
    };
    let mut conn: u64 = 0;
    loop {
        let client = match listener.accept() {
            Ok((client, _peer)) => client,
            Err(e) => {
                eprintln!("pipeconnect delay: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let accepted_at = Instant::now();
        let Some(slot) = limiter.try_acquire() else {
            eprintln!("pipeconnect delay: too many connections, closing a new one");
            continue;
        };
        let upstream = Arc::clone(&upstream);
        let one_way = options.one_way;
        conn += 1;
        let trace = log
            .as_ref()
            .map(|log| Arc::new(trace::Trace::new(conn, accepted_at, Arc::clone(log))));
        let spawned = thread::Builder::new()
            .name("delay-link".to_string())
            .spawn(move || {
                let _slot = slot;
                link::run(client, accepted_at, &upstream, one_way, trace);
            });
        if let Err(e) = spawned {
            eprintln!("pipeconnect delay: cannot start a thread: {e}");
        }
    }
}
