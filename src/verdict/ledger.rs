//! The ledger: which piece of evidence about a message counts, given what came before it. The
//! rule is written out in the [module documentation](super).

use super::{Decision, Evidence, Verdict, reading};
use crate::downstream::DownstreamAction;

/// Whether a verdict may still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// A sighting may still replace it, until the message's deadline.
    Open,
    /// No later evidence changes it.
    Final,
}

/// What is known of a message so far, as far as precedence goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No verdict yet.
    Pending {
        /// A report that the next hop deferred the message is already kept (only the first
        /// one is).
        deferral_kept: bool,
    },
    /// A verdict given on a failure report, which a sighting may still replace.
    Open(Verdict),
    /// A verdict no later evidence changes.
    Final,
}

/// Where evidence comes from, to ask whether a source is still worth searching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The seed's folders: sightings.
    Folder,
    /// The relay's reports: DSNs, MDNs, its log.
    Report,
}

/// What [`weigh`] says to do with a piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    /// The evidence decides the message, or re-decides it: store this decision, replacing any
    /// earlier one.
    Decide {
        /// The verdict and why.
        decision: Decision,
        /// Whether later evidence may still replace it.
        finality: Finality,
    },
    /// Keep the report with the message: it decides at the deadline if nothing else does.
    Keep,
    /// The verdict already stored stands, and is now final.
    Confirm,
    /// The evidence changes nothing.
    Ignore,
}

impl Standing {
    /// A message nothing is known of yet (beyond its SMTP outcome being awaited).
    pub const NEW: Standing = Standing::Pending {
        deferral_kept: false,
    };

    /// True when no later evidence can change the verdict.
    pub fn is_final(self) -> bool {
        self == Standing::Final
    }

    /// Whether evidence from `source` may still change the verdict, so that searching it for
    /// this message is still worth it.
    pub fn awaits(self, source: Source) -> bool {
        match (self, source) {
            (Standing::Final, _) => false,
            // Only a sighting replaces a verdict given on a failure report.
            (Standing::Open(_), Source::Report) => false,
            (Standing::Open(_), Source::Folder) | (Standing::Pending { .. }, _) => true,
        }
    }

    /// The standing once `ruling` is acted on.
    pub fn after(self, ruling: &Ruling) -> Standing {
        match ruling {
            Ruling::Decide {
                finality: Finality::Final,
                ..
            }
            | Ruling::Confirm => Standing::Final,
            Ruling::Decide {
                decision,
                finality: Finality::Open,
            } => Standing::Open(decision.verdict),
            Ruling::Keep => Standing::Pending {
                deferral_kept: true,
            },
            Ruling::Ignore => self,
        }
    }
}

