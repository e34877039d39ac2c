//! A running `pipeconnect serve` for the tests that drive a client against it, stopped by
//! its pid when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `target/<profile>/pipeconnect`.
pub fn tools_bin() -> PathBuf {
    let p = super::lib_dir().join("pipeconnect");
    assert!(
        p.exists(),
        "{} not found: build the tools crate first (cargo build --workspace; make test does)",
        p.display()
    );
    p
}

/// A running `pipeconnect serve` logging to `<dir>/<name>.log`.
pub struct Sink {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Sink {
    /// Start a sink on `listen` (`127.0.0.1:0` for any port) with extra `args`, and wait
    /// (at most 10 s) for its `listening ADDR` line.
    pub fn start(dir: &Path, name: &str, listen: &str, args: &[&str]) -> Sink {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(tools_bin())
            .args(["serve", "--listen", listen, "--log"])
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pipeconnect serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        let Ok(first) = rx.recv_timeout(Duration::from_secs(10)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pipeconnect serve printed no listening line");
        };
        let addr = first
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {first:?}"));
        Sink { child, addr, log }
    }

    /// Its port, as text for a command line.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// The log, after waiting (at most 10 s) until it holds `closed` lines for `conns`
    /// connections, so that every line of those connections is in.
    pub fn log_after(&self, conns: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let closed = text.lines().filter(|l| l.ends_with(" closed")).count();
            if closed >= conns || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop it now; its address, for a sink started after it on the same port.
    pub fn stop(mut self) -> SocketAddr {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.addr
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
