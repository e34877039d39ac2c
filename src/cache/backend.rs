//! What a backing store of the capability cache provides. The TTL and caching rules
//! live in [`super::Cache`]; a backend stores, evicts and counts.

use super::{CacheStats, Entry, HoldDownStore};
use crate::key::PeerKey;
use std::fmt::Debug;
use std::sync::atomic::AtomicU64;

/// A store of entries keyed by [`PeerKey`]. Implementations are safe to share between
/// threads and count their own [`CacheStats`]. Each also keeps hold-down records
/// ([`HoldDownStore`]), apart from the entries, so that removing an entry leaves them.
pub trait Backend: HoldDownStore + Send + Sync + Debug {
    /// The entry for `key` when `live` says it is still valid (a hit). An entry that is
    /// not live is removed and counted as an expiration; both that and no entry are a
    /// miss.
    fn lookup(&self, key: &PeerKey, live: &dyn Fn(&Entry) -> bool) -> Option<Entry>;
    /// Write `entry` for `key`, replacing any older one, evicting if full.
    fn insert(&self, key: &PeerKey, entry: Entry);
    /// Remove `key`'s entry; `true` (and an invalidation counted) if there was one.
    fn remove(&self, key: &PeerKey) -> bool;
    /// Remove every entry.
    fn clear(&self);
    /// The counters, with the number of entries held now.
    fn stats(&self) -> CacheStats;
    /// Call `f` for every entry held (in no particular order).
    fn for_each(&self, f: &mut dyn FnMut(&PeerKey, &Entry));
    /// The shared tier's circuit-breaker word, when this backing has one that every
    /// process of the host sees (the file store's header). `None`: the tier keeps its
    /// own, per process.
    fn shared_breaker(&self) -> Option<&AtomicU64> {
        None
    }
}
