//! DNS block and allow lists as data (`lists.tsv`, the format is described at its top): which
//! zones to ask, and what each answer code means. Codes that mean "your query was refused"
//! are kept apart from listings here, so a blocked resolver never reads as a listed IP.

use std::net::Ipv4Addr;

/// The built-in set, compiled in.
const BUILTIN: &str = include_str!("lists.tsv");

/// What a list is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The reversed sending IP.
    Ip,
    /// The sender's domain.
    Domain,
}

/// Whether being on the list is bad or good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A block list (DNSBL): listed is `fail`.
    Block,
    /// An allow list (DNSWL): listed is `pass`, with its trust level.
    Allow,
}

/// One list to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// Its name, for people ("Spamhaus ZEN").
    pub name: String,
    /// The zone queries go under ("zen.spamhaus.org").
    pub zone: String,
    /// IP or domain list.
    pub kind: Kind,
    /// Block or allow list.
    pub role: Role,
    /// The name of its code set (`code` lines); `-` for none.
    pub codes: String,
}

/// What an answer code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// On the list.
    Listed,
    /// The list refused to answer this query: an error, never a listing.
    Refused,
    /// On an allow list.
    Allowed,
}

/// One `code` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The code set it belongs to.
    pub codes: String,
    /// The answer as written (`127.0.0.4-7`, `127.0.*.3`).
    pub answer: String,
    octets: [(u8, u8); 4],
    /// What it means.
    pub outcome: Outcome,
    /// What it means, for people.
    pub meaning: String,
}

impl Code {
    /// Whether `answer` matches this line.
    pub fn matches(&self, answer: Ipv4Addr) -> bool {
        answer
            .octets()
            .iter()
            .zip(self.octets)
            .all(|(o, (lo, hi))| (lo..=hi).contains(o))
    }
}

/// A list answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Listed, with the code's meaning (or "unknown code" when no line matched).
    Listed(String),
    /// The query was refused, with the code's meaning.
    Refused(String),
    /// On an allow list, with the trust level.
    Allowed(String),
    /// Not a list answer at all (outside 127.0.0.0/8).
    NotAnAnswer,
}

/// A bad line in a lists file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", at_line(*line))]
pub struct ListsError {
    /// The file.
    pub origin: String,
    /// 1-based line number; 0 when the problem is the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(", line {line}")
    }
}

/// The lists to ask and the codes to read their answers by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSet {
    /// The lists, in file order.
    pub lists: Vec<List>,
    /// Every code line, in file order; the first match wins.
    pub codes: Vec<Code>,
}

impl ListSet {
    /// The built-in default set.
    pub fn builtin() -> ListSet {
        // The data file is part of the source and checked by the unit tests.
        ListSet::parse(BUILTIN, "src/check/lists.tsv").expect("the built-in lists.tsv parses")
    }

