//! Formatting SMTP replies.

/// A reply of one or more lines: `250-first`, …, `250 last`, each ending in CRLF.
pub fn multiline<S: AsRef<str>>(code: u16, lines: &[S]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let separator = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{separator}{}\r\n", line.as_ref()));
    }
    out
}

/// A one-line reply.
pub fn single(code: u16, text: &str) -> String {
    format!("{code} {text}\r\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::single(250, "OK"), "250 OK\r\n");
        assert_eq!(
            super::multiline(250, &["a", "b", "c"]),
            "250-a\r\n250-b\r\n250 c\r\n"
        );
    }
}
