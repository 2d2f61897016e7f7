//! Bounces that are no RFC 3464 DSN: the plain-text reports of qmail, Exim, Sendmail, older
//! Postfix, Exchange, Gmail, Yahoo and many more, which say the same things in prose.
//!
//! Every such report has one shape: an opening sentence, then per recipient a line that
//! starts with its address and the lines of why below it, then the returned message. Where
//! the report opens and ends is data (`markers.tsv`, one line per MTA wording); finding the
//! recipients and their reasons in between is the logic here, the same for every MTA.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use mail_parser::{Message, PartType};

use super::dsn::{DsnReport, enhanced_status};
use super::{Downstream, DownstreamAction, DownstreamSource, reply_code_in, stated};

/// The marker table, compiled in.
const MARKERS: &str = include_str!("markers.tsv");

/// The reason a stated row gives when the report leaves it undecided.
const ONHOLD: &str = "onhold";

/// The most of a recipient's explanation kept: enough for any reply, bounded for the output.
const MAX_DIAGNOSTIC: usize = 2000;

/// `markers.tsv`, lowercased, by kind.
#[derive(Debug)]
struct Markers {
    start: AnyOf,
    end: AnyOf,
    end_line: Vec<Marker>,
    delayed: AnyOf,
    autoreply: Vec<Marker>,
    recipient: Vec<Marker>,
    given_up: Vec<Marker>,
}

/// The markers of a kind looked for in one pass: which report's opening comes first in a
/// text is one search, not one per marker.
#[derive(Debug)]
struct AnyOf(AhoCorasick);

impl AnyOf {
    fn new(markers: &[String]) -> Self {
        // The markers are fixed literals from the source tree; a unit test builds them, so a
        // failure here cannot reach a user.
        AnyOf(
            aho_corasick::AhoCorasickBuilder::new()
                .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                .build(markers)
                .expect("markers build"),
        )
    }

    /// Where the first marker found starts (it is in the first line that holds one).
    fn find(&self, lower: &str) -> Option<usize> {
        self.0.find(lower).map(|m| m.start())
    }

    fn is_in(&self, lower: &str) -> bool {
        self.0.is_match(lower)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.patterns_len()
    }
}

/// One marker, lowercased, its searcher built once: markers are looked for in every line of
/// every report.
#[derive(Debug)]
struct Marker(memchr::memmem::Finder<'static>);

impl Marker {
    fn new(text: &str) -> Self {
        Marker(memchr::memmem::Finder::new(text.to_ascii_lowercase().as_bytes()).into_owned())
    }

    fn find(&self, haystack: &str) -> Option<usize> {
        self.0.find(haystack.as_bytes())
    }

    fn is_in(&self, haystack: &str) -> bool {
        self.find(haystack).is_some()
    }

    fn len(&self) -> usize {
        self.0.needle().len()
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.0.needle()).unwrap_or_default()
    }
}

/// Builds the marker table now (see [`super::prepare`]).
pub fn prepare() {
    markers();
}

fn markers() -> &'static Markers {
    static PARSED: OnceLock<Markers> = OnceLock::new();
    PARSED.get_or_init(|| parse_markers(MARKERS))
}

