//! Delivery status notifications (RFC 3464): `multipart/report; report-type=delivery-status`
//! with a `message/delivery-status` part, and usually the original headers
//! (`text/rfc822-headers`, RFC 6522) or message (`message/rfc822`).

use mail_parser::{MessageParser, MimeHeaders};

use super::{Downstream, DownstreamAction, DownstreamSource, plain, ses, stated};

/// A parsed DSN: which message it is about, and what it says per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnReport {
    /// `Original-Envelope-Id` (our token, sent as `ENVID`), xtext-decoded.
    pub envelope_id: Option<String>,
    /// The `X-Probe-Id` of the returned headers, when they came back.
    pub probe_id: Option<String>,
    /// `Reporting-MTA`.
    pub reporting_mta: Option<String>,
    /// One report per recipient block.
    pub recipients: Vec<Downstream>,
    /// Complaints, when the message is an abuse feedback report (ARF, RFC 5965) rather than a
    /// bounce: one per complaining recipient. Relay mode has no use for them.
    pub feedback: Vec<Feedback>,
}

/// One complaint of an abuse feedback report (RFC 5965).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Who complained: `Original-Rcpt-To`, else the returned message's `To`.
    pub recipient: Option<String>,
    /// `Feedback-Type` (`abuse`, `opt-out`, ...).
    pub feedback_type: String,
}

impl DsnReport {
    /// Our token: the envelope id if the relay kept it, else the returned `X-Probe-Id`.
    pub fn token(&self) -> Option<&str> {
        self.envelope_id.as_deref().or(self.probe_id.as_deref())
    }
}

/// Parses a whole message; `None` when it is no bounce: neither a DSN, nor a rejection MDN,
/// nor a plain-text bounce ([`plain`]), nor an abuse feedback report.
///
/// Besides DSNs this reads the rejection notice Dovecot's delivery agent sends for a Sieve
/// `reject` (RFC 5429): a `multipart/report; report-type=disposition-notification` (RFC 8098)
/// whose `Disposition` says `deleted`, naming our message by `Original-Message-ID`.
pub fn parse(raw: &[u8]) -> Option<DsnReport> {
    parse_nested(raw, 0)
}

/// How deep a report inside a returned message is looked for: one level is what mailers
/// send; the bound keeps a crafted message from recursing without end.
const MAX_NESTING: u8 = 2;

/// The parser for reports, built once: it parses the MIME headers, which find the parts, and
/// leaves every other field raw-only. What reports are read for is their parts' text and a
/// few fields by their raw value (`header_raw`, offsets kept either way); parsing each
/// `Received:` into its parts was a fifth of the time spent on a report's header.
fn parser() -> &'static MessageParser {
    static PARSER: std::sync::OnceLock<MessageParser> = std::sync::OnceLock::new();
    PARSER.get_or_init(|| {
        MessageParser::new()
            .with_mime_headers()
            .default_header_ignore()
    })
}

