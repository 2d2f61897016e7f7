//! What a report says in fixed words of its own, beside the remote reply: the SMTP command
//! that was refused (`commands.tsv`), and a reason from a mailer's message table
//! (`stated.tsv`). Both are data; matching them is the same for every mailer.

use std::sync::OnceLock;

use mail_parser::Message;
use memchr::memmem::Finder;

/// The command table, compiled in.
const COMMANDS: &str = include_str!("commands.tsv");

/// The stated-reason table, compiled in.
const STATED: &str = include_str!("stated.tsv");

/// The commands a report can name, as [`super::Downstream::command`] holds them.
pub const COMMAND_NAMES: &[&str] = &[
    "CONN", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "STARTTLS", "AUTH",
];

/// One row of `stated.tsv`.
#[derive(Debug)]
struct Stated {
    mta: &'static str,
    /// A reason, or `signature` for a mark of the mta's reports.
    reason: &'static str,
    temporary: bool,
    test: Test,
}

/// What a row of `stated.tsv` looks for.
#[derive(Debug)]
enum Test {
    /// The lowercased phrase in the text (its searcher, built once).
    Phrase(Box<Finder<'static>>),
    /// A header field containing this.
    Header(&'static str, &'static str),
    /// A header field starting with this pattern, `?` any character.
    Shape(&'static str, &'static str),
    /// The SMTP command the reply answered.
    Command(&'static str),
}

/// The name of signature rows' reason column.
const SIGNATURE: &str = "signature";

/// Builds both tables now (see [`super::prepare`]).
pub fn prepare() {
    commands();
    stated();
}

fn commands() -> &'static [(&'static str, Finder<'static>)] {
    static PARSED: OnceLock<Vec<(&'static str, Finder<'static>)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        data_lines(COMMANDS)
            .filter_map(|l| {
                let (command, phrase) = l.split_once('\t')?;
                let command = COMMAND_NAMES.iter().find(|c| **c == command)?;
                // The searcher is built once: every report is searched for every phrase.
                Some((
                    *command,
                    Finder::new(squeeze(phrase).as_bytes()).into_owned(),
                ))
            })
            .collect()
    })
}

fn stated() -> &'static [Stated] {
    static PARSED: OnceLock<Vec<Stated>> = OnceLock::new();
    PARSED.get_or_init(|| data_lines(STATED).filter_map(parse_stated).collect())
}

/// Lowercased, each run of white space one space: reports fold and pad their lines
/// (`User  not listed`), the tables do not.
fn squeeze(text: &str) -> String {
    if !text.is_ascii() {
        return squeeze_unicode(text);
    }
    // Most reports are ASCII: one pass over the bytes. The white space is char::is_whitespace's
    // for ASCII (which counts the vertical tab, as u8::is_ascii_whitespace does not).
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let mut out = Vec::with_capacity(text.len());
    let mut gap = false;
    for &b in text.as_bytes() {
        if space(b) {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push(b' ');
            }
            gap = false;
            out.push(b.to_ascii_lowercase());
        }
    }
    if gap && !out.is_empty() {
        out.push(b' ');
    }
    // Only ASCII bytes were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// [`squeeze`] for text beyond ASCII: Unicode's white space and lower case.
fn squeeze_unicode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_lowercase());
    }
    if text.ends_with(char::is_whitespace) && !out.is_empty() {
        out.push(' ');
    }
    out
}

/// A table's rows, without their line numbers.
fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    crate::table::rows(text).map(|(_, line)| line)
}

fn parse_stated(line: &'static str) -> Option<Stated> {
    let mut cols = line.splitn(4, '\t');
    let (mta, reason, class, phrase) = (cols.next()?, cols.next()?, cols.next()?, cols.next()?);
    let field = |rest: &'static str| {
        let (name, value) = rest.split_once(':')?;
        Some((name.trim(), value.trim()))
    };
    let test = if let Some(rest) = phrase.strip_prefix("header:") {
        let (name, value) = field(rest)?;
        Test::Header(name, value)
    } else if let Some(command) = phrase.strip_prefix("command:") {
        Test::Command(COMMAND_NAMES.iter().find(|c| **c == command.trim())?)
    } else if let Some(rest) = phrase.strip_prefix("shape:") {
        let (name, value) = field(rest)?;
        Test::Shape(name, value)
    } else {
        Test::Phrase(Box::new(
            Finder::new(squeeze(phrase).as_bytes()).into_owned(),
        ))
    };
    Some(Stated {
        mta,
        reason,
        temporary: class == "4",
        test,
    })
}

