//! The EHLO comparison, on every use: the real EHLO reply against the cached one.

use super::outcome::CacheAction;
use crate::caps::Capabilities;

/// What the real EHLO reply says about the cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EhloCheck {
    /// [`CacheAction::Invalidate`] when an entry existed and the reply no longer
    /// advertises PIPECONNECT and PIPELINING; [`CacheAction::Store`] when the reply is
    /// worth caching and there was no entry, or a tracked fact changed;
    /// [`CacheAction::Nothing`] otherwise (an unchanged entry keeps its age, as in Exim,
    /// whose records expire a fixed time after they were written).
    pub cache: CacheAction,
    /// Send nothing more early on this connection: the server withdrew PIPECONNECT (or
    /// PIPELINING). Commands already sent cannot be withdrawn; their replies are handled
    /// as they come.
    pub stop_early: bool,
    /// The extension bits whose facts differ between the cached and the real reply
    /// ([`Capabilities::changed_bits`]); 0 without a cached entry.
    pub changed: u32,
    /// `changed` restricted to the extensions the early flight relied on.
    pub used_changed: u32,
}

/// Compare the real EHLO reply `fresh` with what was cached (`cached`, `None` when
/// nothing was), given the extension bits `used` that the early flight relied on
/// ([`super::flight::used_extensions`]; 0 without an early flight).
///
/// Every tracked change rewrites the entry, used or not: an entry that is stale about an
/// unused extension (say CHUNKING gone) would mislead the next flight that uses it.
pub fn check_ehlo(cached: Option<&Capabilities>, fresh: &Capabilities, used: u32) -> EhloCheck {
    let Some(old) = cached else {
        return EhloCheck {
            cache: if fresh.worth_caching() {
                CacheAction::Store
            } else {
                CacheAction::Nothing
            },
            stop_early: false,
            changed: 0,
            used_changed: 0,
        };
    };
    let changed = old.changed_bits(fresh);
    let used_changed = changed & used;
    if !fresh.worth_caching() {
        return EhloCheck {
            cache: CacheAction::Invalidate,
            stop_early: true,
            changed,
            used_changed,
        };
    }
    EhloCheck {
        cache: if changed != 0 {
            CacheAction::Store
        } else {
            CacheAction::Nothing
        },
        stop_early: false,
        changed,
        used_changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{Extension, ParseOptions};

    fn caps(r: &str) -> Capabilities {
        Capabilities::parse_ehlo(r.as_bytes(), ParseOptions::default()).unwrap()
    }

    #[test]
    fn the_four_cases() {
        let full = caps("250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 CHUNKING\r\n");
        let no_chunking = caps("250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n");
        let gone = caps("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");

        let c = check_ehlo(None, &full, 0);
        assert_eq!(c.cache, CacheAction::Store);
        assert!(!c.stop_early);
        assert_eq!(check_ehlo(None, &gone, 0).cache, CacheAction::Nothing);

        let c = check_ehlo(Some(&full), &full, 0b11);
        assert_eq!(c.cache, CacheAction::Nothing);
        assert_eq!(c.changed, 0);

        let used = Extension::Chunking.bit();
        let c = check_ehlo(Some(&full), &no_chunking, used);
        assert_eq!(c.cache, CacheAction::Store);
        assert_eq!(c.changed, Extension::Chunking.bit());
        assert_eq!(c.used_changed, Extension::Chunking.bit());
        assert_eq!(check_ehlo(Some(&full), &no_chunking, 0).used_changed, 0);

        let c = check_ehlo(Some(&full), &gone, 0b11);
        assert_eq!(c.cache, CacheAction::Invalidate);
        assert!(c.stop_early);
        assert_eq!(c.used_changed, Extension::PipeConnect.bit());
    }
}
