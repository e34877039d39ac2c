//! The receiving side: what a server makes of input that arrived before its banner.
//!
//! Pure and I/O-free, like [`crate::policy`]. A receiving MTA decides per connection
//! whether it offers PIPECONNECT to this client (Exim matches
//! `pipelining_connect_advertise_hosts` against the client's address); [`prebanner`]
//! takes that decision as an input, is fed the bytes found waiting before (or during a
//! greet pause before) the banner, and says whether they are a well-formed early flight,
//! input to answer with the banner first and then process as usual, or a pregreet
//! violation. `docs/RULES.md` ("The server side") has the table with its sources.

pub mod prebanner;
pub mod quickstart;

pub use prebanner::{Class, Prebanner, PrebannerLimits, Reason, Verdict};
