//! What a provider's own reply means: its patterns (Gmail's `4.7.28`, Yahoo's `[TSS04]`,
//! Microsoft's `S3150`, T-Online's `(NOWL)`, GMX's `c=` case codes, ...) with a reason, a hint
//! for the postmaster and the provider's postmaster or delisting page.
//!
//! The patterns are data (`replies.tsv`, its header says the format) so that a new one is a line,
//! not code. The generic rules ([`super::classify`]) know what any MTA's words mean; these rows
//! know what one provider's codes mean, which the generic words cannot tell: Yahoo's `[TS03]`
//! is a 4xx that will never succeed, and GMX puts its reason only in a case code.

use super::REASONS;
use std::sync::OnceLock;

/// The table, compiled in: the binary never reads the source tree.
const TABLE: &str = include_str!("replies.tsv");

/// The providers the table has rows for: the names [`super::provider::provider`] gives.
pub const PROVIDERS: &[&str] = &["gmail", "outlook", "yahoo", "gmx", "t-online", "icloud"];

/// One condition of a row's `match` column.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The reply code, e.g. 421.
    Code(u16),
    /// The enhanced status code; `x` in the first place for either class.
    Status(&'static str),
    /// A GMX/web.de case code: the `c=` parameter of the case URL, lower case.
    Case(String),
    /// A piece of the reply text, lower case.
    Text(String),
}

/// Where a row's page comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    /// None known.
    None,
    /// This address.
    Fixed(&'static str),
    /// The first https URL in the reply (GMX's case page).
    FromReply,
}

/// One row of `replies.tsv`.
#[derive(Debug, Clone)]
struct Row {
    provider: &'static str,
    conditions: Vec<Condition>,
    /// `None` keeps the generic classifier's reason.
    reason: Option<&'static str>,
    hint: Option<&'static str>,
    page: Page,
    source: &'static str,
}

/// What a provider's pattern says about a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meaning {
    /// The reason, when the pattern decides it; `None` leaves it to [`super::classify`].
    pub reason: Option<&'static str>,
    /// What the postmaster can do.
    pub hint: Option<&'static str>,
    /// The provider's postmaster, delisting or case page.
    pub url: Option<String>,
    /// Where the pattern is documented.
    pub source: &'static str,
}

/// A reply as the patterns see it; any part may be unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reply<'a> {
    /// The reply code, e.g. 421.
    pub code: Option<u16>,
    /// The enhanced status code, e.g. `4.7.28`.
    pub status: Option<&'a str>,
    /// The reply text (all lines), or a DSN's diagnostic.
    pub text: &'a str,
}

fn rows() -> &'static [Row] {
    static PARSED: OnceLock<Vec<Row>> = OnceLock::new();
    PARSED.get_or_init(|| parse(TABLE).into_iter().filter_map(Result::ok).collect())
}

/// Reads the table: a row, or what is wrong with a line (a unit test checks there is none).
fn parse(text: &'static str) -> Vec<Result<Row, String>> {
    crate::table::rows(text)
        .map(|(n, line)| parse_row(line).map_err(|e| format!("replies.tsv line {n}: {e}")))
        .collect()
}

fn parse_row(line: &'static str) -> Result<Row, String> {
    let cols: Vec<&'static str> = line.split('\t').collect();
    let [provider, matches, reason, hint, url, source] = cols[..] else {
        return Err(format!("{} columns, want 6", cols.len()));
    };
    if !PROVIDERS.contains(&provider) {
        return Err(format!("unknown provider {provider:?}"));
    }
    let conditions = matches
        .split(" & ")
        .map(condition)
        .collect::<Result<Vec<_>, _>>()?;
    let reason = match reason {
        "-" => None,
        r if REASONS.contains(&r) => Some(r),
        r => return Err(format!("unknown reason {r:?}")),
    };
    let page = match url {
        "-" => Page::None,
        "reply" => Page::FromReply,
        u if u.starts_with("https://") || u.starts_with("mailto:") => Page::Fixed(u),
        u => {
            return Err(format!(
                "url {u:?} is neither https://, mailto:, reply nor -"
            ));
        }
    };
    if source.trim().is_empty() {
        return Err("no source".into());
    }
    Ok(Row {
        provider,
        conditions,
        reason,
        hint: (hint != "-").then_some(hint),
        page,
        source,
    })
}

fn condition(c: &'static str) -> Result<Condition, String> {
    let c = c.trim();
    if c.is_empty() {
        return Err("an empty condition".into());
    }
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()) {
        return c
            .parse()
            .map(Condition::Code)
            .map_err(|_| format!("bad reply code {c:?}"));
    }
    if is_status_pattern(c) {
        return Ok(Condition::Status(c));
    }
    if let Some(case) = c.strip_prefix("c=") {
        return Ok(Condition::Case(case.to_ascii_lowercase()));
    }
    Ok(Condition::Text(c.to_ascii_lowercase()))
}