fn parse_markers(text: &str) -> Markers {
    let (mut start, mut end, mut delayed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut end_line, mut autoreply, mut recipient, mut given_up) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (_, line) in crate::table::rows(text) {
        let mut cols = line.split('\t');
        let (Some(_mta), Some(kind), Some(marker)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        let lower = marker.to_ascii_lowercase();
        match kind {
            "start" => start.push(lower),
            "end" => end.push(lower),
            "delayed" => delayed.push(lower),
            "end-line" => end_line.push(Marker::new(marker)),
            "autoreply" => autoreply.push(Marker::new(marker)),
            "recipient" => recipient.push(Marker::new(marker)),
            "given-up" => given_up.push(Marker::new(marker)),
            _ => {}
        }
    }
    Markers {
        start: AnyOf::new(&start),
        end: AnyOf::new(&end),
        end_line,
        delayed: AnyOf::new(&delayed),
        autoreply,
        recipient,
        given_up,
    }
}

/// Reads a plain-text bounce; `None` when the message is no bounce (no report marker, and
/// not from a mailer daemon), or an auto-reply.
pub fn parse(message: &Message<'_>) -> Option<DsnReport> {
    let markers = markers();
    let subject = message
        .header_raw("Subject")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // Not `Auto-Submitted: auto-replied`: Exim and Google set it on their bounces too.
    if markers
        .autoreply
        .iter()
        .any(|m| subject.starts_with(m.as_str()))
    {
        return None;
    }
    let mut text = body_text(message);
    // A MIME structure too broken to follow (a boundary parameter on a line of its own) hides
    // the report's text, leaving no text part: its raw body still says it.
    let has_marker = |t: &str| {
        t.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            markers.start.is_in(&l)
        })
    };
    if text.trim().is_empty() {
        let raw = message
            .root_part()
            .raw_body_offset()
            .try_into()
            .ok()
            .and_then(|at: usize| message.raw_message.get(at..))
            .map(String::from_utf8_lossy);
        if let Some(raw) = raw.filter(|r| has_marker(r)) {
            text = raw.into_owned();
        }
    }
    if let Some(unquoted) = unquote(&text) {
        text = unquoted;
    }
    let lines: Vec<&str> = text.lines().collect();
    let lowered = Lowered::new(&lines);
    let lower = lowered.lines();
    let start = lowered.first_line_with(&markers.start, 0);
    let start = match start {
        Some(i) => i,
        // Without a marker, only a message from a mailer daemon is read as a bounce.
        None if from_a_daemon(message) => 0,
        None => return None,
    };
    let end_line = lower[start..]
        .iter()
        .position(|l| {
            let t = l.trim_start();
            markers.end_line.iter().any(|m| t.starts_with(m.as_str()))
        })
        .map(|n| start + n);
    let end = [lowered.first_line_with(&markers.end, start), end_line]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(lines.len());
    let region = &lines[start..end];
    let delayed = markers.delayed.is_in(lowered.before(end)) && !given_up(&text);

    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    // The report's words before its first recipient: some reports (Notes, au, MailMarshal)
    // say why first and name the address after.
    let mut preamble: Vec<String> = Vec::new();
    // A Sendmail transcript's `While talking to host:`, `>>> RCPT To:<a@b>`, `<<< 550 ...`
    // lead up to the recipient line they end in (`550 <a@b>... User unknown`), so they wait
    // for the next address; what no address follows belongs to the last one.
    let mut pending: Vec<String> = Vec::new();
    for (i, line) in region.iter().enumerate() {
        let current = found.last().map(|(a, _)| a.as_str());
        let low = &lower[start + i];
        // `Recipient: <a@b>`, `Address: <a@b>, ResponseCode 421, ...`: the line names the
        // address after a marker, and the whole line says why.
        if let Some(address) = markers
            .recipient
            .iter()
            .find_map(|m| m.find(low).map(|at| at + m.len()))
            .and_then(|at| first_address(line.get(at..)?))
            && !current.is_some_and(|c| c.eq_ignore_ascii_case(&address))
        {
            pending.push(line.trim().to_owned());
            found.push((address, std::mem::take(&mut pending)));
        } else if let Some((address, rest)) = leading_address(line)
            // Exim folds a long reply so that a line can start with the same recipient.
            && !current.is_some_and(|c| c.eq_ignore_ascii_case(&address))
            // Postfix's `<a@b> (expanded from\n    <alias@b>): ...` names the alias next.
            && !found
                .last()
                .and_then(|(_, why)| why.last())
                .is_some_and(|w| w.to_ascii_lowercase().ends_with("(expanded from"))
            // `<<< 550 <a@b>... User unknown` is the remote reply, not the recipient line.
            && !is_transcript(low)
            // Exim's `A message sent by\n\n  <a@b>\n\ncould not be delivered`: the sender.
            && !lower[..start + i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_end().ends_with("a message sent by"))
        {
            pending.push(rest.trim().to_owned());
            found.push((address, std::mem::take(&mut pending)));
        } else if is_transcript(low) {
            // A session that ended in no recipient line says nothing about one.
            if session_start(low) {
                pending.clear();
            }
            pending.push(line.trim().to_owned());
        } else if let Some((_, why)) = found.last_mut() {
            why.push(line.trim().to_owned());
        } else {
            preamble.push(line.trim().to_owned());
        }
    }
    if let Some((_, why)) = found.last_mut() {
        why.append(&mut pending);
    }
    let preamble = join(&preamble);
    if found.is_empty() {
        // No line starts with an address: the report names it inside a sentence
        // (`... could not be delivered to: <a@b>`), or only a header does.
        // The header (Exim, Google) is more certain than an address in prose, which can be
        // the sender's (`Hello a@b,`).
        // A session transcript (Postfix's `In:  RCPT TO:<a@b>`, `Out: 451 4.3.0 ...`) names
        // the recipient in its RCPT and the failure in its last refusal.
        let rcpt = region.iter().find_map(|l| {
            let at = l.to_ascii_lowercase().find("rcpt to:")?;
            first_address(&l[at + 8..])
        });
        let named = message
            .header_raw("X-Failed-Recipients")
            .and_then(|v| v.split(',').find_map(first_address))
            .or(rcpt)
            .or_else(|| region.iter().find_map(|l| first_address(l)))
            // Only the returned message says to whom it was (`To:`).
            .or_else(|| {
                lines[end..].iter().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("To")
                        .then(|| first_address(value))?
                })
            })?;
        let why = match last_refusal(region) {
            Some(refusal) => vec![refusal],
            None => region.iter().map(|l| l.trim().to_owned()).collect(),
        };
        found.push((named, why));
    }

    // One recipient once, in the order of first mention (Mail.Ru repeats the report in two
    // languages); a later mention with an explanation fills an empty first one.
    let mut recipients: Vec<Downstream> = Vec::new();
    for (address, why) in found {
        let diagnostic = join(&why);
        if let Some(seen) = recipients.iter_mut().find(|r| {
            r.recipient
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&address))
        }) {
            if seen.diagnostic.is_none() {
                seen.diagnostic = diagnostic;
            }
            continue;
        }
        recipients.push(Downstream {
            source: DownstreamSource::Dsn,
            action: DownstreamAction::Failed,
            recipient: Some(address),
            status: None,
            remote_mta: None,
            diagnostic,
            command: None,
            reason: None,
        });
    }
    for r in &mut recipients {
        // Nothing said below the address, or nothing with a code while the words before it
        // quote one (MailMarshal's `Could not be delivered because of 550 5.1.1 ...`): those
        // words are the explanation.
        let coded = |t: &str| enhanced_status(t).is_some() || reply_code_in(t).is_some();
        if let Some(pre) = preamble.as_deref() {
            r.diagnostic = match r.diagnostic.take() {
                None => Some(pre.to_owned()),
                Some(d) if !coded(&d) && coded(pre) => Some(format!("{pre} {d}")),
                Some(d) => Some(d),
            };
        }
        let text = r.diagnostic.clone().unwrap_or_default();
        let text = text.as_str();
        r.command = stated::command_in(text).map(str::to_owned);
        let said = format!("{} {text}", preamble.as_deref().unwrap_or(""));
        let stated = stated::reason_in(message, &said, r.command.as_deref());
        // Without an enhanced code the status stays unknown: the reply code's class alone
        // would claim a precision (`5.0.0`) the report does not give.
        r.status = enhanced_status(text);
        let temporary = match r.status.as_deref() {
            Some(s) => s.starts_with("4."),
            None => reply_code_in(text).is_some_and(|c| c < 500),
        };
        if delayed && temporary {
            r.action = DownstreamAction::Delayed;
        }
        r.remote_mta = remote_host(text);
        match stated {
            // Undecided (Exim refused at MAIL FROM): no reason, but Sisimai's status for it,
            // of the reply's class.
            Some((ONHOLD, _)) if r.status.is_none() => {
                let temporary = reply_code_in(text).is_some_and(|c| c < 500);
                r.status = crate::reason::pseudo_status(ONHOLD, temporary);
            }
            Some((ONHOLD, _)) => {}
            Some((reason, temporary)) => {
                r.reason = Some(reason.to_owned());
                if r.status.is_none() && temporary {
                    r.status = crate::reason::pseudo_status(reason, true);
                }
            }
            None => {}
        }
    }
    Some(DsnReport {
        envelope_id: None,
        probe_id: returned_probe_id(&text),
        reporting_mta: None,
        recipients,
        feedback: Vec::new(),
    })
}

