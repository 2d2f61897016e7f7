//! The verdict: the one place that decides what became of a message.
//!
//! Sending and polling only collect evidence (an SMTP [`Ending`], a [`Sighting`]'s folder and
//! headers). [`classify`] turns evidence into one of six [`Verdict`]s and says why, in words a
//! postmaster can act on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::downstream::{Downstream, DownstreamAction, DownstreamSource};
use crate::evidence::SpamSignals;
use crate::poll::{FolderRole, HeaderEvidence};
use crate::send::{Ending, SessionError, Severity};

/// Where a message ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In the inbox, unmarked.
    Inbox,
    /// In the inbox, but marked as spam by a subject prefix or a header.
    SpamTagged,
    /// In the spam folder.
    Spam,
    /// Refused for now (4xx), or not deliverable now (timeout, connection failure).
    Deferred,
    /// Refused for good (5xx, null MX, no such domain).
    Rejected,
    /// Accepted, but not found in the inbox or spam folder before the timeout.
    Missing,
}

impl Verdict {
    /// All verdicts, best first.
    pub const ALL: [Verdict; 6] = [
        Verdict::Inbox,
        Verdict::SpamTagged,
        Verdict::Spam,
        Verdict::Deferred,
        Verdict::Rejected,
        Verdict::Missing,
    ];

    /// Stable label for JSON, the store and metrics.
    pub fn as_label(self) -> &'static str {
        match self {
            Verdict::Inbox => "inbox",
            Verdict::SpamTagged => "spam_tagged",
            Verdict::Spam => "spam",
            Verdict::Deferred => "deferred",
            Verdict::Rejected => "rejected",
            Verdict::Missing => "missing",
        }
    }

    /// Parses a stored label.
    pub fn from_label(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_label() == s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

/// A verdict and the reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one line.
    pub reason: String,
}

