//! One Postfix log line, read as bytes: the one parser of this format in the crate (relay
//! mode's log follower, `downstream::maillog`, uses it too).
//!
//! The shapes, after a timestamp (`Nov 29 16:09:49` from syslog and Postfix's own
//! `maillog_file`, or RFC 3339 `2026-11-29T16:09:49.123456+00:00` from rsyslog), a host name
//! and a tag `SYSLOG_NAME/DAEMON[PID]:`:
//!
//! - `QUEUEID: to=<rcpt>, relay=HOST[IP]:PORT, delay=.., dsn=X.Y.Z, status=WORD (text)`
//! - `QUEUEID: from=<sender>, status=expired, returned to sender` (qmgr)
//! - `QUEUEID: removed` (qmgr: the queue id's last line)
//! - `NOQUEUE: reject: RCPT from ...: 550 ...` (smtpd, postscreen: our own server refused)
//! - `QUEUEID: milter-reject: END-OF-MESSAGE from ...` (cleanup: likewise)
//!
//! No regex and no allocation: a log of millions of lines is read at memory speed, and a line
//! of any other shape is `None`.

use memchr::{memchr, memmem, memrchr};

/// What a line says, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The timestamp as written (parse it with [`super::since::Stamp::parse`] when needed).
    pub stamp: &'a [u8],
    /// The daemon: the tag's last part (`smtp` in `postfix-relay/smtp[12]`).
    pub daemon: &'a [u8],
    /// The event.
    pub event: Event<'a>,
}

/// The events the summary counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A delivery attempt's outcome for one recipient.
    Status(StatusLine<'a>),
    /// The whole message expired in the queue and was returned to its sender.
    Expired {
        /// The queue id.
        queue_id: &'a [u8],
    },
    /// The queue id left the queue: nothing more will be logged for it.
    Removed {
        /// The queue id.
        queue_id: &'a [u8],
    },
    /// Our own smtpd, postscreen or cleanup refused a message or recipient.
    Rejected {
        /// The rest of the line after `reject: `.
        text: &'a [u8],
    },
}

/// `QUEUEID: to=<rcpt>, ..., status=WORD (text)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// The queue id.
    pub queue_id: &'a [u8],
    /// The recipient, as written between `<>`.
    pub recipient: &'a [u8],
    /// `relay=` (`host[ip]:port`, or `none`).
    pub relay: Option<&'a [u8]>,
    /// `dsn=` (the enhanced status code).
    pub dsn: Option<&'a [u8]>,
    /// `status=`.
    pub status: Status,
    /// The text in parentheses after the status word (the remote reply, or Postfix's words).
    pub text: Option<&'a [u8]>,
}

/// The `status=` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `sent`: accepted by the next hop (or delivered locally).
    Sent,
    /// `sent (forwarded as ...)`: a local alias forwarded it; the forwarded copy is logged
    /// again, so this is no delivery of its own (pflogsumm counts it apart, too).
    Forwarded,
    /// `deferred`: a temporary failure; it stays queued.
    Deferred,
    /// `bounced`: a permanent failure; returned to the sender.
    Bounced,
    /// `expired`: too long in the queue.
    Expired,
}

impl Status {
    /// Whether the recipient is done with (sent, bounced, expired).
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Deferred)
    }
}

/// Parses one line (without its newline); `None` for every other shape.
pub fn parse(line: &[u8]) -> Option<Line<'_>> {
    let (stamp, rest) = split_stamp(line)?;
    // The host name, then the tag up to ": ".
    let rest = &rest[memchr(b' ', rest)? + 1..];
    let colon = memmem::find(rest, b": ")?;
    let mut tag = &rest[..colon];
    let message = &rest[colon + 2..];
    if tag.last() == Some(&b']') {
        tag = &tag[..memrchr(b'[', tag)?];
    }
    // Postfix always tags as `syslog_name/daemon`: a tag without `/` is another program.
    let daemon = &tag[memrchr(b'/', tag)? + 1..];
    let event = event(daemon, message)?;
    Some(Line {
        stamp,
        daemon,
        event,
    })
}

