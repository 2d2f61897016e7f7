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
    /// One of Sisimai's reasons ([`reason::find`]).
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
        let bytes = read_capped(path, MAX_STREAM).map_err(unreadable)?;
        return Ok(split_stream(&path.display().to_string(), bytes));
    }
    let mut messages = Vec::new();
    for file in message_files(path).map_err(unreadable)? {
        if let Some(message) = read_message(&file) {
            messages.push(message);
        }
    }
    Ok(messages)
}

/// The message files of a directory, in name order: a Maildir's `cur/` and `new/` (`tmp/`
/// holds half-written ones), else the directory's own files.
fn message_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
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
    let mut all = Vec::new();
    for dir in dirs {
        // The directory entry's own type, not a stat per file; a link is followed.
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_type()
                    .is_ok_and(|t| t.is_file() || (t.is_symlink() && e.path().is_file()))
            })
            .map(|e| e.path())
            .collect();
        // One directory: the names' bytes order the paths as `Path`'s comparison would.
        files.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        all.extend(files);
    }
    Ok(all)
}

/// One message file of a directory; one that cannot be read is noted, not fatal: the rest
/// still count.
fn read_message(file: &Path) -> Option<RawMessage> {
    match read_capped(file, MAX_MESSAGE) {
        Ok(bytes) => Some(RawMessage {
            file: file.display().to_string(),
            bytes,
        }),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", file.display());
            None
        }
    }
}

/// A message's name and its bounces (`None`: the message is no bounce).
pub type MessageBounces = (String, Option<Vec<Bounce>>);

/// Every message a path holds (as [`read_path`]), each with its bounces ([`bounces`]), in
/// order. A directory's files are read and parsed on every core, each file dropped once
/// read, so memory stays that of the files in flight.
pub fn read_bounces(path: &Path) -> Result<Vec<MessageBounces>, BounceError> {
    let is_dir = path.as_os_str() != "-" && path.is_dir();
    if !is_dir {
        let messages = read_path(path)?;
        let read = bounces_of(&messages);
        return Ok(messages.into_iter().map(|m| m.file).zip(read).collect());
    }
    let files = message_files(path).map_err(|source| BounceError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let one = |file: &PathBuf| {
        read_message(file).map(|m| {
            let read = bounces(&m);
            (m.file, read)
        })
    };
    Ok(on_every_core(
        &files,
        |part| part.iter().filter_map(one).collect(),
        prepare_tables,
    ))
}

/// `work` over the items on every core, the results in the items' order. The items go out
/// in small batches to whichever thread is free, so one slow file holds up no other core;
/// the calling thread, which would only wait, does `meanwhile` (with one core or few items,
/// `work` builds what it needs as it goes).
fn on_every_core<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&[T]) -> Vec<R> + Sync,
    meanwhile: impl FnOnce(),
) -> Vec<R> {
    /// Items per batch: small enough to even out, large enough that taking one costs nothing.
    const BATCH: usize = 16;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 4 * BATCH {
        return work(items);
    }
    let batches: Vec<&[T]> = items.chunks(BATCH).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (work, batches, next) = (&work, &batches, &next);
    let mut done: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(batches.len()))
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(batch) = batches.get(i) else {
                            return mine;
                        };
                        mine.push((i, work(batch)));
                    }
                })
            })
            .collect();
        meanwhile();
        workers
            .into_iter()
            // bounces() is written not to panic; if a worker did, its results are lost
            // rather than the whole run.
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().flat_map(|(_, r)| r).collect()
}

/// Builds what reading a report needs once per run (automata over the phrase and marker
/// tables) while the reading threads start, so that the first to need one waits less (or
/// not at all).
fn prepare_tables() {
    crate::downstream::prepare();
    crate::reason::prepare();
}

/// A file's bytes, at most `cap` of them, read into a buffer of the file's size. A regular
/// file is read as long as it was when opened (no extra read to find its end); anything else
/// (a pipe named on the command line) to its end or the cap.
fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let limit = if meta.is_file() {
        meta.len().min(cap)
    } else {
        cap
    };
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(cap)).unwrap_or(0));
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`bounces`] of each message, in their order, read on every core: a directory of bounces
/// is many small independent pieces of work.
pub fn bounces_of(messages: &[RawMessage]) -> Vec<Option<Vec<Bounce>>> {
    on_every_core(
        messages,
        |part| part.iter().map(bounces).collect(),
        prepare_tables,
    )
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
    // The command a reply answered is named in the report's prose more often than in its
    // Diagnostic-Code ("in reply to RCPT TO command"): the whole message's words stand in for
    // a recipient whose diagnostic names none.
    let said_in_report = command_in_report(&message.bytes);
    let failures = report.recipients.iter().filter_map(|r| {
        let action = match r.action {
            DownstreamAction::Failed => "failed",
            DownstreamAction::Delayed => "delayed",
            DownstreamAction::Delivered => return None,
        };
        let diagnostic = r.diagnostic.clone().filter(|d| !d.trim().is_empty());
        let reply_code = r.reply_code();
        let status = status(r.status.as_deref(), diagnostic.as_deref(), reply_code);
        let reason = reason::find(&reason::Fact {
            status: status.as_deref(),
            diagnostic: diagnostic.as_deref(),
            command: r
                .command
                .as_deref()
                .or_else(|| diagnostic.as_deref().and_then(reason::probe::command))
                .or(said_in_report),
            delayed: action == "delayed",
            stated: r.reason.as_deref(),
            remote_host: r.remote_mta.as_deref(),
            reporting_host: report.reporting_mta.as_deref(),
            recipient: r.recipient.as_deref(),
            reply_code,
        });
        // No code in the report at all: Sisimai's code for the reason, so that the status
        // column still says what kind of failure it was.
        let status = status.or_else(|| {
            let temporary = action == "delayed"
                || reply_code.is_some_and(|c| c < 500)
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
            reply_code,
            provider: provider(r.remote_mta.as_deref(), r.recipient.as_deref()),
            status,
            remote_mta,
            diagnostic,
        })
    });
    Some(complaints.chain(failures).collect())
}

