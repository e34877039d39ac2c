//! The writers' lock of one set: a word in the shared file that a process killed while
//! holding it cannot keep forever.
//!
//! The word is 0 when free, else `pid << 32 | nonce`: the holder's process id (read with
//! `getpid()` at every acquisition, so a handle inherited across `fork()` locks as the
//! child) and a per-acquisition number, always odd, so the word itself can serve as the
//! odd "being written" version of a slot (see `slot.rs`) and a waiter can tell one long
//! hold from many short ones. A waiter takes the lock over (compare-and-swap from the
//! word it saw):
//! - at once, when the word holds no plausible process id, or when the holder's process
//!   is gone (`kill(pid, 0)` fails with `ESRCH`) and "no such process" can be trusted:
//!   only while every process that ever opened the file was in the same pid namespace
//!   (see [`esrch_is_trusted`]);
//! - after [`STALE_AFTER`], when the same word stays in place that long whatever the
//!   holder's state (a stopped process, or a recycled process id). A hold lasts a few
//!   microseconds; anything this long is not a live writer at work.
//!
//! Holding the lock is not what makes a write safe: a holder that stalls past
//! [`STALE_AFTER`] and resumes still believes it holds the lock. Every slot write
//! therefore moves the slot's version with compare-and-swap operations (from the version
//! the writer read to its own lock word, and from its lock word to a fresh even version);
//! a writer whose set was taken over finds the version changed and gives up, and a slot
//! left odd by a writer that may still be alive is never written by anyone else (see
//! `slot.rs`).

use super::layout::{FLAG_FOREIGN_PID_NS, H_FLAGS};
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

static NONCE: AtomicU32 = AtomicU32::new(0);

/// A held set lock; released on drop (only if still ours).
pub(crate) struct SetLock<'a> {
    map: &'a Mapping,
    off: usize,
    word: u64,
}

impl SetLock<'_> {
    /// The lock word this hold wrote (odd; unique to this acquisition).
    pub(crate) fn word(&self) -> u64 {
        self.word
    }
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

/// Whether `kill(pid, 0)` failing with `ESRCH` proves a holder dead: only while no
/// process of another pid namespace has opened the file (the header's sticky flag).
pub(crate) fn esrch_is_trusted(map: &Mapping) -> bool {
    map.word(H_FLAGS).load(Ordering::Relaxed) & FLAG_FOREIGN_PID_NS == 0
}

/// Whether the process that wrote `word` (a lock word, or a slot's odd version) is
/// known to be gone. `false` when it may be alive.
pub(crate) fn holder_is_gone(map: &Mapping, word: u64) -> bool {
    let pid = (word >> 32) as i64;
    if pid <= 0 || pid > i32::MAX as i64 {
        return true; // garbage: no process holds this
    }
    if !esrch_is_trusted(map) {
        // The pid may be one of another namespace, where it names a live process that
        // this one cannot see.
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn my_word() -> u64 {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() } as u32 as u64;
    let nonce = (NONCE.fetch_add(1, Ordering::Relaxed) << 1 | 1) as u64;
    pid << 32 | nonce
}

/// One attempt at the lock word at byte offset `off`: `None` when it is held.
pub(crate) fn try_lock(map: &Mapping, off: usize) -> Option<SetLock<'_>> {
    let me = my_word();
    map.word(off)
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| SetLock { map, off, word: me })
}

/// Take the lock word at byte offset `off`. Always succeeds, waiting at most about
/// [`STALE_AFTER`] plus scheduling delays.
pub(crate) fn lock(map: &Mapping, off: usize) -> SetLock<'_> {
    let w = map.word(off);
    let me = my_word();
    let pid = me >> 32;
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
                if (!own_process && holder_is_gone(map, cur)) || since.elapsed() >= STALE_AFTER {
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
