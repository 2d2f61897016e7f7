//! The placement summary of a set of messages: counts per verdict, pending, total and the inbox
//! share. Computed here once; every report, the metrics, `probe compare`, `--fail-under` and the
//! exit codes read it, so "inbox share" means one thing everywhere.
//!
//! A message without a verdict for a known reason (never sent, or its transaction interrupted
//! with the outcome unknown) says nothing about the provider: it is counted under that reason,
//! not as pending, and left out of the shares' denominator.

use std::collections::BTreeMap;

use super::Verdict;

/// Where one message stands, as [`Placement`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// It has a verdict.
    Verdict(Verdict),
    /// No verdict yet: polling may still give it one.
    Pending,
    /// Never handed to any server: probe's failure, not the provider's.
    NotSent,
    /// Stopped during its transaction and not found: whether the server took it is unknown.
    Interrupted,
}

impl From<Option<Verdict>> for Placed {
    fn from(verdict: Option<Verdict>) -> Placed {
        verdict.map_or(Placed::Pending, Placed::Verdict)
    }
}

/// Where a set of messages (a run, or one provider's part of it) ended up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Messages per verdict, indexed by [`Verdict::rank`].
    by_verdict: [usize; 6],
    /// Messages without a verdict yet.
    pending: usize,
    /// Messages never sent, without a verdict.
    not_sent: usize,
    /// Messages interrupted in their transaction, without a verdict.
    interrupted: usize,
}

impl Placement {
    /// The summary of these messages (a bare `None` verdict: pending).
    pub fn of(placed: impl IntoIterator<Item = impl Into<Placed>>) -> Placement {
        let mut p = Placement::default();
        for m in placed {
            p.add(m);
        }
        p
    }

    /// Counts one more message.
    pub fn add(&mut self, placed: impl Into<Placed>) {
        match placed.into() {
            Placed::Verdict(v) => self.by_verdict[usize::from(v.rank())] += 1,
            Placed::Pending => self.pending += 1,
            Placed::NotSent => self.not_sent += 1,
            Placed::Interrupted => self.interrupted += 1,
        }
    }

    /// Messages with this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.by_verdict[usize::from(verdict.rank())]
    }

    /// Messages without a verdict yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Messages never sent, without a verdict.
    pub fn not_sent(&self) -> usize {
        self.not_sent
    }

    /// Messages interrupted in their transaction, without a verdict.
    pub fn interrupted(&self) -> usize {
        self.interrupted
    }

    /// All messages.
    pub fn total(&self) -> usize {
        self.measured() + self.not_sent + self.interrupted
    }

    /// The messages that say something about a provider: the shares' denominator (those with
    /// a verdict and those pending; not those never sent or interrupted).
    pub fn measured(&self) -> usize {
        self.by_verdict.iter().sum::<usize>() + self.pending
    }

    /// Messages with this verdict label, or `pending`, `not_sent`, `interrupted`; 0 for an
    /// unknown label.
    pub fn count_label(&self, label: &str) -> usize {
        self.labelled()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, n)| n)
    }

    /// Every label with its count, zeros included: verdicts, then `pending`, `not_sent` and
    /// `interrupted`.
    pub fn labelled(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        Verdict::ALL
            .into_iter()
            .map(|v| (v.as_label(), self.count(v)))
            .chain([
                (Verdict::label_or_pending(None), self.pending),
                ("not_sent", self.not_sent),
                ("interrupted", self.interrupted),
            ])
    }

    /// Messages per label (see [`Placement::labelled`]), only those that occur: the `counts`
    /// of the JSON documents.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.labelled().filter(|(_, n)| *n > 0).collect()
    }

    /// `inbox / measured`: `spam_tagged` and pending messages count as not inbox, since neither
    /// is mail a reader sees unmarked; messages never sent or interrupted are left out. `None`
    /// without measured messages.
    pub fn inbox_share(&self) -> Option<f64> {
        let measured = self.measured();
        (measured > 0).then(|| self.count(Verdict::Inbox) as f64 / measured as f64)
    }

    /// The share of `verdict` in percent, of the measured messages; 0 without any.
    pub fn percent(&self, verdict: Verdict) -> f64 {
        match self.measured() {
            0 => 0.0,
            measured => self.count(verdict) as f64 * 100.0 / measured as f64,
        }
    }

    /// Every message is in the inbox, unmarked (true for no messages: nothing failed).
    pub fn all_inbox(&self) -> bool {
        self.count(Verdict::Inbox) == self.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spam_tagged_and_pending_are_not_inbox() {
        use Verdict::*;
        let p = Placement::of([Some(Inbox), Some(SpamTagged), None, Some(Rejected)]);
        assert_eq!((p.total(), p.pending(), p.count(Inbox)), (4, 1, 1));
        assert_eq!(p.inbox_share(), Some(0.25));
        assert_eq!(p.percent(Inbox), 25.0);
        assert!(!p.all_inbox());
        assert_eq!(
            p.counts().into_iter().collect::<Vec<_>>(),
            [
                ("inbox", 1),
                ("pending", 1),
                ("rejected", 1),
                ("spam_tagged", 1)
            ]
        );
        assert_eq!((p.count_label("pending"), p.count_label("nope")), (1, 0));
        let empty = Placement::default();
        assert_eq!((empty.inbox_share(), empty.percent(Inbox)), (None, 0.0));
        assert!(empty.all_inbox());
        assert!(Placement::of([Some(Inbox)]).all_inbox());
    }

    #[test]
    fn messages_without_a_verdict_for_a_known_reason_are_not_measured() {
        use Placed::{Interrupted, NotSent, Pending, Verdict as V};
        use Verdict::{Inbox, Spam};
        /// Messages, measured, inbox share, counts.
        type Case = (
            &'static [Placed],
            usize,
            Option<f64>,
            &'static [(&'static str, usize)],
        );
        let cases: &[Case] = &[
            (
                &[V(Inbox), NotSent],
                1,
                Some(1.0),
                &[("inbox", 1), ("not_sent", 1)],
            ),
            (
                &[V(Inbox), V(Spam), Interrupted, Pending],
                3,
                Some(1.0 / 3.0),
                &[
                    ("inbox", 1),
                    ("interrupted", 1),
                    ("pending", 1),
                    ("spam", 1),
                ],
            ),
            (
                &[NotSent, Interrupted],
                0,
                None,
                &[("interrupted", 1), ("not_sent", 1)],
            ),
            (&[Pending], 1, Some(0.0), &[("pending", 1)]),
        ];
        for (messages, measured, share, counts) in cases {
            let p = Placement::of(messages.iter().copied());
            assert_eq!(p.total(), messages.len(), "{messages:?}");
            assert_eq!(p.measured(), *measured, "{messages:?}");
            assert_eq!(p.inbox_share(), *share, "{messages:?}");
            assert_eq!(
                p.counts().into_iter().collect::<Vec<_>>(),
                counts.to_vec(),
                "{messages:?}"
            );
            for (label, n) in *counts {
                assert_eq!(p.count_label(label), *n, "{label}");
            }
            // Never "all inbox" while a message went unmeasured: something failed.
            assert_eq!(p.all_inbox(), p.count(Inbox) == messages.len());
        }
        let p = Placement::of([V(Inbox), NotSent]);
        assert_eq!(
            (p.percent(Inbox), p.not_sent(), p.interrupted()),
            (100.0, 1, 0)
        );
    }
}
