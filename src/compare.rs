//! Before/after: what changed between two runs, seed by seed. Pure: reads two runs' stored
//! records, decides nothing new (each message's verdict is the one [`crate::verdict`] gave).
//!
//! # The order of verdicts
//!
//! "Worse" is the order of [`Verdict`] (best first, [`Verdict::ALL`] documents why each is
//! where it is): inbox, spam_tagged, spam, deferred, missing, rejected.
//!
//! A seed whose message has no verdict yet (pending) on either side compares as `unknown`:
//! neither better nor worse, so it never makes the comparison fail. Seeds present in only one
//! run are `added` (only in AFTER) or `removed` (only in BEFORE), also neither.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::store::MessageRecord;
use crate::verdict::{Placement, Verdict};

/// How one seed's outcome moved from BEFORE to AFTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A better verdict than before.
    Better,
    /// A worse verdict than before.
    Worse,
    /// The same verdict.
    Same,
    /// One side has no verdict yet (pending): neither better nor worse.
    Unknown,
    /// The seed is only in AFTER.
    Added,
    /// The seed is only in BEFORE.
    Removed,
}

impl Change {
    /// Stable label, as in the JSON.
    pub fn as_label(self) -> &'static str {
        match self {
            Change::Better => "better",
            Change::Worse => "worse",
            Change::Same => "same",
            Change::Unknown => "unknown",
            Change::Added => "added",
            Change::Removed => "removed",
        }
    }
}

/// One seed's line of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedChange {
    /// Seed name.
    pub seed: String,
    /// Provider label (AFTER's, or BEFORE's for a removed seed), `-` when none.
    pub provider: String,
    /// The BEFORE verdict, `pending` when undecided; `None` when the seed is not in BEFORE.
    pub before: Option<String>,
    /// The AFTER verdict, `pending` when undecided; `None` when the seed is not in AFTER.
    pub after: Option<String>,
    /// How it moved.
    pub change: Change,
    /// Why the AFTER message ended where it did: the SMTP reply (or error) for a refusal, the
    /// verdict's reason otherwise (downstream report, spam folder, spam mark). `None` when AFTER
    /// is inbox, pending or absent.
    pub detail: Option<String>,
    /// The reason of BEFORE's cause ([`crate::verdict::cause`]); `None` for inbox, pending or
    /// absent.
    pub reason_before: Option<&'static str>,
    /// The reason of AFTER's cause, likewise.
    pub reason_after: Option<&'static str>,
    /// Whether the seed is in both runs with a verdict other than inbox on at least one side
    /// and the reasons differ (`rejected` for `blocked` before and `authfailure` after is a new
    /// problem, though the verdict is the same).
    pub reason_changed: bool,
}

/// One side of a provider's summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    /// Messages of this provider in the run.
    pub messages: usize,
    /// Of those, in the inbox (`spam_tagged` does not count).
    pub inbox: usize,
    /// `inbox / messages` (pending messages count as not inbox); `None` without messages.
    pub inbox_share: Option<f64>,
}

/// A provider's inbox share before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderSummary {
    /// Provider label, `-` when none.
    pub provider: String,
    /// In BEFORE.
    pub before: Share,
    /// In AFTER.
    pub after: Share,
    /// Seeds of this provider that got worse.
    pub worse: usize,
    /// Seeds of this provider that got better.
    pub better: usize,
}

/// The comparison of two runs; its serialisation is the `probe compare --json` document, whose
/// field names are a stable interface: add, never rename.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// BEFORE's run id.
    pub before_run: String,
    /// AFTER's run id.
    pub after_run: String,
    /// Whether any seed got worse (the command then exits 1).
    pub worse: bool,
    /// One entry per seed: AFTER's sending order, then seeds only in BEFORE.
    pub seeds: Vec<SeedChange>,
    /// One entry per provider, by name.
    pub providers: Vec<ProviderSummary>,
    /// The checks that got better or worse between the runs, worse first; empty when neither
    /// run made checks.
    pub checks: Vec<CheckChange>,
}

