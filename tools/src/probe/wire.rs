//! The probe's side of the SMTP conversation: write a command, read one reply with the
//! library's reply parser (fed one line at a time, so bytes after a reply stay visible),
//! and switch to TLS.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pipeconnect::{Reply, ReplyLimits, ReplyParser};
use rustls::{ClientConnection, StreamOwned};

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// One connection, cleartext or TLS.
pub struct Wire {
    stream: Stream,
    parser: ReplyParser,
    /// Bytes read but not yet fed to the parser.
    pending: Vec<u8>,
    replies: VecDeque<Reply>,
}

impl Wire {
    pub fn plain(tcp: TcpStream) -> Wire {
        Wire {
            stream: Stream::Plain(tcp),
            parser: ReplyParser::new(ReplyLimits::default()),
            pending: Vec::new(),
            replies: VecDeque::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes)?,
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()?;
            }
        }
        Ok(())
    }

    fn read_some(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut buf)?,
            Stream::Tls(s) => s.read(&mut buf)?,
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(())
    }

    /// The next reply.
    pub fn reply(&mut self) -> io::Result<Reply> {
        loop {
            if let Some(r) = self.replies.pop_front() {
                return Ok(r);
            }
            if self.pending.is_empty() {
                self.read_some()?;
            }
            let cut = self
                .pending
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.pending.len(), |i| i + 1);
            let line: Vec<u8> = self.pending.drain(..cut).collect();
            let mut out = Vec::new();
            self.parser
                .feed(&line, &mut out)
                .map_err(|e| io::Error::other(format!("reply: {e}")))?;
            self.replies.extend(out);
        }
    }

    /// Whether bytes were received beyond the replies handed out.
    pub fn has_leftover(&self) -> bool {
        !self.pending.is_empty() || !self.replies.is_empty() || !self.parser.is_idle()
    }

    /// The TLS handshake over this connection (after a 220 to STARTTLS).
    pub fn start_tls(self, server_name: &str) -> io::Result<Wire> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(io::Error::other("TLS is already on"));
        };
        let tls = super::tls::handshake(tcp, server_name)?;
        Ok(Wire {
            stream: Stream::Tls(Box::new(tls)),
            parser: ReplyParser::new(ReplyLimits::default()),
            pending: Vec::new(),
            replies: VecDeque::new(),
        })
    }

    /// The TLS version and cipher suite, or `cleartext`.
    pub fn describe(&self) -> String {
        match &self.stream {
            Stream::Plain(_) => "cleartext".to_string(),
            Stream::Tls(s) => super::tls::describe(&s.conn),
        }
    }

    /// QUIT, waiting briefly for the 221 (errors do not matter any more).
    pub fn quit(mut self) {
        let short = Some(Duration::from_secs(2));
        match &self.stream {
            Stream::Plain(s) => {
                let _ = s.set_read_timeout(short);
            }
            Stream::Tls(s) => {
                let _ = s.sock.set_read_timeout(short);
            }
        }
        if self.send(b"QUIT\r\n").is_ok() {
            let _ = self.reply();
        }
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}
