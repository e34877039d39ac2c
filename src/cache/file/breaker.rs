//! The shared tier's circuit breaker in the store file's header (one atomic word at
//! [`layout::H_SHARED_BREAKER`], outside the checksummed bytes), so that every process
//! using the file sees that Redis is down: an MTA that starts a process per delivery
//! pays a dead Redis's deadline once per back-off period, not once per process.
//! Files made before the word existed hold 0 there: closed.

use super::layout;
use super::FileBackend;
use std::sync::atomic::AtomicU64;

impl FileBackend {
    /// The breaker word.
    pub(crate) fn breaker_word(&self) -> &AtomicU64 {
        self.map.word(layout::H_SHARED_BREAKER)
    }
}
