//! The library's version, as compiled in.

/// Major version; a change means an incompatible ABI.
pub const MAJOR: u32 = parse(env!("CARGO_PKG_VERSION_MAJOR"));
/// Minor version; a change adds to the ABI without breaking it.
pub const MINOR: u32 = parse(env!("CARGO_PKG_VERSION_MINOR"));
/// Patch version.
pub const PATCH: u32 = parse(env!("CARGO_PKG_VERSION_PATCH"));
/// The version as `"MAJOR.MINOR.PATCH"`, NUL-terminated for C.
pub const STRING_NUL: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
/// The version packed as `MAJOR * 10000 + MINOR * 100 + PATCH`.
pub const NUMBER: u32 = MAJOR * 10000 + MINOR * 100 + PATCH;

const fn parse(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u32;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}
