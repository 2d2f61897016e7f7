//! Encoding of message content for the DATA command (RFC 5321 §4.5.2, §2.3.8).

/// Encodes a message for transmission after `354`: every line ending becomes
/// CRLF, lines starting with "." get another "." (transparency, RFC 5321
/// §4.5.2), and a final CRLF is added if the message lacks one, so the
/// terminating ".\r\n" always starts a line. The terminator itself is not
/// included: the session sends it separately so a failure while sending the
/// content can be told apart from one after the end of data.
///
/// Bare LF and bare CR are both treated as line endings, because RFC 5321
/// §2.3.8 forbids them on the wire and composers (and files on disk) often
/// produce bare LF.
pub fn encode_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40 + 2);
    encode_data_into(message, &mut out);
    out
}

/// [`encode_data`], appending to `out`: a session reuses one buffer for every
/// message it sends, so a batch allocates only when a message outgrows it.
pub fn encode_data_into(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + message.len() / 40 + 2);
    // Whole lines are copied at once: this runs for every message of a batch.
    let mut rest = message;
    while let Some(&first) = rest.first() {
        if first == b'.' {
            out.push(b'.');
        }
        match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            None => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"\r\n");
                return;
            }
            Some(end) => {
                out.extend_from_slice(&rest[..end]);
                out.extend_from_slice(b"\r\n");
                let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
                rest = &rest[end + if crlf { 2 } else { 1 }..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_line_endings_and_stuffs_dots() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a", b"a\r\n"),
            (b"a\r\n", b"a\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\nb", b"a\r\nb\r\n"),
            (b"a\rb\r", b"a\r\nb\r\n"),
            (b"a\r\n\r\nb", b"a\r\n\r\nb\r\n"),
            (b"a\n\nb\n", b"a\r\n\r\nb\r\n"),
            (b".", b"..\r\n"),
            (b".\n", b"..\r\n"),
            (b"..x\n", b"...x\r\n"),
            (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n"),
            (b"a\n.hidden\n", b"a\r\n..hidden\r\n"),
            (b"a.b\n x.\n", b"a.b\r\n x.\r\n"),
            (b"\n.\n", b"\r\n..\r\n"),
            (b"caf\xc3\xa9\n", b"caf\xc3\xa9\r\n"),
        ];
        for &(input, want) in cases {
            assert_eq!(
                encode_data(input),
                want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn encoded_data_never_contains_the_terminator() {
        let nasty = b"x\n.\r\n.\n\r.\r\r\n.";
        let encoded = encode_data(nasty);
        let with_start = [b"\r\n".as_slice(), &encoded].concat();
        assert!(!with_start.windows(5).any(|w| w == b"\r\n.\r\n"));
        assert!(encoded.ends_with(b"\r\n"));
    }
}
