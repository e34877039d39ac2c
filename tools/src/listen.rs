//! Binding a listening socket and announcing its address.
//!
//! Every server subcommand prints `listening <ip>:<port>` as its first line on stdout and flushes
//! it, so a script or test that asked for port 0 can read the port the kernel chose.

use std::io::{self, Write};
use std::net::TcpListener;

/// Binds `addr` (e.g. `127.0.0.1:0`) and prints the `listening` line.
pub fn bind_and_announce(addr: &str) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening {local}")?;
    out.flush()?;
    Ok(listener)
}
