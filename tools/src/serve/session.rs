//! One SMTP connection of the sink, from the banner to the close, after Exim 4.96's smtp_in.

use std::io::{self, ErrorKind};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pipeconnect::server::quickstart::{greeting_text, keywords_fingerprint};
use pipeconnect::server::{Class, Prebanner, PrebannerLimits, Verdict};

use super::auth;
use super::channel::{Channel, Line};
use super::command::{self, Command};
use super::data;
use super::ehlo;
use super::reply::{multiline, single};
use super::transport::Transport;
use super::Shared;

/// The longest line accepted, line ending included.
const MAX_LINE: usize = 1000;
/// How long the sink waits for the client to say something.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Unknown commands, bad syntax or bad sequence tolerated before the connection is dropped.
const MAX_ERRORS: u32 = 20;
/// Input read before the banner is kept up to this size (the rest is read later as usual).
const EARLY_INPUT_CAP: usize = 64 * 1024;

/// Serves one accepted connection; logs `closed` when it is over, however it ended.
pub fn run(tcp: TcpStream, conn: u64, accepted_at: Instant, shared: &Shared) {
    let _ = serve(tcp, conn, accepted_at, shared);
    shared.log.closed(conn);
}

fn serve(tcp: TcpStream, conn: u64, accepted_at: Instant, shared: &Shared) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let peer = tcp.peer_addr()?.ip().to_string();
    tcp.set_read_timeout(Some(IDLE_TIMEOUT))?;
    tcp.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let mut channel = Channel::new(Transport::Plain(tcp));
    let mut session = Session {
        shared,
        conn,
        peer,
        accepted_at,
        mode: Mode::Serving,
        greeting: Greeting::None,
        authenticated: false,
        transaction: None,
        errors: 0,
    };
    let serving = match session.greet(&mut channel)? {
        Greet::Close => false,
        Greet::Serve => true,
        Greet::Qtls(early) => {
            let Some(config) = shared.tls.clone() else {
                return Ok(());
            };
            channel = channel.start_tls(config, &early)?;
            session.restart_after_tls();
            session.greet_over_tls(&mut channel)?
        }
    };
    if serving {
        loop {
            match session.next_command(&mut channel) {
                Ok(Next::Continue) => {}
                Ok(Next::StartTls(early)) => {
                    let Some(config) = shared.tls.clone() else {
                        break;
                    };
                    channel = channel.start_tls(config, &early)?;
                    session.restart_after_tls();
                }
                Ok(Next::Qtls(early)) => {
                    let Some(config) = shared.tls.clone() else {
                        break;
                    };
                    channel = channel.start_tls(config, &early)?;
                    session.restart_after_tls();
                    session.tls_greeting(&mut channel);
                }
                Ok(Next::Close) => break,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let text = format!("{} idle timeout, closing connection", host(shared));
                    channel.queue(&single(421, &text));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    channel.close();
    Ok(())
}

fn host(shared: &Shared) -> &str {
    &shared.options.hostname
}

/// What the connection does after a command.
enum Next {
    Continue,
    /// With the bytes that came behind STARTTLS, for the TLS stream (QUICKSTART's
    /// pipelined ClientHello), or none.
    StartTls(Vec<u8>),
    /// QTLS after the banner (QUICKSTART, experimental), with the bytes that came behind
    /// it: the start of the TLS stream. The greeting follows the handshake, over TLS.
    Qtls(Vec<u8>),
    Close,
}

/// How the connection goes on after the greet pause.
enum Greet {
    /// The banner is queued: serve commands.
    Serve,
    /// Close at once (a 4xx banner, a sync error, a pregreet rejected).
    Close,
    /// The first line before the banner was QTLS (QUICKSTART, experimental): no banner in
    /// cleartext; TLS at once, from these bytes that came behind it, then the greeting
    /// over TLS ([`Session::greet_over_tls`]).
    Qtls(Vec<u8>),
}

/// Whether the banner offered service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serving,
    /// A 5xx banner: only QUIT is answered positively (RFC 5321 §3.1).
    Refusing,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Greeting {
    None,
    Helo,
    Ehlo,
}

/// A mail transaction in progress (after MAIL).
#[derive(Default)]
struct Transaction {
    /// Accepted recipients.
    rcpts: u32,
    /// BDAT bytes received so far.
    bytes: u64,
    /// BDAT was used: DATA is no longer allowed.
    chunking: bool,
}

struct Session<'a> {
    shared: &'a Shared,
    conn: u64,
    /// The client's address, for QHLO cookies.
    peer: String,
    accepted_at: Instant,
    mode: Mode,
    greeting: Greeting,
    authenticated: bool,
    transaction: Option<Transaction>,
    errors: u32,
}

impl Session<'_> {
    fn t_ms(&self) -> u128 {
        self.accepted_at.elapsed().as_millis()
    }

    /// Waits the banner delay, then queues the banner (sent with the first flush). Returns false
    /// when the connection is to be closed at once.
    ///
    /// With PIPECONNECT on, input that is already there is read first, so that its lines are
    /// known to be early. With it off, such input is a synchronization error (Exim's check for
    /// early talkers): 554 and close. Either way the library's pre-banner classifier says what
    /// the input was, in the log; with `--pregreet reject`, a pregreet violation from a client
    /// offered PIPECONNECT is also a 554 and close.
    ///
    /// With `--quickstart on` and STARTTLS, a first line `QTLS` before the banner ends the
    /// pause at once and no banner is written: the bytes behind it are the start of the TLS
    /// handshake, and the pause, the classification and the greeting happen over TLS.
    fn greet(&mut self, channel: &mut Channel) -> io::Result<Greet> {
        let options = &self.shared.options;
        let banner_at = self.accepted_at + options.banner_delay;
        let offered = options.early_input_allowed();
        let mut prebanner =
            Prebanner::new(offered, PrebannerLimits::default()).with_quickstart(options.quickstart);
        if offered {
            // Read early input while the banner waits, so the log knows when it arrived. A
            // client whose QHLO cookie is valid ends the greet pause at once.
            if self.shared.qhlo.is_some() {
                channel.read_until_line(banner_at, EARLY_INPUT_CAP)?;
                if let Some(early) = self.qtls_first(channel)? {
                    return Ok(Greet::Qtls(early));
                }
                if !self.qhlo_recognised(channel) {
                    channel.read_until(banner_at, EARLY_INPUT_CAP)?;
                    std::thread::sleep(banner_at.saturating_duration_since(Instant::now()));
                }
            } else {
                channel.read_until(banner_at, EARLY_INPUT_CAP)?;
                std::thread::sleep(banner_at.saturating_duration_since(Instant::now()));
            }
            channel.read_available(EARLY_INPUT_CAP)?;
            if let Some(early) = self.qtls_first(channel)? {
                return Ok(Greet::Qtls(early));
            }
        } else {
            std::thread::sleep(banner_at.saturating_duration_since(Instant::now()));
            if channel.input_pending()? {
                // Read what is there only to say in the log what it was.
                channel.read_available(EARLY_INPUT_CAP)?;
                prebanner.feed(channel.pending_input());
                self.log_prebanner(&prebanner.verdict());
                channel.queue(&single(554, "SMTP synchronization error"));
                self.shared.log.syncerror(self.conn, self.t_ms());
                return Ok(Greet::Close);
            }
        }
        prebanner.feed(channel.pending_input());
        let verdict = prebanner.verdict();
        self.log_prebanner(&verdict);
        if verdict.class == Class::Pregreet && options.pregreet_reject {
            channel.queue(&single(554, "SMTP synchronization error"));
            self.shared.log.syncerror(self.conn, self.t_ms());
            return Ok(Greet::Close);
        }
        channel.mark_banner();
        let code = options.banner_code;
        let text = match code / 100 {
            2 => format!("{} ESMTP pipeconnect test sink", host(self.shared)),
            4 => format!(
                "{} service not available, closing channel",
                host(self.shared)
            ),
            _ => format!("{} no SMTP service here", host(self.shared)),
        };
        match (&self.shared.qhlo, code) {
            (Some(_), 220) => channel.queue(&self.quickstart_greeting(&text, false)),
            _ => channel.queue(&single(code, &text)),
        }
        self.shared.log.banner(self.conn, self.t_ms());
        match code / 100 {
            2 => Ok(Greet::Serve),
            4 => Ok(Greet::Close),
            _ => {
                self.mode = Mode::Refusing;
                Ok(Greet::Serve)
            }
        }
    }

    /// The multi-line 220 of QUICKSTART: `first`, the keywords of this TLS state, and the
    /// cookie for this client and that keyword list.
    fn quickstart_greeting(&self, first: &str, tls_active: bool) -> String {
        let words = ehlo::keywords(&self.shared.options, tls_active);
        let cookie = self
            .shared
            .qhlo
            .as_ref()
            .and_then(|keys| keys.cookie(&self.peer, keywords_fingerprint(&words)));
        greeting_text(first, &words, cookie.as_deref())
    }

    /// When the first line waiting before the banner is `QTLS` and this sink does QTLS
    /// (`--quickstart on`, STARTTLS, a 220 banner): consumes it and returns the bytes that
    /// came behind it, the start of the TLS stream, which are never read as SMTP.
    fn qtls_first(&self, channel: &mut Channel) -> io::Result<Option<Vec<u8>>> {
        let options = &self.shared.options;
        if self.shared.qhlo.is_none()
            || self.shared.tls.is_none()
            || !options.starttls
            || options.banner_code != 220
        {
            return Ok(None);
        }
        let input = channel.pending_input();
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        if end >= MAX_LINE {
            return Ok(None);
        }
        let line = String::from_utf8_lossy(&input[..end]);
        if command::parse(line.trim_end_matches('\r')) != Command::Qtls {
            return Ok(None);
        }
        // Everything received so far came before any greeting: the QTLS line is early.
        channel.mark_banner();
        let Some(line) = channel.read_line(MAX_LINE)? else {
            return Ok(None);
        };
        self.log_command(channel, &line);
        let early = channel.pending_input().to_vec();
        channel.discard_buffered();
        self.shared
            .log
            .qtls(self.conn, self.t_ms(), false, early.len());
        Ok(Some(early))
    }

    /// After QTLS before the banner and the handshake: the greet pause, now in front of the
    /// greeting over TLS. It ends at once when the first line that came over TLS is QHLO
    /// with this sink's cookie for the encrypted keyword list; the input that came over TLS
    /// before the greeting is classified as pre-banner input (QHLO counting as EHLO) and
    /// logged, and with `--pregreet reject` a pregreet violation gets 554 over TLS and the
    /// close. Returns false when the connection is to be closed.
    fn greet_over_tls(&mut self, channel: &mut Channel) -> io::Result<bool> {
        let options = &self.shared.options;
        let banner_at = self.accepted_at + options.banner_delay;
        channel.read_until_line(banner_at, EARLY_INPUT_CAP)?;
        if !self.qhlo_recognised(channel) {
            channel.read_until(banner_at, EARLY_INPUT_CAP)?;
            std::thread::sleep(banner_at.saturating_duration_since(Instant::now()));
        }
        channel.read_available(EARLY_INPUT_CAP)?;
        let mut prebanner =
            Prebanner::new(options.early_input_allowed(), PrebannerLimits::default())
                .with_quickstart(true);
        prebanner.feed(channel.pending_input());
        let verdict = prebanner.verdict();
        self.log_prebanner(&verdict);
        if verdict.class == Class::Pregreet && options.pregreet_reject {
            channel.queue(&single(554, "SMTP synchronization error"));
            self.shared.log.syncerror(self.conn, self.t_ms());
            return Ok(false);
        }
        self.tls_greeting(channel);
        Ok(true)
    }

    /// Queues the greeting that follows a QTLS handshake: the QUICKSTART greeting with the
    /// encrypted keywords and their cookie.
    fn tls_greeting(&mut self, channel: &mut Channel) {
        channel.mark_banner();
        let text = format!("{} ESMTP pipeconnect test sink", host(self.shared));
        channel.queue(&self.quickstart_greeting(&text, true));
        self.shared.log.banner(self.conn, self.t_ms());
    }

    /// Whether the first line waiting is `QHLO name cookie` with this sink's cookie for
    /// this client and its current capabilities in this TLS state (logged either way when
    /// it is QHLO).
    fn qhlo_recognised(&self, channel: &Channel) -> bool {
        let Some(keys) = &self.shared.qhlo else {
            return false;
        };
        let input = channel.pending_input();
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return false;
        };
        let line = String::from_utf8_lossy(&input[..end]);
        let Command::Qhlo { cookie, .. } = command::parse(line.trim_end_matches('\r')) else {
            return false;
        };
        let words = ehlo::keywords(&self.shared.options, channel.is_tls());
        let fingerprint = keywords_fingerprint(&words);
        let verdict = match cookie {
            None => "none",
            Some(c) if keys.valid(&self.peer, fingerprint, &c) => "valid",
            Some(_) => "invalid",
        };
        self.shared.log.qhlo(self.conn, self.t_ms(), verdict);
        verdict == "valid"
    }

    fn log_prebanner(&self, v: &Verdict) {
        self.shared.log.prebanner(self.conn, self.t_ms(), v);
    }

    fn restart_after_tls(&mut self) {
        self.greeting = Greeting::None;
        self.authenticated = false;
        self.transaction = None;
    }

    fn next_command(&mut self, channel: &mut Channel) -> io::Result<Next> {
        let Some(line) = channel.read_line(MAX_LINE)? else {
            return Ok(Next::Close);
        };
        self.log_command(channel, &line);
        if line.too_long {
            return Ok(self.error(channel, 500, "Line too long"));
        }
        let command = command::parse(&String::from_utf8_lossy(&line.bytes));
        if self.mode == Mode::Refusing {
            return Ok(match command {
                Command::Quit => self.quit(channel),
                _ => self.error(channel, 503, "No SMTP service here"),
            });
        }
        match command {
            Command::Helo(name) => Ok(self.helo(channel, &name)),
            Command::Ehlo(name) => Ok(self.ehlo(channel, &name)),
            Command::Qhlo { name, .. } if self.shared.options.quickstart => {
                Ok(self.ehlo(channel, &name))
            }
            Command::Qhlo { .. } => Ok(self.error(channel, 500, "Unrecognized command")),
            Command::StartTls => self.starttls(channel),
            Command::Qtls if self.shared.options.quickstart => self.qtls(channel),
            Command::Qtls => Ok(self.error(channel, 500, "Unrecognized command")),
            Command::Auth { mechanism, initial } => self.auth(channel, &mechanism, initial),
            Command::Mail { size, .. } => Ok(self.mail(channel, size)),
            Command::Rcpt { path } => Ok(self.rcpt(channel, &path)),
            Command::Data => self.data(channel),
            Command::Bdat { size, last } => self.bdat(channel, size, last),
            Command::Rset => {
                self.transaction = None;
                Ok(reply(channel, 250, "Reset OK"))
            }
            Command::Noop => Ok(reply(channel, 250, "OK")),
            Command::Help => Ok(self.help(channel)),
            Command::Quit => Ok(self.quit(channel)),
            Command::Syntax(why) => Ok(self.error(channel, 501, why)),
            Command::Unknown => Ok(self.error(channel, 500, "Unrecognized command")),
        }
    }

    fn log_command(&self, channel: &Channel, line: &Line) {
        let mut bytes = line.bytes.clone();
        if line.too_long {
            bytes.extend_from_slice(b"...");
        }
        // When the command's bytes arrived, not when it was processed: early commands
        // arrive before the banner and are processed after it.
        let t_ms = line
            .arrived
            .saturating_duration_since(self.accepted_at)
            .as_millis();
        let log = &self.shared.log;
        log.command(self.conn, t_ms, channel.is_tls(), line.early, &bytes);
    }

    /// Replies with an error that counts towards the limit of errors per connection.
    fn error(&mut self, channel: &mut Channel, code: u16, text: &str) -> Next {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            let text = format!("{} too many errors, closing connection", host(self.shared));
            channel.queue(&single(421, &text));
            return Next::Close;
        }
        reply(channel, code, text)
    }

    fn helo(&mut self, channel: &mut Channel, name: &str) -> Next {
        self.transaction = None;
        self.greeting = Greeting::Helo;
        let text = format!("{} Hello {name}", host(self.shared));
        reply(channel, 250, &text)
    }

    fn ehlo(&mut self, channel: &mut Channel, name: &str) -> Next {
        self.transaction = None;
        self.greeting = Greeting::Ehlo;
        let lines = ehlo::reply_lines(&self.shared.options, channel.is_tls(), name);
        channel.queue(&multiline(250, &lines));
        Next::Continue
    }

    /// 220, then the handshake (done by the caller). Cleartext input already received after the
    /// STARTTLS line is thrown away, as RFC 3207 requires; with `--quickstart on` it is
    /// instead the start of the TLS stream (a ClientHello pipelined behind STARTTLS): read
    /// by TLS only, never as SMTP commands.
    fn starttls(&mut self, channel: &mut Channel) -> io::Result<Next> {
        if !self.shared.options.starttls || self.shared.tls.is_none() || channel.is_tls() {
            return Ok(self.error(channel, 503, "STARTTLS not advertised"));
        }
        channel.queue(&single(220, "Ready to start TLS"));
        channel.flush()?;
        let early = match self.shared.options.quickstart {
            true => channel.pending_input().to_vec(),
            false => Vec::new(),
        };
        if !early.is_empty() {
            self.shared
                .log
                .pipelined_tls(self.conn, self.t_ms(), early.len());
        }
        channel.discard_buffered();
        Ok(Next::StartTls(early))
    }

    /// QTLS after the banner (QUICKSTART, experimental): no reply. What the sink owed in
    /// cleartext (the banner, replies to commands before QTLS) is written first; the input
    /// that came behind the QTLS line is the start of the TLS stream, read by TLS only. The
    /// greeting comes over TLS after the handshake (done by the caller).
    fn qtls(&mut self, channel: &mut Channel) -> io::Result<Next> {
        if !self.shared.options.starttls || self.shared.tls.is_none() || channel.is_tls() {
            return Ok(self.error(channel, 503, "QTLS not advertised"));
        }
        channel.flush()?;
        let early = channel.pending_input().to_vec();
        channel.discard_buffered();
        self.shared
            .log
            .qtls(self.conn, self.t_ms(), true, early.len());
        Ok(Next::Qtls(early))
    }

    fn auth(
        &mut self,
        channel: &mut Channel,
        mechanism: &str,
        initial: Option<String>,
    ) -> io::Result<Next> {
        if !self.shared.options.auth_plain || self.greeting != Greeting::Ehlo {
            return Ok(self.error(channel, 503, "AUTH command used when not advertised"));
        }
        if self.authenticated {
            return Ok(self.error(channel, 503, "Already authenticated"));
        }
        if self.transaction.is_some() {
            return Ok(self.error(channel, 503, "AUTH not permitted during a transaction"));
        }
        if mechanism != "PLAIN" {
            return Ok(self.error(channel, 504, "Unrecognized authentication type"));
        }
        let response = match initial {
            Some(response) => response,
            None => {
                channel.queue("334 \r\n");
                // The client's answer holds the credentials: it is not logged.
                let Some(line) = channel.read_line(MAX_LINE)? else {
                    return Ok(Next::Close);
                };
                String::from_utf8_lossy(&line.bytes).trim().to_string()
            }
        };
        match auth::check_plain(&response) {
            Ok(()) => {
                self.authenticated = true;
                Ok(reply(channel, 235, "Authentication succeeded"))
            }
            Err(text) => Ok(self.error(channel, 501, text)),
        }
    }

    fn mail(&mut self, channel: &mut Channel, size: Option<u64>) -> Next {
        if self.greeting == Greeting::None {
            return self.error(channel, 503, "EHLO or HELO first");
        }
        if self.transaction.is_some() {
            return self.error(channel, 503, "Sender already given");
        }
        if size.is_some_and(|size| size > self.shared.options.message_limit()) {
            return reply(channel, 552, "Message size exceeds the limit");
        }
        self.transaction = Some(Transaction::default());
        reply(channel, 250, "OK")
    }

    fn rcpt(&mut self, channel: &mut Channel, path: &str) -> Next {
        let options = &self.shared.options;
        let Some(transaction) = self.transaction.as_mut() else {
            return self.error(channel, 503, "MAIL first");
        };
        let listed = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(path));
        if transaction.rcpts >= options.rcpt_limit() {
            reply(channel, 452, "Too many recipients")
        } else if listed(&options.reject_rcpt) {
            reply(channel, 550, &format!("<{path}>: recipient rejected"))
        } else if listed(&options.tempfail_rcpt) {
            reply(channel, 451, &format!("<{path}>: temporarily rejected"))
        } else {
            transaction.rcpts += 1;
            reply(channel, 250, "Accepted")
        }
    }

    fn data(&mut self, channel: &mut Channel) -> io::Result<Next> {
        let Some(transaction) = &self.transaction else {
            return Ok(self.error(channel, 503, "MAIL first"));
        };
        if transaction.chunking {
            return Ok(self.error(channel, 503, "DATA after BDAT"));
        }
        if transaction.rcpts == 0 {
            return Ok(reply(channel, 554, "No valid recipients"));
        }
        channel.queue(&single(
            354,
            "Enter message, ending with \".\" on a line by itself",
        ));
        match data::read_message(channel)? {
            Some(bytes) => Ok(self.finish_message(channel, bytes)),
            None => Ok(Next::Close),
        }
    }

    /// Takes the chunk's bytes off the input first, whatever the verdict, so the next command
    /// is found where it starts.
    fn bdat(&mut self, channel: &mut Channel, size: u64, last: bool) -> io::Result<Next> {
        if !self.shared.options.chunking {
            return Ok(self.error(channel, 500, "Unrecognized command"));
        }
        if !channel.skip_exact(size)? {
            return Ok(Next::Close);
        }
        if self.greeting != Greeting::Ehlo {
            return Ok(self.error(channel, 503, "EHLO first"));
        }
        let Some(transaction) = self.transaction.as_mut() else {
            return Ok(self.error(channel, 503, "MAIL first"));
        };
        if transaction.rcpts == 0 {
            if last {
                self.transaction = None;
            }
            return Ok(reply(channel, 554, "No valid recipients"));
        }
        transaction.chunking = true;
        transaction.bytes = transaction.bytes.saturating_add(size);
        if last {
            let bytes = transaction.bytes;
            return Ok(self.finish_message(channel, bytes));
        }
        Ok(reply(channel, 250, &format!("{size} bytes received")))
    }

    /// The end of a message: accepted (and logged) unless over the size limit.
    fn finish_message(&mut self, channel: &mut Channel, bytes: u64) -> Next {
        let Some(transaction) = self.transaction.take() else {
            return reply(channel, 503, "MAIL first");
        };
        if bytes > self.shared.options.message_limit() {
            return reply(channel, 552, "Message size exceeds the limit");
        }
        let id = self.shared.next_message_id();
        let log = &self.shared.log;
        log.message(self.conn, id, bytes, transaction.rcpts);
        reply(channel, 250, &format!("OK id={id}"))
    }

    fn help(&mut self, channel: &mut Channel) -> Next {
        let lines = [
            "Commands supported:",
            "HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT HELP",
        ];
        channel.queue(&multiline(214, &lines));
        Next::Continue
    }

    fn quit(&mut self, channel: &mut Channel) -> Next {
        let text = format!("{} closing connection", host(self.shared));
        channel.queue(&single(221, &text));
        Next::Close
    }
}

/// Queues a one-line reply and carries on.
fn reply(channel: &mut Channel, code: u16, text: &str) -> Next {
    channel.queue(&single(code, text));
    Next::Continue
}
