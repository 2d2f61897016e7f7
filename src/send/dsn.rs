//! Delivery status notification parameters (RFC 3461).

/// Encodes a value as xtext (RFC 3461 §4): printable ASCII except "+" and
/// "=" stays as it is, every other byte becomes "+" and two upper-case hex
/// digits. ENVID and ORCPT values must be sent this way.
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Longest ENVID RFC 3461 §4.4 allows, in characters before encoding.
pub const MAX_ENVID_LEN: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_encodes_plus_equals_and_non_printables() {
        let cases = [
            ("plain@lab.test", "plain@lab.test"),
            ("seed+tag@lab.test", "seed+2Btag@lab.test"),
            ("a=b", "a+3Db"),
            ("two words", "two+20words"),
            ("tab\there", "tab+09here"),
            ("café", "caf+C3+A9"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(xtext(input), want, "{input:?}");
        }
    }
}
