//! `probe bounce`: read bounce messages from files, mboxes, Maildirs, directories or standard
//! input, and say per failed or delayed recipient what happened and why ([`reason`]).
//!
//! Parsing is [`crate::downstream::dsn`]'s (with [`crate::downstream::plain`] for bounces
//! that are no DSN), the one relay mode uses, so both understand the same formats. What is read is untrusted: every message is capped at [`MAX_MESSAGE`] bytes
//! and nothing in it can make this panic.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::downstream::DownstreamAction;
use crate::downstream::dsn::{self, enhanced_status};
use crate::reason::{self, provider::provider};

/// The most of one message that is read; a bounce is small, and a huge file must not fill
/// memory. The rest of an oversized message is skipped.
pub const MAX_MESSAGE: u64 = 16 * 1024 * 1024;

/// The most of an mbox or of standard input that is read: many messages, but still bounded.
pub const MAX_STREAM: u64 = 1024 * 1024 * 1024;

/// Why a path could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BounceError {
    /// The path does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// One failed or delayed recipient of one bounce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounce {
    /// Where the bounce was read (`-` for standard input, `PATH#N` for the Nth of an mbox).
    pub file: String,
    /// The recipient the report is about.
    pub recipient: Option<String>,
    /// `failed` or `delayed`; `feedback` for a complaint of an abuse report.
    pub action: String,
    /// The enhanced status code (`5.1.1`).
    pub status: Option<String>,
    /// The SMTP reply code inside the diagnostic (`550`).
    pub reply_code: Option<u16>,
    /// One of Sisimai's reasons ([`reason::classify`]).
    pub reason: &'static str,
    /// The host that refused it.
    pub remote_mta: Option<String>,
    /// The remote reply or the report's explanation.
    pub diagnostic: Option<String>,
    /// The mailbox provider, when the remote host or the recipient domain tells it.
    pub provider: Option<&'static str>,
}

/// One message read from a source, before parsing.
#[derive(Debug)]
pub struct RawMessage {
    /// Its name in the output.
    pub file: String,
    /// Its bytes, at most [`MAX_MESSAGE`].
    pub bytes: Vec<u8>,
}

/// Reads every message a path holds: a file (one message, or an mbox when it starts with
/// `From `), a Maildir (`cur/` and `new/`), a directory of message files, or `-` for standard
/// input. Files in directories are taken in name order, so the output is stable.
pub fn read_path(path: &Path) -> Result<Vec<RawMessage>, BounceError> {
    let unreadable = |source| BounceError::Unreadable {
        path: path.to_owned(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_STREAM)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        return Ok(split_stream("-", bytes));
    }
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_dir() {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|f| f.take(MAX_STREAM).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        return Ok(split_stream(&path.display().to_string(), bytes));
    }
    // A Maildir's messages are in cur/ and new/; tmp/ holds half-written ones.
    let maildir = ["cur", "new"].iter().any(|d| path.join(d).is_dir());
    let dirs: Vec<PathBuf> = if maildir {
        ["cur", "new"]
            .iter()
            .map(|d| path.join(d))
            .filter(|d| d.is_dir())
            .collect()
    } else {
        vec![path.to_owned()]
    };
    let mut messages = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(unreadable)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let mut bytes = Vec::new();
            // One unreadable file in a directory is noted, not fatal: the rest still count.
            match File::open(&file).and_then(|f| f.take(MAX_MESSAGE).read_to_end(&mut bytes)) {
                Ok(_) => messages.push(RawMessage {
                    file: file.display().to_string(),
                    bytes,
                }),
                Err(e) => tracing::warn!("cannot read {}: {e}", file.display()),
            }
        }
    }
    Ok(messages)
}

/// One message, or an mbox split at its `From ` lines (mboxrd's `>From ` unquoted).
fn split_stream(name: &str, bytes: Vec<u8>) -> Vec<RawMessage> {
    if !bytes.starts_with(b"From ") {
        return vec![RawMessage {
            file: name.to_owned(),
            bytes: cap(bytes),
        }];
    }
    let mut messages = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut started = false;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            if started {
                messages.push(std::mem::take(&mut current));
            }
            started = true;
            continue; // the separator is not part of the message
        }
        if current.len() as u64 >= MAX_MESSAGE {
            continue;
        }
        let unquoted = match line.iter().position(|b| *b != b'>') {
            Some(n) if n > 0 && line[n..].starts_with(b"From ") => &line[1..],
            _ => line,
        };
        current.extend_from_slice(unquoted);
    }
    if started {
        messages.push(current);
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| RawMessage {
            file: format!("{name}#{}", i + 1),
            bytes,
        })
        .collect()
}

fn cap(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(MAX_MESSAGE as usize);
    bytes
}