impl Stated {
    fn holds(&self, message: &Message<'_>, lower: &str, command: Option<&str>) -> bool {
        fn header<'m>(message: &'m Message<'_>, name: &'static str) -> Option<&'m str> {
            message.header_raw(name).map(str::trim)
        }
        let header = |name: &&'static str| header(message, name);
        match &self.test {
            Test::Phrase(phrase) => phrase.find(lower.as_bytes()).is_some(),
            Test::Header(name, value) => header(name).is_some_and(|v| v.contains(value)),
            Test::Command(c) => command == Some(*c),
            Test::Shape(name, pattern) => header(name).is_some_and(|v| {
                v.len() >= pattern.len()
                    && v.bytes()
                        .zip(pattern.bytes())
                        .all(|(c, p)| p == b'?' || c == p)
            }),
        }
    }
}

/// The report looks like `mta`'s: two of its signature rows hold, or it has none.
fn looks_like(message: &Message<'_>, lower: &str, mta: &str) -> bool {
    let mut marks = stated()
        .iter()
        .filter(|row| row.mta == mta && row.reason == SIGNATURE)
        .peekable();
    marks.peek().is_none()
        || marks
            .filter(|row| row.holds(message, lower, None))
            .take(2)
            .count()
            == 2
}

/// The SMTP command `text` says the reply answered: of the phrases found, the last in the
/// text (a transcript's last command sent is the refused one).
pub fn command_in(text: &str) -> Option<&'static str> {
    let lower = squeeze(text);
    commands()
        .iter()
        .filter_map(|(command, phrase)| {
            // The forward searcher is the fast one; a phrase is rarely there more than once.
            let last = phrase.find_iter(lower.as_bytes()).last()?;
            Some((last, *command))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(_, command)| command)
}

/// A reason the report states: the first row of `stated.tsv` whose phrase `text` contains or
/// whose header the report has, of an mta the report looks like (when the table knows its
/// marks); with whether the report's failure is then temporary (the row's class 4).
pub fn reason_in(
    message: &Message<'_>,
    text: &str,
    command: Option<&str>,
) -> Option<(&'static str, bool)> {
    let lower = squeeze(text);
    stated()
        .iter()
        .find(|row| {
            row.reason != SIGNATURE
                && row.holds(message, &lower, command)
                && looks_like(message, &lower, row.mta)
        })
        .map(|row| (row.reason, row.temporary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_line_parses() {
        assert_eq!(
            commands().len(),
            data_lines(COMMANDS).count(),
            "commands.tsv"
        );
        assert_eq!(stated().len(), data_lines(STATED).count(), "stated.tsv");
        for row in stated() {
            assert!(
                row.reason == SIGNATURE || crate::reason::REASONS.contains(&row.reason),
                "unknown reason {}",
                row.reason
            );
        }
    }

    #[test]
    fn the_last_command_named_is_the_refused_one() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "550 5.1.1 unknown (in reply to RCPT TO command)",
                Some("RCPT"),
            ),
            (
                "SMTP error from remote mail server after end of data: 550",
                Some("DATA"),
            ),
            (
                ">>> MAIL FROM:<a@b> <<< 250 ok >>> RCPT To:<c@d> <<< 550 no",
                Some("RCPT"),
            ),
            (
                "host x said: 554 rejected (in reply to end of DATA command)",
                Some("DATA"),
            ),
            (
                "SMTP error from remote mail server after initial connection:",
                Some("CONN"),
            ),
            ("550 5.1.1 user unknown", None),
        ];
        for (text, want) in table {
            assert_eq!(command_in(text), *want, "{text}");
        }
    }
}