/// The timestamp and what follows it.
fn split_stamp(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.first()?.is_ascii_digit() {
        // RFC 3339: one word.
        let end = memchr(b' ', line)?;
        return Some((&line[..end], &line[end + 1..]));
    }
    // "Nov 29 16:09:49" or "Nov  9 16:09:49" (day padded with a space), seconds maybe with a
    // fraction.
    if line.len() < 16 || line[3] != b' ' || !line[..3].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut day = 4;
    if line[day] == b' ' {
        day += 1;
    }
    let time = day + memchr(b' ', &line[day..])? + 1;
    let end = time + memchr(b' ', &line[time..])?;
    Some((&line[..end], &line[end + 1..]))
}

fn event<'a>(daemon: &[u8], message: &'a [u8]) -> Option<Event<'a>> {
    let refuses = daemon == b"smtpd" || daemon == b"postscreen";
    if refuses && let Some(text) = message.strip_prefix(b"reject: ") {
        return Some(Event::Rejected { text });
    }
    let sep = memmem::find(message, b": ").unwrap_or(message.len());
    let queue_id = &message[..sep];
    if !is_queue_id(queue_id) {
        return None;
    }
    let body = message.get(sep + 2..).unwrap_or_default();
    if let Some(after) = body.strip_prefix(b"to=<") {
        return status_line(queue_id, after).map(Event::Status);
    }
    if body.starts_with(b"from=<") {
        return memmem::find(body, b", status=expired")
            .is_some()
            .then_some(Event::Expired { queue_id });
    }
    if message.get(sep..) == Some(b": removed") {
        return Some(Event::Removed { queue_id });
    }
    if refuses && let Some(text) = body.strip_prefix(b"reject: ") {
        return Some(Event::Rejected { text });
    }
    if daemon == b"cleanup" {
        let text = body
            .strip_prefix(b"reject: ")
            .or_else(|| body.strip_prefix(b"milter-reject: "))?;
        let stage = [&b"header "[..], b"body ", b"END-OF-MESSAGE "];
        return stage
            .iter()
            .any(|s| text.starts_with(s))
            .then_some(Event::Rejected { text });
    }
    None
}

/// Short (`4D16198E6AE`) and long (`4ZxYz1abcz1yz`) queue ids, and `NOQUEUE`.
fn is_queue_id(id: &[u8]) -> bool {
    (1..=24).contains(&id.len()) && id.iter().all(u8::is_ascii_alphanumeric)
}

/// `rcpt>, relay=..., dsn=..., status=WORD (text)`, after `to=<`.
fn status_line<'a>(queue_id: &'a [u8], after: &'a [u8]) -> Option<StatusLine<'a>> {
    let gt = memchr(b'>', after)?;
    let recipient = &after[..gt];
    let fields = &after[gt + 1..];
    let at = memmem::find(fields, b", status=")?;
    let (before, status) = (&fields[..at], &fields[at + ", status=".len()..]);
    let (word, text) = match memchr(b' ', status) {
        Some(sp) => (&status[..sp], Some(&status[sp + 1..])),
        None => (status, None),
    };
    let text = text.map(|t| {
        let t = t.strip_prefix(b"(").unwrap_or(t);
        t.strip_suffix(b")").unwrap_or(t)
    });
    let status = match word {
        b"sent" if text.is_some_and(|t| t.starts_with(b"forwarded as ")) => Status::Forwarded,
        b"sent" => Status::Sent,
        b"deferred" => Status::Deferred,
        b"bounced" => Status::Bounced,
        b"expired" | b"expired," => Status::Expired,
        _ => return None,
    };
    Some(StatusLine {
        queue_id,
        recipient,
        relay: field(before, b"relay="),
        dsn: field(before, b"dsn="),
        status,
        text,
    })
}

