//! Where to start searching: the folders' UIDNEXT noted before sending, or else a date.
//!
//! A message delivered after `STATUS ... (UIDNEXT n)` gets a UID of at least `n` while
//! UIDVALIDITY stays the same (RFC 3501 §2.3.1.1), so `UID SEARCH UID n:* ...` covers every
//! test message and costs what the mail since sending costs, not what the mailbox holds.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use std::sync::atomic::{AtomicBool, Ordering};

use super::{AccountPoll, FolderRole, PollError, find_junk, open_noting, step};

/// A folder's UIDVALIDITY and UIDNEXT, taken before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The folder's wire name.
    pub folder: String,
    /// Inbox or spam folder.
    pub role: FolderRole,
    /// UIDVALIDITY: the UIDs below mean nothing once it changes.
    pub uid_validity: u32,
    /// UIDNEXT: the first UID a new message can get.
    pub uid_next: u32,
}

/// What a poll knows before it starts about where the run's messages can be.
#[derive(Debug, Clone, Default)]
pub struct StartAt {
    /// Positions by folder wire name.
    pub positions: HashMap<String, Position>,
    /// When the run began: folders without a usable position are searched from the day
    /// before.
    pub sent_after: Option<SystemTime>,
}

/// How much of a folder a search looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SearchScope {
    /// `UID n:*`: what arrived since the position was taken.
    Uid {
        /// The position's UIDNEXT.
        from: u32,
        /// The UIDVALIDITY it belongs to.
        uid_validity: u32,
    },
    /// `SINCE d`: no position, or UIDVALIDITY changed since; `d` is the day before sending
    /// (SINCE compares dates in the server's time zone, and ignores the time).
    Since {
        /// The IMAP date, e.g. `27-Nov-2026`.
        date: String,
    },
    /// The whole folder: nothing is known.
    All,
}

impl SearchScope {
    /// The scope for a folder just EXAMINEd with `uid_validity`.
    pub fn choose(
        position: Option<&Position>,
        uid_validity: Option<u32>,
        sent_after: Option<SystemTime>,
    ) -> SearchScope {
        match (position, uid_validity) {
            (Some(p), Some(v)) if p.uid_validity == v => SearchScope::Uid {
                from: p.uid_next.max(1),
                uid_validity: v,
            },
            _ => match sent_after {
                Some(t) => SearchScope::Since {
                    date: imap_date(t - Duration::from_secs(86_400)),
                },
                None => SearchScope::All,
            },
        }
    }

    /// `criteria` limited to this scope, as one SEARCH program.
    pub fn limit(&self, criteria: &str) -> String {
        match self {
            SearchScope::Uid { from, .. } => format!("UID {from}:* ({criteria})"),
            SearchScope::Since { date } => format!("SINCE {date} ({criteria})"),
            SearchScope::All => criteria.to_owned(),
        }
    }
}

/// RFC 3501 `date`: `d-Mon-yyyy`, in UTC.
fn imap_date(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{day}-{}-{year}", MONTHS[(month - 1) as usize])
}

/// Logs in, notes UIDVALIDITY and UIDNEXT of the inbox and the spam folder with `STATUS`, and
/// logs out. Reads nothing and changes nothing. `logged_in` is set the moment the login
/// succeeds: whoever waits on this with a time limit learns whether the mailbox can be read
/// even when a later step is still going.
pub async fn mark_positions(
    job: &AccountPoll,
    timeout: Duration,
    logged_in: &AtomicBool,
) -> Result<Vec<Position>, PollError> {
    let imap = &job.imap;
    let (mut session, listed) = open_noting(job, timeout, Some(logged_in)).await?;
    logged_in.store(true, Ordering::SeqCst);
    let junk = find_junk(
        &listed,
        imap.spam_folder.as_deref(),
        &imap.spam_folder_names,
    );
    let mut folders = vec![("INBOX".to_owned(), FolderRole::Inbox)];
    if let Some(j) = junk {
        folders.push((j.name, FolderRole::Junk));
    }
    let mut positions = Vec::new();
    for (folder, role) in folders {
        let status = step(
            imap,
            "STATUS",
            timeout,
            session.status(&folder, "(UIDVALIDITY UIDNEXT)"),
        )
        .await?;
        // A server that leaves either out gives no position: that folder is searched by date.
        if let (Some(uid_validity), Some(uid_next)) = (status.uid_validity, status.uid_next) {
            positions.push(Position {
                folder,
                role,
                uid_validity,
                uid_next,
            });
        }
    }
    let _ = tokio::time::timeout(timeout, session.logout()).await;
    Ok(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_dates() {
        let at = |secs: u64| imap_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1-Jan-1970");
        assert_eq!(at(951_782_400), "29-Feb-2000");
        assert_eq!(at(1_795_824_000), "28-Nov-2026");
        assert_eq!(at(1_795_910_399), "28-Nov-2026");
    }

    /// (what, position, UIDVALIDITY from EXAMINE, run start, expected SEARCH program)
    type Row<'a> = (
        &'a str,
        Option<&'a Position>,
        Option<u32>,
        Option<SystemTime>,
        &'a str,
    );

    #[test]
    fn scope_table() {
        let pos = Position {
            folder: "INBOX".into(),
            role: FolderRole::Inbox,
            uid_validity: 7,
            uid_next: 100_001,
        };
        let sent = UNIX_EPOCH + Duration::from_secs(1_795_824_000);
        let rows: &[Row] = &[
            (
                "same UIDVALIDITY: from UIDNEXT",
                Some(&pos),
                Some(7),
                Some(sent),
                "UID 100001:* (SUBJECT \"x\")",
            ),
            (
                "UIDVALIDITY changed: by date, the day before",
                Some(&pos),
                Some(8),
                Some(sent),
                "SINCE 27-Nov-2026 (SUBJECT \"x\")",
            ),
            (
                "no position",
                None,
                Some(7),
                Some(sent),
                "SINCE 27-Nov-2026 (SUBJECT \"x\")",
            ),
            (
                "no UIDVALIDITY from the server",
                Some(&pos),
                None,
                Some(sent),
                "SINCE 27-Nov-2026 (SUBJECT \"x\")",
            ),
            ("nothing known", None, None, None, "SUBJECT \"x\""),
        ];
        for (what, position, validity, sent_after, want) in rows {
            let scope = SearchScope::choose(*position, *validity, *sent_after);
            assert_eq!(scope.limit("SUBJECT \"x\""), *want, "row: {what}");
        }
    }
}
