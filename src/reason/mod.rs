//! Why a message was not delivered: one of Sisimai's reasons (with its 2026 merges), decided
//! the way Sisimai decides it, so that `probe bounce` agrees with the reference classifier;
//! and which provider received it ([`provider`]). `probe bounce`, each verdict's cause and
//! `probe maillog` all ask here.
//!
//! The decision ([`find`]) reads a [`Fact`]: the status code, the diagnostic text, the SMTP
//! command the reply answered, whether the failure is still temporary, a reason the report
//! states itself, and the receiving host. In order:
//! 1. a reason the report states, unless it is one that a closer look may refine;
//! 2. the receiving provider's own wordings, when the host or domain is one we know
//!    ([`rhost`], `rhosts.tsv`);
//! 3. each reason in a fixed order asks whether the fact is its own (status and words
//!    together, [`probe`]);
//! 4. the status code's own meaning (`status.tsv`), refined by the words when it is a vague
//!    one, then by the status's class;
//! 5. what is left: a delay is `expired`, words nobody placed are `onhold`, nothing is
//!    `undefined`.
//!
//! The words are data (`phrases.tsv`: Sisimai's match strings per reason, plus the provider
//! wordings this project adds), so that a new wording is one line, not code.

pub mod phrases;
pub mod probe;
pub mod provider;
pub mod replies;
pub mod rhost;
pub mod status;

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

/// The reason when nothing places the failure.
pub const UNDEFINED: &str = "undefined";

/// What is known about one failed or delayed recipient: the input of [`find`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fact<'a> {
    /// The enhanced status code (`5.1.1`), if any.
    pub status: Option<&'a str>,
    /// The diagnostic text: the remote reply or the reporting MTA's words.
    pub diagnostic: Option<&'a str>,
    /// The SMTP command the reply answered (`RCPT`, `DATA`, `MAIL`, `EHLO`, `CONN`), when the
    /// report names it; else it is read from the diagnostic ([`probe::command`]).
    pub command: Option<&'a str>,
    /// The failure is temporary: a delay report, or retries still running.
    pub delayed: bool,
    /// A reason the report states in its own words (a mail system's fixed message).
    pub stated: Option<&'a str>,
    /// The host that answered (Remote-MTA, `relay=`).
    pub remote_host: Option<&'a str>,
    /// The host that wrote the report (Reporting-MTA).
    pub reporting_host: Option<&'a str>,
    /// The recipient address, whose domain can name the provider.
    pub recipient: Option<&'a str>,
    /// The SMTP reply code (`550`), if known.
    pub reply_code: Option<u16>,
}

/// Reasons a closer look may refine: a report that states one of these is read again.
const REFINABLE: &[&str] = &[
    "undefined",
    "onhold",
    "systemerror",
    "securityerror",
    "expired",
    "networkerror",
    "hostunknown",
    "userunknown",
];

/// The order in which each reason asks whether the fact is its own (step 3 of [`find`]).
const PROBE_ORDER: &[&str] = &[
    "mailboxfull",
    "emailtoolarge",
    "suspend",
    "hasmoved",
    "norelaying",
    "authfailure",
    "userunknown",
    "filtered",
    "requireptr",
    "notcompliantrfc",
    "badreputation",
    "contenterror",
    "rejected",
    "hostunknown",
    "spamdetected",
    "ratelimited",
    "blocked",
];

/// The order in which the words alone are read, when the status says nothing definite
/// (step 4 of [`find`]).
const WORDS_ORDER: &[&str] = &[
    "mailboxfull",
    "authfailure",
    "badreputation",
    "ratelimited",
    "spamdetected",
    "virusdetected",
    "policyviolation",
    "norelaying",
    "systemerror",
    "networkerror",
    "suspend",
    "contenterror",
    "systemfull",
    "notaccept",
    "expired",
    "failedstarttls",
    "securityerror",
    "suppressed",
    "mailererror",
];

/// The reason for a failed or delayed recipient (see the module documentation for the order).
pub fn find(fact: &Fact<'_>) -> &'static str {
    let text = fact.diagnostic.unwrap_or("").to_lowercase();
    let status = fact
        .status
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("");
    if let Some(stated) = fact.stated.and_then(known)
        && !REFINABLE.contains(&stated)
    {
        return stated;
    }
    let command = fact
        .command
        .or_else(|| fact.diagnostic.and_then(probe::command));
    if let Some(r) = rhost::find(fact, status, &text, command) {
        return r;
    }
    let kind = diagnostic_type(&text);
    let words = phrases::Words::new(&text);
    let f = probe::Fact {
        status,
        words: &words,
        command,
        stated: fact.stated.and_then(known),
        reply_code: fact.reply_code,
    };
    if matches!(kind, DiagnosticType::Smtp | DiagnosticType::None)
        && let Some(r) = PROBE_ORDER.iter().find(|r| probe::probes_into(r, &f))
    {
        return r;
    }
    if let Some(r) = by_status_then_words(&f, kind, fact.delayed) {
        return r;
    }
    if fact.delayed {
        return "expired";
    }
    if !text.trim().is_empty() {
        return "onhold";
    }
    UNDEFINED
}

/// The reason for a status code and a diagnostic text alone (a direct SMTP reply, a log
/// line): [`find`] with nothing else known.
pub fn classify(status: Option<&str>, diagnostic: Option<&str>) -> &'static str {
    find(&Fact {
        status,
        diagnostic,
        ..Fact::default()
    })
}

