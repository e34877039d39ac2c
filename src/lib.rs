//! libpipeconnect: the memory and the rules that let an SMTP client use early
//! pipelining (PIPECONNECT) safely.
//!
//! The crate is layered (see `docs/ARCHITECTURE.md`):
//! - [`reply`], [`caps`], [`key`]: the SMTP reply parser, EHLO capabilities, the cache key;
//! - [`cache`]: the capability cache (in-process, and the shared file store);
//! - `policy` and `session`: the rules of PIPE_CONNECT as pure functions and one
//!   connection's bookkeeping;
//! - [`ffi`]: the C ABI, a thin layer that converts and calls.
//!
//! Everything outside `ffi` and the file store's mapping is safe Rust with no I/O; time
//! enters through [`clock::Clock`].

pub mod cache;
pub mod caps;
pub mod clock;
pub mod error;
pub mod ffi;
pub mod key;
pub mod policy;
pub mod reply;
#[cfg(pipeconnect_sanitizer_canary)]
mod sanitizer_canary;
pub mod server;
pub mod session;
pub mod sha256;
pub mod tracker;
pub mod version;

/// The C header as cbindgen generated it from this build's sources. The committed copy in
/// `include/pipeconnect.h` must equal it (a test checks; `make header` refreshes it).
#[doc(hidden)]
pub const GENERATED_HEADER: &str = include_str!(concat!(env!("OUT_DIR"), "/pipeconnect.h"));

pub use cache::{Cache, CacheConfig, CacheStats, Entry};
pub use caps::{Capabilities, Extension, ParseOptions};
pub use clock::Clock;
pub use error::Error;
pub use key::{PeerKey, TlsState};
pub use reply::{Reply, ReplyLimits, ReplyParser};
