//! The relay's Postfix log: `QUEUEID: to=<rcpt>, relay=..., dsn=X.Y.Z, status=WORD (text)`,
//! as written by Postfix's delivery agents (and read by pflogsumm).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::{Downstream, DownstreamAction, DownstreamSource};
use crate::maillog::line::{self, Event, Status};

/// One delivery line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The Postfix queue id (`queued as ID` in the relay's 250 reply).
    pub queue_id: String,
    /// What it says.
    pub report: Downstream,
}

/// Parses one log line; `None` for lines that are not a delivery status. The line format is
/// read in one place, [`crate::maillog::line`], which `probe maillog` uses too.
pub fn parse_line(line: &str) -> Option<LogEntry> {
    let parsed = line::parse(line.as_bytes())?;
    let Event::Status(s) = parsed.event else {
        return None;
    };
    let action = match s.status {
        Status::Sent | Status::Forwarded => DownstreamAction::Delivered,
        Status::Deferred => DownstreamAction::Delayed,
        Status::Bounced | Status::Expired => DownstreamAction::Failed,
    };
    // The line is a str, so each part of it is one too.
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some(LogEntry {
        queue_id: text(s.queue_id),
        report: Downstream {
            source: DownstreamSource::Maillog,
            action,
            recipient: Some(text(s.recipient)),
            status: s.dsn.map(text),
            remote_mta: s.relay.map(text),
            diagnostic: s.text.map(text),
            command: None,
            reason: None,
        },
    })
}

/// Follows a log file from an offset, as `tail -f` would, across truncation and rotation.
#[derive(Debug, Clone)]
pub struct LogFollower {
    offset: u64,
    partial: String,
}

impl LogFollower {
    /// Starts at the current end of the file (or 0 if it does not exist yet).
    pub fn at_end(path: &Path) -> LogFollower {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogFollower::from_offset(offset)
    }

    /// Starts at a known offset (as stored when the run sent its messages).
    pub fn from_offset(offset: u64) -> LogFollower {
        LogFollower {
            offset,
            partial: String::new(),
        }
    }

    /// Where the next read starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The delivery entries written since the last call.
    pub fn read_new(&mut self, path: &Path) -> std::io::Result<Vec<LogEntry>> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated or rotated: the new file is read from its start.
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut entries = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            entries.extend(parse_line(line.trim_end()));
        }
        Ok(entries)
    }
}

/// The relay's log could not be read.
#[derive(Debug, thiserror::Error)]
#[error("relay log {}: {source}", path.display())]
pub struct MaillogError {
    /// The log file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Reads the relay's log from `offset` as it grows, every `interval` until `deadline`, and
/// hands each delivery entry to `entry` (which picks the queue ids it cares about). Ends at
/// the deadline, or at the first read that fails: a log that cannot be read now will not be
/// readable a moment later, and the caller reports it once.
pub async fn follow(
    path: &Path,
    offset: u64,
    interval: Duration,
    deadline: Instant,
    entry: &mut (dyn FnMut(LogEntry) + Send),
) -> Result<(), MaillogError> {
    let mut follower = LogFollower::from_offset(offset);
    loop {
        let entries = follower.read_new(path).map_err(|source| MaillogError {
            path: path.to_owned(),
            source,
        })?;
        entries.into_iter().for_each(&mut *entry);
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (log line, expected (queue id, action, dsn, reply code), or None when not a status line)
    type Row<'a> = (
        &'a str,
        Option<(&'a str, DownstreamAction, Option<&'a str>, Option<u16>)>,
    );

    #[test]
    fn postfix_status_lines() {
        let rows: &[Row] = &[
            (
                "Nov 28 08:10:02 relay postfix/smtp[812]: 4D16198E6AE: to=<defer@defer.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.05, delays=0.01/0/0.02/0.02, dsn=4.7.1, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.7.1 <defer@defer.lab.test>: Recipient address rejected: Temporarily deferred (in reply to RCPT TO command))",
                Some((
                    "4D16198E6AE",
                    DownstreamAction::Delayed,
                    Some("4.7.1"),
                    Some(450),
                )),
            ),
            (
                "2026-11-28T08:10:03.123456+00:00 relay postfix-relay/smtp[813]: 5E27298E6AF: to=<reject@reject.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.04, dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.7.1 refused (in reply to RCPT TO command))",
                Some((
                    "5E27298E6AF",
                    DownstreamAction::Failed,
                    Some("5.7.1"),
                    Some(550),
                )),
            ),
            (
                "Nov 28 08:10:04 relay postfix/smtp[814]: 6F38398E6B0: to=<inbox@inbox.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 7A49498E6B1)",
                Some((
                    "6F38398E6B0",
                    DownstreamAction::Delivered,
                    Some("2.0.0"),
                    Some(250),
                )),
            ),
            (
                "Nov 28 08:10:01 relay postfix/qmgr[700]: 4D16198E6AE: from=<probe@sender.lab.test>, size=612, nrcpt=1 (queue active)",
                None,
            ),
            ("garbage", None),
        ];
        for (line, want) in rows {
            let got = parse_line(line);
            match (got, want) {
                (None, None) => {}
                (Some(e), Some((qid, action, dsn, code))) => {
                    assert_eq!(e.queue_id, *qid, "{line}");
                    assert_eq!(e.report.action, *action, "{line}");
                    assert_eq!(e.report.status.as_deref(), *dsn, "{line}");
                    assert_eq!(e.report.reply_code(), *code, "{line}");
                }
                (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn follower_reads_only_new_complete_lines() {
        let dir = std::env::temp_dir().join(format!("seedprobe-maillog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mail.log");
        let line = "Nov 28 08:10:04 relay postfix/smtp[814]: ABC: to=<a@b.test>, relay=x, dsn=2.0.0, status=sent (250 ok)\n";
        std::fs::write(&path, line).unwrap();
        let mut f = LogFollower::at_end(&path);
        assert!(f.read_new(&path).unwrap().is_empty());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, line.replace("ABC", "DEF").as_bytes()).unwrap();
        std::io::Write::write_all(
            &mut file,
            b"Nov 28 08:10:05 relay postfix/smtp[1]: GHI: to=<a@b",
        )
        .unwrap();
        let got = f.read_new(&path).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].queue_id, "DEF");
        std::io::Write::write_all(&mut file, b".test>, dsn=5.0.0, status=bounced (no)\n").unwrap();
        let got = f.read_new(&path).unwrap();
        assert_eq!(got[0].queue_id, "GHI");
        std::fs::write(&path, line.replace("ABC", "JKL")).unwrap();
        let got = f.read_new(&path).unwrap();
        assert_eq!(
            got[0].queue_id, "JKL",
            "a truncated log is read from its start"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn follow_reports_entries_until_the_deadline_and_names_an_unreadable_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        let line = "Nov 28 08:10:04 relay postfix/smtp[814]: ABC: to=<a@b.test>, relay=x, dsn=2.0.0, status=sent (250 ok)\n";
        std::fs::write(&path, line).unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now();
        follow(&path, 0, Duration::from_millis(10), deadline, &mut |e| {
            seen.push(e.queue_id)
        })
        .await
        .unwrap();
        assert_eq!(seen, ["ABC"]);

        let missing = dir.path().join("gone.log");
        let err = follow(
            &missing,
            0,
            Duration::from_millis(10),
            deadline,
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("relay log {}: ", missing.display())),
            "{err}"
        );
    }
}
