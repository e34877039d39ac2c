//! `rediss://`: the shared tier over TLS (rustls) to a real redis-server with its own CA,
//! AUTH, and the same one deadline. Built with `--features shared-redis-tls`.
#![cfg(feature = "shared-redis-tls")]

use pipeconnect::cache::shared::SharedConfig;
use pipeconnect::cache::Cache;
use pipeconnect::{Capabilities, ParseOptions, PeerKey, TlsState};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct TlsRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn have(cmd: &str, arg: &str) -> bool {
    let ok = Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{cmd} is not installed (CI=true: a missing peer is a failure)");
    }
    ok
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA named `name` in `dir` (name.pem, name.key).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

fn start(name: &str) -> Option<TlsRedis> {
    if !have("redis-server", "--version") || !have("openssl", "version") {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("pc-redis-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca(&dir, "ca");
    make_ca(&dir, "other-ca");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:redis.test,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=redis.test",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
        .args(["--requirepass", "pw", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "redis-server (TLS) did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(TlsRedis { child, port, dir })
}

fn caps() -> Capabilities {
    Capabilities::parse_ehlo(
        b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .unwrap()
}

fn cache(url: &str, deadline_ms: u64) -> Cache {
    let c = Cache::in_memory(Default::default());
    c.attach_shared(
        url,
        SharedConfig {
            prefix: "tls:".into(),
            deadline: Duration::from_millis(deadline_ms),
            backoff: Duration::from_millis(200),
            ..SharedConfig::default()
        },
    )
    .unwrap();
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn two_caches_share_over_tls_and_a_wrong_ca_is_refused() {
    let Some(r) = start("share") else { return };
    let ca = r.dir.join("ca.pem");
    let url = format!("rediss://:pw@127.0.0.1:{}?ca={}", r.port, ca.display());
    let k = PeerKey::parse("192.0.2.5", 25, TlsState::Cleartext).unwrap();
    let a = cache(&url, 500);
    a.learn(&k, caps());
    let b = cache(&url, 500);
    assert!(b.lookup(&k).is_some(), "{:?}", b.stats());
    assert_eq!(b.stats().shared_hits, 1);
    // By name, with the name the certificate carries.
    let named = format!(
        "rediss://:pw@127.0.0.1:{}?ca={}&sni=redis.test",
        r.port,
        ca.display()
    );
    assert!(cache(&named, 500).lookup(&k).is_some());
    // Another CA, or a name the certificate does not carry: an error, no entry.
    let other = format!(
        "rediss://:pw@127.0.0.1:{}?ca={}",
        r.port,
        r.dir.join("other-ca.pem").display()
    );
    let c = cache(&other, 500);
    assert!(c.lookup(&k).is_none());
    assert_eq!(c.stats().shared_errors, 1);
    let wrong_name = format!(
        "rediss://:pw@127.0.0.1:{}?ca={}&sni=elsewhere.test",
        r.port,
        ca.display()
    );
    let c = cache(&wrong_name, 500);
    assert!(c.lookup(&k).is_none());
    assert_eq!(c.stats().shared_errors, 1);
    // Plain RESP to the TLS port: no answer that parses, an error or a timeout.
    let c = cache(&format!("redis://:pw@127.0.0.1:{}", r.port), 100);
    assert!(c.lookup(&k).is_none());
    assert_eq!(c.stats().shared_hits, 0);
}

#[test]
fn tls_costs_and_a_stopped_server_within_the_deadline() {
    let Some(r) = start("costs") else { return };
    let url = format!(
        "rediss://:pw@127.0.0.1:{}?ca={}",
        r.port,
        r.dir.join("ca.pem").display()
    );
    let k = PeerKey::parse("192.0.2.6", 25, TlsState::Cleartext).unwrap();
    let fresh: Vec<Duration> = (0..20)
        .map(|_| {
            let c = cache(&url, 500);
            let t = Instant::now();
            let _ = c.lookup(&k);
            let took = t.elapsed();
            assert_eq!(c.stats().shared_misses, 1, "{:?}", c.stats());
            took
        })
        .collect();
    let c = cache(&url, 500);
    let _ = c.lookup(&k);
    let warm: Vec<Duration> = (0..300)
        .map(|_| {
            let t = Instant::now();
            let _ = c.lookup(&k);
            t.elapsed()
        })
        .collect();
    println!(
        "TLS: fresh first call (connect, handshake, AUTH, MGET): median {:?}; warm call: median {:?}",
        median(fresh),
        median(warm)
    );
    // Stopped: a fresh connection's handshake never completes; the deadline holds.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(r.child.id() as i32, libc::SIGSTOP) };
    let d = cache(&url, 20);
    let t = Instant::now();
    assert!(d.lookup(&k).is_none());
    let took = t.elapsed();
    assert!(took < Duration::from_millis(60), "{took:?}");
    assert_eq!(d.stats().shared_timeouts, 1);
    // And the warm connection too.
    let t = Instant::now();
    assert!(c
        .lookup(&PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap())
        .is_none());
    assert!(t.elapsed() < Duration::from_millis(560));
    unsafe { libc::kill(r.child.id() as i32, libc::SIGCONT) };
}