/// What is known about a message at the time of asking.
#[derive(Debug, Clone, Copy)]
pub enum Evidence<'a> {
    /// The SMTP transaction has ended.
    Sent(&'a Ending),
    /// The message was found in a folder.
    Found {
        /// Inbox or spam folder.
        role: FolderRole,
        /// Its wire name.
        folder: &'a str,
        /// Its header fields.
        headers: &'a HeaderEvidence,
    },
    /// The relay reported on the next hop (a DSN or its log), in relay mode.
    Downstream(&'a Downstream),
    /// The message was accepted and the polling timeout passed without a sighting. `delayed`
    /// is the first report that the next hop deferred it, if any.
    NotFoundByDeadline {
        /// The first "delayed" report, from a DSN or the relay's log.
        delayed: Option<&'a Downstream>,
    },
}

/// Decides. `None` means there is no verdict yet: the message was accepted and must be polled.
pub fn classify(evidence: Evidence<'_>) -> Option<Decision> {
    let decide = |verdict, reason: String| Some(Decision { verdict, reason });
    match evidence {
        Evidence::Sent(Ending::Accepted { .. }) => None,
        Evidence::Sent(Ending::Refused { stage, reply }) => match reply.severity() {
            Severity::PermanentNegative => decide(
                Verdict::Rejected,
                format!("{} refused at {stage}", reply.code),
            ),
            // 4xx, and anything else a server should not have said, is what a sending MTA would
            // retry later.
            _ => decide(
                Verdict::Deferred,
                format!("{} refused at {stage}", reply.code),
            ),
        },
        Evidence::Sent(Ending::Failed { stage, error }) => {
            let permanent = match error {
                SessionError::NullMx { .. } => true,
                SessionError::Dns { nxdomain, .. } => *nxdomain,
                _ => false,
            };
            let verdict = if permanent {
                Verdict::Rejected
            } else {
                Verdict::Deferred
            };
            decide(verdict, format!("{} at {stage}", error.kind()))
        }
        Evidence::Found {
            role: FolderRole::Junk,
            folder,
            ..
        } => decide(Verdict::Spam, format!("in spam folder {folder}")),
        Evidence::Found {
            role: FolderRole::Inbox,
            headers,
            ..
        } => match spam_mark(headers) {
            Some(mark) => decide(Verdict::SpamTagged, mark),
            None => decide(Verdict::Inbox, "in INBOX, unmarked".into()),
        },
        // A refusal downstream is final; a deferral is not (the relay retries, and a later
        // delivery found in a folder wins), so it only decides once the timeout has passed.
        Evidence::Downstream(report) => match report.action {
            DownstreamAction::Failed => decide(
                Verdict::Rejected,
                format!("relay gave up ({})", downstream_summary(report)),
            ),
            DownstreamAction::Delayed | DownstreamAction::Delivered => None,
        },
        Evidence::NotFoundByDeadline {
            delayed: Some(report),
        } => decide(
            Verdict::Deferred,
            format!(
                "relay accepted, next hop deferred ({})",
                downstream_summary(report)
            ),
        ),
        Evidence::NotFoundByDeadline { delayed: None } => decide(
            Verdict::Missing,
            "accepted, but not in INBOX or the spam folder by the timeout".into(),
        ),
    }
}

fn downstream_summary(report: &Downstream) -> String {
    let source = match report.source {
        DownstreamSource::Dsn => "DSN",
        DownstreamSource::Maillog => "relay log",
    };
    match (&report.diagnostic, &report.status) {
        (Some(d), _) => format!("{source}: {d}"),
        (None, Some(s)) => format!("{source}: status {s}"),
        (None, None) => source.to_owned(),
    }
}

/// The first spam mark on a message in the inbox, described; `None` when it is clean.
fn spam_mark(headers: &HeaderEvidence) -> Option<String> {
    SpamSignals::from_headers(headers)
        .marks()
        .into_iter()
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::{Reply, Stage};

    fn reply(line: &str) -> Reply {
        Reply::parse(&[line]).unwrap()
    }

    fn headers(subject: &str, fields: &[(&str, &str)]) -> HeaderEvidence {
        HeaderEvidence {
            subject: Some(subject.into()),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn smtp_endings() {
        let rows = [
            (
                Ending::Accepted {
                    reply: reply("250 2.0.0 Ok: queued as ABC"),
                },
                None,
            ),
            (
                Ending::Refused {
                    stage: Stage::RcptTo,
                    reply: reply("450 4.7.1 <a@b>: Recipient address rejected"),
                },
                Some(Verdict::Deferred),
            ),
            (
                Ending::Refused {
                    stage: Stage::MailFrom,
                    reply: reply("421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred"),
                },
                Some(Verdict::Deferred),
            ),
            (
                Ending::Refused {
                    stage: Stage::RcptTo,
                    reply: reply("550 5.7.1 Message rejected as spam"),
                },
                Some(Verdict::Rejected),
            ),
            (
                Ending::Refused {
                    stage: Stage::Banner,
                    reply: reply("554 IP=192.0.2.1 - None/bad reputation (NOWL)"),
                },
                Some(Verdict::Rejected),
            ),
            (
                Ending::Failed {
                    stage: Stage::Resolve,
                    error: SessionError::NullMx {
                        domain: "example.org".into(),
                    },
                },
                Some(Verdict::Rejected),
            ),
            (
                Ending::Failed {
                    stage: Stage::Ehlo,
                    error: SessionError::ConnectionClosed {
                        server: "mx:25".into(),
                    },
                },
                Some(Verdict::Deferred),
            ),
        ];
        for (ending, want) in rows {
            let got = classify(Evidence::Sent(&ending)).map(|d| d.verdict);
            assert_eq!(got, want, "ending: {ending}");
        }
    }

    #[test]
    fn found_messages() {
        let rows: &[(FolderRole, HeaderEvidence, Verdict)] = &[
            (FolderRole::Inbox, headers("Check X", &[]), Verdict::Inbox),
            (
                FolderRole::Inbox,
                headers("[SPAM] Check X", &[]),
                Verdict::SpamTagged,
            ),
            (
                FolderRole::Inbox,
                headers("***SPAM*** Check X", &[]),
                Verdict::SpamTagged,
            ),
            (
                FolderRole::Inbox,
                headers("Check X", &[("X-Spam-Flag", "YES")]),
                Verdict::SpamTagged,
            ),
            (
                FolderRole::Inbox,
                headers(
                    "Check X",
                    &[("X-Spam-Status", "Yes, score=9.1 required=5.0")],
                ),
                Verdict::SpamTagged,
            ),
            (
                FolderRole::Inbox,
                headers(
                    "Check X",
                    &[
                        ("X-Spam-Flag", "NO"),
                        ("X-Spam-Status", "No, score=0.1 required=5.0"),
                    ],
                ),
                Verdict::Inbox,
            ),
            (
                FolderRole::Inbox,
                headers("Re: spam: about [SPAM] tags", &[]),
                Verdict::Inbox,
            ),
            (FolderRole::Junk, headers("Check X", &[]), Verdict::Spam),
        ];
        for (role, h, want) in rows {
            let got = classify(Evidence::Found {
                role: *role,
                folder: "F",
                headers: h,
            })
            .unwrap();
            assert_eq!(got.verdict, *want, "{role:?} {h:?}: {}", got.reason);
        }
        assert_eq!(
            classify(Evidence::NotFoundByDeadline { delayed: None })
                .unwrap()
                .verdict,
            Verdict::Missing
        );
    }

    #[test]
    fn downstream_reports() {
        let report = |source, action| Downstream {
            source,
            action,
            recipient: Some("a@b.test".into()),
            status: Some("4.7.1".into()),
            remote_mta: Some("mx.b.test".into()),
            diagnostic: Some("smtp; 450 4.7.1 try later".into()),
        };
        for source in [DownstreamSource::Dsn, DownstreamSource::Maillog] {
            let failed = report(source, DownstreamAction::Failed);
            let d = classify(Evidence::Downstream(&failed)).unwrap();
            assert_eq!(d.verdict, Verdict::Rejected);
            assert!(d.reason.contains("450 4.7.1 try later"), "{}", d.reason);
            for pending in [DownstreamAction::Delayed, DownstreamAction::Delivered] {
                assert_eq!(
                    classify(Evidence::Downstream(&report(source, pending))),
                    None
                );
            }
            let delayed = report(source, DownstreamAction::Delayed);
            let d = classify(Evidence::NotFoundByDeadline {
                delayed: Some(&delayed),
            })
            .unwrap();
            assert_eq!(d.verdict, Verdict::Deferred);
        }
    }
}
