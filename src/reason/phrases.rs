//! The words that name each reason (`phrases.tsv`): Sisimai's match strings per reason, plus
//! the provider wordings this project adds. [`included_in`] answers "do these words say
//! that reason?"; the order in which reasons are asked is the decision's ([`super::find`]).

use std::collections::{HashMap, HashSet};

use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// The table, compiled in: the binary never reads the source tree.
const PHRASES: &str = include_str!("phrases.tsv");

/// One phrase: its parts, which must appear in this order (one part for a plain phrase).
type Phrase = Vec<&'static str>;

/// The table, and one automaton over every part of every phrase.
struct Table {
    /// `(reason, phrase)` in table order; a reason `!x` keeps a text from meaning `x`.
    phrases: Vec<(&'static str, Phrase)>,
    /// Every distinct part, the automaton's pattern ids.
    parts: Vec<&'static str>,
    /// For each phrase, the ids of its parts.
    part_ids: Vec<Vec<usize>>,
    automaton: AhoCorasick,
}

fn table() -> &'static Table {
    static PARSED: OnceLock<Table> = OnceLock::new();
    PARSED.get_or_init(|| build(parse(PHRASES)))
}

/// Reads the table; a malformed line is skipped (a unit test checks there is none).
fn parse(text: &'static str) -> Vec<(&'static str, Phrase)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let (reason, phrase) = (cols.next()?, cols.next()?);
            (!phrase.is_empty()).then(|| (reason, phrase.split('*').collect()))
        })
        .collect()
}

fn build(phrases: Vec<(&'static str, Phrase)>) -> Table {
    let mut parts: Vec<&'static str> = Vec::new();
    let mut ids: HashMap<&'static str, usize> = HashMap::new();
    let part_ids = phrases
        .iter()
        .map(|(_, phrase)| {
            phrase
                .iter()
                .map(|part| {
                    *ids.entry(part).or_insert_with(|| {
                        parts.push(part);
                        parts.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    // The parts are fixed literals from the source tree; a unit test builds this table, so
    // a failure here cannot reach a user.
    let automaton = AhoCorasick::new(&parts).expect("phrase table builds");
    Table {
        phrases,
        parts,
        part_ids,
        automaton,
    }
}

/// The reasons one text's words name, found in one pass over it.
#[derive(Debug, Default, Clone)]
pub struct Words {
    said: HashSet<&'static str>,
}

impl Words {
    /// Reads the lower-case `text` once against every phrase.
    pub fn new(text: &str) -> Words {
        let table = table();
        let mut found = vec![false; table.parts.len()];
        for m in table.automaton.find_overlapping_iter(text) {
            found[m.pattern().as_usize()] = true;
        }
        let mut said = HashSet::new();
        for ((reason, phrase), ids) in table.phrases.iter().zip(&table.part_ids) {
            if said.contains(reason) || !ids.iter().all(|i| found[*i]) {
                continue;
            }
            // Several parts: present is not enough, they must come in order.
            if phrase.len() == 1 || aligned(text, phrase) {
                said.insert(*reason);
            }
        }
        Words { said }
    }

    /// Do the words hold one of the phrases of `reason`, and none of the words that keep them
    /// from meaning it (the table's `!reason` lines)?
    pub fn say(&self, reason: &str) -> bool {
        self.said.contains(reason)
            && !self
                .said
                .iter()
                .any(|r| r.strip_prefix('!') == Some(reason))
    }
}

/// Does the lower-case `text` hold one of the phrases of `reason` (see [`Words::say`])?
pub fn included_in(reason: &str, text: &str) -> bool {
    Words::new(text).say(reason)
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
        assert_eq!(table.len(), lines, "a malformed line in phrases.tsv");
        build(table.clone());
        for (reason, p) in &table {
            let name = reason.strip_prefix('!').unwrap_or(reason);
            assert!(
                super::super::REASONS.contains(&name) || name == "vacation",
                "unknown reason {reason}"
            );
            let joined = p.join("*");
            assert_eq!(joined, joined.to_lowercase(), "not lower case: {joined}");
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