/// A report's lines in lower case, in one string: a marker is looked for once in the whole
/// text, not once per line (markers hold no line break, so a match is within one line).
struct Lowered {
    text: String,
    /// Where each line starts in `text`, and its length.
    lines: Vec<(usize, usize)>,
}

impl Lowered {
    fn new(lines: &[&str]) -> Self {
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        let mut spans = Vec::with_capacity(lines.len());
        for line in lines {
            spans.push((text.len(), line.len()));
            text.push_str(line);
            text.push('\n');
        }
        text.make_ascii_lowercase();
        Lowered { text, lines: spans }
    }

    /// Every line, lower case.
    fn lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|&(at, len)| &self.text[at..at + len])
            .collect()
    }

    /// The text of the lines before line `end`.
    fn before(&self, end: usize) -> &str {
        let at = self.lines.get(end).map_or(self.text.len(), |&(at, _)| at);
        &self.text[..at]
    }

    /// The first line from line `from` on that holds one of `markers`.
    fn first_line_with(&self, markers: &AnyOf, from: usize) -> Option<usize> {
        let &(base, _) = self.lines.get(from)?;
        let at = base + markers.find(&self.text[base..])?;
        Some(self.lines.partition_point(|&(start, _)| start <= at) - 1)
    }
}

/// The last refusal of a session transcript (`Out: 451 4.3.0 Error: ...`, `<<< 550 ...`),
/// after the command it answered (`In:  DATA`), as `>>> DATA <<< 451 4.3.0 Error: ...`.
fn last_refusal(region: &[&str]) -> Option<String> {
    let reply = |l: &str| {
        let t = l.trim_start();
        let t = t
            .strip_prefix("Out:")
            .or_else(|| t.strip_prefix("<<<"))?
            .trim_start();
        matches!(t.as_bytes().first(), Some(b'4' | b'5'))
            .then(|| reply_code_in(t.get(..4).unwrap_or(t)))
            .flatten()
            .map(|_| t.to_owned())
    };
    let at = region.iter().rposition(|l| reply(l).is_some())?;
    let refusal = reply(region[at])?;
    let command = region[..at].iter().rev().find_map(|l| {
        let t = l.trim_start();
        let c = t
            .strip_prefix("In:")
            .or_else(|| t.strip_prefix(">>>"))?
            .trim();
        Some(c.split_whitespace().next()?.to_ascii_uppercase())
    });
    Some(match command {
        Some(c) => format!(">>> {c} <<< {refusal}"),
        None => refusal,
    })
}

