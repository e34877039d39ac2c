//! The one place time enters the library.
//!
//! Every age and expiry is computed from [`Clock::now`], in whole seconds since the Unix
//! epoch. Tests and tools pin the clock to a chosen instant; production uses the system
//! clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix seconds, shared by a cache's threads.
#[derive(Debug, Default)]
pub struct Clock {
    /// 0 means "read the system clock"; anything else is a pinned instant.
    pinned: AtomicU64,
}

impl Clock {
    /// A clock that reads the system time.
    pub const fn system() -> Self {
        Clock {
            pinned: AtomicU64::new(0),
        }
    }

    /// A clock pinned at `unix_seconds` (0 means the system clock).
    pub fn pinned(unix_seconds: u64) -> Self {
        Clock {
            pinned: AtomicU64::new(unix_seconds),
        }
    }

    /// Pin the clock at `unix_seconds`, or return to the system clock with 0.
    pub fn set(&self, unix_seconds: u64) {
        self.pinned.store(unix_seconds, Ordering::Relaxed);
    }

    /// The current time in Unix seconds.
    pub fn now(&self) -> u64 {
        match self.pinned.load(Ordering::Relaxed) {
            0 => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            t => t,
        }
    }
}