/// Sisimai's own status code for a reason, for a bounce that gives none (`5.0.911` for
/// userunknown): class 4 when the failure was temporary. From `pseudo-status.tsv`.
pub fn pseudo_status(reason: &str, temporary: bool) -> Option<String> {
    status::pseudo(reason, temporary)
}

/// The `type;` in front of a DSN's Diagnostic-Code (`smtp;`, `x-unix;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiagnosticType {
    /// `smtp;`: a remote SMTP reply.
    Smtp,
    /// `x-unix;`: the local delivery program.
    Unix,
    /// Another type (`x-notes;`, `x-postfix;`).
    Other,
    /// No type: plain words.
    None,
}

fn diagnostic_type(text: &str) -> DiagnosticType {
    let head = text.trim_start();
    match head.split_once(';') {
        Some(("smtp", _)) => DiagnosticType::Smtp,
        Some(("x-unix", _)) => DiagnosticType::Unix,
        Some((t, _)) if t.starts_with("x-") && !t.contains(' ') => DiagnosticType::Other,
        _ => DiagnosticType::None,
    }
}

/// Step 4: the status's own meaning; when it is vague (or the text is no SMTP reply), the
/// words in [`WORDS_ORDER`], then the status, then its class.
fn by_status_then_words(
    f: &probe::Fact<'_>,
    kind: DiagnosticType,
    delayed: bool,
) -> Option<&'static str> {
    if let Some(stated) = f.stated.filter(|r| !matches!(*r, "undefined" | "onhold")) {
        return Some(stated);
    }
    let named = status::name(f.status);
    if !named.is_none_or(|r| REFINABLE.contains(&r)) && kind == DiagnosticType::Smtp {
        return named;
    }
    if let Some(r) = WORDS_ORDER.iter().find(|r| f.words.say(r)) {
        return Some(r);
    }
    if named.is_some() {
        return named;
    }
    match f.status.get(..3) {
        Some("5.6" | "4.6") => return Some("contenterror"),
        Some("5.7" | "4.7") => return Some("securityerror"),
        _ => {}
    }
    if kind == DiagnosticType::Unix {
        return Some("mailererror");
    }
    if probe::probes_into("syntaxerror", f) {
        return Some("syntaxerror");
    }
    if delayed {
        return Some("expired");
    }
    if matches!(f.command, Some("EHLO" | "HELO")) {
        return Some("blocked");
    }
    None
}

/// The table's spelling of a reason, if it is one.
fn known(reason: &str) -> Option<&'static str> {
    REASONS.iter().copied().find(|r| *r == reason)
}

/// Builds the phrase automaton and the provider tables now rather than at the first text
/// classified (see [`crate::downstream::prepare`]).
pub fn prepare() {
    phrases::prepare();
    rhost::prepare();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_text_decide_the_reason() {
        let table: &[(Option<&str>, Option<&str>, &str)] = &[
            (
                Some("5.1.1"),
                Some(
                    "smtp; 550 5.1.1 <a@b>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)",
                ),
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
            (None, Some("Relay access denied"), "norelaying"),
            (None, Some("some words nobody placed"), "onhold"),
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
    fn the_whole_fact_decides_in_sisimais_order() {
        let base = Fact {
            status: Some("5.0.0"),
            diagnostic: Some("smtp; 550 User unknown"),
            reply_code: Some(550),
            ..Fact::default()
        };
        let table: &[(&str, Fact<'_>, &str)] = &[
            // The command: refused at RCPT it is the address, after DATA a filter.
            (
                "rcpt",
                Fact {
                    command: Some("RCPT"),
                    ..base
                },
                "userunknown",
            ),
            (
                "data",
                Fact {
                    command: Some("DATA"),
                    ..base
                },
                "filtered",
            ),
            // A reason the report states outranks the words, unless a closer look may refine it.
            (
                "stated",
                Fact {
                    stated: Some("mailboxfull"),
                    ..base
                },
                "mailboxfull",
            ),
            (
                "refinable",
                Fact {
                    stated: Some("onhold"),
                    command: Some("RCPT"),
                    ..base
                },
                "userunknown",
            ),
            // The receiving provider's table: KDDI's "550 : User unknown" is its filter.
            (
                "provider",
                Fact {
                    recipient: Some("a@ezweb.ne.jp"),
                    diagnostic: Some("smtp; 550 : User unknown"),
                    command: Some("RCPT"),
                    ..base
                },
                "filtered",
            ),
            // Nothing placed: a delay ran out, words are on hold, silence is undefined.
            (
                "delayed",
                Fact {
                    status: None,
                    diagnostic: Some("still trying"),
                    delayed: true,
                    ..base
                },
                "expired",
            ),
            (
                "onhold",
                Fact {
                    status: None,
                    diagnostic: Some("still trying"),
                    ..base
                },
                "onhold",
            ),
            (
                "silence",
                Fact {
                    status: None,
                    diagnostic: None,
                    reply_code: None,
                    ..base
                },
                "undefined",
            ),
            // A vague status yields to the words; a definite one over an SMTP reply does not.
            (
                "vague",
                Fact {
                    status: Some("5.7.0"),
                    diagnostic: Some("smtp; 550 5.7.0 mailbox full"),
                    ..base
                },
                "mailboxfull",
            ),
            (
                "definite",
                Fact {
                    status: Some("5.3.4"),
                    diagnostic: Some("smtp; 552 5.3.4 sorry"),
                    ..base
                },
                "emailtoolarge",
            ),
        ];
        for (name, fact, want) in table {
            assert_eq!(find(fact), *want, "{name}");
        }
    }
}
