//! Helpers shared by the integration tests: running the `pipeconnect` binary, a bound on every
//! test's time, a small SMTP client, and reading the sink's log.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub mod tls;

/// No test may take longer than this.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// No single read or write may take longer than this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub const BIN: &str = env!("CARGO_BIN_EXE_pipeconnect");

/// The processes a test started; all are killed when the test ends, however it ends.
#[derive(Clone, Default)]
pub struct Procs(Arc<Mutex<Vec<Child>>>);

impl Procs {
    fn add(&self, child: Child) {
        self.0.lock().unwrap().push(child);
    }

    fn kill_all(&self) {
        let mut children = match self.0.lock() {
            Ok(children) => children,
            Err(poisoned) => poisoned.into_inner(),
        };
        for child in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        children.clear();
    }

    /// Waits for every process to exit by itself (used with `--max-connections`).
    pub fn wait_all_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let all_done = self
                .0
                .lock()
                .unwrap()
                .iter_mut()
                .all(|child| matches!(child.try_wait(), Ok(Some(_))));
            if all_done {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs a test body in its own thread and fails the test if it takes longer than
/// [`TEST_TIMEOUT`]. The processes it started through `procs` are killed at the end.
pub fn with_timeout<F>(body: F)
where
    F: FnOnce(&Procs) + Send + 'static,
{
    let procs = Procs::default();
    let (done_tx, done_rx) = mpsc::channel();
    let body_procs = procs.clone();
    let handle = thread::spawn(move || {
        body(&body_procs);
        let _ = done_tx.send(());
    });
    let finished = done_rx.recv_timeout(TEST_TIMEOUT);
    procs.kill_all();
    match finished {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: report its panic.
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test did not finish within {TEST_TIMEOUT:?}")
        }
    }
}

/// Starts `pipeconnect <args>` and returns the address from its `listening` line.
pub fn spawn_listening(procs: &Procs, args: &[&str]) -> SocketAddr {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pipeconnect");
    let stdout = child.stdout.take().unwrap();
    procs.add(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep draining until the process ends.
        for _ in lines {}
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("pipeconnect printed no listening line");
    let addr = first
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    addr.parse().expect("listening address")
}

/// A running `pipeconnect serve` with its log in a fresh file.
pub struct Sink {
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Sink {
    pub fn start(procs: &Procs, args: &[&str]) -> Sink {
        let log = fresh_log_path();
        let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--log"];
        all.push(log.to_str().unwrap());
        all.extend_from_slice(args);
        let addr = spawn_listening(procs, &all);
        Sink { addr, log }
    }

    pub fn connect(&self) -> Smtp<TcpStream> {
        Smtp::new(connect(self.addr))
    }

    /// The log's lines now.
    pub fn log_lines(&self) -> Vec<String> {
        read_lines(&self.log)
    }

    /// Waits until a log line contains `needle`, and returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no log line contains {needle:?}; log:\n{}",
                    self.log_lines().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.log);
    }
}

fn fresh_log_path() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "pipeconnect-tools-test-{}-{n}.log",
        std::process::id()
    ))
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A TCP connection with both timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One SMTP reply: its code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// A minimal SMTP client over any stream (TCP, or TLS after STARTTLS).
pub struct Smtp<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Smtp<S> {
    pub fn new(stream: S) -> Self {
        Smtp {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Reads once from the stream into the buffer; returns how many bytes came.
    pub fn read_once(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Received and not yet parsed, as text.
    pub fn buffered_text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    pub fn read_reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line();
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Reply { code, lines };
            }
        }
    }

    /// Reads a reply and checks its code.
    pub fn expect(&mut self, code: u16) -> Reply {
        let reply = self.read_reply();
        assert_eq!(reply.code, code, "unexpected reply {reply:?}");
        reply
    }

    /// Checks that the server closed the connection (after everything already received).
    pub fn expect_closed(&mut self) {
        assert!(self.buf.is_empty(), "unread: {:?}", self.buffered_text());
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Ok(n) => panic!(
                "expected close, got {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("expected close, got {e}"),
        }
    }

    /// The stream, for a TLS handshake; nothing may be left unread.
    pub fn into_inner(self) -> S {
        assert!(self.buf.is_empty(), "unread: {:?}", self.buffered_text());
        self.stream
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8(line).expect("ASCII reply");
                return text.trim_end_matches(['\r', '\n']).to_string();
            }
            let n = self.read_once();
            assert!(
                n > 0,
                "connection closed; unread: {:?}",
                self.buffered_text()
            );
        }
    }
}
