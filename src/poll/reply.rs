//! What the server said, as people read it.
//!
//! async-imap hands a server's NO or BAD over as the `Debug` text of its parse
//! (`code: None, info: Some("Login only available under a layer")`), and bytes it cannot parse
//! as the `Debug` text of a nom error (`Error { input: [0, 255, ...], code: TakeWhile1 }`).
//! Neither is for a user: this module turns both back into the server's own words, so every
//! [`super::PollError`] shows `NO Login only available under a layer` or the unreadable line,
//! escaped.

use async_imap::error::Error;

/// How an IMAP command failed, for deciding what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server answered NO or BAD: its text.
    Refused(String),
    /// The connection ended or broke: what happened to it.
    Connection(String),
    /// The server sent something that is not IMAP: the start of it, escaped.
    Unreadable(String),
    /// Anything else (an input probe could not send), in words.
    Other(String),
}

impl Failure {
    /// The text to show.
    pub(crate) fn text(&self) -> &str {
        match self {
            Failure::Refused(t)
            | Failure::Connection(t)
            | Failure::Unreadable(t)
            | Failure::Other(t) => t,
        }
    }
}

/// Classifies an async-imap error and renders it in the server's words.
pub(crate) fn failure(e: &Error) -> Failure {
    match e {
        Error::No(debug) => Failure::Refused(status_line("NO", debug)),
        Error::Bad(debug) => Failure::Refused(status_line("BAD", debug)),
        Error::ConnectionLost => Failure::Connection("connection closed by the server".into()),
        Error::Io(io) => io_failure(io),
        Error::Parse(p) => {
            Failure::Unreadable(format!("unexpected response from the server ({p})"))
        }
        Error::Validate(v) => Failure::Other(v.to_string()),
        other => Failure::Other(other.to_string()),
    }
}

/// An I/O error: a broken connection in words, or the garbage the parser choked on.
pub(crate) fn io_failure(io: &std::io::Error) -> Failure {
    use std::io::ErrorKind as K;
    let text = io.to_string();
    if let Some((_, input)) = text.split_once(" during parsing of ") {
        // The parser's `Debug` of the input: a quoted string literal.
        let raw = unquote(input).unwrap_or_else(|| input.to_owned());
        return Failure::Unreadable(format!(
            "unreadable response from the server: {}",
            printable(raw.as_bytes())
        ));
    }
    // `status: Bye, code: None, information: Some("...")`: a status where a tagged reply was due.
    if let Some(info) = field(&text, "information: Some(") {
        let status = text
            .strip_prefix("status: ")
            .and_then(|s| s.split(',').next())
            .unwrap_or("")
            .to_ascii_uppercase();
        return Failure::Connection(format!("{status} {info}").trim().to_owned());
    }
    let what = match io.kind() {
        K::ConnectionReset => "connection reset by the server",
        K::ConnectionAborted => "connection aborted",
        K::BrokenPipe => "connection closed by the server (broken pipe)",
        K::UnexpectedEof => "connection closed by the server",
        K::TimedOut => "timed out",
        _ => return Failure::Connection(text),
    };
    Failure::Connection(what.to_owned())
}

/// `NO [ALERT] text` from async-imap's `code: Some(Alert), info: Some("text")` (or
/// `outcome: Outcome { code: ..., information: Some("text") }`).
fn status_line(status: &str, debug: &str) -> String {
    let info = field(debug, "info: Some(").or_else(|| field(debug, "information: Some("));
    let alert = debug.contains("code: Some(Alert)");
    let mut line = status.to_owned();
    if alert {
        line.push_str(" [ALERT]");
    }
    match info {
        Some(info) => {
            line.push(' ');
            line.push_str(&info);
        }
        None if debug.contains("code: None") || debug.is_empty() => {}
        // A form this does not know: better the raw text than nothing.
        None => {
            line.push(' ');
            line.push_str(debug);
        }
    }
    line
}

/// The string literal right after `key` in a `Debug` text, unescaped.
fn field(debug: &str, key: &str) -> Option<String> {
    let at = debug.find(key)? + key.len();
    unquote(&debug[at..])
}

/// Reads a Rust string literal (`"..."` with `\"`, `\\`, `\n`, `\u{..}` escapes) at the start
/// of `s`.
fn unquote(s: &str) -> Option<String> {
    let mut chars = s.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    let rest: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let hex = rest.trim_start_matches('{');
                    out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Bytes from the server as one readable line: printable ASCII as is, the rest as `\xNN`
/// (control characters never reach a terminal), cut after 80 characters.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\r', '\n']);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == 80 {
            out.push('…');
            break;
        }
        match c {
            ' '..='~' => out.push(c),
            c if !c.is_control() && c != '\u{fffd}' => out.push(c),
            c => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_the_server_wrote_them() {
        let e = Error::No(r#"code: None, info: Some("Login only available under a layer")"#.into());
        assert_eq!(
            failure(&e),
            Failure::Refused("NO Login only available under a layer".into())
        );
        let e = Error::Bad(r#"code: Some(Alert), info: Some("say \"hi\"")"#.into());
        assert_eq!(failure(&e).text(), r#"BAD [ALERT] say "hi""#);
        let e = Error::No(
            r#"outcome: Outcome { code: None, information: Some("[AUTHENTICATIONFAILED] Authentication failed.") }"#.into(),
        );
        assert_eq!(
            failure(&e).text(),
            "NO [AUTHENTICATIONFAILED] Authentication failed."
        );
    }

    #[test]
    fn garbage_and_broken_connections_are_named() {
        let io = std::io::Error::other(
            r#"Error(Error { input: [0, 255, 103], code: TakeWhile1 }) during parsing of "\0\u{fffd}garbage\r\n""#,
        );
        let f = failure(&Error::Io(io));
        assert!(matches!(f, Failure::Unreadable(_)), "{f:?}");
        assert_eq!(
            f.text(),
            r"unreadable response from the server: \x00\xef\xbf\xbdgarbage"
        );
        assert!(!f.text().contains("TakeWhile"));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            failure(&Error::Io(reset)),
            Failure::Connection("connection reset by the server".into())
        );
        let bye = std::io::Error::other(
            r#"status: Bye, code: None, information: Some("Server shutting down")"#,
        );
        assert_eq!(failure(&Error::Io(bye)).text(), "BYE Server shutting down");
    }
}