/// `name=value` among `, `-separated fields.
fn field<'a>(fields: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(at) = memmem::find(&fields[from..], name) {
        let start = from + at;
        if start == 0 || fields[..start].ends_with(b", ") {
            let value = &fields[start + name.len()..];
            return Some(&value[..memchr(b',', value).unwrap_or(value.len())]);
        }
        from = start + name.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a line should give, in short: (kind, queue id, recipient, relay, dsn, text).
    type Want<'a> = Option<(&'a str, &'a str, &'a str, &'a str, &'a str, &'a str)>;

    fn show(line: &Line) -> (String, String, String, String, String, String) {
        let s = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or(b"-")).into_owned();
        match line.event {
            Event::Status(st) => (
                format!("{:?}", st.status).to_lowercase(),
                s(Some(st.queue_id)),
                s(Some(st.recipient)),
                s(st.relay),
                s(st.dsn),
                s(st.text),
            ),
            Event::Expired { queue_id } => (
                "expired-message".into(),
                s(Some(queue_id)),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ),
            Event::Removed { queue_id } => (
                "removed".into(),
                s(Some(queue_id)),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ),
            Event::Rejected { text } => (
                "rejected".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                s(Some(text)),
            ),
        }
    }

    #[test]
    fn line_shapes() {
        let rows: &[(&str, Want)] = &[
            // maillog_file (the lab's relay), deferred
            (
                "Nov 29 16:09:49 smtp postfix-relay/smtp[12761]: B25E598FFC2: to=<defer@defer.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.12, delays=0/0.02/0.04/0.05, dsn=4.7.1, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.7.1 try later (in reply to RCPT TO command))",
                Some((
                    "deferred",
                    "B25E598FFC2",
                    "defer@defer.lab.test",
                    "127.0.0.1[127.0.0.1]:2525",
                    "4.7.1",
                    "host 127.0.0.1[127.0.0.1] said: 450 4.7.1 try later (in reply to RCPT TO command)",
                )),
            ),
            // syslog with a space-padded day, LMTP, sent
            (
                "Nov  9 16:09:05 mx postfix/lmtp[11429]: 3799598E15D: to=<inbox@inbox.lab.test>, relay=mx.lab.test[/run/lmtp], delay=0.04, delays=0.01/0.01/0.02/0.01, dsn=2.0.0, status=sent (250 2.0.0 <inbox@inbox.lab.test> Saved)",
                Some((
                    "sent",
                    "3799598E15D",
                    "inbox@inbox.lab.test",
                    "mx.lab.test[/run/lmtp]",
                    "2.0.0",
                    "250 2.0.0 <inbox@inbox.lab.test> Saved",
                )),
            ),
            // RFC 3339 timestamp, long queue id, orig_to, bounced
            (
                "2026-11-29T16:09:49.123456+00:00 mail postfix/smtp[9]: 4ZxYz1abcz1yz: to=<a@gmail.com>, orig_to=<b@example.org>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.7.26, status=bounced (host gmail-smtp-in.l.google.com[142.250.1.27] said: 550-5.7.26 unauthenticated (in reply to end of DATA command))",
                Some((
                    "bounced",
                    "4ZxYz1abcz1yz",
                    "a@gmail.com",
                    "gmail-smtp-in.l.google.com[142.250.1.27]:25",
                    "5.7.26",
                    "host gmail-smtp-in.l.google.com[142.250.1.27] said: 550-5.7.26 unauthenticated (in reply to end of DATA command)",
                )),
            ),
            // fractional seconds in the classic stamp; per-recipient expired
            (
                "Nov 29 16:11:49.123456 smtp postfix/error[5]: ABC123: to=<x@y.test>, relay=none, delay=120, delays=120/0/0/0, dsn=4.4.1, status=expired, returned to sender",
                Some((
                    "expired",
                    "ABC123",
                    "x@y.test",
                    "none",
                    "4.4.1",
                    "returned to sender",
                )),
            ),
            // forwarded is no delivery of its own
            (
                "Nov 29 16:09:05 mx postfix/local[1]: AB12: to=<a@b.test>, relay=local, delay=0, dsn=2.0.0, status=sent (forwarded as CD34)",
                Some((
                    "forwarded",
                    "AB12",
                    "a@b.test",
                    "local",
                    "2.0.0",
                    "forwarded as CD34",
                )),
            ),
            // no text after the status
            (
                "Nov 29 16:09:05 mx postfix/smtp[1]: AB12: to=<a@b.test>, relay=x, delay=0, dsn=2.0.0, status=sent",
                Some(("sent", "AB12", "a@b.test", "x", "2.0.0", "-")),
            ),
            (
                "Nov 29 16:11:49 smtp postfix-relay/qmgr[11368]: B25E598FFC2: from=<probe@sender.lab.test>, status=expired, returned to sender",
                Some(("expired-message", "B25E598FFC2", "-", "-", "-", "-")),
            ),
            (
                "Nov 29 16:11:49 smtp postfix-relay/qmgr[11368]: B25E598FFC2: removed",
                Some(("removed", "B25E598FFC2", "-", "-", "-", "-")),
            ),
            (
                "Nov 29 16:09:07 mx postfix/smtpd[11372]: NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.7.1 <reject@reject.lab.test>: Recipient address rejected: refused; from=<p@s.test> to=<reject@reject.lab.test> proto=ESMTP helo=<h>",
                Some((
                    "rejected",
                    "-",
                    "-",
                    "-",
                    "-",
                    "RCPT from unknown[127.0.0.1]: 550 5.7.1 <reject@reject.lab.test>: Recipient address rejected: refused; from=<p@s.test> to=<reject@reject.lab.test> proto=ESMTP helo=<h>",
                )),
            ),
            // a second smtpd service (master.cf name) is still our smtpd
            (
                "Nov 29 16:09:07 mx postfix/submission/smtpd[2]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 553 5.7.1 not owned",
                Some((
                    "rejected",
                    "-",
                    "-",
                    "-",
                    "-",
                    "RCPT from x[1.2.3.4]: 553 5.7.1 not owned",
                )),
            ),
            (
                "Nov 29 16:40:23 mx postfix/cleanup[31559]: 12F4398E27C: milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: 4.7.1 try later; from=<a@b> to=<c@d>",
                Some((
                    "rejected",
                    "-",
                    "-",
                    "-",
                    "-",
                    "END-OF-MESSAGE from unknown[127.0.0.1]: 4.7.1 try later; from=<a@b> to=<c@d>",
                )),
            ),
            // not counted: reject warnings, other cleanup lines, other programs, queue lines
            (
                "Nov 29 16:09:07 mx postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from x: 550 no",
                None,
            ),
            (
                "Nov 29 16:40:23 mx postfix/cleanup[1]: 12F4398E27C: message-id=<a@b>",
                None,
            ),
            (
                "Nov 29 16:40:23 mx dovecot[5]: lmtp(x): 12F4: to=<a@b>, status=sent",
                None,
            ),
            (
                "Nov 29 16:09:49 smtp postfix-relay/qmgr[11368]: AEC7698FFC8: from=<probe@sender.lab.test>, size=839, nrcpt=1 (queue active)",
                None,
            ),
            (
                "Nov 29 16:09:49 smtp postfix-relay/smtp[1]: AB: to=<a@b>, relay=x, status=queued (what)",
                None,
            ),
            (
                "Nov 29 16:09:49 smtp postfix/smtp[1]: bad id!: to=<a@b>, status=sent",
                None,
            ),
            ("", None),
            ("garbage", None),
            ("Nov 29 16:09:49", None),
            ("2026-11-29T16:09:49", None),
            (
                "Nov 29 16:09:49 host postfix/smtp[1]: AB: to=<unterminated",
                None,
            ),
            ("\u{0}\u{ff} é ]: : to=<", None),
        ];
        for (line, want) in rows {
            let got = parse(line.as_bytes()).map(|l| show(&l));
            let want = want.map(|(a, b, c, d, e, f)| {
                (
                    a.to_owned(),
                    b.to_owned(),
                    c.to_owned(),
                    d.to_owned(),
                    e.to_owned(),
                    f.to_owned(),
                )
            });
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn stamps_and_daemons() {
        let rows: &[(&str, &str, &str)] = &[
            (
                "Nov 29 16:11:49 smtp postfix-relay/qmgr[1]: AB: removed",
                "Nov 29 16:11:49",
                "qmgr",
            ),
            (
                "Nov  9 06:11:49 smtp postfix/qmgr[1]: AB: removed",
                "Nov  9 06:11:49",
                "qmgr",
            ),
            (
                "2026-11-29T16:11:49+01:00 smtp postfix/judge/smtpd[1]: NOQUEUE: reject: x",
                "2026-11-29T16:11:49+01:00",
                "smtpd",
            ),
            (
                "Nov 29 16:11:49 smtp postfix/qmgr: AB: removed",
                "Nov 29 16:11:49",
                "qmgr",
            ),
        ];
        for (line, stamp, daemon) in rows {
            let got = parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(got.stamp, stamp.as_bytes(), "{line}");
            assert_eq!(got.daemon, daemon.as_bytes(), "{line}");
        }
    }
}
