//! How the cache uses its shared tier: a local miss asks Redis once and keeps what it
//! finds; learning writes through; forgetting deletes there too; a new hold-down is
//! written beside its entry.

use super::{SharedConfig, SharedTier};
use crate::cache::hold_down::hold_key;
use crate::cache::{Cache, Entry, HoldDown, HoldDownConfig};
use crate::key::PeerKey;
use std::sync::Arc;

impl Cache {
    /// Attach a shared tier (replacing any attached before). From now on a local miss
    /// asks it, learning writes through, and forgetting deletes there too.
    pub fn attach_shared(&self, url: &str, config: SharedConfig) -> Result<(), String> {
        let tier = SharedTier::new(url, config)?;
        *self.shared.write() = Some(Arc::new(tier));
        Ok(())
    }

    /// Detach the shared tier, if any: the cache is local-only again.
    pub fn detach_shared(&self) {
        *self.shared.write() = None;
    }

    /// The attached shared tier.
    pub fn shared_tier(&self) -> Option<Arc<SharedTier>> {
        self.shared.read().clone()
    }

    pub(crate) fn lookup_shared(&self, key: &PeerKey, now: u64) -> Option<Entry> {
        let tier = self.shared_tier()?;
        let got = tier.fetch(key, self.backend.shared_breaker(), now)?;
        // Kept locally no longer than the shared copy lives, nor than the cap: the
        // learning time is moved back so that the local TTL ends then.
        let mut left = got.expires_at.saturating_sub(now);
        let cap = tier.config().local_ttl_cap_secs;
        if cap > 0 {
            left = left.min(cap);
        }
        let local = Entry {
            caps: got.entry.caps,
            learned_at: got
                .entry
                .learned_at
                .min(now.saturating_add(left).saturating_sub(self.ttl_secs)),
        };
        if !self.is_live(&local, now) {
            return None;
        }
        self.backend.insert(key, local.clone());
        if let Some(h) = got.hold_down {
            self.backend
                .update_hold_down(&hold_key(key), &mut |old: Option<HoldDown>| {
                    Some(match old {
                        Some(o) if o.until >= h.until => o,
                        _ => h,
                    })
                });
        }
        Some(local)
    }

    pub(crate) fn store_shared(&self, key: &PeerKey, entry: &Entry) {
        if let Some(tier) = self.shared_tier() {
            let now = self.clock.now();
            let expires = entry.learned_at.saturating_add(self.ttl_secs);
            tier.store(key, entry, expires, now, self.backend.shared_breaker());
        }
    }

    pub(crate) fn delete_shared(&self, key: &PeerKey) {
        if let Some(tier) = self.shared_tier() {
            tier.delete(key, self.backend.shared_breaker());
        }
    }

    pub(crate) fn store_shared_hold_down(&self, key: &PeerKey, config: &HoldDownConfig) {
        let Some(tier) = self.shared_tier() else {
            return;
        };
        let hk = hold_key(key);
        if let Some(h) = self.backend.hold_down(&hk) {
            let now = self.clock.now();
            let expires = h.until.saturating_add(config.remember_secs);
            tier.store_hold_down(&hk, &h, expires, now, self.backend.shared_breaker());
        }
    }
}