/// The failed and delayed recipients of one message, and the complaints of an abuse report;
/// `None` when it is no bounce (no DSN, no rejection MDN, no plain-text bounce, no abuse
/// report), `Some` of an empty list when it is a report of delivery only.
pub fn bounces(message: &RawMessage) -> Option<Vec<Bounce>> {
    let report = dsn::parse(&message.bytes)?;
    let complaints = report.feedback.iter().map(|f| Bounce {
        file: message.file.clone(),
        recipient: f.recipient.clone(),
        action: "feedback".to_owned(),
        status: None,
        reply_code: None,
        reason: FEEDBACK,
        remote_mta: report.reporting_mta.clone(),
        diagnostic: Some(format!("feedback-type: {}", f.feedback_type)),
        provider: provider(None, f.recipient.as_deref()),
    });
    let mentions_rcpt = contains_ignore_case(&message.bytes, b"rcpt");
    let failures = report.recipients.iter().filter_map(|r| {
        let action = match r.action {
            DownstreamAction::Failed => "failed",
            DownstreamAction::Delayed => "delayed",
            DownstreamAction::Delivered => return None,
        };
        let diagnostic = r.diagnostic.clone().filter(|d| !d.trim().is_empty());
        let status = status(r.status.as_deref(), diagnostic.as_deref());
        let reason = match (action, status.as_deref()) {
            // Given up on a temporary failure: the retries ran out, unless the last attempt's
            // words or status say why (Sisimai reads it the same way).
            ("failed", Some(s)) if s.starts_with("4.") => {
                match reason::classify(Some(s), diagnostic.as_deref()) {
                    reason::UNDEFINED => "expired",
                    said => said,
                }
            }
            _ => reason::classify(status.as_deref(), diagnostic.as_deref()),
        };
        let reason = filtered_or_unknown(
            reason,
            status.as_deref(),
            diagnostic.as_deref(),
            mentions_rcpt,
        );
        // A reason the report states in its own words wins over the classified one.
        let reason = r
            .reason
            .as_deref()
            .and_then(|stated| reason::REASONS.iter().find(|known| **known == stated))
            .copied()
            .unwrap_or(reason);
        // No code in the report at all: Sisimai's code for the reason, so that the status
        // column still says what kind of failure it was.
        let status = status.or_else(|| {
            let temporary = action == "delayed"
                || r.reply_code().is_some_and(|c| c < 500)
                || diagnostic
                    .as_deref()
                    .is_some_and(|d| d.to_ascii_lowercase().contains("temporary"));
            reason::pseudo_status(reason, temporary)
        });
        let remote_mta = r.remote_mta.clone().or(report.reporting_mta.clone());
        Some(Bounce {
            file: message.file.clone(),
            recipient: r.recipient.clone(),
            action: action.to_owned(),
            reason,
            reply_code: r.reply_code(),
            provider: provider(r.remote_mta.as_deref(), r.recipient.as_deref()),
            status,
            remote_mta,
            diagnostic,
        })
    });
    Some(complaints.chain(failures).collect())
}

/// Sisimai's line between an unknown user and a filter: "no such user" said in reply to RCPT,
/// or with an address status (`5.1.x`), is the address; said later (after DATA, where a
/// content filter or forwarding rule answers), it is the filter's refusal.
fn filtered_or_unknown(
    reason: &'static str,
    status: Option<&str>,
    diagnostic: Option<&str>,
    mentions_rcpt: bool,
) -> &'static str {
    let after_data = |text: &str| {
        let text = text.to_ascii_lowercase();
        [
            "end of data",
            "command data",
            "data command",
            ">>> data",
            "after data",
        ]
        .iter()
        .any(|w| text.contains(w))
    };
    let filtered = match status {
        // A DSN's own status that is no address status, and no RCPT in the whole report.
        Some(s) => s.get(1..4) != Some(".1.") && !mentions_rcpt,
        // A plain-text report: refused after DATA, or no RCPT named anywhere.
        None => diagnostic.is_some_and(after_data) || !mentions_rcpt,
    };
    // Only the generic wordings, which any filter can answer with; a mailbox system's own
    // (Exchange's "recipient name is not recognized", Yahoo's "doesn't have a ... account")
    // is about the address wherever it is said.
    let generic = diagnostic.is_some_and(|d| {
        let d = d.to_ascii_lowercase();
        [
            "user unknown",
            "unknown user",
            "no such user",
            "user not exist",
            "mailbox unavailable",
        ]
        .iter()
        .any(|w| d.contains(w))
    });
    if reason == "userunknown" && filtered && generic {
        "filtered"
    } else {
        reason
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The reason of a complaint in an abuse feedback report (Sisimai's name).
const FEEDBACK: &str = "feedback";

/// The recipient's enhanced status: the report's `Status`, unless the remote reply quoted in
/// the diagnostic gives another of the same class (`Status: 5.1.1` for `550 5.7.1 IP address
/// blacklisted`): the remote host's own word is the more precise (Sisimai reads it so too).
fn status(field: Option<&str>, diagnostic: Option<&str>) -> Option<String> {
    let field = field.and_then(enhanced_status);
    let quoted = diagnostic.and_then(enhanced_status);
    match (field, quoted) {
        (Some(f), Some(q)) if q != f && !q.ends_with(".0.0") && q[..1] == f[..1] => Some(q),
        (Some(f), _) => Some(f),
        (None, q) => q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_is_found_in_text() {
        assert_eq!(enhanced_status("5.1.1").as_deref(), Some("5.1.1"));
        assert_eq!(
            enhanced_status("smtp; 550 5.7.26 blocked").as_deref(),
            Some("5.7.26")
        );
        assert_eq!(enhanced_status("1.2.3.4 said 550").as_deref(), None);
        assert_eq!(enhanced_status("").as_deref(), None);
    }

    #[test]
    fn mbox_is_split_and_unquoted() {
        let mbox =
            b"From a@b Sat\nSubject: one\n\n>From here\nFrom c@d Sun\nSubject: two\n".to_vec();
        let msgs = split_stream("box", mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].file, "box#1");
        assert_eq!(msgs[0].bytes, b"Subject: one\n\nFrom here\n");
        assert_eq!(msgs[1].bytes, b"Subject: two\n");
        assert_eq!(split_stream("f", b"Subject: x\n".to_vec()).len(), 1);
    }

    #[test]
    fn garbage_is_no_bounce() {
        let raw = RawMessage {
            file: "x".into(),
            bytes: vec![0xff, 0, b'\n', b'-', b'-'],
        };
        assert_eq!(bounces(&raw), None);
    }
}
