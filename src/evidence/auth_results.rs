//! `Authentication-Results` (RFC 8601): what the receiving provider concluded about SPF, DKIM,
//! DMARC and ARC for our message.

use serde::{Deserialize, Serialize};

/// One parsed `Authentication-Results` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    /// Who did the checks (RFC 8601 §2.5), e.g. `mx.google.com`.
    pub authserv_id: String,
    /// One entry per method checked; empty for `none`.
    pub results: Vec<MethodResult>,
}

/// The result of one method (RFC 8601 §2.7), e.g. `dkim=pass header.d=example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodResult {
    /// `spf`, `dkim`, `dmarc`, `arc`, ... (lower-case, version dropped).
    pub method: String,
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`, `policy`, ...
    pub result: String,
    /// The `reason=` value, if any.
    pub reason: Option<String>,
    /// Properties as (`ptype.property`, value), e.g. (`header.d`, `example.org`).
    pub properties: Vec<(String, String)>,
}

impl AuthResults {
    /// The first result of a method, e.g. `dmarc`.
    pub fn get(&self, method: &str) -> Option<&MethodResult> {
        self.results.iter().find(|r| r.method == method)
    }
}

/// Parses one field value; `None` when it is empty.
pub fn parse(value: &str) -> Option<AuthResults> {
    let text = strip_comments(value);
    let mut parts: Vec<String> = split_outside_quotes(&text, ';');
    let head = parts.first()?.trim().to_owned();
    let first_word = head.split_whitespace().next()?;
    // The authserv-id may be followed by a version number (RFC 8601 §2.2). Exchange Online
    // leaves it out and starts with a result: keep that part as a result, with an empty id.
    let authserv_id = if first_word.contains('=') {
        String::new()
    } else {
        parts.remove(0);
        first_word.to_ascii_lowercase()
    };
    let mut results = Vec::new();
    for part in parts {
        let words = split_outside_quotes(part.trim(), ' ');
        let mut words = words.iter().map(|w| w.trim()).filter(|w| !w.is_empty());
        let Some(first) = words.next() else { continue };
        if first.eq_ignore_ascii_case("none") {
            continue;
        }
        let Some((method, result)) = first.split_once('=') else {
            continue;
        };
        let method = method.split('/').next().unwrap_or(method);
        let mut entry = MethodResult {
            method: method.trim().to_ascii_lowercase(),
            result: result.trim().to_ascii_lowercase(),
            reason: None,
            properties: Vec::new(),
        };
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            if key.eq_ignore_ascii_case("reason") {
                entry.reason = Some(value);
            } else if key.contains('.') {
                entry
                    .properties
                    .push((key.trim().to_ascii_lowercase(), value));
            }
        }
        results.push(entry);
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// The results a provider stamped itself: the topmost field names the receiving provider, and
/// only fields with that authserv-id are kept (RFC 8601 §5: the others may be forged by the
/// sender or added by intermediaries). `values` are in header order, topmost first.
pub fn from_receiver<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<AuthResults> {
    let parsed: Vec<AuthResults> = values.into_iter().filter_map(parse).collect();
    let Some(receiver) = parsed.first().map(|r| r.authserv_id.clone()) else {
        return Vec::new();
    };
    parsed
        .into_iter()
        .filter(|r| r.authserv_id == receiver)
        .collect()
}

/// Removes RFC 5322 comments (nested parentheses), keeping quoted strings intact.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted, mut escaped) = (0u32, false, false);
    for c in s.chars() {
        if escaped {
            if depth == 0 {
                out.push(c);
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                parts.last_mut().expect("never empty").push(c);
            }
            c if c == sep && !quoted => parts.push(String::new()),
            c if sep == ' ' && c.is_whitespace() && !quoted => parts.push(String::new()),
            c => parts.last_mut().expect("never empty").push(c),
        }
    }
    parts
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(|s| s.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_style() {
        let v = "mx.google.com; dkim=pass header.i=@example.org header.s=s1 header.b=AbC; \
                 spf=pass (google.com: domain of probe@example.org designates 192.0.2.1 as permitted sender) smtp.mailfrom=probe@example.org; \
                 dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.org; arc=none";
        let r = parse(v).unwrap();
        assert_eq!(r.authserv_id, "mx.google.com");
        let methods: Vec<_> = r
            .results
            .iter()
            .map(|m| (m.method.as_str(), m.result.as_str()))
            .collect();
        assert_eq!(
            methods,
            [
                ("dkim", "pass"),
                ("spf", "pass"),
                ("dmarc", "pass"),
                ("arc", "none")
            ]
        );
        assert_eq!(
            r.get("spf").unwrap().properties,
            [("smtp.mailfrom".to_owned(), "probe@example.org".to_owned())]
        );
        assert_eq!(r.get("dkim").unwrap().properties.len(), 3);
    }

    #[test]
    fn rfc8601_examples() {
        // §B.2: nothing done.
        let r = parse("example.org 1; none").unwrap();
        assert_eq!(
            (r.authserv_id.as_str(), r.results.len()),
            ("example.org", 0)
        );
        // §B.5-like: reason, a quoted value, a versioned method, a folded comment.
        let r = parse(
            "example.com; dkim/1=fail reason=\"signature (bad) did not verify\" header.d=example.net (nested (comment)); spf=softfail smtp.mailfrom=a@b",
        )
        .unwrap();
        let dkim = r.get("dkim").unwrap();
        assert_eq!(dkim.result, "fail");
        assert_eq!(
            dkim.reason.as_deref(),
            Some("signature (bad) did not verify")
        );
        assert_eq!(
            dkim.properties,
            [("header.d".to_owned(), "example.net".to_owned())]
        );
        assert_eq!(r.get("spf").unwrap().result, "softfail");
        assert!(parse("").is_none());
    }

    #[test]
    fn only_the_receivers_own_results_count() {
        // Topmost first: the provider's own field, then one the sender forged.
        let got = from_receiver([
            "mx.google.com; spf=fail smtp.mailfrom=a@example.org",
            "mx.google.com; dkim=pass header.d=example.org",
            "forged.example; spf=pass smtp.mailfrom=a@example.org",
        ]);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|r| r.authserv_id == "mx.google.com"));
    }
}
