//! `pipeconnect_error_detail`: why a call failed, beyond its result code, written into
//! memory the caller passes with the call (never kept in the handle or in a global or
//! thread-local slot, so a cache shared by many threads reports each call's own error).
#![allow(non_camel_case_types)]

use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{write_out, Versioned};
use std::ffi::{c_char, c_int};

/// Flags of a `pipeconnect_error_detail`, OR-ed.
pub type pipeconnect_detail_flags = u32;
/// `index` names an element: the recipient of an intent, the command of a sequence, the
/// element of an array.
pub const PIPECONNECT_DETAIL_HAS_INDEX: pipeconnect_detail_flags = 1;

/// Why a call failed, for the functions that take an optional
/// `pipeconnect_error_detail *detail_out` (pass NULL when the result code is enough).
/// Set `struct_size` to `sizeof(pipeconnect_error_detail)` before the call; the library
/// fills the rest on every return, success included (`result` 0, empty texts).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct pipeconnect_error_detail {
    /// `sizeof(pipeconnect_error_detail)`, set by the caller.
    pub struct_size: usize,
    /// The result the call returned.
    pub result: c_int,
    /// The operating system's `errno` value behind a `PIPECONNECT_ERR_STORE_IO` (or
    /// another system failure); 0 when there is none.
    pub os_errno: c_int,
    /// With `PIPECONNECT_DETAIL_HAS_INDEX`: which element was refused (0-based: a
    /// recipient of the intent, a command of the sequence).
    pub index: usize,
    /// `PIPECONNECT_DETAIL_*` bits.
    pub flags: pipeconnect_detail_flags,
    /// The field or argument at fault (`"rcpts"`, `"ehlo_name"`, `"options.mode"`,
    /// `"pipeconnect_intent"`), NUL-terminated; empty when none is named.
    pub field: [c_char; 64],
    /// An English sentence for logs, NUL-terminated (cut to fit).
    pub message: [c_char; 256],
}

// SAFETY: repr(C), starts with a usize, integers and char arrays only.
unsafe impl Versioned for pipeconnect_error_detail {
    const NAME: &'static str = "pipeconnect_error_detail";
}

/// A failed call as the C layer sees it: the result and whatever detail is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub result: pipeconnect_result,
    pub errno: i32,
    pub field: Option<&'static str>,
    pub index: Option<usize>,
    pub message: Option<String>,
}

impl Failure {
    pub fn new(result: pipeconnect_result) -> Failure {
        Failure {
            result,
            errno: 0,
            field: None,
            index: None,
            message: None,
        }
    }
    pub fn field(mut self, field: &'static str) -> Failure {
        self.field = Some(field);
        self
    }
    pub fn index(mut self, index: usize) -> Failure {
        self.index = Some(index);
        self
    }
    pub fn errno(mut self, errno: i32) -> Failure {
        self.errno = errno;
        self
    }
    pub fn say(mut self, message: impl Into<String>) -> Failure {
        self.message = Some(message.into());
        self
    }
}

impl From<pipeconnect_result> for Failure {
    fn from(r: pipeconnect_result) -> Failure {
        Failure::new(r)
    }
}

impl From<Failure> for pipeconnect_result {
    fn from(f: Failure) -> pipeconnect_result {
        f.result
    }
}

fn fill(dst: &mut [c_char], s: &str) {
    // Cut at a character boundary so the text stays UTF-8; always NUL-terminated.
    let mut end = s.len().min(dst.len() - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    for (d, &b) in dst.iter_mut().zip(s.as_bytes()[..end].iter()) {
        *d = b as c_char;
    }
    dst[end] = 0;
}

/// The detail for a call that returned `r` (with `failure` when it failed).
pub(crate) fn detail_for(
    r: pipeconnect_result,
    failure: Option<&Failure>,
) -> pipeconnect_error_detail {
    let mut d = pipeconnect_error_detail {
        struct_size: 0,
        result: r as c_int,
        os_errno: 0,
        index: 0,
        flags: 0,
        field: [0; 64],
        message: [0; 256],
    };
    if let Some(f) = failure {
        d.os_errno = f.errno;
        if let Some(i) = f.index {
            d.index = i;
            d.flags |= PIPECONNECT_DETAIL_HAS_INDEX;
        }
        fill(&mut d.field, f.field.unwrap_or(""));
        let base = r.message_nul().trim_end_matches('\0');
        let text = match (&f.message, f.errno) {
            (Some(m), 0) => m.clone(),
            (Some(m), e) => format!("{m} ({})", std::io::Error::from_raw_os_error(e)),
            (None, 0) => base.to_string(),
            (None, e) => format!("{base} ({})", std::io::Error::from_raw_os_error(e)),
        };
        fill(&mut d.message, &text);
    } else if r != R::PIPECONNECT_OK {
        fill(&mut d.message, r.message_nul().trim_end_matches('\0'));
    }
    d
}

/// Write the detail of a call's outcome to `detail_out` when the caller gave one. A
/// `detail_out` with a bad `struct_size` is not written; the call's result stands.
///
/// # Safety
/// `detail_out` is NULL or valid for its `struct_size` bytes.
pub(crate) unsafe fn report(
    detail_out: *mut pipeconnect_error_detail,
    r: pipeconnect_result,
    failure: Option<&Failure>,
) {
    if detail_out.is_null() {
        return;
    }
    // SAFETY: see the function's contract.
    let _ = unsafe { write_out(detail_out, detail_for(r, failure)) };
}
