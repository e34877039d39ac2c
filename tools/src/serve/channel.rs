//! Buffered SMTP input and output over a [`Transport`], with the batching rule of RFC 2920
//! servers: replies collect in an output buffer, which is flushed only before the server would
//! wait for more input. Pipelined commands that arrived together thus get their replies in one
//! write, and a banner queued before the first command leaves with the EHLO reply when the EHLO
//! had already arrived (as Exim does for PIPECONNECT clients).
//!
//! The channel also remembers how much input had arrived when the banner was written, so each
//! line can say whether it was sent early.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::ServerConfig;

use super::transport::Transport;

/// How much is read from the transport at a time.
const READ_CHUNK: usize = 16 * 1024;

/// One line of input, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes; for an over-long line, only the start of it.
    pub bytes: Vec<u8>,
    /// Its first byte had been received before the banner was written.
    pub early: bool,
    /// When its first byte was read from the connection.
    pub arrived: Instant,
    /// It was longer than allowed; the rest of it was discarded.
    pub too_long: bool,
}

pub struct Channel {
    transport: Transport,
    input: Vec<u8>,
    /// Start of the unconsumed input in `input`.
    pos: usize,
    output: Vec<u8>,
    /// Input bytes consumed since this stream began (the TLS stream begins anew).
    consumed: u64,
    /// Input offsets below this had been received when the banner was written.
    early_until: u64,
    /// For each read still holding unconsumed input: the offset just past its bytes and
    /// when it was read (as many entries as reads into the bounded input buffer).
    arrivals: VecDeque<(u64, Instant)>,
}

impl Channel {
    pub fn new(transport: Transport) -> Self {
        Channel {
            transport,
            input: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            output: Vec::new(),
            consumed: 0,
            early_until: 0,
            arrivals: VecDeque::new(),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// Queues a reply (or any text) for the next flush.
    pub fn queue(&mut self, text: &str) {
        self.output.extend_from_slice(text.as_bytes());
    }

    /// Writes out everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            self.transport.write_all(&self.output)?;
            self.output.clear();
        }
        self.transport.flush()
    }