fn parse_nested(raw: &[u8], depth: u8) -> Option<DsnReport> {
    let message = parser().parse(raw)?;
    let mut status_block = None;
    let mut mdn_block = None;
    let mut feedback_block = None;
    let mut returned_to = None;
    let mut explanation = None;
    let mut probe_id = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            // A part without Content-Type is text/plain (RFC 2045 §5.2): Sendmail's notice.
            if explanation.is_none()
                && let mail_parser::PartType::Text(text) = &part.body
            {
                explanation = Some(text.to_string());
            }
            continue;
        };
        let subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
        let body = message
            .raw_message
            .get(part.offset_body as usize..part.offset_end as usize)
            .unwrap_or_default();
        match (ct.ctype().to_ascii_lowercase().as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                status_block = Some(String::from_utf8_lossy(body).into_owned());
            }
            ("message", "disposition-notification" | "global-disposition-notification") => {
                mdn_block = Some(String::from_utf8_lossy(body).into_owned());
            }
            ("message", "feedback-report") => {
                feedback_block = Some(String::from_utf8_lossy(body).into_owned());
            }
            ("text", "plain") if explanation.is_none() => {
                explanation = part.text_contents().map(str::to_owned);
            }
            ("text", "rfc822-headers") | ("message", "rfc822" | "global") if probe_id.is_none() => {
                let headers = String::from_utf8_lossy(header_section(body));
                probe_id = header_value(&headers, "X-Probe-Id");
                returned_to = header_value(&headers, "To");
            }
            _ => {}
        }
    }
    if let Some(block) = feedback_block {
        return Some(parse_feedback(&block, returned_to));
    }
    let Some(status_block) = status_block else {
        return match mdn_block {
            Some(block) => parse_rejection_mdn(&block, explanation.as_deref(), probe_id),
            None => explanation
                .as_deref()
                .and_then(ses::parse)
                .or_else(|| plain::parse(&message))
                .filter(|r| !r.recipients.is_empty() || !r.feedback.is_empty())
                .or_else(|| nested_report(&message, depth))
                .or_else(|| unsubscribe(&message)),
        };
    };
    let groups = field_groups(&status_block);
    let no_fields = Vec::new();
    let per_message = groups.first().unwrap_or(&no_fields);
    let get = |fields: &[(String, String)], name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    // A recipient block is one with an Action; some MTAs leave out the blank line after the
    // per-message fields, so the first block can be one too.
    let mut recipients: Vec<Downstream> = groups
        .iter()
        .filter_map(|fields| {
            // A block without an Action but with a recipient and a status (some MTAs leave
            // the Action out) says by the status's class what happened.
            let action = match get(fields, "Action") {
                Some(a) => a.trim().to_ascii_lowercase(),
                None => {
                    get(fields, "Final-Recipient")?;
                    match get(fields, "Status")?.trim().get(..1)? {
                        "5" => "failed".to_owned(),
                        "4" => "delayed".to_owned(),
                        "2" => "delivered".to_owned(),
                        _ => return None,
                    }
                }
            };
            let action = match action.as_str() {
                "failed" => DownstreamAction::Failed,
                "delayed" => DownstreamAction::Delayed,
                "delivered" | "relayed" | "expanded" => DownstreamAction::Delivered,
                _ => return None,
            };
            Some(Downstream {
                source: DownstreamSource::Dsn,
                action,
                recipient: get(fields, "Final-Recipient").map(|v| strip_type(&v)),
                // `Status: 4.0.0 (host name lookup failure)`: the code; the comment says
                // why when no Diagnostic-Code does.
                status: get(fields, "Status")
                    .and_then(|v| v.split_whitespace().next().map(str::to_owned)),
                remote_mta: get(fields, "Remote-MTA").map(|v| strip_type(&v)),
                diagnostic: get(fields, "Diagnostic-Code")
                    .map(|v| {
                        let v = v.trim();
                        v.strip_prefix("smtp;")
                            .or_else(|| v.strip_prefix("SMTP;"))
                            .map(|rest| format!("smtp; {}", rest.trim()))
                            .unwrap_or_else(|| v.to_owned())
                    })
                    .or_else(|| {
                        let status = get(fields, "Status")?;
                        let (_, comment) = status.split_once('(')?;
                        let comment = comment.trim_end().trim_end_matches(')').trim();
                        // Not the code's own name from RFC 3463 (`other or undefined
                        // network or routing status`): that says nothing the code does not.
                        let named = comment.to_ascii_lowercase().ends_with(" status");
                        (!comment.is_empty() && !named).then(|| comment.to_owned())
                    }),
                command: None,
                reason: None,
            })
        })
        .collect();
    // A delivery-status part with no recipient block in it: the report's text may still
    // name them.
    if recipients.is_empty() {
        if let Some(report) = plain::parse(&message)
            && !report.recipients.is_empty()
        {
            return Some(report);
        }
        // Nor the text (Postfix's `--- Delivery report unavailable ---`): the returned
        // message says to whom it was.
        if let Some(to) = returned_to.as_deref().and_then(address_in) {
            recipients.push(Downstream {
                source: DownstreamSource::Dsn,
                action: DownstreamAction::Failed,
                recipient: Some(to),
                status: None,
                remote_mta: None,
                diagnostic: None,
                command: None,
                reason: None,
            });
        }
    }
    // A recipient block without Diagnostic-Code (OpenSMTPD): the report's text quotes the
    // remote reply for the same address.
    // The text's words of its own (au's `The user(s) account is disabled.`) hold for the
    // same recipient; so does the text of a report about one recipient only, whatever it
    // calls the address (Exim's `pipe to |/usr/bin/prog`, `save to /path`).
    if recipients.iter().any(|r| r.diagnostic.is_none())
        && let Some(text) = plain::parse(&message)
    {
        let only = (recipients.len() == 1 && text.recipients.len() == 1)
            .then(|| text.recipients[0].clone());
        for r in recipients.iter_mut().filter(|r| r.diagnostic.is_none()) {
            let same = text
                .recipients
                .iter()
                .find(|t| {
                    t.recipient.is_some()
                        && t.recipient.as_deref().map(str::to_ascii_lowercase)
                            == r.recipient.as_deref().map(str::to_ascii_lowercase)
                })
                .or(only.as_ref());
            if let Some(t) = same {
                r.diagnostic = t.diagnostic.clone();
                r.reason = t.reason.clone();
            }
        }
    }
    // Sendmail's Diagnostic-Code can say nothing (`X-Unix; 255`, `smtp;`) while its text's
    // transcript has the reply (`554 5.3.0 unknown mailer error 255`, `<<< 421`).
    if let [r] = recipients.as_mut_slice()
        && r.diagnostic
            .as_deref()
            .is_none_or(|d| enhanced_status(d).is_none() && super::reply_code_in(d).is_none())
        && let Some(reply) = explanation.as_deref().and_then(transcript_reply)
    {
        r.diagnostic = Some(match r.diagnostic.take() {
            Some(d) if !d.trim().trim_end_matches(';').eq_ignore_ascii_case("smtp") => {
                format!("{d} {reply}")
            }
            _ => reply,
        });
    }
    if explanation.as_deref().is_some_and(plain::given_up) {
        for r in recipients
            .iter_mut()
            .filter(|r| r.action == DownstreamAction::Delayed)
        {
            r.action = DownstreamAction::Failed;
            r.status = None;
        }
    }
    for r in &mut recipients {
        r.command = r
            .diagnostic
            .as_deref()
            .and_then(stated::command_in)
            .map(str::to_owned);
    }
    // Postfix names the command in its text only (`<a@b>: host x said: 550 ... (in reply to
    // RCPT TO command)`): the paragraph that names the same address.
    if let Some(text) = explanation.as_deref() {
        let lower = text.to_ascii_lowercase();
        for r in recipients.iter_mut().filter(|r| r.command.is_none()) {
            let Some(address) = r.recipient.as_deref().map(str::to_ascii_lowercase) else {
                continue;
            };
            r.command = lower.find(&address).and_then(|at| {
                let paragraph = &lower[at..];
                let end = ["\n\n", "\n\r\n"]
                    .iter()
                    .filter_map(|blank| paragraph.find(blank))
                    .min()
                    .unwrap_or(paragraph.len());
                stated::command_in(&paragraph[..end]).map(str::to_owned)
            });
        }
    }
    Some(DsnReport {
        envelope_id: get(per_message, "Original-Envelope-Id").map(|v| xtext_decode(v.trim())),
        probe_id,
        reporting_mta: get(per_message, "Reporting-MTA").map(|v| strip_type(&v)),
        recipients,
        feedback: Vec::new(),
    })
}

