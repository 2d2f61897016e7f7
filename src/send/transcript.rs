//! The swaks-like record of one SMTP connection.

use std::fmt;
use std::time::Instant;

/// What a transcript line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A note from the client ("=== ").
    Info,
    /// A line sent in the clear ("-> ").
    Sent,
    /// A line received in the clear ("<- ").
    Received,
    /// A line sent over TLS ("~> ").
    SentTls,
    /// A line received over TLS ("<~ ").
    ReceivedTls,
    /// An error seen by the client ("*** ").
    Error,
}

impl LineKind {
    /// The swaks-style prefix, including the trailing space.
    pub fn prefix(self) -> &'static str {
        match self {
            LineKind::Info => "=== ",
            LineKind::Sent => "-> ",
            LineKind::Received => "<- ",
            LineKind::SentTls => "~> ",
            LineKind::ReceivedTls => "<~ ",
            LineKind::Error => "*** ",
        }
    }
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TranscriptLine {
    /// Milliseconds since the transcript started.
    pub elapsed_ms: u64,
    /// What the line records.
    pub kind: LineKind,
    /// The line, without prefix or line terminator. When `redacted` is set
    /// this is a stand-in for what went over the wire, not the real line.
    pub text: String,
    /// True when secrets were removed from `text` (e.g. AUTH credentials), so
    /// readers know the line does not reproduce the wire byte for byte.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

/// The swaks-like record of one connection.
///
/// Message content is never recorded, only its size, so transcripts stay
/// small and can be stored and shared without carrying the probe's content.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Transcript {
    /// The lines, in the order they happened.
    pub lines: Vec<TranscriptLine>,
    /// Time origin for `elapsed_ms`; meaningless after deserialising, which
    /// is fine because only live transcripts get new lines.
    #[serde(skip, default = "Instant::now")]
    start: Instant,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

impl Transcript {
    /// An empty transcript whose clock starts now.
    pub fn new() -> Transcript {
        Transcript {
            lines: Vec::new(),
            start: Instant::now(),
        }
    }

    /// Appends a line of the given kind.
    pub fn push(&mut self, kind: LineKind, text: impl Into<String>) {
        self.push_line(kind, text.into(), false);
    }

    /// Appends a line whose real content must not be stored; `shown` is what
    /// the transcript keeps instead (e.g. "AUTH PLAIN <redacted>").
    pub fn push_redacted(&mut self, kind: LineKind, shown: impl Into<String>) {
        self.push_line(kind, shown.into(), true);
    }

    /// Appends an informational note.
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(LineKind::Info, text);
    }

    /// Appends an error note.
    pub fn error(&mut self, text: impl Into<String>) {
        self.push(LineKind::Error, text);
    }

    /// Appends a line sent to the server.
    pub fn sent(&mut self, text: impl Into<String>, tls: bool) {
        let kind = if tls {
            LineKind::SentTls
        } else {
            LineKind::Sent
        };
        self.push(kind, text);
    }

    /// Appends a line received from the server.
    pub fn received(&mut self, text: impl Into<String>, tls: bool) {
        let kind = if tls {
            LineKind::ReceivedTls
        } else {
            LineKind::Received
        };
        self.push(kind, text);
    }

    fn push_line(&mut self, kind: LineKind, text: String, redacted: bool) {
        let elapsed_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.lines.push(TranscriptLine {
            elapsed_ms,
            kind,
            text,
            redacted,
        });
    }
}

impl fmt::Display for Transcript {
    /// Renders swaks-style, one line each, e.g. "-> MAIL FROM:<a@b>".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{}{}", line.kind.prefix(), line.text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_swaks_style() {
        let mut t = Transcript::new();
        t.info("Trying mx.lab.test[127.0.0.1]:25...");
        t.received("220 mx.lab.test ESMTP", false);
        t.sent("EHLO probe.lab.test", false);
        t.sent("EHLO probe.lab.test", true);
        t.received("250 ok", true);
        t.push_redacted(LineKind::SentTls, "AUTH PLAIN <redacted>");
        t.error("timed out");
        assert_eq!(
            t.to_string(),
            "=== Trying mx.lab.test[127.0.0.1]:25...\n\
             <- 220 mx.lab.test ESMTP\n\
             -> EHLO probe.lab.test\n\
             ~> EHLO probe.lab.test\n\
             <~ 250 ok\n\
             ~> AUTH PLAIN <redacted>\n\
             *** timed out\n"
        );
        assert!(t.lines[5].redacted);
        assert!(!t.lines[4].redacted);
    }

    #[test]
    fn serializes_redaction_only_when_set() {
        let mut t = Transcript::new();
        t.sent("QUIT", false);
        t.push_redacted(LineKind::Sent, "AUTH <redacted>");
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["lines"][0]["kind"], "sent");
        assert!(json["lines"][0].get("redacted").is_none());
        assert_eq!(json["lines"][1]["redacted"], true);
        let back: Transcript = serde_json::from_value(json).unwrap();
        assert_eq!(back.lines, t.lines);
    }
}
