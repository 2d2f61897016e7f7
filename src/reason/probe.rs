//! Each reason's own test of a failure: does the status code, with the words and the SMTP
//! command around it, make this failure one of mine? Sisimai's `ProbesInto` per reason,
//! which [`super::find`] asks in its fixed order. The words are `phrases.tsv`'s; what lives
//! here is only how each reason weighs status, command and reply code against them.

use super::{phrases::Words, status};

/// What a reason's test reads.
#[derive(Debug, Clone, Copy)]
pub struct Fact<'a> {
    /// The enhanced status code, or empty.
    pub status: &'a str,
    /// The reasons the diagnostic text's words name.
    pub words: &'a Words,
    /// The SMTP command the reply answered (`RCPT`), if known.
    pub command: Option<&'a str>,
    /// A reason the report stated itself.
    pub stated: Option<&'static str>,
    /// The SMTP reply code, if known.
    pub reply_code: Option<u16>,
}

/// Commands sent before DATA: a refusal in reply to one of them cannot be about the
/// message's content.
const BEFORE_DATA: &[&str] = &["CONN", "EHLO", "HELO", "MAIL", "RCPT"];

/// Does `reason`'s own test claim this failure?
pub fn probes_into(reason: &str, f: &Fact<'_>) -> bool {
    if reason == "spamdetected" && f.status.is_empty() {
        // A spam verdict without any status code is too weak a reading (Sisimai's rule).
        return false;
    }
    if f.stated == Some(reason) {
        return true;
    }
    let named = status::name(f.status);
    let words = |r: &str| f.words.say(r);
    let before_data = f.command.is_some_and(|c| BEFORE_DATA.contains(&c));
    match reason {
        "mailboxfull" | "emailtoolarge" | "authfailure" | "requireptr" | "ratelimited"
        | "blocked" => named == Some(reason) || words(reason),
        "suspend" => f.reply_code == Some(525) || words(reason),
        "norelaying" => {
            !matches!(
                f.stated,
                Some("securityerror" | "systemerror" | "undefined")
            ) && !matches!(f.command, Some("CONN" | "EHLO" | "HELO"))
                && words(reason)
        }
        "userunknown" => match named {
            Some("suspend") => false,
            // The status says unknown user; other words can still say it is something else.
            Some("userunknown") => ![
                "norelaying",
                "blocked",
                "mailboxfull",
                "hasmoved",
                "rejected",
                "notaccept",
            ]
            .iter()
            .any(|r| words(r)),
            // Otherwise only a refused recipient, in reply to RCPT, is an unknown user.
            _ => f.command == Some("RCPT") && words(reason),
        },
        "filtered" => match named {
            Some("suspend") => false,
            Some("filtered") => words("userunknown") || words(reason),
            // Refused before the message was read: not a filter.
            _ => !before_data && (words(reason) || words("userunknown")),
        },
        "contenterror" => {
            !probes_into("spamdetected", f) && (named == Some(reason) || words(reason))
        }
        "rejected" => {
            let named = named.unwrap_or("undefined");
            if named == "rejected" {
                return true;
            }
            match f.command {
                Some("MAIL") => words(reason),
                Some("DATA") if named != "userunknown" => words(reason),
                _ if matches!(named, "undefined" | "securityerror" | "systemerror") => {
                    words(reason)
                }
                _ => false,
            }
        }
        "hostunknown" => {
            if named == Some(reason) {
                !words("networkerror")
            } else {
                words(reason)
            }
        }
        "spamdetected" => named == Some(reason) || (!before_data && words(reason)),
        "virusdetected" => !before_data && words(reason),
        "notaccept" => matches!(f.reply_code, Some(521 | 556)) || words(reason),
        "failedstarttls" => {
            f.command == Some("STARTTLS")
                || matches!(f.reply_code, Some(523 | 524 | 538))
                || words(reason)
        }
        "syntaxerror" => f
            .reply_code
            .is_some_and(|c| (401..408).contains(&c) || (501..508).contains(&c)),
        "hasmoved" | "notcompliantrfc" | "badreputation" => words(reason),
        _ => false,
    }
}

/// The commands that can be named in a text, in the order they are looked for; the last one
/// found wins, so a later stage of the dialogue outranks an earlier one named in passing.
const COMMANDS: &[(&str, &str)] = &[
    ("HELO", "HELO"),
    ("EHLO", "EHLO"),
    ("STARTTLS", "STARTTLS"),
    ("AUTH PLAIN", "AUTH"),
    ("AUTH LOGIN", "AUTH"),
    ("AUTH CRAM-", "AUTH"),
    ("AUTH DIGEST-", "AUTH"),
    ("MAIL F", "MAIL"),
    ("RCPT", "RCPT"),
    ("DATA", "DATA"),
    ("QUIT", "QUIT"),
    ("XFORWARD", "XFORWARD"),
];

/// The SMTP command a diagnostic text names (`in reply to RCPT TO command`, `>>> DATA`), read
/// the way Sisimai reads it: upper case only, as a word of its own, the latest stage named.
pub fn command(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'@';
    // The searchers are built once: every diagnostic is searched for every command.
    static FINDERS: std::sync::OnceLock<Vec<memchr::memmem::Finder<'static>>> =
        std::sync::OnceLock::new();
    let finders = FINDERS.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|(word, _)| memchr::memmem::Finder::new(word.as_bytes()))
            .collect()
    });
    let mut found = None;
    for ((word, name), finder) in COMMANDS.iter().zip(finders) {
        let Some(at) = finder.find(bytes) else {
            continue;
        };
        if !word.contains(' ') {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(at + word.len()).copied();
            if before.is_some_and(word_char) || after.is_some_and(word_char) {
                continue;
            }
        }
        found = Some(*name);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_the_latest_stage_named() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "550 5.1.1 <a@b>: User unknown (in reply to RCPT TO command)",
                Some("RCPT"),
            ),
            ("SMTP error from remote mail server after end of data", None),
            (">>> DATA <<< 554 rejected", Some("DATA")),
            ("after MAIL FROM:<a@b> SIZE=1: 550 no", Some("MAIL")),
            ("RCPTS are words, not commands", None),
            ("did not like our RCPT TO: 550 no; then DATA", Some("DATA")),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(command(text), *want, "{text}");
        }
    }

    #[test]
    fn the_command_decides_unknown_user_or_filter() {
        let words = Words::new("550 user unknown");
        let f = |command| Fact {
            words: &words,
            command,
            status: "5.0.0",
            stated: None,
            reply_code: Some(550),
        };
        assert!(probes_into("userunknown", &f(Some("RCPT"))));
        assert!(!probes_into("filtered", &f(Some("RCPT"))));
        assert!(probes_into("filtered", &f(Some("DATA"))));
        assert!(!probes_into("userunknown", &f(Some("DATA"))));
    }
}
