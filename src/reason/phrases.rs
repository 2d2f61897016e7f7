//! The words that name each reason (`phrases.tsv`): Sisimai's match strings per reason, plus
//! the provider wordings this project adds. [`included_in`] answers "do these words say
//! that reason?"; the order in which reasons are asked is the decision's ([`super::find`]).

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// The table, compiled in: the binary never reads the source tree.
const PHRASES: &str = include_str!("phrases.tsv");

/// One phrase: its parts, which must appear in this order (one part for a plain phrase).
type Phrase = Vec<&'static str>;

/// The table, and one automaton over every part of every phrase.
struct Table {
    /// Each phrase's key (an index into `keys`) and parts, in table order.
    phrases: Vec<(usize, Phrase)>,
    /// The reasons (and `!reason` exclusions) the table names; at most 64, one bit each.
    keys: Vec<&'static str>,
    /// For each key, the key of the words that exclude it (`!reason`), if any.
    excluded_by: Vec<Option<usize>>,
    /// For each phrase, the ids of its parts.
    part_ids: Vec<Vec<usize>>,
    /// For each part, the phrases it is a part of.
    phrases_of_part: Vec<Vec<usize>>,
    automaton: AhoCorasick,
}

/// Builds the table now (see [`super::prepare`]).
pub fn prepare() {
    table();
}

fn table() -> &'static Table {
    static PARSED: OnceLock<Table> = OnceLock::new();
    PARSED.get_or_init(|| build(parse(PHRASES)))
}

/// Reads the table; a malformed line is skipped (a unit test checks there is none).
fn parse(text: &'static str) -> Vec<(&'static str, Phrase)> {
    crate::table::rows(text)
        .filter_map(|(_, line)| {
            let mut cols = line.split('\t');
            let (reason, phrase) = (cols.next()?, cols.next()?);
            (!phrase.is_empty()).then(|| (reason, phrase.split('*').collect()))
        })
        .collect()
}

fn build(rows: Vec<(&'static str, Phrase)>) -> Table {
    let mut keys: Vec<&'static str> = Vec::new();
    let mut parts: Vec<&'static str> = Vec::new();
    let mut ids: HashMap<&'static str, usize> = HashMap::new();
    let mut phrases = Vec::with_capacity(rows.len());
    let mut part_ids = Vec::with_capacity(rows.len());
    for (reason, phrase) in rows {
        let key = keys.iter().position(|k| *k == reason).unwrap_or_else(|| {
            keys.push(reason);
            keys.len() - 1
        });
        part_ids.push(
            phrase
                .iter()
                .map(|part| {
                    *ids.entry(part).or_insert_with(|| {
                        parts.push(part);
                        parts.len() - 1
                    })
                })
                .collect::<Vec<_>>(),
        );
        phrases.push((key, phrase));
    }
    let mut phrases_of_part = vec![Vec::new(); parts.len()];
    for (phrase, ids) in part_ids.iter().enumerate() {
        for id in ids {
            phrases_of_part[*id].push(phrase);
        }
    }
    // The parts are fixed literals from the source tree and the keys few; a unit test builds
    // this table, so a failure here cannot reach a user.
    assert!(keys.len() <= 64, "phrases.tsv names more than 64 reasons");
    let excluded_by = keys
        .iter()
        .map(|k| keys.iter().position(|x| x.strip_prefix('!') == Some(*k)))
        .collect();
    // Built at every start of the program: the plain NFA builds in four fifths of the time of
    // the default (which compacts it), and finds as fast on texts of a few hundred bytes.
    let automaton = aho_corasick::AhoCorasickBuilder::new()
        .kind(Some(aho_corasick::AhoCorasickKind::NoncontiguousNFA))
        .build(&parts)
        .expect("phrase table builds");
    Table {
        phrases,
        keys,
        excluded_by,
        part_ids,
        phrases_of_part,
        automaton,
    }
}

/// The reasons one text's words name, found in one pass over it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Words {
    /// One bit per key of the table.
    said: u64,
}

impl Words {
    /// Reads the lower-case `text` once against every phrase.
    pub fn new(text: &str) -> Words {
        let table = table();
        // Parts found, as a bit set, and in the order found.
        let mut found = vec![0u64; table.phrases_of_part.len().div_ceil(64)];
        let mut order = Vec::new();
        for m in table.automaton.find_overlapping_iter(text) {
            let id = m.pattern().as_usize();
            if found[id / 64] & (1 << (id % 64)) == 0 {
                found[id / 64] |= 1 << (id % 64);
                order.push(id);
            }
        }
        let has = |id: &usize| found[id / 64] & (1 << (id % 64)) != 0;
        let mut said = 0u64;
        for id in order {
            for &phrase in &table.phrases_of_part[id] {
                let (key, parts) = &table.phrases[phrase];
                if said & (1 << key) != 0 || !table.part_ids[phrase].iter().all(has) {
                    continue;
                }
                // Several parts: present is not enough, they must come in order.
                if parts.len() == 1 || aligned(text, parts) {
                    said |= 1 << key;
                }
            }
        }
        Words { said }
    }

    /// Do the words hold one of the phrases of `reason`, and none of the words that keep them
    /// from meaning it (the table's `!reason` lines)?
    pub fn say(&self, reason: &str) -> bool {
        let table = table();
        let said = |i: usize| self.said & (1 << i) != 0;
        table
            .keys
            .iter()
            .position(|k| *k == reason)
            .is_some_and(|i| said(i) && !table.excluded_by[i].is_some_and(said))
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
        let lines = crate::table::rows(PHRASES).count();
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
