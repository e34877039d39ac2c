//! SMTP QUICKSTART, as an experiment (off unless asked for; docs/RULES.md Part 6): the
//! server's capabilities in a multi-line 220 greeting ([`greeting`]), and the QHLO cookie
//! that lets a server recognise a client it greeted before ([`cookie`], a keyed MAC with
//! [`sha256`]'s HMAC-SHA256).

pub mod cookie;
pub mod greeting;

pub use cookie::{cookie, cookie_valid, epoch_secret, CookieError, COOKIE_LEN};
pub use greeting::{
    greeting_text, keywords_fingerprint, parse_greeting, Greeting, QHLO_KEYWORD, QUICKSTART_KEYWORD,
};
