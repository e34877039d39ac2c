//! A real `redis-server` for the shared-tier tests: started on a free loopback port
//! with its own folder, stopped by pid. Without `redis-server` a test is skipped, except
//! under CI=true, where that is a failure.
#![allow(dead_code)]

use pipeconnect::cache::shared::resp::{Connection, Endpoint, Reply};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    persistence: bool,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether redis-server can be run; panics under CI=true when it cannot.
pub fn available() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("redis-server is not installed (CI=true: a missing peer is a failure)");
    }
    if !ok {
        eprintln!("skipped: redis-server is not installed");
    }
    ok
}

impl Redis {
    /// A fresh server, or None when redis-server is missing (outside CI).
    pub fn start(name: &str, persistence: bool) -> Option<Redis> {
        Redis::start_with(name, persistence, &[])
    }

    /// As [`Redis::start`], with more `redis-server` arguments (e.g. `--requirepass`).
    pub fn start_with(name: &str, persistence: bool, extra: &[&str]) -> Option<Redis> {
        if !available() {
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("pipeconnect-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut r = Redis {
            port: free_port(),
            dir,
            child: None,
            persistence,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no", "--logfile", "redis.log"]);
        if self.persistence {
            cmd.args([
                "--save",
                "1 1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]);
        } else {
            cmd.args(["--save", "", "--appendonly", "no"]);
        }
        cmd.args(&self.extra);
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start redis-server"));
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.try_admin(&[b"PING"]).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("running")
    }

    fn try_admin(&self, args: &[&[u8]]) -> Option<Reply> {
        let ep = Endpoint::Tcp(vec![([127, 0, 0, 1], self.port).into()]);
        let d = Instant::now() + Duration::from_secs(5);
        let pass = self
            .extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra.get(i + 1));
        let auth = pass.map(|p| (None, p.as_str()));
        let mut c = Connection::open(&ep, None, auth, 0, d).ok()?;
        c.call(args, d).ok()
    }

    /// A command on a connection of its own (panics when Redis does not answer).
    pub fn admin(&self, args: &[&[u8]]) -> Reply {
        self.try_admin(args).expect("redis answers")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    pub fn stop(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port and folder.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.resume();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
