//! What the real EHLO reply does to the cache: [`crate::policy::check_ehlo`]'s answer
//! carried out. Sessions and trackers (`crate::tracker`) both call [`record_ehlo`], so an
//! EHLO reply changes the cache the same way whoever read it.

use crate::cache::{Cache, Learned};
use crate::caps::Capabilities;
use crate::key::PeerKey;
use crate::policy::{CacheAction, EhloCheck};

/// What [`record_ehlo`] did to the entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EhloRecorded {
    /// The fresh reply was stored.
    pub stored: bool,
    /// An entry was removed (the reply no longer offers early pipelining).
    pub removed: bool,
}

/// Carry out `check` (the fresh reply `fresh` against the cached one) on `key`'s entry.
/// `refused`: the early flight of this phase relied on the entry and the reply withdrew
/// early pipelining, so the server is also held down (docs/RULES.md §3.10).
pub fn record_ehlo(
    cache: &Cache,
    key: &PeerKey,
    check: &EhloCheck,
    fresh: Capabilities,
    refused: bool,
) -> EhloRecorded {
    match check.cache {
        CacheAction::Nothing => EhloRecorded::default(),
        CacheAction::Invalidate => {
            cache.forget(key);
            if refused {
                cache.note_early_refused(key);
            }
            EhloRecorded {
                stored: false,
                removed: true,
            }
        }
        CacheAction::Store => match cache.learn(key, fresh) {
            Learned::Stored => EhloRecorded {
                stored: true,
                removed: false,
            },
            Learned::NotCached(removed) => EhloRecorded {
                stored: false,
                removed,
            },
        },
    }
}
