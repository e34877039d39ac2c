//! RFC 5321 replies from a byte stream.
//!
//! [`ReplyParser`] takes bytes exactly as read from a socket: split at any byte, several
//! replies in one buffer, CRLF or bare LF line ends, multi-line replies (`250-` … `250 `).
//! It is bounded: a line longer than [`ReplyLimits::max_line`], a reply with more than
//! [`ReplyLimits::max_lines`] lines or more than [`ReplyLimits::max_bytes`] bytes is an
//! error, never memory growth. After an error the parser stays failed until
//! [`ReplyParser::reset`], because a stream that broke once cannot be resynchronised.

use crate::error::Error;

/// Bounds on what one reply may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// The longest line, in bytes, without its line end (RFC 5321 asks for 512; servers
    /// send longer, so the default is 2048).
    pub max_line: usize,
    /// The most lines in one reply (default 256).
    pub max_lines: usize,
    /// The most bytes in one reply, line ends included (default 65536).
    pub max_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_line: 2048,
            max_lines: 256,
            max_bytes: 65536,
        }
    }
}

/// An RFC 3463 enhanced status code, such as `2.1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2, 4 or 5.
    pub class: u8,
    /// 0 to 999.
    pub subject: u16,
    /// 0 to 999.
    pub detail: u16,
}

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedCode>,
    lines: Vec<Vec<u8>>,
}

impl Reply {
    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }
    /// The enhanced status code at the start of the first line's text, if any.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }
    /// The text of each line, after the code and its separator, without the line end.
    pub fn lines(&self) -> &[Vec<u8>] {
        &self.lines
    }
    /// The lines' text joined with `\n`.
    pub fn text(&self) -> Vec<u8> {
        self.lines.join(&b'\n')
    }
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    /// 3xx (an intermediate reply such as 354 or 334).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }
    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// Parse bytes that hold exactly one complete reply.
    pub fn parse(bytes: &[u8], limits: ReplyLimits) -> Result<Reply, Error> {
        let mut p = ReplyParser::new(limits);
        let mut out = Vec::with_capacity(1);
        p.feed(bytes, &mut out)?;
        if !p.is_idle() {
            return Err(Error::ReplyIncomplete);
        }
        match out.len() {
            1 => Ok(out.pop().expect("one reply")),
            0 => Err(Error::ReplyIncomplete),
            _ => Err(Error::MalformedReply),
        }
    }

    /// Build a reply from its parts (for tests and tools).
    pub fn new(code: u16, lines: Vec<Vec<u8>>) -> Reply {
        let enhanced = lines.first().and_then(|l| parse_enhanced(code, l));
        Reply {
            code,
            enhanced,
            lines,
        }
    }
}

/// An incremental reply parser. See the module documentation.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: ReplyLimits,
    partial: Vec<u8>,
    lines: Vec<Vec<u8>>,
    code: Option<u16>,
    bytes_in_reply: usize,
    failed: Option<Error>,
}

impl ReplyParser {
    /// A parser with these limits.
    pub fn new(limits: ReplyLimits) -> Self {
        ReplyParser {
            limits,
            partial: Vec::new(),
            lines: Vec::new(),
            code: None,
            bytes_in_reply: 0,
            failed: None,
        }
    }

    /// Forget everything, including a failure.
    pub fn reset(&mut self) {
        *self = ReplyParser::new(self.limits);
    }

    /// True when no reply is partly read.
    pub fn is_idle(&self) -> bool {
        self.partial.is_empty() && self.lines.is_empty()
    }

    /// The error that stopped the parser, if any.
    pub fn failure(&self) -> Option<Error> {
        self.failed
    }