/// A check that got better or worse between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckChange {
    /// The check (`dnsbl`, `spf`, ...).
    pub check: String,
    /// The list's zone, for list checks.
    pub list: Option<String>,
    /// What AFTER checked (the IP or domain).
    pub subject: String,
    /// BEFORE's status.
    pub before: crate::check::Status,
    /// AFTER's status.
    pub after: crate::check::Status,
    /// `better` or `worse`.
    pub change: Change,
    /// One line for people: "127.0.0.3: listed on zen.example (127.0.0.2)".
    pub summary: String,
    /// AFTER's detail.
    pub detail: String,
}

/// How bad a status is; `None` for `error`, which says nothing either way.
fn check_rank(status: crate::check::Status) -> Option<u8> {
    use crate::check::Status;
    match status {
        Status::Pass => Some(0),
        Status::Warn => Some(1),
        Status::Fail => Some(2),
        Status::Error => None,
    }
}

/// The checks that got better or worse from `before` to `after` (see the module docs).
pub fn compare_checks(
    before: Option<&crate::check::Report>,
    after: Option<&crate::check::Report>,
) -> Vec<CheckChange> {
    use crate::check::{CheckResult, Status};
    let (Some(before), Some(after)) = (before, after) else {
        return Vec::new();
    };
    let key = |r: &CheckResult| (r.check.clone(), r.list.clone());
    let mut changes = Vec::new();
    for a in &after.results {
        let Some(b) = before.results.iter().find(|b| key(b) == key(a)) else {
            continue;
        };
        let change = match (check_rank(b.status), check_rank(a.status)) {
            (Some(rb), Some(ra)) if ra > rb => Change::Worse,
            (Some(rb), Some(ra)) if ra < rb => Change::Better,
            _ => continue,
        };
        let summary = match (&a.list, &a.code) {
            (Some(zone), code) if a.check == "dnsbl" && a.status == Status::Fail => {
                let code = code
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                format!("{}: listed on {zone}{code}", a.subject)
            }
            (list, _) => {
                let on = list.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
                format!(
                    "{}: {}{on} {} -> {}",
                    a.subject,
                    a.check,
                    b.status.as_str(),
                    a.status.as_str()
                )
            }
        };
        changes.push(CheckChange {
            check: a.check.clone(),
            list: a.list.clone(),
            subject: a.subject.clone(),
            before: b.status,
            after: a.status,
            change,
            summary,
            detail: a.detail.clone(),
        });
    }
    // Worse first, each in AFTER's order.
    changes.sort_by_key(|c| c.change != Change::Worse);
    changes
}

impl Comparison {
    /// This comparison with the runs' checks compared; a check that got worse makes the whole
    /// comparison worse (exit 1).
    pub fn with_checks(
        mut self,
        before: Option<&crate::check::Report>,
        after: Option<&crate::check::Report>,
    ) -> Comparison {
        self.checks = compare_checks(before, after);
        self.worse |= self.checks.iter().any(|c| c.change == Change::Worse);
        self
    }

    /// The checks part of the text: what got worse, then what got better.
    fn checks_text(&self) -> String {
        let mut out = String::new();
        for (change, title) in [(Change::Worse, "worse"), (Change::Better, "better")] {
            let of: Vec<&CheckChange> = self.checks.iter().filter(|c| c.change == change).collect();
            if of.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\nchecks that got {title}:");
            for c in of {
                let _ = writeln!(out, "{}", crate::report::printable(&c.summary));
                if c.change == Change::Worse {
                    let _ = writeln!(out, "  {}", crate::report::printable(&c.detail));
                }
            }
        }
        out
    }
}

fn label(m: &MessageRecord) -> String {
    Verdict::label_or_pending(m.verdict).to_owned()
}

