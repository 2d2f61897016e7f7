//! Why a message was not delivered: one of Sisimai's reasons (with its 2026 merges), decided
//! from the diagnostic text and the enhanced status code by the rules in `rules.tsv`; and
//! which provider received it ([`provider`]). `probe bounce`, each verdict's cause and
//! `probe maillog` all ask here.
//!
//! The rules are data so that a new provider wording is one line, not code. Text comes first
//! because it is the more specific: `5.7.1` alone can be a block list, spam or an SPF failure,
//! and only the words tell them apart.

pub mod provider;
pub mod replies;

use std::sync::OnceLock;

/// The fixed set of reasons (a bounce's, a cause's, a log summary's): Sisimai's, with its 2026 merges (`speeding` and
/// `toomanyconn` are `ratelimited`, `mesgtoobig` and `exceedlimit` are `emailtoolarge`).
pub const REASONS: &[&str] = &[
    "authfailure",
    "badreputation",
    "blocked",
    "contenterror",
    "emailtoolarge",
    "expired",
    "failedstarttls",
    "feedback",
    "filtered",
    "hasmoved",
    "hostunknown",
    "mailboxfull",
    "mailererror",
    "networkerror",
    "norelaying",
    "notaccept",
    "notcompliantrfc",
    "onhold",
    "policyviolation",
    "ratelimited",
    "rejected",
    "requireptr",
    "securityerror",
    "spamdetected",
    "suppressed",
    "suspend",
    "syntaxerror",
    "systemerror",
    "systemfull",
    "undefined",
    "userunknown",
    "virusdetected",
];

/// The reason when no rule matches.
pub const UNDEFINED: &str = "undefined";

/// The rule table, compiled in: the binary never reads the source tree.
const RULES: &str = include_str!("rules.tsv");

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Status,
    Text,
}

/// One line of `rules.tsv`.
#[derive(Debug, Clone)]
struct Rule {
    reason: &'static str,
    kind: Kind,
    /// Lower case, for text; the status pattern as written otherwise.
    pattern: &'static str,
}

fn rules() -> &'static [Rule] {
    static PARSED: OnceLock<Vec<Rule>> = OnceLock::new();
    PARSED.get_or_init(|| parse_rules(RULES))
}

/// Reads the table; a malformed line is skipped (a unit test checks there is none).
fn parse_rules(text: &'static str) -> Vec<Rule> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let reason = cols.next()?;
            let kind = match cols.next()? {
                "status" => Kind::Status,
                "text" => Kind::Text,
                _ => return None,
            };
            let pattern = cols.next()?;
            cols.next()?; // the source column is required: every rule says where it is from
            Some(Rule {
                reason,
                kind,
                pattern,
            })
        })
        .collect()
}

