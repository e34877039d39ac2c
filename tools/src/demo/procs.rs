//! The demo's helpers: its work folder, the sink and link running in the background, and
//! client runs with a time limit.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a background server may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A folder for the store file and the logs, removed at the end unless kept.
pub struct Work {
    root: PathBuf,
    keep: bool,
}

impl Work {
    pub fn new(keep: bool) -> Result<Work, String> {
        let root = std::env::temp_dir().join(format!("pipeconnect-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot make {}: {e}", root.display()))?;
        Ok(Work { root, keep })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A child process of this program (`serve` or `delay`), killed when dropped.
pub struct Background {
    child: Child,
    pub addr: SocketAddr,
}

impl Background {
    /// Starts `exe args`, with stderr into `errors`, and waits for its `listening` line.
    pub fn start(exe: &Path, args: &[&str], errors: &Path) -> Result<Background, String> {
        let err =
            File::create(errors).map_err(|e| format!("cannot make {}: {e}", errors.display()))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {} {}: {e}", exe.display(), args[0]))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let mut bg = Background {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let first = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            let text = std::fs::read_to_string(errors).unwrap_or_default();
            format!("pipeconnect {} did not start:\n{text}", args[0])
        })?;
        bg.addr = first
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("pipeconnect {}: unexpected line {first:?}", args[0]))?;
        Ok(bg)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end, killing it after `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{:?} took longer than {limit:?}",
                    cmd.get_program()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for {:?}: {e}", cmd.get_program())),
        }
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}