/// `4.7.28`, `x.7.26`: a class, subject and detail of digits (the class may be `x`).
fn is_status_pattern(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    let digits = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 3
        && (matches!(parts[0], "x" | "2" | "4" | "5"))
        && digits(parts[1])
        && digits(parts[2])
}

/// The first enhanced status code in a text (`550-5.7.26 ...` gives `5.7.26`), for a reply
/// whose status was not recorded apart from it.
fn status_in(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '-' | ';' | '(' | ')' | '[' | ']'))
        .find(|w| {
            w.len() >= 5 && is_status_pattern(w) && !w.starts_with('x') && !w.starts_with('2')
        })
}

/// The first three-digit code at the start of a text (after a DSN's `smtp;`).
fn code_in(text: &str) -> Option<u16> {
    let t = text.trim_start();
    let t = t.strip_prefix("smtp;").unwrap_or(t).trim_start();
    let head: String = t.chars().take(3).collect();
    let next = t.chars().nth(3);
    (head.len() == 3
        && head.bytes().all(|b| b.is_ascii_digit())
        && matches!(next, None | Some(' ' | '-')))
    .then(|| head.parse().ok())
    .flatten()
}

impl Condition {
    fn holds(&self, code: Option<u16>, status: Option<&str>, lower: &str) -> bool {
        match self {
            Condition::Code(c) => code == Some(*c),
            Condition::Status(pattern) => status.is_some_and(|s| {
                let (pc, prest) = pattern.split_once('.').unwrap_or(("", pattern));
                let (sc, srest) = s.split_once('.').unwrap_or(("", s));
                prest == srest && (pc == "x" || pc == sc)
            }),
            Condition::Case(case) => lower.match_indices("c=").any(|(at, _)| {
                let before = lower[..at].chars().next_back();
                let value = lower[at + 2..]
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .next()
                    .unwrap_or("");
                let wanted = if case.is_empty() {
                    !value.is_empty()
                } else {
                    value == case
                };
                matches!(before, Some('?' | '&' | ';')) && wanted
            }),
            Condition::Text(piece) => lower.contains(piece.as_str()),
        }
    }
}

/// The first https URL in a reply, without the punctuation that ends a sentence around it.
fn url_in(text: &str) -> Option<String> {
    let at = text.find("https://")?;
    let url: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | '"' | ')'))
        .collect();
    Some(url.trim_end_matches(['.', ',', ';']).to_owned())
}

/// The table's name for a provider: a seed's configured provider (`aol` is Yahoo's, `webde`
/// and `gmx` United Internet's, `tonline` is `t-online`), or a name from
/// [`super::provider::provider`] as it is. `None` for one the table has no rows for.
pub fn family(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase();
    let mapped = match name.as_str() {
        "aol" => "yahoo",
        "webde" | "web.de" => "gmx",
        "tonline" => "t-online",
        other => other,
    };
    PROVIDERS.iter().copied().find(|n| *n == mapped)
}

