//! The AUTH mechanism names of one EHLO reply, held inline.
//!
//! A fixed buffer rather than a list of strings: a cache hit copies the record with no
//! allocation and no shared reference count, so threads reading one hot entry do not
//! contend on it.

use super::{AUTH_MECHS_MAX, AUTH_MECH_NAME_MAX};
use std::fmt;

/// Room for the most names of the longest length, each followed by a separator.
const BYTES: usize = AUTH_MECHS_MAX * (AUTH_MECH_NAME_MAX + 1);

/// Up to [`AUTH_MECHS_MAX`] upper-case mechanism names, in the server's order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthNames {
    count: u8,
    used: u16,
    /// `used` bytes: each name followed by one space.
    buf: [u8; BYTES],
}

impl Default for AuthNames {
    fn default() -> Self {
        AuthNames {
            count: 0,
            used: 0,
            buf: [0; BYTES],
        }
    }
}

impl AuthNames {
    /// Add `name` (already checked: 1 to 20 characters of `A-Z 0-9 - _`). Returns false,
    /// and adds nothing, when the list is full.
    pub fn push(&mut self, name: &str) -> bool {
        debug_assert!(!name.is_empty() && name.len() <= AUTH_MECH_NAME_MAX);
        if self.count as usize >= AUTH_MECHS_MAX || name.len() > AUTH_MECH_NAME_MAX {
            return false;
        }
        let at = self.used as usize;
        self.buf[at..at + name.len()].copy_from_slice(name.as_bytes());
        self.buf[at + name.len()] = b' ';
        self.used += name.len() as u16 + 1;
        self.count += 1;
        true
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.buf[..self.used as usize]
            .split(|&b| b == b' ')
            .filter(|n| !n.is_empty())
            // Only ASCII is ever pushed.
            .map(|n| std::str::from_utf8(n).unwrap_or(""))
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// No names.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `name` is in the list (any case).
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|m| m.eq_ignore_ascii_case(name))
    }
}

impl fmt::Debug for AuthNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_most_names_of_the_longest_length() {
        let mut a = AuthNames::default();
        let long = "X".repeat(AUTH_MECH_NAME_MAX);
        for i in 0..AUTH_MECHS_MAX {
            let name = format!("{}{:02}", &long[..AUTH_MECH_NAME_MAX - 2], i);
            assert!(a.push(&name));
        }
        assert!(!a.push("ONE-TOO-MANY"));
        assert_eq!(a.len(), AUTH_MECHS_MAX);
        assert_eq!(a.iter().count(), AUTH_MECHS_MAX);
        assert!(a.iter().all(|n| n.len() == AUTH_MECH_NAME_MAX));
    }

    #[test]
    fn order_and_lookup() {
        let mut a = AuthNames::default();
        for n in ["PLAIN", "LOGIN", "CRAM-MD5"] {
            a.push(n);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), ["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(a.contains("login"));
        assert!(!a.contains("LOG"));
        assert_eq!(format!("{a:?}"), r#"["PLAIN", "LOGIN", "CRAM-MD5"]"#);
    }
}