/// Does the status pattern (`x.7.26`, `x.1.*`, `5.3.4`) match `status` (`5.7.26`)?
fn status_matches(pattern: &str, status: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = status.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some("*"), _) => return true,
            (Some("x"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The reason for a failed or delayed recipient, from its enhanced status code (`5.1.1`) and
/// diagnostic text (the remote reply), either of which may be missing.
pub fn classify(status: Option<&str>, diagnostic: Option<&str>) -> &'static str {
    let text = diagnostic.unwrap_or("").to_ascii_lowercase();
    let status = status.map(str::trim).unwrap_or("");
    let rules = rules();
    if !text.is_empty()
        && let Some(rule) = rules
            .iter()
            // Text patterns are lower case in the table (a unit test checks), so no rule is
            // lowered per call: this runs once per recipient of every bounce.
            .find(|r| r.kind == Kind::Text && text.contains(r.pattern))
    {
        return rule.reason;
    }
    if !status.is_empty()
        && let Some(rule) = rules
            .iter()
            .find(|r| r.kind == Kind::Status && status_matches(r.pattern, status))
    {
        return rule.reason;
    }
    // A delayed message with nothing more said has simply not gone yet.
    if status.starts_with("4.") && status != "4.0.0" {
        return "expired";
    }
    UNDEFINED
}

/// Sisimai's own status code for a reason, for a bounce that gives none (`5.0.911` for
/// userunknown): class 4 when the failure was temporary. From `pseudo-status.tsv`.
pub fn pseudo_status(reason: &str, temporary: bool) -> Option<String> {
    const TABLE: &str = include_str!("pseudo-status.tsv");
    let detail = TABLE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .find(|(r, _)| *r == reason)
        .map(|(_, d)| d.trim())?;
    Some(format!("{}.0.{detail}", if temporary { 4 } else { 5 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_table_is_a_rule_with_a_known_reason() {
        let lines = RULES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        let rules = parse_rules(RULES);
        assert_eq!(rules.len(), lines, "a malformed line in reasons.tsv");
        for rule in rules {
            assert!(
                rule.kind == Kind::Status || rule.pattern == rule.pattern.to_ascii_lowercase(),
                "text pattern not in lower case: {}",
                rule.pattern
            );
            assert!(
                REASONS.contains(&rule.reason),
                "unknown reason {}",
                rule.reason
            );
        }
    }

    #[test]
    fn status_and_text_decide_the_reason() {
        let table: &[(Option<&str>, Option<&str>, &str)] = &[
            (
                Some("5.1.1"),
                Some("smtp; 550 5.1.1 <a@b>: Recipient address rejected"),
                "userunknown",
            ),
            (Some("5.1.1"), None, "userunknown"),
            (
                Some("5.2.2"),
                Some("smtp; 552 5.2.2 Mailbox full"),
                "mailboxfull",
            ),
            (Some("4.4.7"), None, "expired"),
            (Some("5.3.4"), None, "emailtoolarge"),
            (Some("5.2.3"), None, "emailtoolarge"),
            (Some("5.1.2"), None, "hostunknown"),
            (
                Some("5.7.26"),
                Some(
                    "smtp; 550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.",
                ),
                "authfailure",
            ),
            (
                Some("4.7.28"),
                Some(
                    "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP address",
                ),
                "ratelimited",
            ),
            (
                Some("5.7.1"),
                Some(
                    "550 5.7.1 Unfortunately, messages from [1.2.3.4] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
                ),
                "blocked",
            ),
            (
                Some("5.7.1"),
                Some(
                    "554 IP=192.0.2.1 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (NOWL)",
                ),
                "badreputation",
            ),
            (
                Some("4.7.0"),
                Some("421 4.7.0 [TS03] All messages from 192.0.2.1 will be permanently deferred"),
                "ratelimited",
            ),
            (
                Some("5.7.1"),
                Some("550 5.7.1 Message rejected as spam"),
                "spamdetected",
            ),
            (Some("5.7.1"), None, "blocked"),
            (Some("5.7.9"), None, "securityerror"),
            (None, Some("Relay access denied"), "norelaying"),
            // A named cause before the expiry wording around it (Sisimai's reading).
            (
                Some("4.4.1"),
                Some(
                    "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1) I'm not going to try again; this message has been in the queue too long.",
                ),
                "networkerror",
            ),
            (None, Some("Domain does not exist"), "hostunknown"),
            (None, None, "undefined"),
            (Some("garbage"), Some(""), "undefined"),
        ];
        for (status, diagnostic, want) in table {
            assert_eq!(
                classify(*status, *diagnostic),
                *want,
                "{status:?} {diagnostic:?}"
            );
        }
    }

    #[test]
    fn status_patterns() {
        assert!(status_matches("x.7.26", "5.7.26"));
        assert!(status_matches("x.7.26", "4.7.26"));
        assert!(!status_matches("x.7.26", "5.7.2"));
        assert!(status_matches("x.1.*", "5.1.10"));
        assert!(!status_matches("x.1.1", "5.1.10"));
        assert!(status_matches("5.3.4", "5.3.4"));
    }
}
