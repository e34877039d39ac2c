//! The shared tier: a Redis server behind the local cache, so that what one host of a
//! fleet learned serves every host (docs/FLEET.md).
//!
//! The local tier stays first: a lookup asks Redis only on a local miss, once, and a hit
//! is stored locally. Learning writes through (`SET … PX`), an invalidation deletes there
//! too, and a new hold-down is written beside its entry. Every call to Redis has one
//! absolute deadline covering connect, AUTH, SELECT and the command; a failed or late
//! call opens a circuit breaker (in the store file's header when the cache has one, so
//! every process of the host sees it) and calls are skipped until its back-off passes.
//! A process keeps one connection, and makes a new one after `fork()` (the pid changed).
//!
//! This is the one part of the cache that does network I/O; it never panics on what
//! Redis sends, and a failure of any kind is a miss.

pub mod breaker;
mod link;
pub mod resp;
pub mod tls;
pub mod url;
pub mod value;

use crate::cache::{Entry, HoldDown};
use crate::caps::Capabilities;
use crate::key::PeerKey;
use parking_lot::Mutex;
use resp::{CallError, Connection, Endpoint, Reply};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use value::{Kind, Record};

/// Default deadline of one shared-tier call.
pub const DEFAULT_DEADLINE_MS: u32 = 20;
/// Default time calls are skipped after a failure.
pub const DEFAULT_BACKOFF_MS: u32 = 30_000;
/// Default prefix of every key the tier writes.
pub const DEFAULT_PREFIX: &str = "pipeconnect:";
/// The longest key prefix.
pub const PREFIX_MAX: usize = 128;

/// How the shared tier behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedConfig {
    /// Prefix of every Redis key (a namespace per fleet or per egress address group).
    pub prefix: String,
    /// One absolute deadline per call.
    pub deadline: Duration,
    /// How long calls are skipped after one failed.
    pub backoff: Duration,
    /// The longest time an entry learned elsewhere is kept locally, in seconds (0: as
    /// long as the shared copy lives).
    pub local_ttl_cap_secs: u64,
    /// A secret shared by the fleet: entries are signed (HMAC-SHA256) and unsigned or
    /// wrongly signed ones are refused. None: entries carry a checksum only.
    pub secret: Option<Vec<u8>>,
    /// Share entries across local (egress) addresses: the key in Redis leaves the local
    /// address out. Only where every egress address is treated alike by the servers.
    pub across_local_addresses: bool,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig {
            prefix: DEFAULT_PREFIX.to_string(),
            deadline: Duration::from_millis(DEFAULT_DEADLINE_MS as u64),
            backoff: Duration::from_millis(DEFAULT_BACKOFF_MS as u64),
            local_ttl_cap_secs: 0,
            secret: None,
            across_local_addresses: false,
        }
    }
}

/// The shared tier's counters (this process's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedStats {
    /// Local misses that Redis answered with a valid entry.
    pub hits: u64,
    /// Local misses that Redis did not have either (or had expired).
    pub misses: u64,
    /// Calls that failed (connection refused or broken, an error reply).
    pub errors: u64,
    /// Calls that ran out of their deadline.
    pub timeouts: u64,
    /// Calls not made because the circuit breaker was open.
    pub skipped_open: u64,
    /// Values refused: malformed, a bad checksum, or a bad or missing signature.
    pub rejected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    skipped_open: AtomicU64,
    rejected: AtomicU64,
}

/// What a shared lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The entry as learned.
    pub entry: Entry,
    /// When the shared copy stops being valid (Unix seconds).
    pub expires_at: u64,
    /// The key's hold-down record, when Redis has one.
    pub hold_down: Option<HoldDown>,
}

/// One record found by [`SharedTier::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The Redis key.
    pub redis_key: String,
    /// The key it is about, when the Redis key names one.
    pub key: Option<PeerKey>,
    /// The record, or why it was refused.
    pub record: Result<Record, value::Rejected>,
}

