//! One proxied connection through the slow link.
//!
//! The client's bytes are read from the moment of the accept. The upstream connection is opened
//! one delay after the accept, as if the SYN had to cross the link, and what upstream sends
//! takes one more delay back: a client that talks right after connecting sees the same timing
//! as on a real link, where the server only hears of it half a round trip later.

use std::io;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::direction::{read_into, write_from, write_from_observed};
use super::queue::TimedQueue;
use super::trace::Trace;

/// Bytes queued per direction before the reader pauses.
const QUEUE_CAP: usize = 4 * 1024 * 1024;
/// How long opening the upstream connection may take (each address).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Stack size of the helper threads, which need little.
const STACK_SIZE: usize = 256 * 1024;

/// Serves one accepted client until both directions are finished.
pub fn run(
    client: TcpStream,
    accepted_at: Instant,
    upstream: &str,
    delay: Duration,
    trace: Option<Arc<Trace>>,
) {
    let _ = client.set_nodelay(true);
    let to_upstream = Arc::new(TimedQueue::new(delay, QUEUE_CAP));
    let client_reader = match client.try_clone().and_then(|source| {
        let queue = Arc::clone(&to_upstream);
        let trace = trace.clone();
        spawn("delay-read-client", move || {
            read_into(source, &queue, |bytes| {
                if let Some(t) = &trace {
                    t.client_sent(bytes);
                }
            })
        })
    }) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("pipeconnect delay: {e}");
            return;
        }
    };
    if let Err(e) = connect_and_pump(&client, accepted_at, upstream, delay, &to_upstream, &trace) {
        eprintln!("pipeconnect delay: upstream {upstream}: {e}");
        to_upstream.abandon();
        let _ = client.shutdown(Shutdown::Both);
    }
    let _ = client_reader.join();
}

fn connect_and_pump(
    client: &TcpStream,
    accepted_at: Instant,
    upstream: &str,
    delay: Duration,
    to_upstream: &Arc<TimedQueue>,
    trace: &Option<Arc<Trace>>,
) -> io::Result<()> {
    thread::sleep((accepted_at + delay).saturating_duration_since(Instant::now()));
    let server = connect(upstream)?;
    server.set_nodelay(true)?;
    // Every handle is made before the first thread starts, so no failure leaves one running.
    let server_source = server.try_clone()?;
    let server_for_writer = server.try_clone()?;
    let client_destination = client.try_clone()?;
    let to_client = Arc::new(TimedQueue::new(delay, QUEUE_CAP));
    let server_reader = {
        let queue = Arc::clone(&to_client);
        let trace = trace.clone();
        spawn("delay-read-upstream", move || {
            read_into(server_source, &queue, |_| {
                if let Some(t) = &trace {
                    t.server_sent();
                }
            })
        })?
    };
    let client_writer = {
        let queue = Arc::clone(&to_client);
        let trace = trace.clone();
        spawn("delay-write-client", move || {
            write_from_observed(&queue, client_destination, &server_for_writer, || {
                if let Some(t) = &trace {
                    t.client_received();
                }
            })
        })
    };
    let client_writer = match client_writer {
        Ok(handle) => handle,
        Err(e) => {
            to_client.abandon();
            let _ = server.shutdown(Shutdown::Both);
            let _ = server_reader.join();
            return Err(e);
        }
    };
    write_from(to_upstream, server, client);
    let _ = server_reader.join();
    let _ = client_writer.join();
    Ok(())
}

fn connect(upstream: &str) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in upstream.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn spawn<F: FnOnce() + Send + 'static>(name: &str, f: F) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.to_string())
        .stack_size(STACK_SIZE)
        .spawn(f)
}
