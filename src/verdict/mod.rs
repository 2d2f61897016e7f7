//! The verdict: the one place that decides what became of a message.
//!
//! Sending and polling only collect evidence (an SMTP [`Ending`], a [`Sighting`]'s folder and
//! headers, a relay's report). Every piece of it goes through [`weigh`], the ledger: given
//! what is known of the message so far (its [`Standing`]), it says whether the evidence decides
//! the message, re-decides it, is kept for later, or changes nothing. Nothing else ranks
//! evidence: the store writes what it is told, and pollers ask [`Standing::awaits`] whether a
//! source is still worth searching.
//!
//! # Precedence
//!
//! 1. The SMTP outcome comes first. A refusal (4xx/5xx, no usable reply, null MX) decides
//!    `deferred` or `rejected` for good: nothing was handed over, so nothing can turn up later.
//!    An acceptance decides nothing; the message is searched for.
//! 2. A sighting in the inbox or the spam folder always wins: it decides (`inbox`,
//!    `spam_tagged`, `spam`) over anything that came before it and is final. A second sighting
//!    changes nothing.
//! 3. A failure report from downstream (a DSN, a rejection MDN or the relay's log saying
//!    `bounced`) decides `rejected` at once, and that verdict is stored at once (an
//!    interrupted run shows it). It stays *open* until the message's deadline: its seed account
//!    keeps searching for the message, and a sighting replaces the verdict. At the deadline it
//!    becomes final. The first failure report is the evidence; later reports change nothing.
//! 4. A deferral report decides nothing on its own (the relay retries, a later delivery may be
//!    found); the first one is kept, and decides `deferred` at the deadline if nothing else did.
//! 5. At the deadline (the account's last search is done), a message with no verdict is
//!    `missing` (or `deferred`, per 4).
//!
//! Polling stops early once every message has a [final](Standing::Final) verdict, one no later
//! evidence can change. A resumed `probe poll` searches only messages with no verdict at all.
//!
//! [`Sighting`]: crate::poll::Sighting

pub mod cause;
mod ledger;
mod placement;

pub use cause::{Cause, CauseSource};
pub use ledger::{Finality, Ruling, Source, Standing, weigh};
pub use placement::{Placed, Placement};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::downstream::{Downstream, DownstreamAction, DownstreamSource};
use crate::evidence::SpamSignals;
use crate::evidence::{FolderRole, HeaderEvidence};
use crate::send::{Ending, SessionError, Severity};

/// Where a message ended up. Ordered best first (see [`Verdict::rank`]): `a < b` means `a` is
/// the better place for a message to end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Accepted, but not found in the inbox or spam folder before the timeout.
    Missing,
    /// Refused for good (5xx, null MX, no such domain).
    Rejected,
}

impl Verdict {
    /// All verdicts, best first: the order `probe compare` calls better and worse.
    ///
    /// 1. `inbox`: delivered where it is read.
    /// 2. `spam_tagged`: delivered to the inbox, but marked as spam (a subject prefix or
    ///    header): the reader sees it, with a warning, and filters may act on the mark.
    /// 3. `spam`: delivered to the spam folder; rarely read, but delivered and recoverable.
    /// 4. `deferred`: refused for now (4xx, or no connection). The sending MTA retries, so the
    ///    message may still arrive, but late and only if the block lifts.
    /// 5. `missing`: accepted, yet neither in the inbox nor the spam folder by the timeout:
    ///    dropped silently or stuck somewhere. Worse than deferred because nobody retries and
    ///    the sender gets no signal.
    /// 6. `rejected`: refused for good (5xx, null MX, no such domain). Worst: the message
    ///    will never arrive, the sender gets a bounce, and a 5xx is usually a block list or a
    ///    policy that will refuse every further message too.
    pub const ALL: [Verdict; 6] = [
        Verdict::Inbox,
        Verdict::SpamTagged,
        Verdict::Spam,
        Verdict::Deferred,
        Verdict::Missing,
        Verdict::Rejected,
    ];

    /// The verdict's place in [`Verdict::ALL`]: 0 is best.
    pub fn rank(self) -> u8 {
        // The variants are declared in rank order, which `Ord` follows too.
        self as u8
    }

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

    /// The label of a message's verdict, `pending` while it has none: as every report and the
    /// metrics show it.
    pub fn label_or_pending(verdict: Option<Verdict>) -> &'static str {
        verdict.map(Verdict::as_label).unwrap_or("pending")
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

/// What one piece of evidence says on its own, for a message with nothing else known: the
/// ledger ([`weigh`]) asked about a new message. `None` means no verdict yet: the message was
/// accepted and must be polled, or a report was only kept.
pub fn classify(evidence: Evidence<'_>) -> Option<Decision> {
    match weigh(Standing::NEW, evidence) {
        Ruling::Decide { decision, .. } => Some(decision),
        Ruling::Keep | Ruling::Confirm | Ruling::Ignore => None,
    }
}

/// What the evidence means, regardless of what came before it; [`weigh`] decides whether it
/// counts.
fn reading(evidence: Evidence<'_>) -> Option<Decision> {
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
        // Never handed over: deferred, as the MTA that backs off from the host would have it,
        // with what the host said on the earlier message as the reason.
        Evidence::Sent(ending @ Ending::NotTried { .. }) => {
            decide(Verdict::Deferred, ending.to_string())
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
    fn the_order_is_best_first_and_all_follows_it() {
        let labels: Vec<_> = Verdict::ALL.iter().map(|v| v.as_label()).collect();
        assert_eq!(
            labels,
            [
                "inbox",
                "spam_tagged",
                "spam",
                "deferred",
                "missing",
                "rejected"
            ]
        );
        for (i, v) in Verdict::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(v.rank()), i, "{v}");
        }
        let mut sorted = Verdict::ALL;
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, Verdict::ALL);
        assert!(Verdict::Missing < Verdict::Rejected);
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
            (
                Ending::NotTried {
                    host: "mx.example".into(),
                    earlier: Box::new(Ending::Refused {
                        stage: Stage::RcptTo,
                        reply: reply("421 4.7.0 Try again later"),
                    }),
                },
                Some(Verdict::Deferred),
            ),
        ];
        for (ending, want) in &rows {
            let got = classify(Evidence::Sent(ending)).map(|d| d.verdict);
            assert_eq!(got, *want, "ending: {ending}");
        }
        let not_tried = classify(Evidence::Sent(&rows[rows.len() - 1].0)).unwrap();
        assert_eq!(
            not_tried.reason,
            "not tried: 421 4.7.0 Try again later from mx.example on an earlier message of this run"
        );
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
            command: None,
            reason: None,
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
