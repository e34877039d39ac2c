//! `pipeconnect_result`: what every fallible C function returns, and its messages.
#![allow(non_camel_case_types)]

use crate::error::Error;
use std::ffi::{c_char, c_int};

/// The result of a libpipeconnect function. `PIPECONNECT_OK` is 0; every other value is
/// at least 7000, so a result is never mistaken for an errno value. Values from 7001 to
/// 7099 are outcomes, not errors (a lookup that found nothing); 7100 and up are errors.
/// `pipeconnect_result_message()` says what each means.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pipeconnect_result {
    /// Success.
    PIPECONNECT_OK = 0,
    /// Not an error: the cache holds nothing (live) for the key, or the value asked for
    /// was not advertised.
    PIPECONNECT_NOT_FOUND = 7001,
    /// Not an error: the EHLO reply lacks PIPECONNECT or PIPELINING, so nothing was
    /// cached; there was no older entry for the key.
    PIPECONNECT_NOT_CACHED = 7002,
    /// Not an error: as `PIPECONNECT_NOT_CACHED`, and an older entry for the key was
    /// removed (the server stopped offering early pipelining).
    PIPECONNECT_NOT_CACHED_REMOVED = 7003,
    /// Not an error: no event is queued (`pipeconnect_session_next_event()`).
    PIPECONNECT_NO_EVENT = 7010,

    /// A pointer argument was NULL.
    PIPECONNECT_ERR_NULL_POINTER = 7100,
    /// An argument is outside its documented range (a port of 0, an unknown flag, an
    /// index past the end, a length over SSIZE_MAX).
    PIPECONNECT_ERR_INVALID_ARGUMENT = 7101,
    /// Not a valid IPv4 or IPv6 address (IPv6 may be given in brackets).
    PIPECONNECT_ERR_INVALID_ADDRESS = 7102,
    /// An EHLO name that is empty, over 255 bytes, or not printable ASCII.
    PIPECONNECT_ERR_INVALID_EHLO_NAME = 7103,
    /// A string argument that is not UTF-8.
    PIPECONNECT_ERR_NOT_UTF8 = 7104,
    /// An output buffer too small; the length needed was written.
    PIPECONNECT_ERR_BUFFER_TOO_SMALL = 7105,
    /// A function called in a state where it cannot act (see the function's notes).
    PIPECONNECT_ERR_BAD_STATE = 7106,

    /// A reply line that does not start with a three-digit code and ' ' or '-'.
    PIPECONNECT_ERR_MALFORMED_REPLY = 7200,
    /// A reply line longer than the parser's limit.
    PIPECONNECT_ERR_REPLY_LINE_TOO_LONG = 7201,
    /// A reply with more lines than the parser's limit.
    PIPECONNECT_ERR_REPLY_TOO_MANY_LINES = 7202,
    /// A reply larger in total than the parser's limit.
    PIPECONNECT_ERR_REPLY_TOO_LARGE = 7203,
    /// The lines of a multi-line reply carry different codes.
    PIPECONNECT_ERR_REPLY_CODE_MISMATCH = 7204,
    /// The bytes end in the middle of a reply.
    PIPECONNECT_ERR_REPLY_INCOMPLETE = 7205,
    /// An EHLO reply that is not a 250 reply.
    PIPECONNECT_ERR_NOT_EHLO_REPLY = 7206,

    /// An encoded capability record does not decode.
    PIPECONNECT_ERR_CORRUPT_RECORD = 7300,

    /// The store file could not be opened, created, sized or mapped (the path is not
    /// readable or writable, the disk is full, ...): `pipeconnect_error_detail.os_errno`
    /// has the system's errno value.
    PIPECONNECT_ERR_STORE_IO = 7400,
    /// The store path is a symbolic link: refused.
    PIPECONNECT_ERR_STORE_SYMLINK = 7401,
    /// The store path is not a regular file: refused.
    PIPECONNECT_ERR_STORE_NOT_REGULAR = 7402,
    /// The store file is owned by another user: refused.
    PIPECONNECT_ERR_STORE_WRONG_OWNER = 7403,
    /// The store file is shorter than its header says: refused.
    PIPECONNECT_ERR_STORE_TRUNCATED = 7404,
    /// The store file does not start with the store's magic: not a store file.
    PIPECONNECT_ERR_STORE_BAD_MAGIC = 7405,
    /// The store file has another format version.
    PIPECONNECT_ERR_STORE_VERSION = 7406,
    /// The store file's geometry differs from the one asked for, or is out of range.
    PIPECONNECT_ERR_STORE_GEOMETRY = 7407,
    /// The store file's header checksum does not match.
    PIPECONNECT_ERR_STORE_CHECKSUM = 7408,
    /// The store file is writable by group or others: refused.
    PIPECONNECT_ERR_STORE_PERMISSIONS = 7409,
    /// The store file is on a network or other non-local filesystem (NFS, CIFS, FUSE…),
    /// where its locks and liveness checks do not hold: refused unless
    /// `PIPECONNECT_STORE_ALLOW_REMOTE_FS` is given.
    PIPECONNECT_ERR_STORE_REMOTE_FS = 7410,

    /// The command sequence is not one SMTP allows (EHLO first; MAIL, RCPT, then DATA
    /// or BDAT LAST; STARTTLS only in cleartext; ...), is empty, or is too long.
    PIPECONNECT_ERR_BAD_SEQUENCE = 7500,
    /// A reply arrived that answers no command sent: the session stops.
    PIPECONNECT_ERR_UNEXPECTED_REPLY = 7501,
    /// Bytes arrived after the STARTTLS reply and before the TLS handshake (they could be
    /// injected): the session stops; close the connection.
    PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS = 7502,
    /// The intent is unusable (no recipients or more than 1000, an address with a control
    /// character or angle bracket, a bad EHLO name or AUTH mechanism, STARTTLS on a
    /// TLS-on-connect key).
    PIPECONNECT_ERR_INVALID_INTENT = 7503,
    /// The cached information is for another TLS state than the connection is in.
    PIPECONNECT_ERR_TLS_STATE_MISMATCH = 7504,
    /// The library cannot format this command line (AUTH with an initial response, the
    /// body, or a line whose address or EHLO name the intent did not give).
    PIPECONNECT_ERR_CANNOT_FORMAT = 7505,

    /// A panic inside the library was caught at the C boundary; please report it. The
    /// handles the call took are poisoned: every later call on them returns this result
    /// (free them and make new ones). Other handles stay usable. Nothing is printed
    /// unless the environment variable `PIPECONNECT_PANIC_MESSAGES` is set (to a value
    /// other than `0`) when the library is first called.
    PIPECONNECT_ERR_PANIC = 7900,
}

