//! The one place time enters the library.
//!
//! Every age and expiry is computed from [`Clock::now`], in whole seconds since the Unix
//! epoch. Tests and tools pin the clock to a chosen instant; production uses the system
//! clock.

use std::sync::atomic::{AtomicU64, Ordering};

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
            0 => system_seconds(),
            t => t,
        }
    }
}

/// The system's wall clock in whole seconds. The coarse clock is read: a lookup needs
/// seconds, not nanoseconds, and the coarse clock costs a third of the precise one.
fn system_seconds() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc == 0 && ts.tv_sec > 0 {
        ts.tv_sec as u64
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_agrees_with_std_and_pinning_overrides_it() {
        let c = Clock::system();
        let std_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(c.now().abs_diff(std_now) <= 1);
        c.set(42);
        assert_eq!(c.now(), 42);
        c.set(0);
        assert!(c.now().abs_diff(std_now) <= 1);
    }
}
