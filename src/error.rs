//! Errors of the safe core. The C layer maps each to a `pipeconnect_result`.

use std::fmt;

/// Why an operation of the core failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// A server or local address that is not a valid IPv4 or IPv6 address.
    InvalidAddress,
    /// A port of 0, or an argument outside its documented range.
    InvalidArgument,
    /// An EHLO name that is empty, too long, or not printable ASCII.
    InvalidEhloName,
    /// A reply line that does not start with a three-digit code and a separator.
    MalformedReply,
    /// A reply line longer than the parser's limit.
    ReplyLineTooLong,
    /// A multi-line reply with more lines than the parser's limit.
    ReplyTooManyLines,
    /// A reply larger in total than the parser's limit.
    ReplyTooLarge,
    /// The lines of a multi-line reply carry different codes.
    ReplyCodeMismatch,
    /// The bytes end in the middle of a reply.
    ReplyIncomplete,
    /// An EHLO reply that is not a 250 reply.
    NotAnEhloReply,
    /// An encoded record (from a store file) that does not decode.
    CorruptRecord,
}

impl Error {
    /// A sentence saying what went wrong.
    pub fn message(self) -> &'static str {
        match self {
            Error::InvalidAddress => "not a valid IPv4 or IPv6 address",
            Error::InvalidArgument => "an argument is outside its allowed range",
            Error::InvalidEhloName => "the EHLO name is empty, too long or not printable ASCII",
            Error::MalformedReply => {
                "a reply line does not start with a 3-digit code and ' ' or '-'"
            }
            Error::ReplyLineTooLong => "a reply line is longer than the parser's limit",
            Error::ReplyTooManyLines => "a reply has more lines than the parser's limit",
            Error::ReplyTooLarge => "a reply is larger than the parser's limit",
            Error::ReplyCodeMismatch => "the lines of a multi-line reply carry different codes",
            Error::ReplyIncomplete => "the bytes end in the middle of a reply",
            Error::NotAnEhloReply => "the reply is not a 250 EHLO reply",
            Error::CorruptRecord => "an encoded capability record does not decode",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