use pipeconnect_result as R;

impl From<Error> for pipeconnect_result {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidAddress => R::PIPECONNECT_ERR_INVALID_ADDRESS,
            Error::InvalidArgument => R::PIPECONNECT_ERR_INVALID_ARGUMENT,
            Error::InvalidEhloName => R::PIPECONNECT_ERR_INVALID_EHLO_NAME,
            Error::MalformedReply => R::PIPECONNECT_ERR_MALFORMED_REPLY,
            Error::ReplyLineTooLong => R::PIPECONNECT_ERR_REPLY_LINE_TOO_LONG,
            Error::ReplyTooManyLines => R::PIPECONNECT_ERR_REPLY_TOO_MANY_LINES,
            Error::ReplyTooLarge => R::PIPECONNECT_ERR_REPLY_TOO_LARGE,
            Error::ReplyCodeMismatch => R::PIPECONNECT_ERR_REPLY_CODE_MISMATCH,
            Error::ReplyIncomplete => R::PIPECONNECT_ERR_REPLY_INCOMPLETE,
            Error::NotAnEhloReply => R::PIPECONNECT_ERR_NOT_EHLO_REPLY,
            Error::CorruptRecord => R::PIPECONNECT_ERR_CORRUPT_RECORD,
        }
    }
}

impl From<crate::policy::PolicyError> for pipeconnect_result {
    fn from(e: crate::policy::PolicyError) -> Self {
        use crate::policy::PolicyError as P;
        match e {
            P::BadSequence(..) => R::PIPECONNECT_ERR_BAD_SEQUENCE,
            P::TlsStateMismatch => R::PIPECONNECT_ERR_TLS_STATE_MISMATCH,
        }
    }
}

impl From<crate::session::SessionError> for pipeconnect_result {
    fn from(e: crate::session::SessionError) -> Self {
        use crate::session::SessionError as S;
        match e {
            S::Reply(e) => e.into(),
            S::UnexpectedReply => R::PIPECONNECT_ERR_UNEXPECTED_REPLY,
            S::CleartextAfterStartTls => R::PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS,
            S::InvalidIntent(_) => R::PIPECONNECT_ERR_INVALID_INTENT,
            S::BadState => R::PIPECONNECT_ERR_BAD_STATE,
            S::CannotFormat => R::PIPECONNECT_ERR_CANNOT_FORMAT,
            S::Policy(p) => p.into(),
        }
    }
}

impl From<Error> for super::detail::Failure {
    fn from(e: Error) -> Self {
        super::detail::Failure::new(e.into())
    }
}

impl From<crate::policy::PolicyError> for super::detail::Failure {
    fn from(e: crate::policy::PolicyError) -> Self {
        use crate::policy::PolicyError as P;
        let f = super::detail::Failure::new(e.into()).say(e.to_string());
        match e {
            P::BadSequence(i, _) => f.field("cmds").index(i),
            P::TlsStateMismatch => f,
        }
    }
}