/// Why a message ended where it did, for a verdict other than inbox.
fn detail(m: &MessageRecord) -> Option<String> {
    match m.verdict? {
        Verdict::Inbox => None,
        Verdict::Deferred | Verdict::Rejected => {
            if let Some(reply) = m.smtp.refusal() {
                Some(reply)
            } else {
                // No refusing reply: an SMTP error (with the reason's stage), or the relay's
                // next hop, which the reason quotes.
                match (&m.verdict_reason, &m.smtp.error) {
                    (Some(r), Some(e)) => Some(format!("{r}: {e}")),
                    (r, e) => r.clone().or_else(|| e.clone()),
                }
            }
        }
        _ => m.verdict_reason.clone(),
    }
}

/// The cause reasons of a seed's two messages, and whether they changed; the rest of the
/// [`SeedChange`] is left empty for the caller to fill.
fn reasons(before: Option<&MessageRecord>, after: Option<&MessageRecord>) -> SeedChange {
    let reason = |m: Option<&MessageRecord>| m.and_then(crate::report::cause).map(|c| c.reason);
    let (reason_before, reason_after) = (reason(before), reason(after));
    let decided = |m: Option<&MessageRecord>| m.is_some_and(|m| m.verdict.is_some());
    SeedChange {
        seed: String::new(),
        provider: String::new(),
        before: None,
        after: None,
        change: Change::Unknown,
        detail: None,
        reason_before,
        reason_after,
        reason_changed: decided(before) && decided(after) && reason_before != reason_after,
    }
}

/// ` (reason: blocked -> authfailure)` for a seed whose verdict stayed the same but whose reason
/// changed, else nothing: a changed verdict already shows why AFTER ended where it did.
fn reason_note(s: &SeedChange) -> String {
    if !s.reason_changed || s.change != Change::Same {
        return String::new();
    }
    format!(
        " (reason: {} -> {})",
        s.reason_before.unwrap_or("none"),
        s.reason_after.unwrap_or("none")
    )
}

fn share(messages: &[&MessageRecord]) -> Share {
    let placement = Placement::of(messages.iter().map(|m| m.placed()));
    Share {
        messages: placement.total(),
        inbox: placement.count(Verdict::Inbox),
        inbox_share: placement.inbox_share(),
    }
}

/// Index of each seed's last message.
fn by_seed(messages: &[MessageRecord]) -> BTreeMap<&str, usize> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.seed.as_str(), i))
        .collect()
}

/// A provider's messages in a run, one (the last) per seed.
fn of_provider<'a>(messages: &'a [MessageRecord], provider: &str) -> Vec<&'a MessageRecord> {
    let idx = by_seed(messages);
    messages
        .iter()
        .enumerate()
        .filter(|(i, m)| m.provider == provider && idx.get(m.seed.as_str()) == Some(i))
        .map(|(_, m)| m)
        .collect()
}

/// Compares two runs, given by id and stored messages (as [`crate::store::Store::messages`]
/// returns them). A seed with several messages in one run is represented by its last.
pub fn compare(
    before_run: &str,
    before: &[MessageRecord],
    after_run: &str,
    after: &[MessageRecord],
) -> Comparison {
    let (b_idx, a_idx) = (by_seed(before), by_seed(after));
    let mut seeds = Vec::new();
    let mut listed = BTreeSet::new();
    let after_then_before = after.iter().chain(before).map(|m| m.seed.as_str());
    for seed in after_then_before {
        if !listed.insert(seed.to_owned()) {
            continue;
        }
        let b = b_idx.get(seed).map(|&i| &before[i]);
        let a = a_idx.get(seed).map(|&i| &after[i]);
        let change = match (b, a) {
            (Some(b), Some(a)) => match (b.verdict, a.verdict) {
                (Some(bv), Some(av)) => match av.cmp(&bv) {
                    std::cmp::Ordering::Less => Change::Better,
                    std::cmp::Ordering::Equal => Change::Same,
                    std::cmp::Ordering::Greater => Change::Worse,
                },
                _ => Change::Unknown,
            },
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (None, None) => unreachable!("every listed seed is in one of the runs"),
        };
        seeds.push(SeedChange {
            seed: seed.to_owned(),
            provider: a.or(b).map(|m| m.provider.clone()).unwrap_or_default(),
            before: b.map(label),
            after: a.map(label),
            change,
            detail: a.and_then(detail),
            ..reasons(b, a)
        });
    }
    let providers: BTreeSet<&str> = before
        .iter()
        .chain(after)
        .map(|m| m.provider.as_str())
        .collect();
    let providers = providers
        .into_iter()
        .map(|p| {
            let count = |c: Change| {
                seeds
                    .iter()
                    .filter(|s| s.provider == p && s.change == c)
                    .count()
            };
            ProviderSummary {
                provider: p.to_owned(),
                before: share(&of_provider(before, p)),
                after: share(&of_provider(after, p)),
                worse: count(Change::Worse),
                better: count(Change::Better),
            }
        })
        .collect();
    Comparison {
        before_run: before_run.to_owned(),
        after_run: after_run.to_owned(),
        worse: seeds.iter().any(|s| s.change == Change::Worse),
        seeds,
        providers,
        checks: Vec::new(),
    }
}