/// The report calls itself temporary in words that Sisimai counts as a failure (OpenSMTPD's
/// `only a temporary failure report`): its recipients failed, and its own status codes
/// (`Status: 4.4.7`) give way to what the text says.
pub fn given_up(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    markers().given_up.iter().any(|m| m.is_in(&lower))
}

/// A line of an SMTP session transcript (Sendmail's `While talking to`, `>>>`, `<<<`), or
/// Sendmail's line about the next host (`421 example.org (smtp)... Deferred: ...`).
fn is_transcript(lower: &str) -> bool {
    let t = lower.trim_start();
    let host_line = t.len() > 4
        && t.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && t.as_bytes()[3] == b' '
        && !t[4..].starts_with('<')
        && t.contains(")... ");
    let command = t.strip_prefix(">>> ").is_some_and(|c| {
        [
            "mail from",
            "rcpt to",
            "data",
            "quit",
            "ehlo",
            "helo",
            "rset",
            "bdat",
            "starttls",
        ]
        .iter()
        .any(|v| c.starts_with(v))
    });
    command || t.starts_with("<<< ") || session_start(t) || host_line
}

/// `While talking to host:`: a new SMTP session in a Sendmail transcript.
fn session_start(lower: &str) -> bool {
    lower.trim_start().starts_with("while talking to ")
}

