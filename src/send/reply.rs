//! SMTP replies (RFC 5321 §4.2) and enhanced status codes (RFC 3463, RFC 2034).

use std::fmt;

/// Longest reply line we accept, in bytes, excluding the line terminator.
///
/// RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets, but real servers
/// exceed that with long explanations and URLs; 4096 is generous for those
/// while still bounding what a hostile server can make us buffer.
pub const MAX_LINE_LEN: usize = 4096;

/// Most lines we accept in one (multi-line) reply.
///
/// EHLO replies, the longest legitimate ones, run to a few dozen lines.
pub const MAX_REPLY_LINES: usize = 128;

/// An enhanced mail system status code, RFC 3463 (class.subject.detail); Display as "4.7.1".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, e.g. 7 for security or policy status.
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl EnhancedStatus {
    /// Parses a whole token such as "4.7.1" (RFC 3463 §2: class is 2, 4 or 5;
    /// subject and detail are one to three digits).
    pub fn parse(token: &str) -> Option<EnhancedStatus> {
        let mut parts = token.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(EnhancedStatus {
            class,
            subject: parse_1_to_3_digits(subject)?,
            detail: parse_1_to_3_digits(detail)?,
        })
    }

    /// Parses an enhanced status code at the start of reply text, returning it
    /// and the text after it (leading whitespace removed).
    pub fn parse_prefix(text: &str) -> Option<(EnhancedStatus, &str)> {
        let end = text.find([' ', '\t']).unwrap_or(text.len());
        let status = EnhancedStatus::parse(&text[..end])?;
        Some((status, text[end..].trim_start_matches([' ', '\t'])))
    }
}

fn parse_1_to_3_digits(s: &str) -> Option<u16> {
    if (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// RFC 5321 §4.2.1 first digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 2yz: the requested action was completed.
    PositiveCompletion,
    /// 3yz: accepted, more information needed (354 after DATA).
    PositiveIntermediate,
    /// 4yz: not done, but the error is temporary; try again later.
    TransientNegative,
    /// 5yz: not done, and repeating the same request will not help.
    PermanentNegative,
}

impl Severity {
    /// The severity of a reply code.
    ///
    /// Parsed replies always have a first digit of 2–5; a hand-built code
    /// outside that range is treated as permanent, the cautious reading.
    pub fn of_code(code: u16) -> Severity {
        match code / 100 {
            2 => Severity::PositiveCompletion,
            3 => Severity::PositiveIntermediate,
            4 => Severity::TransientNegative,
            _ => Severity::PermanentNegative,
        }
    }
}

/// Why a reply could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The line does not have the `Reply-code [ SP / "-" textstring ]` shape.
    #[error("not an SMTP reply line: {line:?}")]
    Malformed {
        /// The offending line (shortened if long).
        line: String,
    },
    /// A continuation line carries a different code than the first line.
    #[error("reply line {line:?} does not continue reply code {code}")]
    CodeMismatch {
        /// The code of the first line.
        code: u16,
        /// The offending line (shortened if long).
        line: String,
    },
    /// The last line given still announced a continuation ("250-...").
    #[error("reply ends with a continuation line {line:?}")]
    Unterminated {
        /// The last line (shortened if long).
        line: String,
    },
    /// A line longer than [`MAX_LINE_LEN`].
    #[error("reply line longer than {MAX_LINE_LEN} bytes")]
    LineTooLong,
    /// A reply with more than [`MAX_REPLY_LINES`] lines.
    #[error("reply longer than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// No lines at all.
    #[error("empty reply")]
    Empty,
}

/// One line of a reply, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// The three-digit reply code.
    pub code: u16,
    /// True for the final line (`250 ...`), false for a continuation (`250-...`).
    pub last: bool,
    /// Everything after the separator (may be empty).
    pub text: String,
}

