//! The byte stream under one SMTP connection: cleartext TCP, or TLS after STARTTLS.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How long a closing connection waits for the peer to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// How much input a closing connection reads (and drops) at most.
const LINGER_BYTES: usize = 1024 * 1024;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => tls.get_ref(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Runs the server side of a TLS handshake over the cleartext connection. `early` is
    /// what the client sent behind its STARTTLS before the 220 (a pipelined ClientHello,
    /// QUICKSTART): read as the start of the TLS stream, never as SMTP. Empty otherwise.
    ///
    /// The socket's timeouts bound the handshake. On failure the connection is finished.
    pub fn start_tls(self, config: Arc<ServerConfig>, early: &[u8]) -> io::Result<Transport> {
        let mut tcp = match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(_) => {
                return Err(io::Error::other("TLS is already active"));
            }
        };
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut io = Prefixed {
            early,
            tcp: &mut tcp,
        };
        while conn.is_handshaking() {
            conn.complete_io(&mut io)?;
        }
        if !io.early.is_empty() {
            // More than the handshake came before the 220: nothing may ride along.
            return Err(io::Error::other("bytes after the pipelined TLS handshake"));
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        Ok(Transport::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    /// Ends the connection: close_notify for TLS, then the TCP close. Errors do not matter.
    ///
    /// The write half is shut first and whatever the peer still sends is read for a moment:
    /// closing a socket with unread input makes the kernel send a reset, which can destroy the
    /// last reply (a 554, a 221) before the peer has read it.
    pub fn close(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        let mut tcp = self.tcp();
        let _ = tcp.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER;
        let mut budget = LINGER_BYTES;
        let mut buf = [0u8; 4096];
        while budget > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    }
}

/// The TCP stream, with bytes already received read first.
struct Prefixed<'a> {
    early: &'a [u8],
    tcp: &'a mut TcpStream,
}

impl Read for Prefixed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.early.is_empty() {
            return self.tcp.read(buf);
        }
        let n = self.early.len().min(buf.len());
        buf[..n].copy_from_slice(&self.early[..n]);
        self.early = &self.early[n..];
        Ok(n)
    }
}

impl Write for Prefixed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.write(buf),
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.flush(),
            Transport::Tls(tls) => tls.flush(),
        }
    }
}