/// The command for a recipient whose report names none where the downstream parser looks
/// (`Downstream::command`): RCPT when the report mentions RCPT TO at all.
fn command_in_report(bytes: &[u8]) -> Option<&'static str> {
    [&b"RCPT TO"[..], b"rcpt to", b"RCPT To"]
        .iter()
        .any(|m| memchr::memmem::find(bytes, m).is_some())
        .then_some("RCPT")
}

/// The reason of a complaint in an abuse feedback report (Sisimai's name).
const FEEDBACK: &str = "feedback";

/// The recipient's enhanced status, chosen between the report's `Status` and the code quoted
/// in the diagnostic as Sisimai chooses (its `status.Prefer`): the one of the reply code's
/// class; else the more precise one (`5.7.1` over `5.0.0`), and the quoted code over a field
/// that says little by itself (`4.4.7`, `4.7.0`, `5.3.x`, `x.5.x`).
fn status(field: Option<&str>, diagnostic: Option<&str>, reply: Option<u16>) -> Option<String> {
    let (field, quoted) = match (
        field.and_then(enhanced_status),
        diagnostic.and_then(enhanced_status),
    ) {
        (None, q) => return q,
        (f, None) => return f,
        (Some(f), Some(q)) => (f, q),
    };
    // The class the reply code gives decides between two of different classes.
    let class = reply.map(|r| (r / 100).to_string());
    if field[..1] != quoted[..1]
        && let Some(class) = class
    {
        if field[..1] == class {
            return Some(field);
        }
        if quoted[..1] == class {
            return Some(quoted);
        }
    }
    if field == quoted {
        return Some(field);
    }
    // A vague field gives way to the reply's own code; a vague quote to the field.
    let vague = |s: &str| s.ends_with(".0.0");
    if vague(&field) {
        return Some(if vague(&quoted) { field } else { quoted });
    }
    let zero_detail = |s: &str| s.contains(".0");
    if zero_detail(&field) && !zero_detail(&quoted) {
        return Some(quoted);
    }
    if vague(&quoted) {
        return Some(field);
    }
    // Codes that say less than the words around them: an expiry, "too many errors", a system
    // error, the protocol's own complaints.
    if matches!(field.as_str(), "4.4.7" | "4.7.0")
        || field.starts_with("5.3.")
        || [".5.1", ".5.2", ".5.4", ".5.5"]
            .iter()
            .any(|p| field.get(1..5) == Some(*p))
    {
        return Some(quoted);
    }
    match field.as_str() {
        "5.1.1" if zero_detail(&quoted) || quoted.starts_with("5.5.") => Some(field),
        "5.1.1" => Some(quoted),
        "5.1.3" if quoted.starts_with("5.7.") => Some(quoted),
        _ => Some(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_is_found_in_text() {
        let table: &[(&str, Option<&str>)] = &[
            ("5.1.1", Some("5.1.1")),
            ("smtp; 550 5.7.26 blocked", Some("5.7.26")),
            ("1.2.3.4 said 550", None),
            ("", None),
            ("version 1.0. Then: 550 5.1.1.", Some("5.1.1")),
            ("from 10.0.0.1 (4.7.1000) then 4.4.7", Some("4.4.7")),
            ("x5.7.1y", Some("5.7.1")),
            ("5..1.1 or 3.1.1 or .5.2.2", Some("5.2.2")),
            ("\u{e9}4.2.2\u{e9}", Some("4.2.2")),
            ("no code here. none.", None),
        ];
        for (text, want) in table {
            assert_eq!(enhanced_status(text).as_deref(), *want, "{text}");
        }
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
    fn many_messages_keep_their_order_on_every_core() {
        let dsn = include_bytes!("../../tests/fixtures/bounces/postfix-blocked.eml");
        let messages: Vec<RawMessage> = (0..200)
            .map(|i| RawMessage {
                file: i.to_string(),
                bytes: if i % 3 == 0 {
                    dsn.to_vec()
                } else {
                    b"Subject: hello\n\nnot a bounce\n".to_vec()
                },
            })
            .collect();
        let read = bounces_of(&messages);
        assert_eq!(read.len(), 200);
        for (i, r) in read.iter().enumerate() {
            assert_eq!(r.is_some(), i % 3 == 0, "message {i}");
            if let Some(list) = r {
                assert_eq!(list[0].file, i.to_string());
            }
        }
    }

    #[test]
    fn a_large_directory_is_read_file_by_file_in_name_order() {
        let dsn = include_bytes!("../../tests/fixtures/bounces/postfix-blocked.eml");
        let dir = tempfile::tempdir().unwrap();
        for i in 0..150 {
            let bytes: &[u8] = if i % 2 == 0 {
                dsn
            } else {
                b"Subject: hi\n\nhello\n"
            };
            std::fs::write(dir.path().join(format!("m{i:03}")), bytes).unwrap();
        }
        let read = read_bounces(dir.path()).unwrap();
        assert_eq!(read.len(), 150);
        for (i, (file, bounces)) in read.iter().enumerate() {
            assert!(file.ends_with(&format!("m{i:03}")), "{file}");
            assert_eq!(bounces.is_some(), i % 2 == 0, "{file}");
        }
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
