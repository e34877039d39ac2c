//! The hold-down: after an early flight that a server did not expect, no early flight
//! goes to it for a while (see docs/RULES.md, "Hold-down").
//!
//! Pure and I/O-free: [`HoldDown`] is one key's record, [`HoldDownConfig`] the lengths,
//! and the functions here say how a record changes when an early flight is refused or
//! succeeds at a given time. The backends only store records ([`HoldDownStore`]).
//!
//! The rule, in short:
//! - a refusal (a 5xx banner or EHLO reply after an early flight, an EHLO reply that
//!   drops PIPECONNECT after one, an out-of-step reply) enters a hold-down of
//!   `first_secs`; each further refusal after that hold-down ended lengthens the next one
//!   `growth` times, up to `max_secs`. A refusal while a hold-down is running changes
//!   nothing (the connections that were already under way when it began fail alike);
//! - after a hold-down ended, every `decay_after` early successes take one step off the
//!   next hold-down; a key back at step 0 keeps no record;
//! - a record is forgotten `remember_secs` after its hold-down ended (a tombstone with
//!   its own expiry, independent of the capability entry's TTL).

use crate::key::{PeerKey, TlsState};

/// Default length of the first hold-down: one hour.
pub const DEFAULT_FIRST_SECS: u64 = 3600;
/// Default growth from one hold-down to the next.
pub const DEFAULT_GROWTH: u32 = 4;
/// Default longest hold-down: one day.
pub const DEFAULT_MAX_SECS: u64 = 24 * 3600;
/// Default early successes (after a hold-down ended) that take one step off.
pub const DEFAULT_DECAY_AFTER: u32 = 20;
/// Default time a record is kept after its hold-down ended: seven days.
pub const DEFAULT_REMEMBER_SECS: u64 = 7 * 24 * 3600;
/// The highest step counted (far beyond any cap: 4^32 hours).
pub const MAX_LEVEL: u32 = 32;
/// Bytes of [`HoldDown::encode`].
pub const ENCODED_LEN: usize = 32;
const ENCODING_VERSION: u8 = 1;

/// How long hold-downs last. Each cache handle has its own (the records say when a
/// hold-down ends, so handles with other lengths still agree on whether one runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldDownConfig {
    /// The first hold-down, in seconds. 0 turns hold-downs off for this handle: no
    /// refusal is recorded and no record holds an early flight back.
    pub first_secs: u64,
    /// Each further refusal multiplies the length by this (1: every hold-down is as
    /// long as the first).
    pub growth: u32,
    /// The longest hold-down, in seconds.
    pub max_secs: u64,
    /// Early successes after a hold-down ended that take one step off the next one
    /// (at least 1).
    pub decay_after: u32,
    /// Seconds a record is kept after its hold-down ended; after that a refusal starts
    /// again at the first step.
    pub remember_secs: u64,
}

impl Default for HoldDownConfig {
    fn default() -> Self {
        HoldDownConfig {
            first_secs: DEFAULT_FIRST_SECS,
            growth: DEFAULT_GROWTH,
            max_secs: DEFAULT_MAX_SECS,
            decay_after: DEFAULT_DECAY_AFTER,
            remember_secs: DEFAULT_REMEMBER_SECS,
        }
    }
}

impl HoldDownConfig {
    /// Hold-downs turned off.
    pub const OFF: HoldDownConfig = HoldDownConfig {
        first_secs: 0,
        growth: DEFAULT_GROWTH,
        max_secs: DEFAULT_MAX_SECS,
        decay_after: DEFAULT_DECAY_AFTER,
        remember_secs: DEFAULT_REMEMBER_SECS,
    };

    /// Whether hold-downs are on.
    pub fn enabled(&self) -> bool {
        self.first_secs > 0
    }

    /// Whether the values make sense: growth and decay at least 1, the cap not below
    /// the first length (when on).
    pub fn is_valid(&self) -> bool {
        self.growth >= 1
            && self.decay_after >= 1
            && (!self.enabled() || self.max_secs >= self.first_secs)
    }

    /// The length of the hold-down at step `level` (1 is the first).
    pub fn length(&self, level: u32) -> u64 {
        let mut len = self.first_secs;
        for _ in 1..level.min(MAX_LEVEL) {
            len = len.saturating_mul(self.growth as u64);
            if len >= self.max_secs {
                break;
            }
        }
        len.min(self.max_secs)
    }
}

