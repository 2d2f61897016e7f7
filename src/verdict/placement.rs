//! The placement summary of a set of messages: counts per verdict, pending, total and the inbox
//! share. Computed here once; every report, the metrics, `probe compare`, `--fail-under` and the
//! exit codes read it, so "inbox share" means one thing everywhere.

use std::collections::BTreeMap;

use super::Verdict;

/// Where a set of messages (a run, or one provider's part of it) ended up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Messages per verdict, indexed by [`Verdict::rank`].
    by_verdict: [usize; 6],
    /// Messages without a verdict yet.
    pending: usize,
}

impl Placement {
    /// The summary of these verdicts (`None`: pending).
    pub fn of(verdicts: impl IntoIterator<Item = Option<Verdict>>) -> Placement {
        let mut p = Placement::default();
        for v in verdicts {
            p.add(v);
        }
        p
    }

    /// Counts one more message.
    pub fn add(&mut self, verdict: Option<Verdict>) {
        match verdict {
            Some(v) => self.by_verdict[usize::from(v.rank())] += 1,
            None => self.pending += 1,
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

    /// All messages.
    pub fn total(&self) -> usize {
        self.by_verdict.iter().sum::<usize>() + self.pending
    }

    /// Messages with this verdict label, or `pending`; 0 for an unknown label.
    pub fn count_label(&self, label: &str) -> usize {
        match Verdict::from_label(label) {
            Some(v) => self.count(v),
            None if label == "pending" => self.pending,
            None => 0,
        }
    }

    /// Messages per verdict label (and `pending`), only those that occur: the `counts` of the
    /// JSON documents.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        Verdict::ALL
            .into_iter()
            .map(|v| (v.as_label(), self.count(v)))
            .chain([(Verdict::label_or_pending(None), self.pending)])
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// `inbox / total`: `spam_tagged` and pending messages count as not inbox, since neither
    /// is mail a reader sees unmarked. `None` without messages.
    pub fn inbox_share(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.count(Verdict::Inbox) as f64 / total as f64)
    }

    /// The share of `verdict` in percent; 0 without messages.
    pub fn percent(&self, verdict: Verdict) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.count(verdict) as f64 * 100.0 / total as f64,
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
}