impl From<crate::session::SessionError> for super::detail::Failure {
    fn from(e: crate::session::SessionError) -> Self {
        use crate::session::SessionError as S;
        match e {
            S::InvalidIntent(p) => {
                let f = super::detail::Failure::new(e.into())
                    .field(p.field)
                    .say(p.to_string());
                match p.index {
                    Some(i) => f.index(i),
                    None => f,
                }
            }
            S::Policy(p) => p.into(),
            _ => super::detail::Failure::new(e.into()).say(e.to_string()),
        }
    }
}

impl pipeconnect_result {
    /// Every value, for tests and bindings.
    pub const ALL: [pipeconnect_result; 37] = [
        R::PIPECONNECT_OK,
        R::PIPECONNECT_NOT_FOUND,
        R::PIPECONNECT_NOT_CACHED,
        R::PIPECONNECT_NOT_CACHED_REMOVED,
        R::PIPECONNECT_NO_EVENT,
        R::PIPECONNECT_ERR_NULL_POINTER,
        R::PIPECONNECT_ERR_INVALID_ARGUMENT,
        R::PIPECONNECT_ERR_INVALID_ADDRESS,
        R::PIPECONNECT_ERR_INVALID_EHLO_NAME,
        R::PIPECONNECT_ERR_NOT_UTF8,
        R::PIPECONNECT_ERR_BUFFER_TOO_SMALL,
        R::PIPECONNECT_ERR_BAD_STATE,
        R::PIPECONNECT_ERR_MALFORMED_REPLY,
        R::PIPECONNECT_ERR_REPLY_LINE_TOO_LONG,
        R::PIPECONNECT_ERR_REPLY_TOO_MANY_LINES,
        R::PIPECONNECT_ERR_REPLY_TOO_LARGE,
        R::PIPECONNECT_ERR_REPLY_CODE_MISMATCH,
        R::PIPECONNECT_ERR_REPLY_INCOMPLETE,
        R::PIPECONNECT_ERR_NOT_EHLO_REPLY,
        R::PIPECONNECT_ERR_CORRUPT_RECORD,
        R::PIPECONNECT_ERR_STORE_IO,
        R::PIPECONNECT_ERR_STORE_SYMLINK,
        R::PIPECONNECT_ERR_STORE_NOT_REGULAR,
        R::PIPECONNECT_ERR_STORE_WRONG_OWNER,
        R::PIPECONNECT_ERR_STORE_TRUNCATED,
        R::PIPECONNECT_ERR_STORE_BAD_MAGIC,
        R::PIPECONNECT_ERR_STORE_VERSION,
        R::PIPECONNECT_ERR_STORE_GEOMETRY,
        R::PIPECONNECT_ERR_STORE_CHECKSUM,
        R::PIPECONNECT_ERR_STORE_PERMISSIONS,
        R::PIPECONNECT_ERR_BAD_SEQUENCE,
        R::PIPECONNECT_ERR_UNEXPECTED_REPLY,
        R::PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS,
        R::PIPECONNECT_ERR_INVALID_INTENT,
        R::PIPECONNECT_ERR_TLS_STATE_MISMATCH,
        R::PIPECONNECT_ERR_CANNOT_FORMAT,
        R::PIPECONNECT_ERR_STORE_REMOTE_FS,
    ];