    /// Whether input is waiting in the socket, without consuming or waiting for it.
    pub fn input_pending(&self) -> io::Result<bool> {
        let tcp = self.transport.tcp();
        tcp.set_nonblocking(true)?;
        let mut probe = [0u8; 1];
        let result = tcp.peek(&mut probe);
        tcp.set_nonblocking(false)?;
        match result {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads whatever input has already arrived, without waiting, up to `cap` buffered bytes.
    pub fn read_available(&mut self, cap: usize) -> io::Result<()> {
        self.transport.tcp().set_nonblocking(true)?;
        let result = loop {
            if self.buffered() >= cap {
                break Ok(());
            }
            match self.read_some() {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.transport.tcp().set_nonblocking(false)?;
        result
    }

    /// Reads input as it arrives until `deadline` (or `cap` buffered bytes, or the peer's
    /// close), so that each line's arrival time is known even while the banner waits.
    pub fn read_until(&mut self, deadline: Instant, cap: usize) -> io::Result<()> {
        let tcp = self.transport.tcp().try_clone()?;
        let before = tcp.read_timeout()?;
        let result = loop {
            let now = Instant::now();
            if now >= deadline || self.buffered() >= cap {
                break Ok(());
            }
            tcp.set_read_timeout(Some(deadline - now))?;
            match self.read_some() {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break Ok(())
                }
                Err(e) => break Err(e),
            }
        };
        tcp.set_read_timeout(before)?;
        result
    }

    /// The input received and not yet consumed (before the banner: all of it).
    pub fn pending_input(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// As [`Channel::read_until`], returning as soon as a whole first line is buffered.
    pub fn read_until_line(&mut self, deadline: Instant, cap: usize) -> io::Result<()> {
        while !self.pending_input().contains(&b'\n') && self.buffered() < cap {
            let before = self.buffered();
            let step = deadline.min(Instant::now() + std::time::Duration::from_millis(20));
            self.read_until(step, before + 1)?;
            if Instant::now() >= deadline {
                break;
            }
            if self.buffered() == before && self.peer_closed()? {
                break;
            }
        }
        Ok(())
    }

    /// Whether the peer has closed its side (a read would return 0), without waiting.
    fn peer_closed(&self) -> io::Result<bool> {
        let tcp = self.transport.tcp();
        tcp.set_nonblocking(true)?;
        let mut probe = [0u8; 1];
        let result = tcp.peek(&mut probe);
        tcp.set_nonblocking(false)?;
        match result {
            Ok(n) => Ok(n == 0),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records that the banner is being written now: everything received so far is early.
    pub fn mark_banner(&mut self) {
        self.early_until = self.consumed + self.buffered() as u64;
    }

    /// Drops input received but not yet consumed; returns how many bytes that was.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buffered();
        self.consume(n);
        n
    }

    /// Replaces the cleartext transport by TLS. The caller has flushed, and discarded the
    /// input or taken it as `early` (the start of the TLS stream: a pipelined ClientHello).
    pub fn start_tls(mut self, config: Arc<ServerConfig>, early: &[u8]) -> io::Result<Channel> {
        debug_assert!(self.output.is_empty());
        self.discard_buffered();
        Ok(Channel::new(self.transport.start_tls(config, early)?))
    }

    /// Sends what is queued and closes the connection; errors are of no interest by now.
    pub fn close(mut self) {
        let _ = self.flush();
        self.transport.close();
    }

    /// The next line, at most `max` bytes long including its line ending.
    ///
    /// Lines end at LF; a CR before it is removed. An over-long line is consumed up to its LF
    /// and returned with `too_long`. `Ok(None)` when the peer closed the connection.
    pub fn read_line(&mut self, max: usize) -> io::Result<Option<Line>> {
        let early = self.consumed < self.early_until;
        loop {
            let arrived = self.arrival_of(self.consumed);
            let unread = &self.input[self.pos..];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                if i < max {
                    let mut bytes = unread[..i].to_vec();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                    self.consume(i + 1);
                    return Ok(Some(Line {
                        bytes,
                        early,
                        arrived,
                        too_long: false,
                    }));
                }
            }
            if unread.len() >= max {
                let bytes = unread[..max.min(super::log::LOGGED_PREFIX)].to_vec();
                return Ok(self.skip_line()?.then_some(Line {
                    bytes,
                    early,
                    arrived,
                    too_long: true,
                }));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Consumes input up to and including the next LF. False if the peer closed first.
    fn skip_line(&mut self) -> io::Result<bool> {
        loop {
            let unread = &self.input[self.pos..];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                self.consume(i + 1);
                return Ok(true);
            }
            let n = unread.len();
            self.consume(n);
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
    }

    /// The next piece of message text: the bytes up to and including the next LF, or `max`
    /// bytes if no LF comes before that. `Ok(None)` when the peer closed the connection.
    pub fn read_piece(&mut self, max: usize) -> io::Result<Option<&[u8]>> {
        loop {
            let unread = &self.input[self.pos..];
            let end = match unread.iter().take(max).position(|&b| b == b'\n') {
                Some(i) => Some(i + 1),
                None if unread.len() >= max => Some(max),
                None => None,
            };
            if let Some(end) = end {
                let start = self.pos;
                self.consume(end);
                return Ok(Some(&self.input[start..start + end]));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Consumes exactly `n` bytes of input without keeping them. False if the peer closed first.
    pub fn skip_exact(&mut self, mut n: u64) -> io::Result<bool> {
        loop {
            let take = (self.buffered() as u64).min(n) as usize;
            self.consume(take);
            n -= take as u64;
            if n == 0 {
                return Ok(true);
            }
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
    }

    fn buffered(&self) -> usize {
        self.input.len() - self.pos
    }

    fn consume(&mut self, n: usize) {
        // The bytes stay in place until the next read compacts the buffer, so a piece just
        // consumed can still be lent out.
        self.pos += n;
        self.consumed += n as u64;
        while self
            .arrivals
            .front()
            .is_some_and(|&(end, _)| end <= self.consumed)
        {
            self.arrivals.pop_front();
        }
    }

    /// When the byte at stream offset `at` was read (now, if it has not arrived yet).
    fn arrival_of(&self, at: u64) -> Instant {
        self.arrivals
            .iter()
            .find(|&&(end, _)| end > at)
            .map_or_else(Instant::now, |&(_, t)| t)
    }

    /// Waits for more input, flushing queued replies first since the peer may be waiting for
    /// them. Returns the number of bytes added; 0 when the peer closed the connection.
    fn fill(&mut self) -> io::Result<usize> {
        self.flush()?;
        self.read_some()
    }

    fn read_some(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        let old_len = self.input.len();
        self.input.resize(old_len + READ_CHUNK, 0);
        let result = self.transport.read(&mut self.input[old_len..]);
        let n = match result {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the same as a close here.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => 0,
            Err(e) => {
                self.input.truncate(old_len);
                return Err(e);
            }
        };
        self.input.truncate(old_len + n);
        if n > 0 {
            let end = self.consumed + self.buffered() as u64;
            self.arrivals.push_back((end, Instant::now()));
        }
        Ok(n)
    }
}