/// The remote reply of a Sendmail transcript (`----- Transcript of session follows -----`):
/// its last `<<<` reply with a failure code, else its last line starting with one.
fn transcript_reply(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("transcript of session follows")?;
    let lines: Vec<&str> = text[at..].lines().skip(1).map(str::trim).collect();
    let failure = |l: &str| {
        matches!(l.as_bytes().first(), Some(b'4' | b'5'))
            && l.get(..3)
                .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
    };
    lines
        .iter()
        .rev()
        .find(|l| {
            l.strip_prefix("<<<")
                .is_some_and(|r| failure(r.trim_start()))
        })
        .or_else(|| lines.iter().rev().find(|l| failure(l)))
        .map(|l| (*l).to_owned())
}

/// A report about a report: the bounce is a returned message of its own (`message/rfc822`)
/// and the outer text says nothing per recipient.
fn nested_report(message: &mail_parser::Message<'_>, depth: u8) -> Option<DsnReport> {
    if depth >= MAX_NESTING {
        return None;
    }
    message.parts.iter().find_map(|part| match &part.body {
        mail_parser::PartType::Message(_) => {
            let raw = message
                .raw_message
                .get(part.offset_body as usize..part.offset_end as usize)?;
            let inner = parser().parse(raw)?;
            let ct = inner.content_type()?;
            (ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report")))
            .then(|| parse_nested(raw, depth + 1))
            .flatten()
            .filter(|r| !r.recipients.is_empty())
        }
        _ => None,
    })
}

/// Apple Mail's unsubscribe request (`X-Apple-Unsubscribe: true`): a complaint of the
/// `opt-out` kind by the sender of the request.
fn unsubscribe(message: &mail_parser::Message<'_>) -> Option<DsnReport> {
    let flag = message.header_raw("X-Apple-Unsubscribe")?;
    if !flag.trim().eq_ignore_ascii_case("true") {
        return None;
    }
    Some(DsnReport {
        envelope_id: None,
        probe_id: None,
        reporting_mta: None,
        recipients: Vec::new(),
        feedback: vec![Feedback {
            recipient: message.header_raw("From").and_then(address_in),
            feedback_type: "opt-out".to_owned(),
        }],
    })
}

/// The address of a `To:`/`From:` value (`Name <a@b>` or `a@b`).
fn address_in(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v
        .rsplit_once('<')
        .map_or(v, |(_, a)| a.split('>').next().unwrap_or(a))
        .trim();
    (v.contains('@') && !v.contains(char::is_whitespace)).then(|| v.to_owned())
}

/// An abuse feedback report: one complaint per `Original-Rcpt-To` (or the returned `To`).
fn parse_feedback(block: &str, returned_to: Option<String>) -> DsnReport {
    let fields: Vec<(String, String)> = field_groups(block).into_iter().flatten().collect();
    let get_all = |name: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| strip_type(v))
            .collect()
    };
    let feedback_type = get_all("Feedback-Type")
        .into_iter()
        .next()
        .unwrap_or_else(|| "other".to_owned());
    let mut recipients: Vec<Option<String>> = get_all("Original-Rcpt-To")
        .into_iter()
        .chain(get_all("Removal-Recipient"))
        .map(|a| Some(a.trim_matches(['<', '>', ' ']).to_owned()))
        .collect();
    if recipients.is_empty() {
        recipients.push(returned_to.map(|t| {
            let t = t.trim();
            t.rsplit_once('<')
                .map_or(t, |(_, a)| a.trim_end_matches('>'))
                .to_owned()
        }));
    }
    DsnReport {
        envelope_id: None,
        probe_id: None,
        reporting_mta: get_all("Reporting-MTA").into_iter().next(),
        recipients: Vec::new(),
        feedback: recipients
            .into_iter()
            .map(|recipient| Feedback {
                recipient,
                feedback_type: feedback_type.clone(),
            })
            .collect(),
    }
}