/// One key's hold-down record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HoldDown {
    /// The step of the last hold-down (1: first); 0 never appears in a kept record.
    pub level: u32,
    /// Early successes since the hold-down ended, towards the next step off.
    pub successes: u32,
    /// When the last hold-down began (Unix seconds).
    pub since: u64,
    /// When it ends (Unix seconds): no early flight before.
    pub until: u64,
}

impl HoldDown {
    /// Whether an early flight is held back at `now`.
    pub fn holds(&self, now: u64) -> bool {
        now < self.until
    }

    /// Whether the record may be dropped at `now`.
    pub fn forgotten(&self, now: u64, config: &HoldDownConfig) -> bool {
        self.level == 0 || now >= self.until.saturating_add(config.remember_secs)
    }

    /// A fixed encoding of [`ENCODED_LEN`] bytes (for the file store).
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut b = [0u8; ENCODED_LEN];
        b[0] = ENCODING_VERSION;
        b[4..8].copy_from_slice(&self.level.to_le_bytes());
        b[8..12].copy_from_slice(&self.successes.to_le_bytes());
        b[16..24].copy_from_slice(&self.since.to_le_bytes());
        b[24..32].copy_from_slice(&self.until.to_le_bytes());
        b
    }

    /// Decode [`HoldDown::encode`]; `None` for anything malformed.
    pub fn decode(b: &[u8]) -> Option<HoldDown> {
        if b.len() != ENCODED_LEN || b[0] != ENCODING_VERSION || b[1..4] != [0; 3] {
            return None;
        }
        if b[12..16] != [0; 4] {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let h = HoldDown {
            level: u32_at(4),
            successes: u32_at(8),
            since: u64_at(16),
            until: u64_at(24),
        };
        (h.level >= 1 && h.level <= MAX_LEVEL && h.since <= h.until).then_some(h)
    }
}

/// What a refusal did to a key's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A new hold-down began, at this step.
    Entered(HoldDown),
    /// A hold-down was already running: unchanged.
    AlreadyHeld(HoldDown),
}

/// The record after an early flight to the key was refused at `now`.
pub fn on_refused(old: Option<HoldDown>, now: u64, config: &HoldDownConfig) -> Refused {
    let old = old.filter(|h| !h.forgotten(now, config));
    if let Some(h) = old {
        if h.holds(now) {
            return Refused::AlreadyHeld(h);
        }
    }
    let level = old.map_or(1, |h| (h.level + 1).min(MAX_LEVEL));
    Refused::Entered(HoldDown {
        level,
        successes: 0,
        since: now,
        until: now.saturating_add(config.length(level)),
    })
}

/// The record after an early flight to the key succeeded at `now`: `None` when the key
/// keeps no record any more (it decayed to step 0, or was forgotten).
pub fn on_success(old: Option<HoldDown>, now: u64, config: &HoldDownConfig) -> Option<HoldDown> {
    let mut h = old.filter(|h| !h.forgotten(now, config))?;
    if h.holds(now) {
        // An early flight begun before the hold-down: it says nothing new.
        return Some(h);
    }
    h.successes += 1;
    if h.successes >= config.decay_after.max(1) {
        h.successes = 0;
        h.level -= 1;
        if h.level == 0 {
            return None;
        }
    }
    Some(h)
}

/// The key a hold-down is kept under: the server, port, local address and EHLO name of
/// `key`, in the cleartext state. One hold-down covers both TLS states of a server:
/// what refused early input is the server (a backend without PIPECONNECT behind the
/// address), whichever phase the early flight went in; and an encrypted early flight
/// after STARTTLS needs a cleartext one on the same connection first, so holding the
/// cleartext state alone would leave the encrypted state of TLS on connect (port 465)
/// as the only case to cover, which this covers too.
pub fn hold_key(key: &PeerKey) -> PeerKey {
    key.in_state(TlsState::Cleartext)
}

