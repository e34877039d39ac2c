//! Checking an AUTH PLAIN response (RFC 4616). Any user and password are accepted; the
//! response only has to be well-formed: base64 of `authzid NUL authcid NUL password`.

/// Why a response is refused, as the text of a 501 reply.
pub fn check_plain(response: &str) -> Result<(), &'static str> {
    if response == "*" {
        return Err("Authentication cancelled");
    }
    let decoded = decode_base64(response).ok_or("Invalid base64 data")?;
    let fields = decoded.split(|&b| b == 0).count();
    if fields != 3 {
        return Err("Invalid PLAIN response");
    }
    Ok(())
}

/// Standard base64 with padding; `None` if malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let mut acc = 0u32;
    for (i, &b) in bytes[..bytes.len() - padding].iter().enumerate() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        if i % 4 == 3 {
            out.extend_from_slice(&acc.to_be_bytes()[1..]);
            acc = 0;
        }
    }
    match padding {
        1 => out.extend_from_slice(&(acc << 6).to_be_bytes()[1..3]),
        2 => out.push((acc << 12).to_be_bytes()[1]),
        _ => {}
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("AHVzZXIAcGFzcw==").unwrap(), b"\0user\0pass");
        assert!(decode_base64("YWJ").is_none());
        assert!(decode_base64("Y===").is_none());
        assert!(decode_base64("YW!j").is_none());
    }

    #[test]
    fn plain() {
        assert!(check_plain("AHVzZXIAcGFzcw==").is_ok());
        assert!(check_plain("*").is_err());
        assert!(check_plain("dXNlcg==").is_err());
        assert!(check_plain("???").is_err());
    }
}
