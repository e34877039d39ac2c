//! Reading the text that follows DATA: lines up to a lone `.`, with dot-unstuffing.
//!
//! The sink keeps no message text; it only counts the bytes of the message as it would be
//! stored (line endings included, the stuffed dots and the final `.` line excluded).

use std::io;

use super::channel::Channel;

/// How much of a long line is taken at a time.
const PIECE: usize = 8 * 1024;

/// Reads up to and including the final `.` line; the message size, or `None` if the peer
/// closed the connection first. Lines may end in CRLF or a bare LF.
pub fn read_message(channel: &mut Channel) -> io::Result<Option<u64>> {
    let mut bytes = 0u64;
    let mut at_line_start = true;
    loop {
        let Some(piece) = channel.read_piece(PIECE)? else {
            return Ok(None);
        };
        if at_line_start && (piece == b".\r\n" || piece == b".\n") {
            return Ok(Some(bytes));
        }
        let mut size = piece.len() as u64;
        if at_line_start && piece.first() == Some(&b'.') {
            size -= 1;
        }
        bytes += size;
        at_line_start = piece.last() == Some(&b'\n');
    }
}
