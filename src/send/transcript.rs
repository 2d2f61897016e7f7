//! The swaks-like record of one SMTP connection, and the live view of it.

use std::fmt;
use std::time::Instant;

use super::reply::decode_line;

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

/// What a live observer receives while a session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A line, at the moment it is added to a transcript.
    Line(TranscriptLine),
    /// One line of message content as it goes out (dot-stuffed as on the
    /// wire, without CRLF, control characters replaced). Only observers see
    /// content: transcripts record its size.
    Content {
        /// Whether it went over TLS.
        tls: bool,
        /// The line.
        text: String,
    },
}

/// Where live lines go, so that a caller can show the dialogue while it
/// happens (a stalled server is then visible) without the protocol code
/// printing anything itself.
pub type Observer = tokio::sync::mpsc::UnboundedSender<Observed>;

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
    /// Gets a copy of each line as it is added.
    #[serde(skip)]
    observer: Option<Observer>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

impl Transcript {
    /// An empty transcript whose clock starts now.
    pub fn new() -> Transcript {
        Transcript::with_observer(None)
    }

    /// An empty transcript that also hands each new line to `observer`.
    pub fn with_observer(observer: Option<Observer>) -> Transcript {
        Transcript {
            lines: Vec::new(),
            start: Instant::now(),
            observer,
        }
    }

    /// Stops forwarding lines: a finished transcript should not keep the
    /// caller's channel open.
    pub(crate) fn detach(&mut self) {
        self.observer = None;
    }

    /// Shows message content to the observer, line by line, without
    /// recording it. Costs nothing without an observer.
    pub(crate) fn observe_content(&self, content: &[u8], tls: bool) {
        let Some(observer) = &self.observer else {
            return;
        };
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        for line in content.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text = decode_line(line);
            // A caller that stopped listening is no reason to stop sending.
            let _ = observer.send(Observed::Content { tls, text });
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
        let line = TranscriptLine {
            elapsed_ms,
            kind,
            text,
            redacted,
        };
        if let Some(observer) = &self.observer {
            let _ = observer.send(Observed::Line(line.clone()));
        }
        self.lines.push(line);
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
    fn observer_sees_lines_and_content_but_transcript_keeps_no_content() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut t = Transcript::with_observer(Some(tx));
        t.sent("DATA", true);
        t.observe_content(b"Subject: x\r\n\r\n..dot\r\n", true);
        t.detach();
        t.sent("QUIT", true);
        let mut seen = Vec::new();
        while let Ok(event) = rx.try_recv() {
            seen.push(event);
        }
        let content = |text: &str| Observed::Content {
            tls: true,
            text: text.into(),
        };
        assert_eq!(
            seen[1..],
            [content("Subject: x"), content(""), content("..dot")]
        );
        assert!(matches!(&seen[0], Observed::Line(l) if l.text == "DATA"));
        assert_eq!(seen.len(), 4, "QUIT came after detach: {seen:?}");
        assert_eq!(t.lines.len(), 2);
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
