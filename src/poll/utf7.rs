//! Mailbox names on the wire are in modified UTF-7 (RFC 3501 §5.1.3): `&` starts a base64 run
//! of UTF-16BE (with `,` for `/`), `-` ends it, and `&-` is a plain `&`.

/// Decodes a wire name for display and matching; a malformed name is returned unchanged.
pub fn decode(name: &str) -> String {
    try_decode(name).unwrap_or_else(|| name.to_owned())
}

fn try_decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('-')?;
        let run = &after[..end];
        if run.is_empty() {
            out.push('&');
        } else {
            let bytes = base64_decode(run)?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Base64 with `,` in place of `/` and no padding.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b',' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        buffer = (buffer << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn modified_utf7_names() {
        let rows = [
            ("INBOX", "INBOX"),
            ("[Gmail]/Spam", "[Gmail]/Spam"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("Gel&APY-schte Elemente", "Gelöschte Elemente"),
            ("&BCcENQRABD0EPgQyBDgEOgQ4-", "Черновики"),
            ("Tom &- Jerry", "Tom & Jerry"),
            ("&ZeVnLIqe-", "日本語"),
            // Malformed: left as it is.
            ("broken&AP", "broken&AP"),
            ("bad&!!-", "bad&!!-"),
        ];
        for (wire, want) in rows {
            assert_eq!(decode(wire), want, "{wire}");
        }
    }
}