/// The ledger: what `evidence` means for a message whose standing is `standing`. Every piece of
/// evidence about a message goes through here; see the [precedence rule](super#precedence).
pub fn weigh(standing: Standing, evidence: Evidence<'_>) -> Ruling {
    let decide = |finality| match reading(evidence) {
        Some(decision) => Ruling::Decide { decision, finality },
        None => Ruling::Ignore,
    };
    match (standing, evidence) {
        (Standing::Final, _) => Ruling::Ignore,
        // A refusal is final: nothing was handed over, so nothing can turn up later.
        (_, Evidence::Sent(_)) => decide(Finality::Final),
        // Finding the message in a folder always wins.
        (_, Evidence::Found { .. }) => decide(Finality::Final),
        (Standing::Pending { deferral_kept }, Evidence::Downstream(report)) => {
            match report.action {
                // Rejected at once, but the account keeps looking until the deadline: a
                // report can be wrong about one of several recipients or hops, a sighting not.
                DownstreamAction::Failed => decide(Finality::Open),
                DownstreamAction::Delayed if !deferral_kept => Ruling::Keep,
                DownstreamAction::Delayed | DownstreamAction::Delivered => Ruling::Ignore,
            }
        }
        // The first failure report is the evidence; later reports add nothing.
        (Standing::Open(_), Evidence::Downstream(_)) => Ruling::Ignore,
        (Standing::Pending { .. }, Evidence::NotFoundByDeadline { .. }) => decide(Finality::Final),
        (Standing::Open(_), Evidence::NotFoundByDeadline { .. }) => Ruling::Confirm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::{Downstream, DownstreamSource};
    use crate::evidence::{FolderRole, HeaderEvidence};
    use crate::send::{Ending, Reply, Stage};

    fn report(action: DownstreamAction) -> Downstream {
        Downstream {
            source: DownstreamSource::Dsn,
            action,
            recipient: Some("a@b.test".into()),
            status: Some("5.7.1".into()),
            remote_mta: Some("mx.b.test".into()),
            diagnostic: Some("smtp; 550 5.7.1 no".into()),
            command: None,
            reason: None,
        }
    }

    /// The verdict after each ruling, `None` while none is stored, as a store that writes what
    /// it is told would hold it.
    fn replay(evidence: &[Evidence<'_>]) -> (Option<Verdict>, Standing) {
        let mut standing = Standing::NEW;
        let mut stored = None;
        for e in evidence {
            let ruling = weigh(standing, *e);
            if let Ruling::Decide { decision, .. } = &ruling {
                stored = Some(decision.verdict);
            }
            standing = standing.after(&ruling);
        }
        (stored, standing)
    }

    #[test]
    fn the_ledger_applies_the_precedence_rule() {
        use Verdict::*;
        let accepted = Ending::Accepted {
            reply: Reply::parse(&["250 2.0.0 Ok: queued as ABC"]).unwrap(),
        };
        let refused = Ending::Refused {
            stage: Stage::RcptTo,
            reply: Reply::parse(&["550 5.7.1 no"]).unwrap(),
        };
        let clean = HeaderEvidence {
            subject: Some("Check X".into()),
            fields: Vec::new(),
        };
        let inbox = Evidence::Found {
            role: FolderRole::Inbox,
            folder: "INBOX",
            headers: &clean,
        };
        let junk = Evidence::Found {
            role: FolderRole::Junk,
            folder: "Junk",
            headers: &clean,
        };
        let (failed, delayed, delivered) = (
            report(DownstreamAction::Failed),
            report(DownstreamAction::Delayed),
            report(DownstreamAction::Delivered),
        );
        let sent = Evidence::Sent(&accepted);
        let dsn_failed = Evidence::Downstream(&failed);
        let dsn_delayed = Evidence::Downstream(&delayed);
        let deadline = Evidence::NotFoundByDeadline { delayed: None };
        let deadline_delayed = Evidence::NotFoundByDeadline {
            delayed: Some(&delayed),
        };
        let open = |v| Standing::Open(v);
        let pending = Standing::NEW;
        let rows: Vec<(&str, Vec<Evidence<'_>>, Option<Verdict>, Standing)> = vec![
            ("accepted only", vec![sent], None, pending),
            (
                "refused",
                vec![Evidence::Sent(&refused)],
                Some(Rejected),
                Standing::Final,
            ),
            ("found", vec![sent, inbox], Some(Inbox), Standing::Final),
            (
                "first sighting wins",
                vec![sent, junk, inbox],
                Some(Spam),
                Standing::Final,
            ),
            // The bug of issue 8: a failure report first must not block a later sighting.
            (
                "failure then sighting",
                vec![sent, dsn_failed, inbox],
                Some(Inbox),
                Standing::Final,
            ),
            (
                "failure then spam",
                vec![sent, dsn_failed, junk],
                Some(Spam),
                Standing::Final,
            ),
            (
                "failure, open",
                vec![sent, dsn_failed],
                Some(Rejected),
                open(Rejected),
            ),
            (
                "failure at deadline",
                vec![sent, dsn_failed, deadline],
                Some(Rejected),
                Standing::Final,
            ),
            (
                "sighting then failure",
                vec![sent, inbox, dsn_failed],
                Some(Inbox),
                Standing::Final,
            ),
            (
                "failure after deadline",
                vec![sent, deadline, dsn_failed],
                Some(Missing),
                Standing::Final,
            ),
            (
                "deferral kept",
                vec![sent, dsn_delayed],
                None,
                Standing::Pending {
                    deferral_kept: true,
                },
            ),
            (
                "deferral at deadline",
                vec![sent, dsn_delayed, deadline_delayed],
                Some(Deferred),
                Standing::Final,
            ),
            (
                "deferral then failure",
                vec![sent, dsn_delayed, dsn_failed],
                Some(Rejected),
                open(Rejected),
            ),
            (
                "deferral then sighting",
                vec![sent, dsn_delayed, inbox],
                Some(Inbox),
                Standing::Final,
            ),
            (
                "delivered says nothing",
                vec![sent, Evidence::Downstream(&delivered)],
                None,
                pending,
            ),
            (
                "missing",
                vec![sent, deadline],
                Some(Missing),
                Standing::Final,
            ),
            (
                "nothing after final",
                vec![sent, deadline, inbox],
                Some(Missing),
                Standing::Final,
            ),
        ];
        for (name, evidence, verdict, standing) in rows {
            assert_eq!(replay(&evidence), (verdict, standing), "{name}");
        }
    }

    #[test]
    fn only_the_first_deferral_report_is_kept_and_reports_stop_once_open() {
        let delayed = report(DownstreamAction::Delayed);
        let failed = report(DownstreamAction::Failed);
        let kept = weigh(Standing::NEW, Evidence::Downstream(&delayed));
        assert_eq!(kept, Ruling::Keep);
        let after = Standing::NEW.after(&kept);
        assert_eq!(weigh(after, Evidence::Downstream(&delayed)), Ruling::Ignore);
        let open = Standing::Open(Verdict::Rejected);
        assert_eq!(weigh(open, Evidence::Downstream(&failed)), Ruling::Ignore);
        // Who still has something to say about an open verdict: only the folders.
        assert!(open.awaits(Source::Folder) && !open.awaits(Source::Report));
        assert!(Standing::NEW.awaits(Source::Report) && Standing::NEW.awaits(Source::Folder));
        assert!(!Standing::Final.awaits(Source::Folder));
    }
}
