//! The sink's QHLO cookies (SMTP QUICKSTART, experimental): a master secret drawn at start,
//! one derived secret per rotation period, cookies from the library's
//! `pipeconnect::server::quickstart`.

use std::fs::File;
use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipeconnect::server::quickstart::{cookie, cookie_valid, epoch_secret};

/// How long one secret is current; a cookie is accepted for one to two periods.
pub const PERIOD: Duration = Duration::from_secs(3600);

pub struct QhloKeys {
    master: [u8; 32],
}

impl QhloKeys {
    /// A fresh master secret from the system's random source.
    pub fn new() -> io::Result<QhloKeys> {
        let mut master = [0u8; 32];
        File::open("/dev/urandom")?.read_exact(&mut master)?;
        Ok(QhloKeys { master })
    }

    fn epoch() -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() / PERIOD.as_secs()
    }

    fn secret(&self, epoch: u64) -> Option<[u8; 32]> {
        epoch_secret(&self.master, epoch).ok()
    }

    /// The cookie for this client and capability fingerprint, this period.
    pub fn cookie(&self, client: &str, fingerprint: u64) -> Option<String> {
        cookie(&self.secret(Self::epoch())?, client, fingerprint).ok()
    }

    /// Whether `presented` is this period's or the previous period's cookie.
    pub fn valid(&self, client: &str, fingerprint: u64, presented: &str) -> bool {
        let epoch = Self::epoch();
        [epoch, epoch.saturating_sub(1)].iter().any(|&e| {
            self.secret(e)
                .is_some_and(|s| cookie_valid(&s, client, fingerprint, presented).unwrap_or(false))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_recognised_for_their_client_and_capabilities_only() {
        let keys = QhloKeys::new().unwrap();
        let c = keys.cookie("127.0.0.1", 9).unwrap();
        assert!(keys.valid("127.0.0.1", 9, &c));
        assert!(!keys.valid("127.0.0.2", 9, &c));
        assert!(!keys.valid("127.0.0.1", 10, &c));
        let other = QhloKeys::new().unwrap();
        assert!(!other.valid("127.0.0.1", 9, &c));
    }
}