fn percent(s: &Share) -> String {
    match s.inbox_share {
        Some(r) => format!("{:.0}% ({}/{})", r * 100.0, s.inbox, s.messages),
        None => "-".into(),
    }
}

impl Comparison {
    /// The terminal text: one line per seed, then the per-provider inbox share and a verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "compare {} -> {}", self.before_run, self.after_run);
        for s in &self.seeds {
            let line = match (s.change, &s.before, &s.after) {
                (Change::Added, _, Some(a)) => format!("{a} (added)"),
                (Change::Removed, Some(b), _) => format!("{b} (removed)"),
                (Change::Same, _, Some(a)) => format!("{a} (same)"),
                (c, Some(b), Some(a)) => {
                    let tail = match c {
                        Change::Unknown => " (unknown: not decided yet)",
                        Change::Better => " (better)",
                        _ => "",
                    };
                    format!("{b} -> {a}{tail}")
                }
                _ => String::new(),
            };
            let detail = match (&s.detail, s.change) {
                (Some(d), Change::Worse | Change::Added | Change::Unknown) => format!(" {d}"),
                _ => String::new(),
            };
            let _ = writeln!(out, "{}: {line}{detail}{}", s.seed, reason_note(s));
        }
        out.push_str("\nprovider inbox share, before -> after:\n");
        for p in &self.providers {
            let _ = writeln!(
                out,
                "{}: {} -> {}{}",
                p.provider,
                percent(&p.before),
                percent(&p.after),
                if p.worse > 0 {
                    format!(", {} worse", p.worse)
                } else {
                    String::new()
                }
            );
        }
        out.push_str(&self.checks_text());
        let worse = self
            .seeds
            .iter()
            .filter(|s| s.change == Change::Worse)
            .count();
        let checks_worse = self
            .checks
            .iter()
            .filter(|c| c.change == Change::Worse)
            .count();
        let mut said = Vec::new();
        if worse > 0 {
            said.push(format!("{worse} seed(s)"));
        }
        if checks_worse > 0 {
            said.push(format!("{checks_worse} check(s)"));
        }
        let _ = writeln!(
            out,
            "\n{}",
            if said.is_empty() {
                "nothing got worse".to_owned()
            } else {
                format!("{} got worse", said.join(" and "))
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckResult, Report};
    use crate::store::SmtpOutcome;

    fn run(id: &str, msgs: &[(&str, &str, Option<Verdict>)]) -> (String, Vec<MessageRecord>) {
        (
            id.to_owned(),
            msgs.iter()
                .map(|(seed, provider, verdict)| MessageRecord {
                    smtp: SmtpOutcome {
                        code: (*verdict == Some(Verdict::Deferred)).then_some(421),
                        enhanced: (*verdict == Some(Verdict::Deferred)).then(|| "4.7.0".into()),
                        text: (*verdict == Some(Verdict::Deferred)).then(|| "try later".into()),
                        ..SmtpOutcome::default()
                    },
                    verdict: *verdict,
                    verdict_reason: verdict.map(|v| format!("because {v}")),
                    ..MessageRecord::sent(format!("{id}-{seed}"), *seed, *provider, "", 0)
                })
                .collect(),
        )
    }

    #[test]
    fn changes_per_seed_and_provider() {
        use Verdict::*;
        let before = run(
            "A",
            &[
                ("g1", "gmail", Some(Inbox)),
                ("g2", "gmail", Some(Spam)),
                ("o1", "outlook", Some(Inbox)),
                ("p", "-", None),
                ("gone", "-", Some(Inbox)),
            ],
        );
        let after = run(
            "B",
            &[
                ("g1", "gmail", Some(Deferred)),
                ("g2", "gmail", Some(Inbox)),
                ("o1", "outlook", Some(Inbox)),
                ("p", "-", Some(Rejected)),
                ("new", "-", Some(Spam)),
            ],
        );
        let cmp = |(b, bm): &(String, Vec<MessageRecord>),
                   (a, am): &(String, Vec<MessageRecord>)| compare(b, bm, a, am);
        let c = cmp(&before, &after);
        let got: Vec<_> = c
            .seeds
            .iter()
            .map(|s| (s.seed.as_str(), s.change))
            .collect();
        assert_eq!(
            got,
            [
                ("g1", Change::Worse),
                ("g2", Change::Better),
                ("o1", Change::Same),
                ("p", Change::Unknown),
                ("new", Change::Added),
                ("gone", Change::Removed),
            ]
        );
        assert!(c.worse);
        assert_eq!(c.seeds[0].detail.as_deref(), Some("421 4.7.0 try later"));
        assert_eq!(c.seeds[1].detail, None);
        let gmail = &c.providers[c
            .providers
            .iter()
            .position(|p| p.provider == "gmail")
            .unwrap()];
        assert_eq!((gmail.before.inbox, gmail.after.inbox), (1, 1));
        assert_eq!((gmail.worse, gmail.better), (1, 1));
        let text = c.to_text();
        assert!(
            text.contains("g1: inbox -> deferred 421 4.7.0 try later"),
            "{text}"
        );
        assert!(text.contains("gone: inbox (removed)"), "{text}");
        // g2 went from spam to inbox: the other way round, that is worse.
        assert!(cmp(&after, &before).worse);
        let better = cmp(
            &run("C", &[("g1", "gmail", Some(Deferred)), ("p", "-", None)]),
            &run(
                "D",
                &[
                    ("g1", "gmail", Some(SpamTagged)),
                    ("p", "-", Some(Rejected)),
                ],
            ),
        );
        assert!(!better.worse);
        assert_eq!(better.seeds[0].change, Change::Better);
        assert_eq!(better.seeds[1].change, Change::Unknown);
        assert!(!cmp(&before, &before).worse);
    }

    /// Same verdict, another reason: a new block behind an old refusal is news.
    #[test]
    fn a_changed_reason_is_reported_with_the_same_verdict() {
        let refused = |id: &str, text: &str| {
            let (id, mut msgs) = run(id, &[("y", "yahoo", Some(Verdict::Deferred))]);
            msgs[0].smtp.text = Some(text.into());
            (id, msgs)
        };
        let (b, before) = refused("B", "[TSS04] Messages from 192.0.2.1 temporarily deferred");
        let (a, after) = refused(
            "A",
            "[TS03] All messages from 192.0.2.1 will be permanently deferred",
        );
        let c = compare(&b, &before, &a, &after);
        let s = &c.seeds[0];
        assert_eq!(s.change, Change::Same);
        assert_eq!(
            (s.reason_before, s.reason_after, s.reason_changed),
            (Some("badreputation"), Some("blocked"), true)
        );
        assert!(
            c.to_text()
                .contains("y: deferred (same) (reason: badreputation -> blocked)"),
            "{}",
            c.to_text()
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["seeds"][0]["reason_after"], "blocked");
        // The same reason on both sides is no change; inbox has no reason at all.
        let again = compare(&a, &after, &a, &after);
        assert!(!again.seeds[0].reason_changed);
        let (i, inbox) = run("I", &[("y", "yahoo", Some(Verdict::Inbox))]);
        let fixed = compare(&a, &after, &i, &inbox);
        assert_eq!(fixed.seeds[0].reason_after, None);
        assert!(fixed.seeds[0].reason_changed);
    }

    fn checks(ip: &str, results: &[(&str, Option<&str>, crate::check::Status)]) -> Report {
        Report {
            source_ip: ip.parse().unwrap(),
            domain: "example.org".into(),
            results: results
                .iter()
                .map(|(check, list, status)| CheckResult {
                    check: (*check).into(),
                    subject: if list.is_some() {
                        ip.into()
                    } else {
                        "example.org".into()
                    },
                    list: list.map(str::to_owned),
                    status: *status,
                    detail: format!("{check} is {}", status.as_str()),
                    code: (*status == crate::check::Status::Fail && list.is_some())
                        .then(|| "127.0.0.2".into()),
                })
                .collect(),
        }
    }

    #[test]
    fn checks_that_got_worse_or_better_by_kind_and_list() {
        use crate::check::Status::*;
        let zen = Some("zen.example");
        let before = checks(
            "192.0.2.2",
            &[
                ("spf", None, Pass),
                ("dmarc", None, Warn),
                ("mx", None, Pass),
                ("ptr", None, Error),
                ("dnsbl", zen, Pass),
                ("dnsbl", Some("bl.example"), Fail),
                ("dnsbl", Some("gone.example"), Pass),
            ],
        );
        let after = checks(
            "192.0.2.3",
            &[
                ("spf", None, Pass),
                ("dmarc", None, Fail),
                ("mx", None, Error),
                ("ptr", None, Fail),
                ("dnsbl", zen, Fail),
                ("dnsbl", Some("bl.example"), Pass),
                ("dnsbl", Some("new.example"), Fail),
            ],
        );
        let changes = compare_checks(Some(&before), Some(&after));
        let got: Vec<(&str, Change)> = changes
            .iter()
            .map(|c| (c.summary.as_str(), c.change))
            .collect();
        assert_eq!(
            got,
            [
                // Same, error on either side, or in one run only: not named.
                ("example.org: dmarc warn -> fail", Change::Worse),
                (
                    "192.0.2.3: listed on zen.example (127.0.0.2)",
                    Change::Worse
                ),
                ("192.0.2.3: dnsbl bl.example fail -> pass", Change::Better),
            ]
        );
        // Checks on one side only (a run with --no-check) compare as nothing.
        assert!(compare_checks(None, Some(&after)).is_empty());
        assert!(compare_checks(Some(&before), None).is_empty());

        // A check that got worse makes the comparison worse, with no seed worse.
        let (a, am) = run("A", &[("s", "-", Some(Verdict::Inbox))]);
        let (b, bm) = run("B", &[("s", "-", Some(Verdict::Inbox))]);
        let same = compare(&a, &am, &b, &bm);
        assert!(!same.clone().with_checks(Some(&before), Some(&before)).worse);
        let listed = checks("192.0.2.2", &[("dnsbl", zen, Fail)]);
        let delisted = checks("192.0.2.2", &[("dnsbl", zen, Pass)]);
        let better = same.clone().with_checks(Some(&listed), Some(&delisted));
        assert!(!better.worse);
        assert_eq!(better.checks[0].change, Change::Better);
        let c = same.with_checks(Some(&before), Some(&after));
        assert!(c.worse);
        let text = c.to_text();
        assert!(
            text.contains(
                "\nchecks that got worse:\nexample.org: dmarc warn -> fail\n  dmarc is fail\n\
                 192.0.2.3: listed on zen.example (127.0.0.2)\n  dnsbl is fail\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nchecks that got better:\n192.0.2.3: dnsbl bl.example fail -> pass\n"),
            "{text}"
        );
        assert!(text.ends_with("\n2 check(s) got worse\n"), "{text}");
    }
}

/// A seed rescued from the spam folder in BEFORE (`probe rescue`), and where its message is in
/// AFTER: the not-spam loop's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RescueNote {
    /// Seed name.
    pub seed: String,
    /// The run whose message was rescued (BEFORE).
    pub rescued_in: String,
    /// AFTER's verdict (`pending` when undecided), `None` when the seed is not in AFTER.
    pub now: Option<String>,
    /// Whether the placement changed from BEFORE's (`spam`) to something else.
    pub changed: bool,
}