/// The first `D.D{1,3}.D{1,3}` with a class of 2, 4 or 5 in `text` (`5.1.1 (user unknown)`).
pub fn enhanced_status(text: &str) -> Option<String> {
    // A code has dots, so only the words around a dot are looked at: this runs over every
    // line of every report, most of it prose. A word is a run of digits and dots (a byte of
    // a multi-byte character is neither).
    let bytes = text.as_bytes();
    let in_word = |b: &u8| b.is_ascii_digit() || *b == b'.';
    let mut from = 0;
    while let Some(dot) = memchr::memchr(b'.', &bytes[from..]).map(|i| from + i) {
        let start = bytes[..dot]
            .iter()
            .rposition(|b| !in_word(b))
            .map_or(0, |i| i + 1);
        let end = bytes[dot..]
            .iter()
            .position(|b| !in_word(b))
            .map_or(bytes.len(), |i| dot + i);
        let word = trim_dots(&bytes[start..end]);
        if is_enhanced_status(word) {
            return Some(String::from_utf8_lossy(word).into_owned());
        }
        from = end;
    }
    None
}

/// The word without dots at either end (`5.1.1.` ends a sentence).
fn trim_dots(word: &[u8]) -> &[u8] {
    let start = word.iter().position(|b| *b != b'.').unwrap_or(word.len());
    let end = word
        .iter()
        .rposition(|b| *b != b'.')
        .map_or(start, |e| e + 1);
    &word[start..end]
}