    /// Feed bytes; every reply they complete is appended to `out`, in order. Replies
    /// completed before an error are still appended.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Reply>) -> Result<(), Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        while !data.is_empty() {
            let (chunk, line_done) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], true),
                None => (data, false),
            };
            data = &data[chunk.len() + usize::from(line_done)..];
            // +1 allows the CR of a CRLF that is not yet known to be one.
            let line_room = (self.limits.max_line + 1).saturating_sub(self.partial.len());
            if chunk.len() > line_room {
                // Both limits may break within this chunk: report the one its earlier
                // byte breaks, so that how the stream was split never changes the error.
                let byte_room = self.limits.max_bytes.saturating_sub(self.bytes_in_reply);
                return Err(self.fail(if byte_room < line_room {
                    Error::ReplyTooLarge
                } else {
                    Error::ReplyLineTooLong
                }));
            }
            self.bytes_in_reply += chunk.len() + usize::from(line_done);
            if self.bytes_in_reply > self.limits.max_bytes {
                return Err(self.fail(Error::ReplyTooLarge));
            }
            self.partial.extend_from_slice(chunk);
            if line_done {
                let mut line = std::mem::take(&mut self.partial);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > self.limits.max_line {
                    return Err(self.fail(Error::ReplyLineTooLong));
                }
                if let Some(reply) = self.take_line(line)? {
                    out.push(reply);
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e);
        self.partial = Vec::new();
        self.lines = Vec::new();
        e
    }

    fn take_line(&mut self, line: Vec<u8>) -> Result<Option<Reply>, Error> {
        let (code, last) = match parse_line_head(&line) {
            Some(h) => h,
            None => return Err(self.fail(Error::MalformedReply)),
        };
        if let Some(c) = self.code {
            if c != code {
                return Err(self.fail(Error::ReplyCodeMismatch));
            }
        }
        if self.lines.len() >= self.limits.max_lines {
            return Err(self.fail(Error::ReplyTooManyLines));
        }
        self.code = Some(code);
        let text = if line.len() > 4 {
            line[4..].to_vec()
        } else {
            Vec::new()
        };
        self.lines.push(text);
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        self.bytes_in_reply = 0;
        Ok(Some(Reply::new(code, lines)))
    }
}

/// `(code, is_last_line)` for a line that starts with a valid code and separator.
fn parse_line_head(line: &[u8]) -> Option<(u16, bool)> {
    if line.len() < 3 {
        return None;
    }
    let d = &line[..3];
    if !(b'1'..=b'5').contains(&d[0]) || !d[1].is_ascii_digit() || !d[2].is_ascii_digit() {
        return None;
    }
    let code = (d[0] - b'0') as u16 * 100 + (d[1] - b'0') as u16 * 10 + (d[2] - b'0') as u16;
    match line.get(3) {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        _ => None,
    }
}