/// For each seed whose BEFORE message was brought to INBOX (`rescues`: BEFORE's, as
/// [`crate::store::Store::rescues`] returns them), where AFTER placed it.
pub fn rescue_notes(
    comparison: &Comparison,
    rescues: &[crate::store::RescueRecord],
) -> Vec<RescueNote> {
    let mut notes: Vec<RescueNote> = Vec::new();
    for r in rescues.iter().filter(|r| r.succeeded()) {
        if notes.iter().any(|n| n.seed == r.seed) {
            continue;
        }
        let change = comparison.seeds.iter().find(|s| s.seed == r.seed);
        let before = change.and_then(|s| s.before.clone());
        let now = change.and_then(|s| s.after.clone());
        notes.push(RescueNote {
            seed: r.seed.clone(),
            rescued_in: r.run_id.clone(),
            changed: now.is_some() && now != before,
            now,
        });
    }
    notes
}

/// The text lines for [`rescue_notes`]: `seed: rescued in RUN; now inbox`.
pub fn rescue_text(notes: &[RescueNote]) -> String {
    let mut out = String::new();
    for n in notes {
        let now = match &n.now {
            Some(v) if n.changed => format!("now {v}"),
            Some(v) => format!("still {v}"),
            None => "not in the later run".to_owned(),
        };
        let _ = writeln!(out, "{}: rescued in {}; {now}", n.seed, n.rescued_in);
    }
    out
}