    /// Parses a file in `lists.tsv`'s format.
    pub fn parse(text: &str, origin: &str) -> Result<ListSet, ListsError> {
        let mut set = ListSet {
            lists: Vec::new(),
            codes: Vec::new(),
        };
        for (n, line) in crate::table::rows(text) {
            let bad = |message: String| ListsError {
                origin: origin.to_owned(),
                line: n,
                message,
            };
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            match fields[0] {
                "list" => {
                    let [_, name, zone, kind, role, codes] = fields[..] else {
                        return Err(bad(format!(
                            "a list line has 6 tab-separated fields (list, name, zone, ip|domain, block|allow, codes), this one {}",
                            fields.len()
                        )));
                    };
                    let kind = match kind {
                        "ip" => Kind::Ip,
                        "domain" => Kind::Domain,
                        other => return Err(bad(format!("kind \"{other}\": use ip or domain"))),
                    };
                    let role = match role {
                        "block" => Role::Block,
                        "allow" => Role::Allow,
                        other => return Err(bad(format!("\"{other}\": use block or allow"))),
                    };
                    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
                    if zone.is_empty() || zone.contains(char::is_whitespace) {
                        return Err(bad(format!("\"{zone}\" is no DNS zone")));
                    }
                    set.lists.push(List {
                        name: name.to_owned(),
                        zone,
                        kind,
                        role,
                        codes: codes.to_owned(),
                    });
                }
                "code" => {
                    if fields.len() < 5 {
                        return Err(bad(
                            "a code line has at least 5 tab-separated fields (code, codes, answer, listed|refused|allowed, meaning)".into(),
                        ));
                    }
                    let octets = pattern(fields[2]).ok_or_else(|| {
                        bad(format!(
                            "answer \"{}\": an IPv4 address whose octets may be N, N-M or *",
                            fields[2]
                        ))
                    })?;
                    let outcome = match fields[3] {
                        "listed" => Outcome::Listed,
                        "refused" => Outcome::Refused,
                        "allowed" => Outcome::Allowed,
                        other => {
                            return Err(bad(format!(
                                "\"{other}\": use listed, refused or allowed"
                            )));
                        }
                    };
                    set.codes.push(Code {
                        codes: fields[1].to_owned(),
                        answer: fields[2].to_owned(),
                        octets,
                        outcome,
                        meaning: fields[4].to_owned(),
                    });
                }
                other => {
                    return Err(bad(format!(
                        "\"{other}\": a line starts with list or code (or # for a comment)"
                    )));
                }
            }
        }
        Ok(set)
    }

    /// The set a seeds file asks for: its `checks.lists` in place of the built-in lists, else
    /// the built-in set. `probe check` and the checks of a run both take it from here.
    pub fn configured(config: &crate::config::Config) -> Result<ListSet, ListsError> {
        use crate::config::{ListKind, ListRole};
        let Some(configured) = &config.check_lists else {
            return Ok(ListSet::builtin());
        };
        let file = ListSet {
            lists: configured
                .iter()
                .map(|l| List {
                    name: l.name.clone(),
                    zone: l.zone.clone(),
                    kind: match l.kind {
                        ListKind::Ip => Kind::Ip,
                        ListKind::Domain => Kind::Domain,
                    },
                    role: match l.role {
                        ListRole::Block => Role::Block,
                        ListRole::Allow => Role::Allow,
                    },
                    codes: l.codes.clone(),
                })
                .collect(),
            codes: Vec::new(),
        };
        let origin = format!("{} (checks.lists)", config.path.display());
        ListSet::builtin().replace_lists(file, &origin)
    }

    /// This set with the lists of `file` instead of its own; `file`'s code lines come first.
    /// A list naming a code set neither defines is refused: a typo would make every answer
    /// "unknown code".
    pub fn replace_lists(self, file: ListSet, origin: &str) -> Result<ListSet, ListsError> {
        let mut codes = file.codes;
        codes.extend(self.codes);
        for list in &file.lists {
            if list.codes != "-" && !codes.iter().any(|c| c.codes == list.codes) {
                return Err(ListsError {
                    origin: origin.to_owned(),
                    line: 0,
                    message: format!(
                        "list {} names the code set \"{}\", which no code line defines (use - for none)",
                        list.zone, list.codes
                    ),
                });
            }
        }
        Ok(ListSet {
            lists: file.lists,
            codes,
        })
    }

    /// What `answer` from `list` means.
    pub fn read(&self, list: &List, answer: Ipv4Addr) -> Reading {
        let code = self
            .codes
            .iter()
            .find(|c| c.codes == list.codes && c.matches(answer));
        match code {
            Some(c) => match c.outcome {
                Outcome::Listed => Reading::Listed(c.meaning.clone()),
                Outcome::Refused => Reading::Refused(c.meaning.clone()),
                Outcome::Allowed => Reading::Allowed(c.meaning.clone()),
            },
            // A list answers in 127.0.0.0/8 (RFC 5782 §2.1); anything else is a resolver
            // that rewrites "no such name" into an address (an ISP's search page).
            None if answer.octets()[0] != 127 => Reading::NotAnAnswer,
            None => match list.role {
                Role::Block => Reading::Listed("unknown code".into()),
                Role::Allow => Reading::Allowed("unknown code".into()),
            },
        }
    }
}

