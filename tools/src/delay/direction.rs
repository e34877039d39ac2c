//! One direction of a proxied connection: a reader that moves bytes from the source socket into
//! a [`TimedQueue`] as soon as they arrive, and a writer that sends them on when they are due.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::queue::{Item, TimedQueue};

/// The most read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Reads until the source closes its write half (or fails), then queues the end. Each chunk
/// is shown to `observe` as it is read (for `--log`).
pub fn read_into(mut source: TcpStream, queue: &TimedQueue, mut observe: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; READ_CHUNK];
    while queue.wait_for_room() {
        match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                observe(&buf[..n]);
                queue.push(Item::Data(buf[..n].to_vec()));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    queue.push(Item::End);
}

/// Writes queued bytes to `destination` when due; at the end of the data, shuts the
/// destination's write half, so a half-close travels with the same delay as the data.
///
/// If the destination fails, the queue is abandoned and the source's read half is shut, which
/// wakes that direction's reader so it ends too.
pub fn write_from(queue: &TimedQueue, destination: TcpStream, source: &TcpStream) {
    write_from_observed(queue, destination, source, || {});
}

/// As [`write_from`], calling `observe` after each chunk written.
pub fn write_from_observed(
    queue: &TimedQueue,
    mut destination: TcpStream,
    source: &TcpStream,
    mut observe: impl FnMut(),
) {
    loop {
        match queue.pop() {
            Item::Data(bytes) => {
                if destination.write_all(&bytes).is_err() {
                    queue.abandon();
                    let _ = source.shutdown(Shutdown::Read);
                    let _ = destination.shutdown(Shutdown::Both);
                    return;
                }
                observe();
            }
            Item::End => {
                let _ = destination.shutdown(Shutdown::Write);
                return;
            }
        }
    }
}