fn parse_enhanced(code: u16, text: &[u8]) -> Option<EnhancedCode> {
    let word_end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    let word = std::str::from_utf8(&text[..word_end]).ok()?;
    let mut parts = word.split('.');
    let class: u8 = parts.next()?.parse().ok()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    if parts.next().is_some()
        || !matches!(class, 2 | 4 | 5)
        || u16::from(class) != code / 100
        || subject.is_empty()
        || subject.len() > 3
        || detail.is_empty()
        || detail.len() > 3
        || !subject
            .bytes()
            .chain(detail.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(EnhancedCode {
        class,
        subject: subject.parse().ok()?,
        detail: detail.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error for `stream` fed whole, and for every split of it in two.
    fn errors_at_every_split(limits: ReplyLimits, stream: &[u8]) -> Vec<Result<(), Error>> {
        let mut out = Vec::new();
        for cut in 0..=stream.len() {
            let mut p = ReplyParser::new(limits);
            let mut replies = Vec::new();
            let r = p
                .feed(&stream[..cut], &mut replies)
                .and_then(|()| p.feed(&stream[cut..], &mut replies));
            out.push(r);
        }
        out
    }

    // Found by the `reply` fuzz target: fed whole, a chunk that broke both limits was
    // reported as too long a line; split, as too large a reply.
    #[test]
    fn the_limit_broken_first_is_reported_however_the_stream_is_split() {
        let limits = ReplyLimits {
            max_line: 4,
            max_lines: 4,
            max_bytes: 3,
        };
        for r in errors_at_every_split(limits, b"250123") {
            assert_eq!(r, Err(Error::ReplyTooLarge));
        }
        let limits = ReplyLimits {
            max_line: 2,
            max_lines: 4,
            max_bytes: 10,
        };
        for r in errors_at_every_split(limits, b"25012") {
            assert_eq!(r, Err(Error::ReplyLineTooLong));
        }
    }

    fn all(bytes: &[u8]) -> Result<Vec<Reply>, Error> {
        let mut p = ReplyParser::new(ReplyLimits::default());
        let mut out = Vec::new();
        p.feed(bytes, &mut out)?;
        Ok(out)
    }

    #[test]
    fn multi_line_reply_with_crlf() {
        let r = all(b"250-mx.example Hello\r\n250-PIPELINING\r\n250 HELP\r\n").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code(), 250);
        assert_eq!(r[0].lines().len(), 3);
        assert_eq!(r[0].lines()[1], b"PIPELINING");
    }

    #[test]
    fn bare_lf_and_several_replies_in_one_buffer() {
        let r = all(b"220 hi\n250 ok\n354 go\n").unwrap();
        let codes: Vec<u16> = r.iter().map(Reply::code).collect();
        assert_eq!(codes, [220, 250, 354]);
    }

    #[test]
    fn split_at_every_byte_gives_the_same_replies() {
        let stream = b"220 mx ESMTP\r\n250-a\r\n250 2.1.0 OK\r\n550 5.1.1 no\r\n";
        let whole = all(stream).unwrap();
        let mut p = ReplyParser::new(ReplyLimits::default());
        let mut out = Vec::new();
        for b in stream.iter() {
            p.feed(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out, whole);
        assert!(p.is_idle());
    }

    #[test]
    fn enhanced_codes() {
        let r = all(b"250 2.1.0 Sender OK\r\n550 5.7.1 no\r\n451 4.7.1 try later\r\n250 2.1 x\r\n550 4.1.1 class mismatch\r\n").unwrap();
        assert_eq!(
            r[0].enhanced(),
            Some(EnhancedCode {
                class: 2,
                subject: 1,
                detail: 0
            })
        );
        assert_eq!(r[1].enhanced().unwrap().class, 5);
        assert_eq!(r[2].enhanced().unwrap().detail, 1);
        assert_eq!(r[3].enhanced(), None);
        assert_eq!(r[4].enhanced(), None);
    }

    #[test]
    fn a_code_without_text_is_a_reply() {
        let r = all(b"250\r\n").unwrap();
        assert_eq!(r[0].code(), 250);
        assert_eq!(r[0].lines(), &[Vec::<u8>::new()]);
    }

    #[test]
    fn garbage_is_an_error_and_stays_one() {
        let mut p = ReplyParser::new(ReplyLimits::default());
        let mut out = Vec::new();
        assert_eq!(
            p.feed(b"HTTP/1.1 400 Bad\r\n", &mut out),
            Err(Error::MalformedReply)
        );
        assert_eq!(p.feed(b"250 ok\r\n", &mut out), Err(Error::MalformedReply));
        assert!(out.is_empty());
        p.reset();
        p.feed(b"250 ok\r\n", &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bad_separators_and_codes() {
        for bad in [
            &b"25 x\n"[..],
            b"2500 x\n",
            b"250x\n",
            b"650 x\n",
            b"a50 x\n",
            b"\n",
        ] {
            assert_eq!(all(bad), Err(Error::MalformedReply), "{bad:?}");
        }
        assert_eq!(all(b"250-a\n251 b\n"), Err(Error::ReplyCodeMismatch));
    }

    #[test]
    fn limits_bound_memory() {
        let limits = ReplyLimits {
            max_line: 100,
            max_lines: 4,
            max_bytes: 300,
        };
        let mut p = ReplyParser::new(limits);
        let mut out = Vec::new();
        // A line with no end never grows past the limit.
        let chunk = vec![b'2'; 64];
        let mut err = None;
        for _ in 0..10 {
            if let Err(e) = p.feed(&chunk, &mut out) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(Error::ReplyLineTooLong));
        assert!(p.partial.capacity() <= 256);

        let mut p = ReplyParser::new(limits);
        assert_eq!(
            p.feed(b"250-a\n250-a\n250-a\n250-a\n250 a\n", &mut out),
            Err(Error::ReplyTooManyLines)
        );
        let mut p = ReplyParser::new(ReplyLimits {
            max_lines: 100,
            ..limits
        });
        let line = format!("250-{}\n", "x".repeat(90));
        assert_eq!(
            p.feed(line.repeat(4).as_bytes(), &mut out),
            Err(Error::ReplyTooLarge)
        );
    }

    #[test]
    fn replies_before_an_error_are_kept() {
        let mut p = ReplyParser::new(ReplyLimits::default());
        let mut out = Vec::new();
        assert!(p
            .feed(b"220 hi\r\n250 ok\r\ngarbage\r\n", &mut out)
            .is_err());
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn parse_complete_reply() {
        assert_eq!(
            Reply::parse(b"250 ok\r\n", ReplyLimits::default())
                .unwrap()
                .code(),
            250
        );
        assert_eq!(
            Reply::parse(b"250-ok\r\n", ReplyLimits::default()),
            Err(Error::ReplyIncomplete)
        );
        assert_eq!(
            Reply::parse(b"250 ok", ReplyLimits::default()),
            Err(Error::ReplyIncomplete)
        );
        assert_eq!(
            Reply::parse(b"250 ok\r\n250 again\r\n", ReplyLimits::default()),
            Err(Error::MalformedReply)
        );
    }
}