    /// The message for this result, NUL-terminated.
    pub fn message_nul(self) -> &'static str {
        match self {
            R::PIPECONNECT_OK => "success\0",
            R::PIPECONNECT_NOT_FOUND => {
                "not found: no live cache entry, or the value was not advertised\0"
            }
            R::PIPECONNECT_NOT_CACHED => {
                "not cached: the EHLO reply lacks PIPECONNECT or PIPELINING\0"
            }
            R::PIPECONNECT_NOT_CACHED_REMOVED => {
                "not cached: the EHLO reply lacks PIPECONNECT or PIPELINING; the older entry was removed\0"
            }
            R::PIPECONNECT_NO_EVENT => "no event is queued\0",
            R::PIPECONNECT_ERR_NULL_POINTER => "a pointer argument was NULL\0",
            R::PIPECONNECT_ERR_INVALID_ARGUMENT => "an argument is outside its allowed range\0",
            R::PIPECONNECT_ERR_INVALID_ADDRESS => "not a valid IPv4 or IPv6 address\0",
            R::PIPECONNECT_ERR_INVALID_EHLO_NAME => {
                "the EHLO name is empty, longer than 255 bytes or not printable ASCII\0"
            }
            R::PIPECONNECT_ERR_NOT_UTF8 => "a string argument is not valid UTF-8\0",
            R::PIPECONNECT_ERR_BUFFER_TOO_SMALL => {
                "the output buffer is too small; the needed length was written\0"
            }
            R::PIPECONNECT_ERR_BAD_STATE => "the call does not fit the handle's current state\0",
            R::PIPECONNECT_ERR_MALFORMED_REPLY => {
                "a reply line does not start with a 3-digit code and ' ' or '-'\0"
            }
            R::PIPECONNECT_ERR_REPLY_LINE_TOO_LONG => {
                "a reply line is longer than the parser's limit\0"
            }
            R::PIPECONNECT_ERR_REPLY_TOO_MANY_LINES => {
                "a reply has more lines than the parser's limit\0"
            }
            R::PIPECONNECT_ERR_REPLY_TOO_LARGE => "a reply is larger than the parser's limit\0",
            R::PIPECONNECT_ERR_REPLY_CODE_MISMATCH => {
                "the lines of a multi-line reply carry different codes\0"
            }
            R::PIPECONNECT_ERR_REPLY_INCOMPLETE => "the bytes end in the middle of a reply\0",
            R::PIPECONNECT_ERR_NOT_EHLO_REPLY => "the reply is not a 250 EHLO reply\0",
            R::PIPECONNECT_ERR_CORRUPT_RECORD => "an encoded capability record does not decode\0",
            R::PIPECONNECT_ERR_STORE_IO => {
                "the store file could not be opened, created, sized or mapped\0"
            }
            R::PIPECONNECT_ERR_STORE_SYMLINK => "the store path is a symbolic link; refused\0",
            R::PIPECONNECT_ERR_STORE_NOT_REGULAR => {
                "the store path is not a regular file; refused\0"
            }
            R::PIPECONNECT_ERR_STORE_WRONG_OWNER => {
                "the store file is owned by another user; refused\0"
            }
            R::PIPECONNECT_ERR_STORE_TRUNCATED => {
                "the store file is shorter than its header says; refused\0"
            }
            R::PIPECONNECT_ERR_STORE_BAD_MAGIC => {
                "the file is not a pipeconnect store (bad magic)\0"
            }
            R::PIPECONNECT_ERR_STORE_VERSION => "the store file has another format version\0",
            R::PIPECONNECT_ERR_STORE_GEOMETRY => {
                "the store file's geometry differs from the one asked for or is out of range\0"
            }
            R::PIPECONNECT_ERR_STORE_CHECKSUM => {
                "the store file's header checksum does not match\0"
            }
            R::PIPECONNECT_ERR_STORE_PERMISSIONS => {
                "the store file is writable by others (or by its group outside group mode); \
                 refused\0"
            }
            R::PIPECONNECT_ERR_STORE_REMOTE_FS => {
                "the store file is on a network or non-local filesystem; refused\0"
            }
            R::PIPECONNECT_ERR_BAD_SEQUENCE => {
                "the command sequence is empty, too long, or not in an order SMTP allows\0"
            }
            R::PIPECONNECT_ERR_UNEXPECTED_REPLY => "a reply answers no command sent\0",
            R::PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS => {
                "cleartext bytes arrived after the STARTTLS reply; close the connection\0"
            }
            R::PIPECONNECT_ERR_INVALID_INTENT => "the session's intent is not usable\0",
            R::PIPECONNECT_ERR_TLS_STATE_MISMATCH => {
                "the cached information is for another TLS state than the connection's\0"
            }
            R::PIPECONNECT_ERR_CANNOT_FORMAT => "the library cannot format this command line\0",
            R::PIPECONNECT_ERR_PANIC => {
                "a panic inside libpipeconnect was caught (or an earlier one poisoned this handle); please report it\0"
            }
        }
    }

    /// The result with this numeric value, if it is one.
    pub fn from_raw(v: c_int) -> Option<pipeconnect_result> {
        Self::ALL
            .iter()
            .chain(std::iter::once(&R::PIPECONNECT_ERR_PANIC))
            .copied()
            .find(|r| *r as c_int == v)
    }
}

/// A static, NUL-terminated English sentence saying what `result` means. Never NULL: an
/// unknown value gets "unknown result". The string must not be freed. Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_result_message(result: c_int) -> *const c_char {
    let msg = std::panic::catch_unwind(|| {
        pipeconnect_result::from_raw(result).map_or("unknown result\0", |r| r.message_nul())
    })
    .unwrap_or("unknown result\0");
    msg.as_ptr().cast()
}

/// Whether `result` is an error (not `PIPECONNECT_OK` and not an outcome such as
/// `PIPECONNECT_NOT_FOUND`). Thread-safe.
#[no_mangle]
pub extern "C" fn pipeconnect_result_is_error(result: c_int) -> bool {
    result >= 7100 || (result != 0 && result < 7000)
}