impl ReplyLine {
    /// Parses one line, without its line terminator.
    ///
    /// Accepts `Reply-code`, `Reply-code SP text` and `Reply-code "-" text`
    /// with a first digit of 2–5; the second and third digits are only
    /// required to be digits, as real servers stray from RFC 5321's 0–5.
    pub fn parse(line: &str) -> Result<ReplyLine, ReplyError> {
        if line.len() > MAX_LINE_LEN {
            return Err(ReplyError::LineTooLong);
        }
        let malformed = || ReplyError::Malformed {
            line: shorten(line),
        };
        let bytes = line.as_bytes();
        let code_ok = bytes.len() >= 3
            && (b'2'..=b'5').contains(&bytes[0])
            && bytes[1].is_ascii_digit()
            && bytes[2].is_ascii_digit();
        if !code_ok {
            return Err(malformed());
        }
        let code = u16::from(bytes[0] - b'0') * 100
            + u16::from(bytes[1] - b'0') * 10
            + u16::from(bytes[2] - b'0');
        let (last, text) = match bytes.get(3) {
            None => (true, ""),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(malformed()),
        };
        Ok(ReplyLine {
            code,
            last,
            text: text.to_owned(),
        })
    }
}

/// One (possibly multi-line) SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The RFC 3463 code from the start of the first line's text, kept only
    /// when its class matches the reply code's first digit (RFC 3463 §2).
    pub enhanced: Option<EnhancedStatus>,
    /// The text of each line, after the code and separator, as received
    /// (including any enhanced status code).
    pub lines: Vec<String>,
}

impl Reply {
    /// Parses a complete reply from its raw lines (e.g. `"250-first"`,
    /// `"250 last"`), without line terminators.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Reply, ReplyError> {
        if lines.len() > MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let parsed = lines
            .iter()
            .map(|l| ReplyLine::parse(l.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Reply::from_lines(parsed)
    }

    /// Assembles a reply from parsed lines, checking that they form exactly
    /// one reply: same code throughout, and only the last line final.
    pub fn from_lines(lines: Vec<ReplyLine>) -> Result<Reply, ReplyError> {
        let Some(first) = lines.first() else {
            return Err(ReplyError::Empty);
        };
        if lines.len() > MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let code = first.code;
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if line.code != code {
                return Err(ReplyError::CodeMismatch {
                    code,
                    line: shorten(&format!("{}{}", line.code, line.text)),
                });
            }
            let should_be_last = i + 1 == count;
            if line.last != should_be_last {
                let text = shorten(&line.text);
                return Err(if should_be_last {
                    ReplyError::Unterminated { line: text }
                } else {
                    // A final line followed by more lines is two replies glued together.
                    ReplyError::Malformed { line: text }
                });
            }
        }
        let enhanced = EnhancedStatus::parse_prefix(&first.text)
            .map(|(status, _)| status)
            .filter(|status| u16::from(status.class) == code / 100);
        Ok(Reply {
            code,
            enhanced,
            lines: lines.into_iter().map(|l| l.text).collect(),
        })
    }

    /// The RFC 5321 §4.2.1 severity of this reply.
    pub fn severity(&self) -> Severity {
        Severity::of_code(self.code)
    }

    /// True for a 2yz reply.
    pub fn is_positive_completion(&self) -> bool {
        self.severity() == Severity::PositiveCompletion
    }

