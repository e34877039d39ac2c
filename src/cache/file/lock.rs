//! The writers' lock of one set: a word in the shared file that a process killed while
//! holding it cannot keep forever.
//!
//! The word is 0 when free, else `pid << 32 | nonce`: the holder's process id (read with
//! `getpid()` at every acquisition, so a handle inherited across `fork()` locks as the
//! child) and a per-acquisition number, so a waiter can tell one long hold from many
//! short ones. A waiter takes the lock over (compare-and-swap from the word it saw):
//! - at once, when the holder's process is gone (`kill(pid, 0)` fails with `ESRCH`) or
//!   the word holds no plausible process id;
//! - after [`STALE_AFTER`], when the same word stays in place that long whatever the
//!   holder's state (a stopped process, or a recycled process id). A hold lasts a few
//!   microseconds; anything this long is not a live writer at work.
//!
//! Taking over from a writer that is in fact still running cannot make a reader accept a
//! torn record: every record carries a checksum and readers only accept a slot whose
//! seqlock version was even and unchanged across the copy and whose checksum matches
//! (see `slot.rs`). The worst case is a record lost, as a cache may.

use super::map::Mapping;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long one hold may last before waiters take the lock over regardless of the
/// holder.
pub(crate) const STALE_AFTER: Duration = Duration::from_millis(500);

/// Spins before yielding the processor.
const SPINS: u32 = 64;
/// Yields before sleeping between attempts.
const YIELDS: u32 = 64;
/// How often (in attempts, past the spins) the holder's liveness is checked.
const CHECK_EVERY: u32 = 16;

static NONCE: AtomicU32 = AtomicU32::new(1);

/// A held set lock; released on drop (only if still ours).
pub(crate) struct SetLock<'a> {
    map: &'a Mapping,
    off: usize,
    word: u64,
}

impl Drop for SetLock<'_> {
    fn drop(&mut self) {
        // If the lock was taken over, the word is no longer ours: leave it.
        let _ = self.map.word(self.off).compare_exchange(
            self.word,
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

fn holder_is_gone(word: u64) -> bool {
    let pid = (word >> 32) as i64;
    if pid <= 0 || pid > i32::MAX as i64 {
        return true; // garbage: no process holds this
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Take the lock word at byte offset `off`. Always succeeds, waiting at most about
/// [`STALE_AFTER`] plus scheduling delays.
pub(crate) fn lock(map: &Mapping, off: usize) -> SetLock<'_> {
    let w = map.word(off);
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() } as u32 as u64;
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed).max(1) as u64;
    let me = pid << 32 | nonce;
    let mut seen = 0u64;
    let mut seen_since = None::<Instant>;
    let mut attempt: u32 = 0;
    loop {
        let cur = w.load(Ordering::Relaxed);
        if cur == 0 {
            if w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return SetLock { map, off, word: me };
            }
        } else {
            if cur != seen {
                seen = cur;
                seen_since = None;
            }
            if attempt >= SPINS && attempt % CHECK_EVERY == 0 {
                let since = *seen_since.get_or_insert_with(Instant::now);
                let own_process = (cur >> 32) == pid;
                if (!own_process && holder_is_gone(cur)) || since.elapsed() >= STALE_AFTER {
                    if w.compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return SetLock { map, off, word: me };
                    }
                    continue;
                }
            }
        }
        attempt = attempt.saturating_add(1);
        if attempt < SPINS {
            std::hint::spin_loop();
        } else if attempt < SPINS + YIELDS {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}