/// `class.subject.detail`: a class of 2, 4 or 5, then two numbers of one to three digits
/// (`word` holds only digits and dots).
fn is_enhanced_status(word: &[u8]) -> bool {
    let mut parts = word.split(|b| *b == b'.');
    let short = |p: Option<&[u8]>| p.is_some_and(|p| (1..=3).contains(&p.len()));
    matches!(parts.next(), Some(b"2" | b"4" | b"5"))
        && short(parts.next())
        && short(parts.next())
        && parts.next().is_none()
}

/// A disposition notification counts only when it reports the message deleted unread (a Sieve
/// `reject`); read receipts and the like are not about delivery.
fn parse_rejection_mdn(
    block: &str,
    explanation: Option<&str>,
    probe_id: Option<String>,
) -> Option<DsnReport> {
    let fields = field_groups(block).into_iter().next()?;
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let disposition = get("Disposition")?.to_ascii_lowercase();
    let (_, kind) = disposition.rsplit_once(';')?;
    if !matches!(kind.trim(), "deleted" | "denied" | "failed") {
        return None;
    }
    // Our Message-ID is <TOKEN@domain>; runs before 2026-11-29 used <TOKEN.seedprobe@domain>.
    // A local part that is no token of ours matches no message, so it needs no check here.
    let from_message_id = get("Original-Message-ID").and_then(|id| {
        let id = id.trim().trim_start_matches('<');
        let (local, _) = id.split_once('@')?;
        Some(local.strip_suffix(".seedprobe").unwrap_or(local).to_owned())
    });
    // The notice's own text is the refusal reason; its first line only introduces it.
    let diagnostic = explanation.map(|text| {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines
            .get(1..)
            .filter(|rest| !rest.is_empty())
            .unwrap_or(&lines[..])
            .join(" ")
    });
    Some(DsnReport {
        envelope_id: None,
        probe_id: probe_id.or(from_message_id),
        reporting_mta: get("Reporting-UA")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned()),
        recipients: vec![Downstream {
            source: DownstreamSource::Dsn,
            action: DownstreamAction::Failed,
            recipient: get("Final-Recipient").map(|v| strip_type(&v)),
            status: None,
            remote_mta: get("Reporting-UA")
                .map(|v| v.split(';').next().unwrap_or("").trim().to_owned()),
            diagnostic,
            command: None,
            reason: None,
        }],
        feedback: Vec::new(),
    })
}

/// `rfc822; a@b` → `a@b`, `dns; mx.example.org` → `mx.example.org`.
fn strip_type(v: &str) -> String {
    match v.split_once(';') {
        Some((_, rest)) => rest.trim().to_owned(),
        None => v.trim().to_owned(),
    }
}

/// Header-style field groups separated by blank lines, folded lines joined.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            // Some MTAs (AOL, Sun's Messaging Server) leave out the blank line between
            // recipient blocks: a second Final-Recipient starts the next one.
            if name.eq_ignore_ascii_case("Final-Recipient")
                && current
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("Final-Recipient"))
            {
                groups.push(std::mem::take(&mut current));
            }
            current.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// A returned message's header: from its first line that is not blank to the blank line
/// after it. Only the header is read, and a body can be long.
fn header_section(message: &[u8]) -> &[u8] {
    let first = message
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .unwrap_or(message.len());
    // From the start of the line the first word is on.
    let start = message[..first]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let rest = &message[start..];
    let end = [&b"\n\n"[..], b"\n\r\n"]
        .iter()
        .filter_map(|blank| memchr::memmem::find(rest, blank))
        .min()
        .map_or(rest.len(), |at| at + 1);
    &rest[..end]
}

/// A field of a returned message's header (its folded lines joined), read up to the blank line
/// that ends the header: the returned body can be long and is no business of this.
fn header_value(message: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    let mut in_field = false;
    for line in message
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| l.trim().is_empty())
    {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if in_field && let Some(v) = value.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((field, rest)) = line.split_once(':') {
            if value.is_some() {
                break;
            }
            in_field = field.trim().eq_ignore_ascii_case(name);
            if in_field {
                value = Some(rest.trim().to_owned());
            }
        }
    }
    value
}