/// `127.0.*.3`, `127.0.0.4-7` as four inclusive octet ranges.
fn pattern(text: &str) -> Option<[(u8, u8); 4]> {
    let parts: Vec<&str> = text.split('.').collect();
    let mut out = [(0, 0); 4];
    if parts.len() != 4 {
        return None;
    }
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = match part.split_once('-') {
            _ if part == "*" => (0, 255),
            Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if slot.0 > slot.1 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code line of the built-in data file, with what `probe check` must make of it:
    /// (code set, answer, expected reading). A code line added to lists.tsv without a row here
    /// fails `every_code_line_is_in_the_table`.
    const TABLE: &[(&str, &str, &str)] = &[
        ("spamhaus-zen", "127.0.0.2", "listed"),
        ("spamhaus-zen", "127.0.0.3", "listed"),
        ("spamhaus-zen", "127.0.0.4", "listed"),
        ("spamhaus-zen", "127.0.0.9", "listed"),
        ("spamhaus-zen", "127.0.0.10", "listed"),
        ("spamhaus-zen", "127.0.0.11", "listed"),
        ("spamhaus-zen", "127.0.0.30", "listed"),
        ("spamhaus-zen", "127.255.255.252", "refused"),
        ("spamhaus-zen", "127.255.255.254", "refused"),
        ("spamhaus-zen", "127.255.255.255", "refused"),
        ("spamhaus-dbl", "127.0.1.2", "listed"),
        ("spamhaus-dbl", "127.0.1.4", "listed"),
        ("spamhaus-dbl", "127.0.1.102", "listed"),
        ("spamhaus-dbl", "127.0.1.255", "refused"),
        ("spamhaus-dbl", "127.255.255.252", "refused"),
        ("spamhaus-dbl", "127.255.255.254", "refused"),
        ("spamhaus-dbl", "127.255.255.255", "refused"),
        ("spamcop", "127.0.0.2", "listed"),
        ("barracuda", "127.0.0.2", "listed"),
        ("uceprotect", "127.0.0.2", "listed"),
        ("psbl", "127.0.0.2", "listed"),
        ("mailspike", "127.0.0.2", "listed"),
        ("mailspike", "127.0.0.10", "listed"),
        ("dnswl", "127.0.0.255", "refused"),
        ("dnswl", "127.0.15.0", "allowed"),
        ("dnswl", "127.0.15.1", "allowed"),
        ("dnswl", "127.0.15.2", "allowed"),
        ("dnswl", "127.0.15.3", "allowed"),
        ("uribl", "127.0.0.1", "refused"),
        ("uribl", "127.0.0.2", "listed"),
        ("surbl", "127.0.0.1", "refused"),
        ("surbl", "127.0.0.8", "listed"),
    ];

    fn list_with(set: &ListSet, codes: &str) -> List {
        set.lists
            .iter()
            .find(|l| l.codes == codes)
            .cloned()
            .unwrap_or(List {
                name: codes.into(),
                zone: format!("{codes}.example"),
                kind: Kind::Domain,
                role: Role::Block,
                codes: codes.into(),
            })
    }

    fn kind(reading: &Reading) -> &'static str {
        match reading {
            Reading::Listed(_) => "listed",
            Reading::Refused(_) => "refused",
            Reading::Allowed(_) => "allowed",
            Reading::NotAnAnswer => "no answer",
        }
    }

    #[test]
    fn every_code_reads_as_the_table_says() {
        let set = ListSet::builtin();
        for (codes, answer, expected) in TABLE {
            let list = list_with(&set, codes);
            let reading = set.read(&list, answer.parse().unwrap());
            assert_eq!(kind(&reading), *expected, "{codes} {answer}: {reading:?}");
        }
    }

    #[test]
    fn every_code_line_is_in_the_table() {
        let set = ListSet::builtin();
        for code in &set.codes {
            let row = TABLE.iter().find(|(codes, answer, _)| {
                *codes == code.codes && code.matches(answer.parse().unwrap())
            });
            let (_, _, expected) = row.unwrap_or_else(|| {
                panic!(
                    "lists.tsv code {} {} has no row in TABLE",
                    code.codes, code.answer
                )
            });
            let wanted = match code.outcome {
                Outcome::Listed => "listed",
                Outcome::Refused => "refused",
                Outcome::Allowed => "allowed",
            };
            assert_eq!(*expected, wanted, "{} {}", code.codes, code.answer);
        }
    }

    #[test]
    fn refusals_are_never_listings() {
        // The codes issue 10 names: a blocked resolver must read as an error.
        let set = ListSet::builtin();
        for (codes, answer) in [
            ("spamhaus-zen", "127.255.255.252"),
            ("spamhaus-zen", "127.255.255.254"),
            ("spamhaus-zen", "127.255.255.255"),
            ("spamhaus-dbl", "127.0.1.255"),
            ("uribl", "127.0.0.1"),
            ("surbl", "127.0.0.1"),
            ("dnswl", "127.0.0.255"),
        ] {
            let list = list_with(&set, codes);
            assert!(
                matches!(
                    set.read(&list, answer.parse().unwrap()),
                    Reading::Refused(_)
                ),
                "{codes} {answer}"
            );
        }
    }

    #[test]
    fn the_builtin_set_is_the_one_issue_10_names() {
        let set = ListSet::builtin();
        let zones: Vec<&str> = set.lists.iter().map(|l| l.zone.as_str()).collect();
        assert_eq!(
            zones,
            [
                "zen.spamhaus.org",
                "dbl.spamhaus.org",
                "bl.spamcop.net",
                "b.barracudacentral.org",
                "dnsbl-1.uceprotect.net",
                "psbl.surriel.com",
                "bl.mailspike.net",
                "list.dnswl.org"
            ]
        );
        let dbl = &set.lists[1];
        assert_eq!((dbl.kind, dbl.role), (Kind::Domain, Role::Block));
        assert_eq!(set.lists[7].role, Role::Allow);
    }

    #[test]
    fn unknown_codes_and_rewritten_answers() {
        let set = ListSet::builtin();
        let zen = list_with(&set, "spamhaus-zen");
        assert_eq!(
            set.read(&zen, "127.0.0.99".parse().unwrap()),
            Reading::Listed("unknown code".into())
        );
        assert_eq!(
            set.read(&zen, "198.51.100.7".parse().unwrap()),
            Reading::NotAnAnswer
        );
        let wl = list_with(&set, "dnswl");
        assert_eq!(
            set.read(&wl, "127.0.15.3".parse().unwrap()),
            Reading::Allowed("dnswl.org trust high (3)".into())
        );
    }

    #[test]
    fn a_lists_file_replaces_the_lists_and_keeps_the_codes() {
        let file = ListSet::parse(
            "# lab\nlist\tLab ZEN\tzen.lab.test\tip\tblock\tspamhaus-zen\ncode\tmine\t127.0.0.5\tlisted\tmine\n",
            "lab.tsv",
        )
        .unwrap();
        let set = ListSet::builtin().replace_lists(file, "lab.tsv").unwrap();
        assert_eq!(set.lists.len(), 1);
        assert!(matches!(
            set.read(&set.lists[0], "127.255.255.254".parse().unwrap()),
            Reading::Refused(_)
        ));
        let typo = ListSet::parse("list\tX\tx.lab.test\tip\tblock\tspamhaus-zne\n", "t").unwrap();
        let err = ListSet::builtin().replace_lists(typo, "t").unwrap_err();
        assert!(err.to_string().contains("spamhaus-zne"), "{err}");
    }

    #[test]
    fn bad_lines_are_named() {
        let err = ListSet::parse("\nlist\tX\tx.test\tip\n", "f.tsv").unwrap_err();
        assert_eq!(err.line, 2);
        let err = ListSet::parse("code\tx\t127.0.0.300\tlisted\tm\n", "f.tsv").unwrap_err();
        assert!(err.message.contains("127.0.0.300"), "{err}");
        let err = ListSet::parse("code\tx\t127.0.0.2\tmaybe\tm\n", "f.tsv").unwrap_err();
        assert!(err.message.contains("maybe"), "{err}");
    }
}
