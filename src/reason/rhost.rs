//! The receiving provider's own wordings (`rhosts.tsv`): when the recipient's domain or the
//! answering host belongs to a provider whose replies are documented, its table decides
//! before the generic words do (Sisimai's `rhost` modules). A row can also require the reply
//! code, the status code or the SMTP command, because providers reuse the same words under
//! different codes.

use std::sync::OnceLock;

use super::{Fact, REASONS};

const RHOSTS: &str = include_str!("rhosts.tsv");

/// One provider's hosts and rows, in table order.
#[derive(Debug, Default)]
struct Class {
    name: &'static str,
    hosts: Vec<&'static str>,
    rows: Vec<Row>,
}

/// One wording of a provider.
#[derive(Debug)]
struct Row {
    /// `None`: this wording means the table has no answer (stop looking).
    reason: Option<&'static str>,
    /// The parts that must appear in order; empty for any text (`-`).
    parts: Vec<&'static str>,
    conditions: Vec<Condition>,
}

/// A condition of a row besides the words.
#[derive(Debug, PartialEq, Eq)]
enum Condition {
    /// The reply code; `class_free` ignores its first digit.
    Reply {
        code: &'static str,
        class_free: bool,
    },
    /// The status code; `x` as class ignores it; a `lo-hi` detail is a range.
    Status(&'static str),
    /// The command the reply answered.
    Command(&'static str),
    /// The status's and reply's class is (`true`) or is not (`false`) 5.
    Permanent(bool),
}

/// Reads the table now (see [`super::prepare`]).
pub fn prepare() {
    classes();
}

fn classes() -> &'static [Class] {
    static PARSED: OnceLock<Vec<Class>> = OnceLock::new();
    PARSED.get_or_init(|| parse(RHOSTS))
}

/// Reads the table; a malformed line is skipped (a unit test checks there is none).
fn parse(text: &'static str) -> Vec<Class> {
    let mut classes: Vec<Class> = Vec::new();
    for (_, line) in crate::table::rows(text) {
        let cols: Vec<&'static str> = line.split('\t').collect();
        let [name, kind, value, rest @ ..] = cols.as_slice() else {
            continue;
        };
        let i = match classes.iter().position(|c| c.name == *name) {
            Some(i) => i,
            None => {
                classes.push(Class {
                    name,
                    ..Class::default()
                });
                classes.len() - 1
            }
        };
        let class = &mut classes[i];
        if *kind == "host" {
            class.hosts.push(value);
            continue;
        }
        let Some(conditions) = rest.first().map_or(Some(Vec::new()), |c| {
            c.split_whitespace().map(condition).collect()
        }) else {
            continue;
        };
        class.rows.push(Row {
            reason: (*kind != "-").then_some(*kind),
            parts: if *value == "-" {
                Vec::new()
            } else {
                value.split('*').collect()
            },
            conditions,
        });
    }
    classes
}

fn condition(token: &'static str) -> Option<Condition> {
    let (key, value) = token
        .split_once("!=")
        .map(|(k, v)| (k, (v, false)))
        .or_else(|| token.split_once('=').map(|(k, v)| (k, (v, true))))?;
    match (key, value) {
        ("reply", (v, true)) => Some(match v.strip_prefix('x') {
            Some(rest) => Condition::Reply {
                code: rest,
                class_free: true,
            },
            None => Condition::Reply {
                code: v,
                class_free: false,
            },
        }),
        ("status", (v, true)) => Some(Condition::Status(v)),
        ("command", (v, true)) => Some(Condition::Command(v)),
        ("class", ("5", is)) => Some(Condition::Permanent(is)),
        _ => None,
    }
}

/// The provider class of the recipient's domain or the answering host, if any.
fn class_of(fact: &Fact<'_>) -> Option<&'static Class> {
    let domain = fact
        .recipient
        .and_then(|r| r.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| d.contains('.'));
    // Sisimai asks whether a host of the table ends with the recipient's domain (`icloud.com`
    // in `.mail.icloud.com`); at a dot, so that `mail.com` (a provider of its own) is not
    // taken for `googlemail.com`.
    if let Some(d) = &domain
        && let Some(c) = classes().iter().find(|c| {
            c.hosts.iter().any(|h| {
                h.strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
            })
        })
    {
        return Some(c);
    }
    // The answering host, then the one that wrote the report.
    [fact.remote_host, fact.reporting_host]
        .into_iter()
        .flatten()
        .find_map(|host| {
            let host = host.to_ascii_lowercase();
            let host = host
                .trim()
                .trim_start_matches("dns;")
                .trim()
                .split([' ', '[', '('])
                .next()
                .unwrap_or("")
                .trim_end_matches('.')
                .to_owned();
            if host.is_empty() {
                return None;
            }
            classes()
                .iter()
                .find(|c| c.hosts.iter().any(|h| host.ends_with(h)))
        })
}

/// The reason the receiving provider's own words give, if the provider is known and one of
/// its rows holds. `status` is trimmed, `text` lower case, `command` the one the reply
/// answered.
pub fn find(
    fact: &Fact<'_>,
    status: &str,
    text: &str,
    command: Option<&str>,
) -> Option<&'static str> {
    if text.is_empty() {
        return None;
    }
    let class = class_of(fact)?;
    let reply = fact.reply_code.map(|c| c.to_string()).unwrap_or_default();
    let holds = |c: &Condition| match c {
        Condition::Reply { code, class_free } => {
            if *class_free {
                reply.get(1..) == Some(*code)
            } else {
                reply == *code
            }
        }
        Condition::Status(pattern) => status_matches(pattern, status),
        Condition::Command(want) => command == Some(*want),
        Condition::Permanent(is) => {
            let permanent = status.starts_with('5') && reply.starts_with('5');
            permanent == *is
        }
    };
    let row = class.rows.iter().find(|row| {
        row.conditions.iter().all(holds) && super::phrases::aligned(text, &row.parts)
    })?;
    row.reason
        .and_then(|r| REASONS.iter().copied().find(|k| *k == r))
}

/// `5.7.1` is that code; `x.7.1` any class of it; `5.7.501-503` a range of details.
fn status_matches(pattern: &str, status: &str) -> bool {
    let mut p = pattern.splitn(3, '.');
    let mut s = status.splitn(3, '.');
    let (Some(pc), Some(ps), Some(pd)) = (p.next(), p.next(), p.next()) else {
        return false;
    };
    let (Some(sc), Some(ss), Some(sd)) = (s.next(), s.next(), s.next()) else {
        return false;
    };
    if (pc != "x" && pc != sc) || ps != ss {
        return false;
    }
    match pd.split_once('-') {
        Some((lo, hi)) => match (lo.parse::<u32>(), hi.parse::<u32>(), sd.parse::<u32>()) {
            (Ok(lo), Ok(hi), Ok(d)) => (lo..=hi).contains(&d),
            _ => false,
        },
        None => pd == sd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_parses_with_known_reasons() {
        let lines = crate::table::rows(RHOSTS).count();
        let parsed = parse(RHOSTS);
        let count: usize = parsed.iter().map(|c| c.hosts.len() + c.rows.len()).sum();
        assert_eq!(count, lines, "a malformed line in rhosts.tsv");
        for class in parsed {
            assert!(!class.hosts.is_empty(), "{} has no hosts", class.name);
            for row in &class.rows {
                if let Some(r) = row.reason {
                    assert!(REASONS.contains(&r), "{}: unknown reason {r}", class.name);
                }
                for p in &row.parts {
                    assert_eq!(*p, p.to_lowercase(), "{}: not lower case", class.name);
                }
            }
        }
    }

    #[test]
    fn recipient_domains_match_a_host_at_a_dot() {
        let table: &[(&str, Option<&str>)] = &[
            ("a@icloud.com", Some("Apple")),
            ("a@me.com", Some("Apple")),
            ("a@google.com", Some("Google")),
            ("a@cox.net", Some("Cox")),
            ("a@mail.com", None),
            ("a@x.cox.net", None),
        ];
        for (recipient, want) in table {
            let fact = Fact {
                recipient: Some(recipient),
                ..Fact::default()
            };
            assert_eq!(class_of(&fact).map(|c| c.name), *want, "{recipient}");
        }
    }

    #[test]
    fn provider_rows_weigh_codes_and_words() {
        let fact = |recipient, remote_host, status, reply_code, diagnostic| Fact {
            recipient: Some(recipient),
            remote_host,
            status: Some(status),
            reply_code,
            diagnostic: Some(diagnostic),
            ..Fact::default()
        };
        let table: &[(Fact<'_>, Option<&str>)] = &[
            (
                fact(
                    "a@ezweb.ne.jp",
                    None,
                    "5.0.0",
                    Some(550),
                    "550 <a@ezweb.ne.jp>: User unknown",
                ),
                Some("userunknown"),
            ),
            (
                fact(
                    "a@ezweb.ne.jp",
                    None,
                    "5.0.0",
                    Some(550),
                    "550 : User unknown",
                ),
                Some("filtered"),
            ),
            (
                fact(
                    "a@example.com",
                    Some("x.protection.outlook.com"),
                    "5.7.606",
                    Some(550),
                    "550 5.7.606 Access denied, banned sending IP [1.2.3.4]",
                ),
                Some("blocked"),
            ),
            (
                fact(
                    "a@example.com",
                    Some("x.protection.outlook.com"),
                    "5.1.1",
                    Some(550),
                    "550 5.7.606 Access denied, banned sending IP [1.2.3.4]",
                ),
                None,
            ),
            (
                fact(
                    "a@example.com",
                    Some("mx.example.com"),
                    "5.0.0",
                    Some(550),
                    "550 : User unknown",
                ),
                None,
            ),
        ];
        for (f, want) in table {
            let text = f.diagnostic.unwrap_or("").to_lowercase();
            assert_eq!(
                find(f, f.status.unwrap_or(""), &text, f.command),
                *want,
                "{f:?}"
            );
        }
    }

    #[test]
    fn status_patterns() {
        assert!(status_matches("x.7.1", "4.7.1"));
        assert!(status_matches("5.7.501-503", "5.7.502"));
        assert!(!status_matches("5.7.501-503", "5.7.504"));
        assert!(!status_matches("5.7.1", "5.7.10"));
    }
}