/// What `provider`'s patterns say about a reply: the first row of that provider whose every
/// condition holds. `provider` is a name [`family`] knows.
pub fn lookup(provider: &str, reply: Reply<'_>) -> Option<Meaning> {
    let provider = family(provider)?;
    let lower = reply.text.to_ascii_lowercase();
    let status = reply
        .status
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| status_in(reply.text));
    let code = reply.code.or_else(|| code_in(reply.text));
    let row = rows().iter().find(|r| {
        r.provider == provider && r.conditions.iter().all(|c| c.holds(code, status, &lower))
    })?;
    Some(Meaning {
        reason: row.reason,
        hint: row.hint,
        url: match row.page {
            Page::None => None,
            Page::Fixed(u) => Some(u.to_owned()),
            Page::FromReply => url_in(reply.text),
        },
        source: row.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_parses_with_a_known_provider_and_reason() {
        for row in parse(TABLE) {
            let row = row.unwrap_or_else(|e| panic!("{e}"));
            assert!(row.reason.is_none_or(|r| REASONS.contains(&r)), "{row:?}");
        }
        // Every reason the generic rules give is in the set, so a cause's reason always is.
        for (status, text) in [(Some("5.1.1"), None), (None, Some("relay access denied"))] {
            assert!(REASONS.contains(&super::super::classify(status, text)));
        }
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let table: &[(&'static str, &str)] = &[
            ("gmail\t4.7.28\tratelimited\t-\t-", "5 columns"),
            (
                "hotmale\t4.7.28\tratelimited\t-\t-\tsrc",
                "unknown provider",
            ),
            ("gmail\t4.7.28\tslow\t-\t-\tsrc", "unknown reason \"slow\""),
            ("gmail\t4.7.28\tratelimited\t-\tftp://x\tsrc", "url"),
            (
                "gmail\t4.7.28 & \tratelimited\t-\t-\tsrc",
                "empty condition",
            ),
            ("gmail\t4.7.28\tratelimited\t-\t-\t ", "no source"),
        ];
        for (line, want) in table {
            let err = parse_row(line).unwrap_err();
            assert!(err.contains(want), "{line:?}: {err}");
        }
    }

    #[test]
    fn provider_replies_have_their_meaning() {
        // (provider, code, status, text, reason, url)
        type Row<'a> = (
            &'a str,
            Option<u16>,
            Option<&'a str>,
            &'a str,
            &'a str,
            Option<&'a str>,
        );
        let table: &[Row<'_>] = &[
            (
                "gmail",
                Some(421),
                Some("4.7.28"),
                "[127.0.0.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address.",
                "ratelimited",
                Some("https://postmaster.google.com"),
            ),
            (
                "gmail",
                Some(421),
                Some("4.7.28"),
                "sending messages with the same Message-ID:",
                "policyviolation",
                Some("https://support.google.com/mail/answer/81126"),
            ),
            (
                "gmail",
                None,
                None,
                "smtp; 550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
                "authfailure",
                Some("https://support.google.com/mail/answer/81126#authentication"),
            ),
            (
                "outlook",
                Some(550),
                Some("5.7.1"),
                "Unfortunately, messages from [127.0.0.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
                "blocked",
                Some("https://olcsupport.office.com"),
            ),
            (
                "aol",
                Some(421),
                Some("4.7.0"),
                "[TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1",
                "badreputation",
                Some("https://senders.yahooinc.com/smtp-error-codes/"),
            ),
            (
                "yahoo",
                Some(421),
                Some("4.7.1"),
                "[TS03] All messages from 127.0.0.1 will be permanently deferred; Retrying will NOT succeed.",
                "blocked",
                Some("https://senders.yahooinc.com/smtp-error-codes/"),
            ),
            (
                "webde",
                Some(554),
                Some("5.7.1"),
                "Nemesis ESMTP Service not available No SMTP service IP address is block listed. For explanation visit https://postmaster.gmx.net/en/case?c=r0201&i=ip&v=127.0.0.1&r=1ABCD.",
                "blocked",
                Some("https://postmaster.gmx.net/en/case?c=r0201&i=ip&v=127.0.0.1&r=1ABCD"),
            ),
            (
                "tonline",
                Some(554),
                None,
                "IP=127.0.0.1 - None/bad reputation. Ask your postmaster for help or to contact <postmaster@rx.t-online.de> for reset. (NOWL)",
                "badreputation",
                Some("https://postmaster.t-online.de"),
            ),
        ];
        for (provider, code, status, text, reason, url) in table {
            let m = lookup(
                provider,
                Reply {
                    code: *code,
                    status: *status,
                    text,
                },
            )
            .unwrap_or_else(|| panic!("no pattern for {provider} {text}"));
            assert_eq!(m.reason, Some(*reason), "{provider} {text}");
            assert_eq!(m.url.as_deref(), *url, "{provider} {text}");
            assert!(m.hint.is_some(), "{provider} {text}");
        }
    }

    #[test]
    fn an_unknown_case_code_gives_the_page_but_not_the_reason() {
        let m = lookup(
            "gmx",
            Reply {
                code: Some(554),
                status: None,
                text: "Transaction failed. For explanation visit https://postmaster.gmx.net/en/case?c=hi&i=ip",
            },
        )
        .unwrap();
        assert_eq!(m.reason, None);
        assert_eq!(
            m.url.as_deref(),
            Some("https://postmaster.gmx.net/en/case?c=hi&i=ip")
        );
    }

    #[test]
    fn no_pattern_for_other_providers_or_other_words() {
        let reply = Reply {
            code: Some(450),
            status: Some("4.7.1"),
            text: "Temporarily deferred, try again later",
        };
        assert_eq!(lookup("gmail", reply), None);
        assert_eq!(lookup("-", reply), None);
        assert_eq!(lookup("example", reply), None);
        // A code alone is not a Gmail 4.7.28 when Yahoo's words are in it.
        let yahoo = Reply {
            code: Some(421),
            status: Some("4.7.28"),
            text: "[TSS04] deferred",
        };
        assert_eq!(lookup("gmail", yahoo).unwrap().reason, Some("ratelimited"));
        assert_eq!(
            lookup("yahoo", yahoo).unwrap().reason,
            Some("badreputation")
        );
    }

    #[test]
    fn statuses_and_codes_inside_texts() {
        assert_eq!(status_in("550-5.7.26 This mail"), Some("5.7.26"));
        assert_eq!(status_in("smtp; 421 4.7.0 [TSS04] x"), Some("4.7.0"));
        assert_eq!(status_in("version 1.2.3 here"), None);
        assert_eq!(code_in("smtp; 550 5.7.1 x"), Some(550));
        assert_eq!(code_in("421-4.7.28 x"), Some(421));
        assert_eq!(code_in("4210 x"), None);
        assert_eq!(family("tonline"), Some("t-online"));
        assert_eq!(family("aol"), Some("yahoo"));
        assert_eq!(family("-"), None);
    }
}