/// A bounce forwarded as a quotation (`> ` before every line, `Begin forwarded message:`):
/// the report without its quoting, so that its markers and transcript read as they were.
/// `None` when most lines are not quoted.
fn unquote(text: &str) -> Option<String> {
    let (quoted, all) = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .fold((0usize, 0usize), |(q, a), l| {
            (q + usize::from(l.starts_with('>')), a + 1)
        });
    if quoted * 2 <= all {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line
            .strip_prefix('>')
            .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

/// The explanation's lines as one, without the report's decoration.
fn join(lines: &[String]) -> Option<String> {
    let mut out = String::new();
    for line in lines {
        let line =
            line.trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '=' || c == '*');
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
        if out.len() >= MAX_DIAGNOSTIC {
            let mut cut = MAX_DIAGNOSTIC;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The text parts of the report itself (not of a returned message), one after another.
fn body_text(message: &Message<'_>) -> String {
    let mut text = String::new();
    for part in &message.parts {
        if let PartType::Text(t) = &part.body {
            text.push_str(t);
            text.push('\n');
        }
    }
    text
}

/// Sent by a mail system rather than a person: the only messages without a report marker
/// that are still read as bounces.
fn from_a_daemon(message: &Message<'_>) -> bool {
    let from = message
        .header_raw("From")
        .unwrap_or("")
        .to_ascii_lowercase();
    [
        "mailer-daemon",
        "postmaster",
        "mail delivery",
        "mail.delivery",
    ]
    .iter()
    .any(|w| from.contains(w))
}

/// A line that starts with an address (`a@b`, `<a@b>:`, `"a@b":`, `>>> a@b`, `* a@b`,
/// `-- a@b`): the address, and the rest of the line.
fn leading_address(line: &str) -> Option<(String, &str)> {
    let t = line.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '<' | '>' | '"' | '*' | '-' | '\'')
    });
    // Sendmail's transcript: `550 <a@b>... User unknown`.
    let t = match t.get(..5) {
        Some(code) if code.ends_with(" <") && code[..3].bytes().all(|b| b.is_ascii_digit()) => {
            &t[5..]
        }
        _ => t,
    };
    let end = t
        .find(|c: char| c.is_whitespace() || matches!(c, '>' | '"' | ',' | ';' | '(' | '[' | '<'))
        .unwrap_or(t.len());
    let token = t[..end].trim_end_matches([':', '.']);
    is_address(token).then(|| {
        (
            token.to_owned(),
            t[end..].trim_start_matches(['>', '"', ':']),
        )
    })
}

/// The first address anywhere in `text`.
fn first_address(text: &str) -> Option<String> {
    text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '"' | ',' | ';' | '(' | ')' | '[' | ']' | '\''
            )
    })
    .map(|w| w.trim_matches([':', '.']))
    .find(|w| is_address(w))
    .map(str::to_owned)
}

fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && !local.contains('@')
        && !local.contains(':')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `host mx.example.org [192.0.2.1]` or `mx.example.org[192.0.2.1]`: the remote host named.
fn remote_host(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("host ")? + 5;
    let rest = text.get(at..)?.trim_start_matches([' ', ':']);
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    (name.contains('.') && name.chars().any(|c| c.is_ascii_alphabetic())).then_some(name)
}

/// Our `X-Probe-Id`, when the returned message is quoted in the text.
fn returned_probe_id(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("X-Probe-Id")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_line_has_a_known_kind() {
        let lines = crate::table::rows(MARKERS).count();
        let m = parse_markers(MARKERS);
        let parsed = m.start.len()
            + m.end.len()
            + m.end_line.len()
            + m.delayed.len()
            + m.recipient.len()
            + m.given_up.len();
        assert_eq!(
            parsed + m.autoreply.len(),
            lines,
            "a malformed line in markers.tsv"
        );
    }

    #[test]
    fn the_first_line_with_a_marker_from_a_line_on() {
        let lines = [
            "Hello",
            "This is the MAIL SYSTEM",
            "x",
            "the mail system again",
        ];
        let lowered = Lowered::new(&lines);
        let markers = AnyOf::new(&["mail system".to_owned(), "again".to_owned()]);
        let table: &[(usize, Option<usize>)] = &[
            (0, Some(1)),
            (1, Some(1)),
            (2, Some(3)),
            (3, Some(3)),
            (4, None),
        ];
        for (from, want) in table {
            assert_eq!(
                lowered.first_line_with(&markers, *from),
                *want,
                "from {from}"
            );
        }
        assert_eq!(lowered.before(2), "hello\nthis is the mail system\n");
        assert_eq!(lowered.lines()[1], "this is the mail system");
    }

    #[test]
    fn addresses_at_the_start_of_a_line() {
        let table: &[(&str, Option<&str>)] = &[
            ("  kijitora@example.jp", Some("kijitora@example.jp")),
            ("<a@example.org>:", Some("a@example.org")),
            ("\"a@example.org\":", Some("a@example.org")),
            (">>> a@example.org <a@example.org>", Some("a@example.org")),
            ("   * a@example.org", Some("a@example.org")),
            ("a@example.org: 550 5.1.1 no", Some("a@example.org")),
            ("To: a@example.org", None),
            ("550 5.1.1 <a@example.org>... User unknown", None),
            (
                "554 <a@example.org>... 550 Host unknown",
                Some("a@example.org"),
            ),
            ("host mx.example.org said", None),
        ];
        for (line, want) in table {
            assert_eq!(
                leading_address(line).map(|(a, _)| a).as_deref(),
                *want,
                "{line}"
            );
        }
    }
}
