//! The words that name each reason (`phrases.tsv`): Sisimai's match strings per reason, plus
//! the provider wordings this project adds. [`included_in`] answers "do these words say
//! that reason?"; the order in which reasons are asked is the decision's ([`super::find`]).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The table, compiled in: the binary never reads the source tree.
const PHRASES: &str = include_str!("phrases.tsv");

/// One phrase: its parts, which must appear in this order (one part for a plain phrase).
type Phrase = Vec<&'static str>;

fn table() -> &'static HashMap<&'static str, Vec<Phrase>> {
    static PARSED: OnceLock<HashMap<&'static str, Vec<Phrase>>> = OnceLock::new();
    PARSED.get_or_init(|| parse(PHRASES))
}

/// Reads the table; a malformed line is skipped (a unit test checks there is none).
fn parse(text: &'static str) -> HashMap<&'static str, Vec<Phrase>> {
    let mut table: HashMap<&'static str, Vec<Phrase>> = HashMap::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(reason), Some(phrase)) = (cols.next(), cols.next()) else {
            continue;
        };
        if phrase.is_empty() {
            continue;
        }
        table
            .entry(reason)
            .or_default()
            .push(phrase.split('*').collect());
    }
    table
}

/// Does the lower-case `text` hold one of the phrases of `reason`, and none of the words that
/// keep it from meaning that reason (the table's `!reason` lines)?
pub fn included_in(reason: &str, text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let holds = |key: &str| {
        table()
            .get(key)
            .is_some_and(|phrases| phrases.iter().any(|p| aligned(text, p)))
    };
    holds(reason) && !holds(&format!("!{reason}"))
}

/// Do the parts appear in `text` in this order, none overlapping the one before?
pub(super) fn aligned(text: &str, parts: &[&str]) -> bool {
    let mut rest = text;
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_lower_case_phrase_of_a_known_reason() {
        let lines = PHRASES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        let table = parse(PHRASES);
        assert_eq!(
            table.values().map(Vec::len).sum::<usize>(),
            lines,
            "a malformed line in phrases.tsv"
        );
        for (reason, phrases) in &table {
            let name = reason.strip_prefix('!').unwrap_or(reason);
            assert!(
                super::super::REASONS.contains(&name) || name == "vacation",
                "unknown reason {reason}"
            );
            for p in phrases {
                let joined = p.join("*");
                assert_eq!(joined, joined.to_lowercase(), "not lower case: {joined}");
            }
        }
    }

    #[test]
    fn parts_must_appear_in_order() {
        assert!(aligned(
            "this user doesn't have a x.jp account",
            &["this user doesn't have a ", " account"]
        ));
        assert!(!aligned(
            "account: this user doesn't have a",
            &["this user doesn't have a ", " account"]
        ));
        assert!(aligned("user unknown", &["user unknown"]));
    }

    #[test]
    fn exclusions_win_over_phrases() {
        assert!(included_in("rejected", "550 sender address rejected"));
        assert!(!included_in("rejected", "550 recipient address rejected"));
    }
}
