//! What an enhanced status code says by itself (`status.tsv`), and the status code a bounce
//! gets when it quotes none (`pseudo-status.tsv`, Sisimai's `5.0.9xx` codes).

use std::collections::HashMap;
use std::sync::OnceLock;

const NAMES: &str = include_str!("status.tsv");
const PSEUDO: &str = include_str!("pseudo-status.tsv");

fn rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    crate::table::rows(text).map(|(_, l)| l.split('\t').collect::<Vec<_>>())
}

fn names() -> &'static HashMap<&'static str, &'static str> {
    static PARSED: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    PARSED.get_or_init(|| {
        rows(NAMES)
            .filter(|c| c.len() >= 3)
            .map(|c| (c[0], c[1]))
            .collect()
    })
}

/// The reason an enhanced status code names on its own (`5.1.1`: userunknown), if any.
pub fn name(status: &str) -> Option<&'static str> {
    names().get(status.trim()).copied()
}

/// Is this one of the codes Sisimai makes up (`5.0.911`), not one a server sent?
pub fn is_pseudo(status: &str) -> bool {
    status.len() == 7 && status.get(1..5) == Some(".0.9")
}

/// Sisimai's own status code for a reason, for a bounce that gives none (`5.0.911` for
/// userunknown): class 4 when the failure was temporary.
pub fn pseudo(reason: &str, temporary: bool) -> Option<String> {
    static PARSED: OnceLock<Vec<Vec<&'static str>>> = OnceLock::new();
    let table = PARSED.get_or_init(|| rows(PSEUDO).filter(|c| c.len() >= 3).collect());
    let row = table.iter().find(|c| c[0] == reason)?;
    match (temporary, row[2]) {
        (true, "-") | (false, _) => Some(format!("5.0.{}", row[1])),
        (true, detail) => Some(format!("4.0.{detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_well_formed_and_name_known_reasons() {
        for c in rows(NAMES) {
            assert_eq!(c.len(), 3, "status.tsv: {c:?}");
            assert!(super::super::REASONS.contains(&c[1]), "status.tsv: {c:?}");
        }
        for c in rows(PSEUDO) {
            assert_eq!(c.len(), 3, "pseudo-status.tsv: {c:?}");
            assert!(
                super::super::REASONS.contains(&c[0]),
                "pseudo-status.tsv: {c:?}"
            );
        }
    }

    #[test]
    fn names_and_pseudo_codes() {
        assert_eq!(name("5.1.1"), Some("userunknown"));
        assert_eq!(name("4.7.0"), None);
        assert_eq!(pseudo("userunknown", false).as_deref(), Some("5.0.911"));
        assert_eq!(pseudo("userunknown", true).as_deref(), Some("5.0.911"));
        assert_eq!(pseudo("filtered", true).as_deref(), Some("4.0.924"));
        assert_eq!(pseudo("expired", true).as_deref(), Some("4.0.947"));
        assert!(is_pseudo("5.0.947") && !is_pseudo("5.1.1") && !is_pseudo("5.0.0"));
    }
}