    /// The queue id in a Postfix-style acceptance, "250 2.0.0 Ok: queued as
    /// 4D16198E6AE": what to look for in that MTA's log. `None` when the
    /// reply has no "queued as" followed by an alphanumeric id.
    pub fn queue_id(&self) -> Option<&str> {
        const MARK: &str = "queued as ";
        self.lines.iter().find_map(|line| {
            let start = line.find(MARK)? + MARK.len();
            let rest = &line[start..];
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
    }

    /// The text of all lines joined with a space, the enhanced code (when it prefixes each line) stripped.
    ///
    /// The code is stripped from every line that starts with the same code as
    /// the first line (RFC 2034 §4 asks servers to repeat it on each line);
    /// empty lines are skipped so the join has no double spaces.
    pub fn text(&self) -> String {
        let mut parts = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let stripped = match (self.enhanced, EnhancedStatus::parse_prefix(line)) {
                (Some(ours), Some((theirs, rest))) if ours == theirs => rest,
                _ => line.as_str(),
            };
            let stripped = stripped.trim();
            if !stripped.is_empty() {
                parts.push(stripped);
            }
        }
        parts.join(" ")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Turns raw received bytes into text that is safe to store and print.
///
/// Servers may send 8-bit text, so invalid UTF-8 is replaced rather than
/// rejected; control characters are replaced too, because transcripts get
/// printed to terminals and a hostile server must not be able to send
/// escape sequences there.
pub(crate) fn decode_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// Limits how much of a hostile line ends up in error messages.
pub(crate) fn shorten(line: &str) -> String {
    const KEEP: usize = 200;
    if line.len() <= KEEP {
        return line.to_owned();
    }
    let mut end = KEEP;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(class: u8, subject: u16, detail: u16) -> Option<EnhancedStatus> {
        Some(EnhancedStatus {
            class,
            subject,
            detail,
        })
    }

    #[test]
    fn parses_replies() {
        struct Case {
            lines: &'static [&'static str],
            code: u16,
            enhanced: Option<EnhancedStatus>,
            text: &'static str,
            display: &'static str,
        }
        let cases = [
            Case {
                lines: &["220 mx.lab.test ESMTP Postfix"],
                code: 220,
                enhanced: None,
                text: "mx.lab.test ESMTP Postfix",
                display: "220 mx.lab.test ESMTP Postfix",
            },
            Case {
                lines: &["250"],
                code: 250,
                enhanced: None,
                text: "",
                display: "250",
            },
            Case {
                lines: &["250-mx.lab.test", "250-PIPELINING", "250 STARTTLS"],
                code: 250,
                enhanced: None,
                text: "mx.lab.test PIPELINING STARTTLS",
                display: "250 mx.lab.test PIPELINING STARTTLS",
            },
            Case {
                lines: &["450 4.7.1 <defer@defer.lab.test>: Recipient address rejected: try later"],
                code: 450,
                enhanced: status(4, 7, 1),
                text: "<defer@defer.lab.test>: Recipient address rejected: try later",
                display: "450 4.7.1 <defer@defer.lab.test>: Recipient address rejected: try later",
            },
            Case {
                // Gmail style: the code repeated on every line.
                lines: &[
                    "550-5.1.1 The email account that you tried to reach does",
                    "550-5.1.1 not exist.",
                    "550 5.1.1  https://support.example/answer x1si",
                ],
                code: 550,
                enhanced: status(5, 1, 1),
                text: "The email account that you tried to reach does not exist. https://support.example/answer x1si",
                display: "550 5.1.1 The email account that you tried to reach does not exist. https://support.example/answer x1si",
            },
            Case {
                // Class 2 on a 5yz reply: not an enhanced code, keep it as text.
                lines: &["550 2.0.0 odd server"],
                code: 550,
                enhanced: None,
                text: "2.0.0 odd server",
                display: "550 2.0.0 odd server",
            },
            Case {
                // 3yz replies never carry enhanced codes (no class 3).
                lines: &["354 3.0.0 go ahead"],
                code: 354,
                enhanced: None,
                text: "3.0.0 go ahead",
                display: "354 3.0.0 go ahead",
            },
            Case {
                lines: &["250 2.0.0Ok"],
                code: 250,
                enhanced: None,
                text: "2.0.0Ok",
                display: "250 2.0.0Ok",
            },
            Case {
                lines: &["250 2.1.0"],
                code: 250,
                enhanced: status(2, 1, 0),
                text: "",
                display: "250 2.1.0",
            },
            Case {
                lines: &["421 4.4.2 mx.lab.test Error: timeout exceeded"],
                code: 421,
                enhanced: status(4, 4, 2),
                text: "mx.lab.test Error: timeout exceeded",
                display: "421 4.4.2 mx.lab.test Error: timeout exceeded",
            },
        ];
        for case in cases {
            let reply =
                Reply::parse(case.lines).unwrap_or_else(|e| panic!("{:?}: {e}", case.lines));
            assert_eq!(reply.code, case.code, "{:?}", case.lines);
            assert_eq!(reply.enhanced, case.enhanced, "{:?}", case.lines);
            assert_eq!(reply.text(), case.text, "{:?}", case.lines);
            assert_eq!(reply.to_string(), case.display, "{:?}", case.lines);
            assert_eq!(reply.lines.len(), case.lines.len());
        }
    }

    #[test]
    fn rejects_malformed_replies() {
        let long = format!("250 {}", "x".repeat(MAX_LINE_LEN));
        let many: Vec<String> = (0..=MAX_REPLY_LINES)
            .map(|i| {
                if i == MAX_REPLY_LINES {
                    "250 end".to_owned()
                } else {
                    "250-more".to_owned()
                }
            })
            .collect();
        type Check = fn(&ReplyError) -> bool;
        let cases: Vec<(Vec<String>, Check)> = vec![
            (vec![], |e| matches!(e, ReplyError::Empty)),
            (vec!["".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["hello there".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["25".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["2500 x".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["250x".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["150 preliminary".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["650 no such class".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["2a0 x".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec!["250-a".into(), "251 b".into()], |e| {
                matches!(e, ReplyError::CodeMismatch { code: 250, .. })
            }),
            (vec!["250-a".into()], |e| {
                matches!(e, ReplyError::Unterminated { .. })
            }),
            (vec!["250 a".into(), "250 b".into()], |e| {
                matches!(e, ReplyError::Malformed { .. })
            }),
            (vec![long], |e| matches!(e, ReplyError::LineTooLong)),
            (many, |e| matches!(e, ReplyError::TooManyLines)),
        ];
        for (lines, expected) in cases {
            let error = Reply::parse(&lines).expect_err(&format!("{lines:?} parsed"));
            assert!(expected(&error), "{lines:?} gave {error:?}");
        }
    }

    #[test]
    fn queue_ids() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["2.0.0 Ok: queued as 4D16198E6AE"], Some("4D16198E6AE")),
            // Postfix long queue ids (enable_long_queue_ids = yes).
            (
                &["2.0.0 Ok: queued as 4Xyz1s2AbCzMd"],
                Some("4Xyz1s2AbCzMd"),
            ),
            (
                &["first line", "2.0.0 Ok: queued as ABC123 (extra)"],
                Some("ABC123"),
            ),
            (&["2.0.0 Ok: queued as "], None),
            (&["2.0.0 Ok"], None),
            (&["OK id=1abcde-000001-AB"], None),
        ];
        for (lines, want) in cases {
            let reply = Reply {
                code: 250,
                enhanced: None,
                lines: lines.iter().map(|l| (*l).to_owned()).collect(),
            };
            assert_eq!(reply.queue_id(), *want, "{lines:?}");
        }
    }

    #[test]
    fn enhanced_status_tokens() {
        assert_eq!(EnhancedStatus::parse("4.7.1"), status(4, 7, 1));
        assert_eq!(EnhancedStatus::parse("5.7.26"), status(5, 7, 26));
        assert_eq!(EnhancedStatus::parse("2.123.999"), status(2, 123, 999));
        for bad in [
            "3.0.0", "4.7", "4.7.1.1", "4..1", "4.1234.1", "x.7.1", "4.7.1a", "", "45.7.1",
        ] {
            assert_eq!(EnhancedStatus::parse(bad), None, "{bad}");
        }
        assert_eq!(
            EnhancedStatus::parse_prefix("5.7.1  Message rejected"),
            Some((status(5, 7, 1).unwrap(), "Message rejected"))
        );
        assert_eq!(status(4, 7, 1).unwrap().to_string(), "4.7.1");
        assert_eq!(status(5, 7, 26).unwrap().to_string(), "5.7.26");
    }

    #[test]
    fn severity_follows_first_digit() {
        assert_eq!(Severity::of_code(250), Severity::PositiveCompletion);
        assert_eq!(Severity::of_code(354), Severity::PositiveIntermediate);
        assert_eq!(Severity::of_code(421), Severity::TransientNegative);
        assert_eq!(Severity::of_code(554), Severity::PermanentNegative);
        assert_eq!(Severity::of_code(0), Severity::PermanentNegative);
    }

    #[test]
    fn decoded_lines_carry_no_control_characters() {
        assert_eq!(
            decode_line(b"250 ok\x1b[31m\tred"),
            "250 ok\u{FFFD}[31m\tred"
        );
        assert_eq!(decode_line(b"250 caf\xe9"), "250 caf\u{FFFD}");
        assert_eq!(decode_line("250 café".as_bytes()), "250 café");
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        let long = "é".repeat(300);
        let short = shorten(&long);
        assert!(short.len() <= 200 + '…'.len_utf8());
        assert!(short.ends_with('…'));
        assert_eq!(shorten("short"), "short");
    }
}
