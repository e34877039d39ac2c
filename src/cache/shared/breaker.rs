//! The circuit breaker over one atomic word: 0 when closed, else the wall-clock time in
//! milliseconds until which no call is made. The word may live in the store file's
//! header (every process of the host sees it) or in the process.
//!
//! When the back-off has passed, the one caller that moves the word forward (by
//! compare-and-swap) probes Redis; every other caller keeps skipping until the probe
//! ends. So a dead Redis costs the host one deadline per back-off period.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a call may go ahead now (`false`: skipped while open).
pub fn allow(word: &AtomicU64, now_ms: u64, backoff_ms: u64) -> bool {
    let until = word.load(Ordering::Acquire);
    if until == 0 {
        return true;
    }
    // A time further ahead than one back-off: the clock went back. Treat as passed.
    if now_ms < until && until - now_ms <= backoff_ms {
        return false;
    }
    word.compare_exchange(
        until,
        now_ms.saturating_add(backoff_ms).max(1),
        Ordering::AcqRel,
        Ordering::Acquire,
    )
    .is_ok()
}

/// A call succeeded: close.
pub fn succeeded(word: &AtomicU64) {
    if word.load(Ordering::Relaxed) != 0 {
        word.store(0, Ordering::Release);
    }
}

/// A call failed or timed out: open for `backoff_ms`.
pub fn failed(word: &AtomicU64, now_ms: u64, backoff_ms: u64) {
    word.store(now_ms.saturating_add(backoff_ms).max(1), Ordering::Release);
}

/// The wall clock in milliseconds (shared by processes, unlike a monotonic clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_skips_and_lets_one_probe() {
        let w = AtomicU64::new(0);
        assert!(allow(&w, 1000, 500));
        failed(&w, 1000, 500);
        assert!(!allow(&w, 1200, 500));
        assert!(!allow(&w, 1499, 500));
        // The back-off passed: one probe, the next caller skips.
        assert!(allow(&w, 1500, 500));
        assert!(!allow(&w, 1501, 500));
        succeeded(&w);
        assert!(allow(&w, 1502, 500));
    }

    #[test]
    fn clock_gone_back_does_not_hold_forever() {
        let w = AtomicU64::new(0);
        failed(&w, 1_000_000, 500);
        assert!(allow(&w, 10, 500));
    }
}