#[cfg(test)]
mod rescue_tests {
    use super::*;
    use crate::store::RescueRecord;

    fn change(seed: &str, before: &str, after: Option<&str>) -> SeedChange {
        SeedChange {
            seed: seed.into(),
            provider: "-".into(),
            before: Some(before.into()),
            after: after.map(str::to_owned),
            change: Change::Same,
            detail: None,
            reason_before: None,
            reason_after: None,
            reason_changed: false,
        }
    }

    fn rescued(seed: &str, outcome: &str) -> RescueRecord {
        RescueRecord {
            run_id: "A".into(),
            seed: seed.into(),
            token: format!("T-{seed}"),
            at: 0,
            from_folder: "Junk".into(),
            method: "move".into(),
            outcome: outcome.into(),
            detail: None,
        }
    }

    #[test]
    fn a_rescued_seed_is_followed_into_the_later_run() {
        let comparison = Comparison {
            before_run: "A".into(),
            after_run: "B".into(),
            worse: false,
            seeds: vec![
                change("now-inbox", "spam", Some("inbox")),
                change("still-spam", "spam", Some("spam")),
                change("gone", "spam", None),
                change("failed", "spam", Some("inbox")),
            ],
            providers: Vec::new(),
            checks: Vec::new(),
        };
        let rescues = [
            rescued("now-inbox", "moved"),
            rescued("still-spam", "copied"),
            rescued("gone", "moved"),
            // A rescue that failed put nothing in INBOX: not part of the loop.
            rescued("failed", "failed"),
        ];
        let notes = rescue_notes(&comparison, &rescues);
        let changed: Vec<(&str, bool)> =
            notes.iter().map(|n| (n.seed.as_str(), n.changed)).collect();
        assert_eq!(
            changed,
            [("now-inbox", true), ("still-spam", false), ("gone", false)]
        );
        assert_eq!(
            rescue_text(&notes),
            "now-inbox: rescued in A; now inbox\n\
             still-spam: rescued in A; still spam\n\
             gone: rescued in A; not in the later run\n"
        );
    }
}