/// A store of hold-down records, one per hold key; implemented by both backings.
pub trait HoldDownStore {
    /// The record for `key` (a hold key), if one is kept.
    fn hold_down(&self, key: &PeerKey) -> Option<HoldDown>;
    /// Replace the record for `key` with what `f` makes of the current one (`None`:
    /// keep none), atomically with respect to other writers of this key. Returns the
    /// record kept.
    fn update_hold_down(
        &self,
        key: &PeerKey,
        f: &mut dyn FnMut(Option<HoldDown>) -> Option<HoldDown>,
    ) -> Option<HoldDown>;
    /// Call `f` for every record kept (in no particular order).
    fn for_each_hold_down(&self, f: &mut dyn FnMut(&PeerKey, &HoldDown));
    /// Remove every record.
    fn clear_hold_downs(&self);
    /// Count a hold-down entered.
    fn count_hold_down_entered(&self);
    /// Count an early flight not sent because of a hold-down.
    fn count_early_skipped(&self);
    /// The two counters: (hold-downs entered, early flights skipped).
    fn hold_down_counters(&self) -> (u64, u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    #[test]
    fn lengths_grow_and_are_capped() {
        let c = HoldDownConfig::default();
        let l: Vec<u64> = (1..=6).map(|n| c.length(n)).collect();
        assert_eq!(l, [H, 4 * H, 16 * H, 24 * H, 24 * H, 24 * H]);
        let flat = HoldDownConfig {
            growth: 1,
            ..HoldDownConfig::default()
        };
        assert_eq!(flat.length(9), H);
        assert_eq!(c.length(MAX_LEVEL + 5), 24 * H);
    }

    #[test]
    fn a_refusal_during_a_hold_down_does_not_lengthen_it() {
        let c = HoldDownConfig::default();
        let Refused::Entered(h) = on_refused(None, 1000, &c) else {
            panic!()
        };
        assert_eq!((h.level, h.until), (1, 1000 + H));
        assert_eq!(
            on_refused(Some(h), 1000 + H - 1, &c),
            Refused::AlreadyHeld(h)
        );
        let Refused::Entered(h2) = on_refused(Some(h), 1000 + H, &c) else {
            panic!()
        };
        assert_eq!((h2.level, h2.until), (2, 1000 + H + 4 * H));
    }

    #[test]
    fn successes_decay_one_step_at_a_time_and_only_after_the_end() {
        let c = HoldDownConfig {
            decay_after: 3,
            ..HoldDownConfig::default()
        };
        let h = HoldDown {
            level: 2,
            successes: 0,
            since: 0,
            until: 100,
        };
        assert_eq!(on_success(Some(h), 50, &c), Some(h), "still held");
        let h = on_success(Some(h), 100, &c).unwrap();
        let h = on_success(Some(h), 101, &c).unwrap();
        assert_eq!((h.level, h.successes), (2, 2));
        let h = on_success(Some(h), 102, &c).unwrap();
        assert_eq!((h.level, h.successes), (1, 0));
        let h = on_success(Some(h), 103, &c).unwrap();
        let h = on_success(Some(h), 104, &c).unwrap();
        assert_eq!(on_success(Some(h), 105, &c), None, "back at step 0");
    }

    #[test]
    fn a_record_is_forgotten_after_its_own_expiry() {
        let c = HoldDownConfig::default();
        let h = HoldDown {
            level: 3,
            successes: 0,
            since: 0,
            until: 100,
        };
        assert!(!h.forgotten(100 + c.remember_secs - 1, &c));
        assert!(h.forgotten(100 + c.remember_secs, &c));
        let Refused::Entered(n) = on_refused(Some(h), 100 + c.remember_secs, &c) else {
            panic!()
        };
        assert_eq!(n.level, 1, "starts again at the first step");
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let h = HoldDown {
            level: 3,
            successes: 7,
            since: 1_700_000_000,
            until: 1_700_057_600,
        };
        let e = h.encode();
        assert_eq!(HoldDown::decode(&e), Some(h));
        for i in 0..ENCODED_LEN {
            let mut bad = e;
            bad[i] ^= 0x80;
            if i < 4 || (12..16).contains(&i) || (4..8).contains(&i) {
                assert_eq!(HoldDown::decode(&bad), None, "byte {i}");
            }
        }
        assert_eq!(HoldDown::decode(&e[..31]), None);
        let zero = HoldDown { level: 0, ..h };
        assert_eq!(HoldDown::decode(&zero.encode()), None);
        let backwards = HoldDown { until: 1, ..h };
        assert_eq!(HoldDown::decode(&backwards.encode()), None);
    }

    #[test]
    fn config_validity() {
        assert!(HoldDownConfig::default().is_valid());
        assert!(HoldDownConfig::OFF.is_valid());
        assert!(!HoldDownConfig {
            growth: 0,
            ..Default::default()
        }
        .is_valid());
        assert!(!HoldDownConfig {
            max_secs: 10,
            ..Default::default()
        }
        .is_valid());
    }
}