/// RFC 3461 §4: `+XX` is the byte with hex value XX.
pub fn xtext_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a Postfix bounce (RET=HDRS), as bounce(8) writes it.
    const POSTFIX_FAILED: &str = "Return-Path: <>\r\n\
From: MAILER-DAEMON@relay.lab.test (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: probe@sender.lab.test\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"B1\"\r\n\
\r\n\
--B1\r\n\
Content-Description: Notification\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
\r\n\
--B1\r\n\
Content-Description: Delivery report\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; relay.lab.test\r\n\
X-Postfix-Queue-ID: 4D16198E6AE\r\n\
X-Postfix-Sender: rfc822; probe@sender.lab.test\r\n\
Original-Envelope-Id: 01JAAAAAAAAAAAAAAAAAAAAAAA\r\n\
Arrival-Date: Sat, 28 Nov 2026 08:10:02 +0000 (UTC)\r\n\
\r\n\
Final-Recipient: rfc822; reject@reject.lab.test\r\n\
Original-Recipient: rfc822;reject@reject.lab.test\r\n\
Action: failed\r\n\
Status: 5.7.1\r\n\
Remote-MTA: dns; 127.0.0.1\r\n\
Diagnostic-Code: smtp; 550 5.7.1 <reject@reject.lab.test>: Recipient address\r\n\
\trejected: Message refused\r\n\
\r\n\
--B1\r\n\
Content-Description: Undelivered Message Headers\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Subject: Deliverability check 01JAAAAAAAAAAAAAAAAAAAAAAA\r\n\
X-Probe-Id: 01JAAAAAAAAAAAAAAAAAAAAAAA\r\n\
\r\n\
--B1--\r\n";

    #[test]
    fn a_returned_message_is_read_to_the_end_of_its_header() {
        let table: &[(&str, &str)] = &[
            ("To: a@b\nX: 1\n\nbody", "To: a@b\nX: 1\n"),
            ("\r\n\r\nTo: a@b\r\n\r\nbody", "To: a@b\r\n"),
            ("\n  folded\nTo: a@b", "  folded\nTo: a@b"),
            ("", ""),
        ];
        for (message, want) in table {
            let got = header_section(message.as_bytes());
            assert_eq!(std::str::from_utf8(got).unwrap(), *want, "{message:?}");
        }
        assert_eq!(
            header_value("\nTo: a@b,\n c@d\nX-Probe-Id: t1\n\nTo: no", "to").as_deref(),
            Some("a@b, c@d")
        );
    }

    #[test]
    fn postfix_bounce() {
        let r = parse(POSTFIX_FAILED.as_bytes()).unwrap();
        assert_eq!(r.token(), Some("01JAAAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(r.probe_id.as_deref(), Some("01JAAAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(r.reporting_mta.as_deref(), Some("relay.lab.test"));
        let rcpt = &r.recipients[0];
        assert_eq!(rcpt.action, DownstreamAction::Failed);
        assert_eq!(rcpt.status.as_deref(), Some("5.7.1"));
        assert_eq!(rcpt.recipient.as_deref(), Some("reject@reject.lab.test"));
        assert_eq!(rcpt.remote_mta.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            rcpt.diagnostic.as_deref(),
            Some(
                "smtp; 550 5.7.1 <reject@reject.lab.test>: Recipient address rejected: Message refused"
            )
        );
        assert_eq!(rcpt.reply_code(), Some(550));
    }

    #[test]
    fn without_envid_the_returned_header_names_the_message() {
        let raw =
            POSTFIX_FAILED.replace("Original-Envelope-Id: 01JAAAAAAAAAAAAAAAAAAAAAAA\r\n", "");
        let r = parse(raw.as_bytes()).unwrap();
        assert_eq!(r.envelope_id, None);
        assert_eq!(r.token(), Some("01JAAAAAAAAAAAAAAAAAAAAAAA"));
    }

    /// (what, raw DSN, token, recipient, action, status, reply code)
    type Sample<'a> = (
        &'a str,
        &'a [u8],
        &'a str,
        &'a str,
        DownstreamAction,
        &'a str,
        u16,
    );

    /// Real DSNs from the lab's relay (Postfix 3.7), as Dovecot serves them.
    #[test]
    fn lab_samples() {
        let rows: &[Sample] = &[
            (
                "failed, RET=HDRS",
                include_bytes!("../../docker/lab/samples/dsn-failed.eml"),
                "94704b7f2a6d402e",
                "reject@reject.lab.test",
                DownstreamAction::Failed,
                "5.7.1",
                550,
            ),
            (
                "delayed",
                include_bytes!("../../docker/lab/samples/dsn-delayed.eml"),
                "7d2ad2eba8c54a00",
                "defer@defer.lab.test",
                DownstreamAction::Delayed,
                "4.7.1",
                450,
            ),
            (
                "expired after deferrals",
                include_bytes!("../../docker/lab/samples/dsn-expired.eml"),
                "7d2ad2eba8c54a00",
                "defer@defer.lab.test",
                DownstreamAction::Failed,
                "4.7.1",
                450,
            ),
            (
                "failed, whole message returned, no ENVID",
                include_bytes!("../../docker/lab/samples/dsn-failed-full-message.eml"),
                "6b60cd0a9dfe4d3f",
                "reject@reject.lab.test",
                DownstreamAction::Failed,
                "5.7.1",
                550,
            ),
        ];
        for (what, raw, token, rcpt, action, status, code) in rows {
            let r = parse(raw).unwrap_or_else(|| panic!("{what}: not parsed as a DSN"));
            assert_eq!(r.token(), Some(*token), "{what}");
            assert!(r.reporting_mta.is_some(), "{what}");
            let d = &r.recipients[0];
            assert_eq!(d.recipient.as_deref(), Some(*rcpt), "{what}");
            assert_eq!(d.action, *action, "{what}");
            assert_eq!(d.status.as_deref(), Some(*status), "{what}");
            assert_eq!(d.remote_mta.as_deref(), Some("127.0.0.1"), "{what}");
            assert_eq!(d.reply_code(), Some(*code), "{what}: {:?}", d.diagnostic);
        }
    }

    #[test]
    fn dovecot_sieve_reject_notice() {
        let raw = include_bytes!("../../docker/lab/samples/dovecot-sieve-reject.eml");
        let r = parse(raw).expect("a rejection MDN");
        assert_eq!(r.token(), Some("5ed465e1897c474a"));
        let d = &r.recipients[0];
        assert_eq!(d.action, DownstreamAction::Failed);
        assert_eq!(
            d.recipient.as_deref(),
            Some("sievereject@sievereject.lab.test")
        );
        assert_eq!(d.remote_mta.as_deref(), Some("mx.lab.test"));
        let why = d.diagnostic.as_deref().unwrap();
        assert!(
            why.contains("Message refused by the recipient's mail filter"),
            "{why}"
        );
        // Today's Message-ID form names the same message.
        let today = String::from_utf8_lossy(raw).replace(".seedprobe@", "@");
        assert_eq!(
            parse(today.as_bytes()).expect("a rejection MDN").token(),
            Some("5ed465e1897c474a")
        );
        // A read receipt is not a delivery report.
        let receipt = String::from_utf8_lossy(raw).replace(
            "MDN-sent-automatically; deleted",
            "MDN-sent-manually; displayed",
        );
        assert_eq!(parse(receipt.as_bytes()), None);
    }

    #[test]
    fn a_status_comment_explains_when_no_diagnostic_code_does() {
        let dsn = |status: &str| {
            POSTFIX_FAILED
                .replace("Status: 5.7.1\r\n", &format!("Status: {status}\r\n"))
                .replace(
                    "Diagnostic-Code: smtp; 550 5.7.1 <reject@reject.lab.test>: Recipient address\r\n\trejected: Message refused\r\n",
                    "",
                )
        };
        let table: &[(&str, Option<&str>)] = &[
            (
                "4.0.0 (mx.example.org: host name lookup failure)",
                Some("mx.example.org: host name lookup failure"),
            ),
            // The code's own name (RFC 3463) says nothing more than the code.
            ("4.4.0 (other or undefined network or routing status)", None),
            ("5.0.0", None),
        ];
        for (status, want) in table {
            let r = parse(dsn(status).as_bytes()).unwrap();
            let d = &r.recipients[0];
            assert_eq!(d.status.as_deref(), status.split(' ').next(), "{status}");
            assert_eq!(d.diagnostic.as_deref(), *want, "{status}");
        }
    }

    #[test]
    fn a_plain_message_is_not_a_dsn() {
        assert_eq!(parse(b"Subject: hi\r\n\r\nhello\r\n"), None);
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_decode("a+2Bb+3Dc"), "a+b=c");
        assert_eq!(xtext_decode("plain"), "plain");
        assert_eq!(xtext_decode("bad+zz"), "bad+zz");
    }
}