/// A connection to Redis for one process.
#[derive(Debug)]
pub struct SharedTier {
    config: SharedConfig,
    display: String,
    endpoint: Endpoint,
    tls: Option<tls::TlsSetup>,
    user: Option<String>,
    password: Option<String>,
    db: u32,
    conn: Mutex<Option<(u32, Connection)>>,
    local_breaker: AtomicU64,
    counters: Counters,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl SharedTier {
    /// A tier for the Redis at `url` (`redis://` or `unix://`; see [`url::parse`]). The
    /// host name is resolved now, once; nothing is connected until the first call.
    pub fn new(url: &str, config: SharedConfig) -> Result<SharedTier, String> {
        if config.prefix.len() > PREFIX_MAX || config.prefix.bytes().any(|b| b <= b' ') {
            return Err(format!(
                "the key prefix must be at most {PREFIX_MAX} bytes without spaces or controls"
            ));
        }
        if config.deadline.is_zero() || config.backoff.is_zero() {
            return Err("the deadline and the back-off must be above 0".into());
        }
        let t = url::parse(url)?;
        let endpoint = match (&t.tcp, &t.unix) {
            (Some((host, port)), _) => {
                let addrs: Vec<_> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect();
                if addrs.is_empty() {
                    return Err(format!("{host} has no address"));
                }
                Endpoint::Tcp(addrs)
            }
            (None, Some(p)) => Endpoint::Unix(p.into()),
            (None, None) => return Err("the URL names no server".into()),
        };
        let tls = match (&t.tcp, t.tls) {
            #[cfg(feature = "shared-redis-tls")]
            (Some((host, _)), true) => Some(tls::TlsSetup::new(
                host,
                t.ca_file.as_deref(),
                t.sni.as_deref(),
            )?),
            #[cfg(not(feature = "shared-redis-tls"))]
            (_, true) => {
                return Err(
                    "rediss:// needs the library built with the shared-redis-tls feature".into(),
                )
            }
            _ => None,
        };
        let display = match (&t.tcp, &t.unix) {
            (Some((h, p)), _) if t.tls => format!("rediss://{h}:{p}/{}", t.db),
            (Some((h, p)), _) => format!("redis://{h}:{p}/{}", t.db),
            (_, Some(p)) => format!("unix://{p}?db={}", t.db),
            _ => String::new(),
        };
        Ok(SharedTier {
            config,
            display,
            endpoint,
            tls,
            user: t.user,
            password: t.password,
            db: t.db,
            conn: Mutex::new(None),
            local_breaker: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    /// How the tier behaves.
    pub fn config(&self) -> &SharedConfig {
        &self.config
    }

    /// Where the tier points (without the password).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// This process's counters.
    pub fn stats(&self) -> SharedStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SharedStats {
            hits: l(&c.hits),
            misses: l(&c.misses),
            errors: l(&c.errors),
            timeouts: l(&c.timeouts),
            skipped_open: l(&c.skipped_open),
            rejected: l(&c.rejected),
        }
    }

    /// The Redis key of `key`'s record of `kind`.
    pub fn redis_key(&self, kind: Kind, key: &PeerKey) -> Vec<u8> {
        let shared = if self.config.across_local_addresses && key.local().is_some() {
            let mut k = PeerKey::new(key.server(), key.port(), key.tls()).unwrap_or(key.clone());
            if let Some(n) = key.ehlo_name() {
                k = k.clone().with_ehlo_name(n).unwrap_or(k);
            }
            k
        } else {
            key.clone()
        };
        let tag = match kind {
            Kind::Entry => "e:",
            Kind::HoldDown => "h:",
        };
        format!(
            "{}{tag}{}",
            self.config.prefix,
            hex(&shared.canonical_bytes())
        )
        .into_bytes()
    }

    /// Run `f` on this process's connection, under one deadline, unless the breaker
    /// (`word`, else the tier's own) is open. `None`: skipped or failed (counted).
    fn run<T>(
        &self,
        word: Option<&AtomicU64>,
        deadline: Duration,
        f: impl FnOnce(&mut Connection, Instant) -> Result<T, CallError>,
    ) -> Option<T> {
        let start = Instant::now();
        let deadline_at = start + deadline;
        let word = word.unwrap_or(&self.local_breaker);
        let backoff = self.config.backoff.as_millis() as u64;
        if !breaker::allow(word, breaker::now_ms(), backoff) {
            self.counters.skipped_open.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let Some(mut guard) = self.conn.try_lock_until(deadline_at) else {
            // Another thread holds the connection past our deadline: Redis answers too
            // slowly for the calls queued on it (or this process was forked while a
            // thread of its parent was in a call, and the lock will never come free).
            // Either way, open the breaker so that the next calls do not wait too.
            self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            breaker::failed(word, breaker::now_ms(), backoff);
            return None;
        };
        let pid = std::process::id();
        if guard.as_ref().is_some_and(|(p, _)| *p != pid) {
            // Made before a fork: the parent's. Closing this process's copy of the
            // descriptor leaves the parent's connection as it was.
            *guard = None;
        }
        let result = (|| {
            if guard.is_none() {
                let auth = self.password.as_deref().map(|p| (self.user.as_deref(), p));
                *guard = Some((
                    pid,
                    Connection::open(
                        &self.endpoint,
                        self.tls.as_ref(),
                        auth,
                        self.db,
                        deadline_at,
                    )?,
                ));
            }
            let (_, c) = guard.as_mut().expect("connected above");
            f(c, deadline_at)
        })();
        match result {
            Ok(v) => {
                breaker::succeeded(word);
                Some(v)
            }
            Err(e) => {
                *guard = None;
                let c = match e {
                    CallError::Timeout => &self.counters.timeouts,
                    _ => &self.counters.errors,
                };
                c.fetch_add(1, Ordering::Relaxed);
                breaker::failed(word, breaker::now_ms(), backoff);
                None
            }
        }
    }

    fn decode(&self, rkey: &[u8], kind: Kind, v: &[u8]) -> Option<Record> {
        match value::decode(rkey, v, self.config.secret.as_deref()) {
            Ok(r) if r.kind == kind => Some(r),
            _ => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Ask Redis for `key`'s entry and hold-down record (one round trip). `None` for a
    /// miss, an expired or refused value, and any failure (each counted). `word` is
    /// the breaker word (None: the tier's own); `now` the cache's time.
    pub fn fetch(&self, key: &PeerKey, word: Option<&AtomicU64>, now: u64) -> Option<Fetched> {
        let ekey = self.redis_key(Kind::Entry, key);
        let hkey = self.redis_key(Kind::HoldDown, &super::hold_down::hold_key(key));
        let reply = self.run(word, self.config.deadline, |c, d| {
            c.call(&[b"MGET", &ekey, &hkey], d)
        })?;
        let (ev, hv) = match reply {
            Reply::Array(Some(items)) if items.len() == 2 => {
                let mut it = items.into_iter();
                (it.next(), it.next())
            }
            _ => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let bulk = |r: Option<Reply>| match r {
            Some(Reply::Bulk(Some(b))) => Some(b),
            _ => None,
        };
        let found = bulk(ev)
            .and_then(|v| self.decode(&ekey, Kind::Entry, &v))
            .filter(|r| now < r.expires_at)
            .and_then(|r| match Capabilities::decode(&r.payload) {
                Ok(caps) => Some((caps, r)),
                Err(_) => {
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    None
                }
            });
        let Some((caps, r)) = found else {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let hold_down = bulk(hv)
            .and_then(|v| self.decode(&hkey, Kind::HoldDown, &v))
            .filter(|r| now < r.expires_at)
            .and_then(|r| HoldDown::decode(&r.payload));
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Some(Fetched {
            entry: Entry {
                caps,
                learned_at: r.learned_at,
            },
            expires_at: r.expires_at,
            hold_down,
        })
    }

    fn put(&self, key: &PeerKey, record: Record, now: u64, word: Option<&AtomicU64>) -> bool {
        let rkey = self.redis_key(record.kind, key);
        let ttl_ms = record
            .expires_at
            .saturating_sub(now)
            .max(1)
            .saturating_mul(1000);
        let v = value::encode(&rkey, &record, self.config.secret.as_deref());
        let ttl = ttl_ms.to_string();
        self.run(word, self.config.deadline, |c, d| {
            match c.call(&[b"SET", &rkey, &v, b"PX", ttl.as_bytes()], d)? {
                Reply::Simple(_) => Ok(()),
                other => Err(CallError::Protocol(format!("SET answered {other:?}"))),
            }
        })
        .is_some()
    }

    /// Write `key`'s entry through, to live until `expires_at`.
    pub fn store(
        &self,
        key: &PeerKey,
        entry: &Entry,
        expires_at: u64,
        now: u64,
        word: Option<&AtomicU64>,
    ) -> bool {
        let record = Record {
            kind: Kind::Entry,
            learned_at: entry.learned_at,
            expires_at,
            payload: entry.caps.encode(),
        };
        self.put(key, record, now, word)
    }

    /// Write a hold-down record (for its hold key), kept until `expires_at`.
    pub fn store_hold_down(
        &self,
        hold_key: &PeerKey,
        h: &HoldDown,
        expires_at: u64,
        now: u64,
        word: Option<&AtomicU64>,
    ) -> bool {
        let record = Record {
            kind: Kind::HoldDown,
            learned_at: h.since,
            expires_at,
            payload: h.encode().to_vec(),
        };
        self.put(hold_key, record, now, word)
    }

    /// Delete `key`'s entry in Redis. `Some(true)` when there was one.
    pub fn delete(&self, key: &PeerKey, word: Option<&AtomicU64>) -> Option<bool> {
        let rkey = self.redis_key(Kind::Entry, key);
        self.run(word, self.config.deadline, |c, d| {
            match c.call(&[b"DEL", &rkey], d)? {
                Reply::Int(n) => Ok(n > 0),
                other => Err(CallError::Protocol(format!("DEL answered {other:?}"))),
            }
        })
    }

    /// Delete the Redis keys named (for tools). The count deleted.
    pub fn delete_keys(&self, keys: &[String], deadline: Duration) -> Option<u64> {
        if keys.is_empty() {
            return Some(0);
        }
        self.run(None, deadline, |c, d| {
            let mut args: Vec<&[u8]> = vec![b"DEL"];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            match c.call(&args, d)? {
                Reply::Int(n) => Ok(n.max(0) as u64),
                other => Err(CallError::Protocol(format!("DEL answered {other:?}"))),
            }
        })
    }

    /// Every record under the prefix (for tools), at most `limit`, under one deadline.
    pub fn scan(&self, limit: usize, deadline: Duration) -> Option<Vec<Scanned>> {
        let pattern = format!("{}*", self.config.prefix);
        let prefix = self.config.prefix.clone();
        let secret = self.config.secret.clone();
        self.run(None, deadline, |c, d| {
            let mut cursor = b"0".to_vec();
            let mut keys: Vec<Vec<u8>> = Vec::new();
            loop {
                let r = c.call(
                    &[
                        b"SCAN",
                        &cursor,
                        b"MATCH",
                        pattern.as_bytes(),
                        b"COUNT",
                        b"500",
                    ],
                    d,
                )?;
                let Reply::Array(Some(mut parts)) = r else {
                    return Err(CallError::Protocol("SCAN answered oddly".into()));
                };
                if parts.len() != 2 {
                    return Err(CallError::Protocol("SCAN answered oddly".into()));
                }
                let batch = parts.pop();
                let next = parts.pop();
                if let Some(Reply::Array(Some(ks))) = batch {
                    keys.extend(ks.into_iter().filter_map(|k| match k {
                        Reply::Bulk(Some(b)) => Some(b),
                        _ => None,
                    }));
                }
                match next {
                    Some(Reply::Bulk(Some(n))) => cursor = n,
                    _ => return Err(CallError::Protocol("SCAN answered oddly".into())),
                }
                if cursor == b"0" || keys.len() >= limit {
                    break;
                }
            }
            keys.truncate(limit);
            let mut out = Vec::new();
            for chunk in keys.chunks(200) {
                let mut args: Vec<&[u8]> = vec![b"MGET"];
                args.extend(chunk.iter().map(|k| k.as_slice()));
                let Reply::Array(Some(vals)) = c.call(&args, d)? else {
                    return Err(CallError::Protocol("MGET answered oddly".into()));
                };
                for (k, v) in chunk.iter().zip(vals) {
                    let Reply::Bulk(Some(v)) = v else { continue };
                    let name = String::from_utf8_lossy(k).into_owned();
                    let key = name
                        .strip_prefix(prefix.as_str())
                        .and_then(|r| r.get(2..))
                        .and_then(unhex)
                        .and_then(|b| PeerKey::from_bytes(&b).ok());
                    out.push(Scanned {
                        record: value::decode(k, &v, secret.as_deref()),
                        redis_key: name,
                        key,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Whether Redis answers now (PING), bypassing the breaker's state but not its
    /// deadline; for tools.
    pub fn ping(&self, deadline: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let word = AtomicU64::new(0);
        match self.run(Some(&word), deadline, |c, d| c.call(&[b"PING"], d)) {
            Some(Reply::Simple(_)) => Ok(start.elapsed()),
            Some(r) => Err(format!("PING answered {r:?}")),
            None => Err("no answer within the deadline".into()),
        }
    }
}
