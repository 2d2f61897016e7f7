//! Why a message got its verdict: the one place that decides a message's *cause*, a reason from
//! Sisimai's fixed set ([`crate::reason::REASONS`]), where it was read, and, where the
//! provider is known, a hint and the provider's postmaster page.
//!
//! The cause is read from what the store kept (the SMTP reply, the downstream report, the
//! folder and header fields) each time a report is made, so that a better pattern explains old
//! runs too and the store needs no column for it.
//!
//! # Sources, in the ledger's precedence
//!
//! - `smtp`: the receiving server refused (4xx/5xx), or no reply ended the transaction. The
//!   provider's own pattern (`reason/replies.tsv`) first, the generic rules
//!   ([`crate::reason::classify`]) otherwise. A bare 4xx the rules cannot place is `undefined`,
//!   not the rules' `expired`: nothing was retried, so nothing expired.
//! - `dsn`, `mdn`, `maillog`: the relay's next hop refused or deferred, per its DSN, the
//!   receiver's rejection notice (a Sieve `reject`), or the relay's log. Read like a reply. A
//!   rejection notice whose words say nothing is `filtered`: a filter at the recipient refused it.
//! - `folder` (`spam`) and `header` (`spam_tagged`): `spamdetected`, or `authfailure` when the
//!   receiver's own `Authentication-Results` say SPF (fail, softfail), DKIM or DMARC failed: an
//!   authentication failure is the likelier, and the fixable, reason a filter acted.
//! - `timeout` (`missing`): `filtered`. The receiver took the message (250) and it reached
//!   neither inbox nor spam folder: in practice dropped or quarantined by a filter after
//!   acceptance, which is Sisimai's `filtered`. `undefined` would say nothing a postmaster can act
//!   on; the hint says that a slow delivery looks the same, and how to tell.
//!
//! `inbox` has no cause; nor has a message without a verdict (pending, not sent, interrupted):
//! the receiver has said nothing yet, and probe's own failures are its `reason`.

use serde::Serialize;

use crate::downstream::{Downstream, DownstreamSource};
use crate::evidence::{HeaderEvidence, auth_results};
use crate::reason::{self, replies};

use super::Verdict;

/// Where a cause was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseSource {
    /// The receiving server's SMTP reply, or the failure of the SMTP session.
    Smtp,
    /// A delivery status notification from the relay.
    Dsn,
    /// A rejection notice (MDN) from the recipient's server.
    Mdn,
    /// The relay's mail log.
    Maillog,
    /// The folder the message was found in.
    Folder,
    /// A spam mark in the found message's header.
    Header,
    /// The polling timeout: the message was not found.
    Timeout,
}

impl CauseSource {
    /// Stable label, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseSource::Smtp => "smtp",
            CauseSource::Dsn => "dsn",
            CauseSource::Mdn => "mdn",
            CauseSource::Maillog => "maillog",
            CauseSource::Folder => "folder",
            CauseSource::Header => "header",
            CauseSource::Timeout => "timeout",
        }
    }
}

/// Why a message got its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// One of [`crate::reason::REASONS`].
    pub reason: &'static str,
    /// Where it was read from.
    pub source: CauseSource,
    /// What the postmaster can do, where known.
    pub hint: Option<String>,
    /// The provider's postmaster, delisting or case page, where known.
    pub url: Option<String>,
}

/// What the store kept about a message, as the cause needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recorded<'a> {
    /// Its verdict, if any.
    pub verdict: Option<Verdict>,
    /// The seed's configured provider (`gmail`, `tonline`, ...; `-` or empty when none).
    pub provider: &'a str,
    /// The recipient.
    pub address: &'a str,
    /// The last SMTP host tried (the MX).
    pub smtp_host: Option<&'a str>,
    /// The final reply code.
    pub smtp_code: Option<u16>,
    /// The final enhanced status code.
    pub smtp_enhanced: Option<&'a str>,
    /// The final reply text.
    pub smtp_text: Option<&'a str>,
    /// The error when no reply ended the transaction.
    pub smtp_error: Option<&'a str>,
    /// The found message's header fields.
    pub headers: Option<&'a HeaderEvidence>,
    /// The downstream report that decided or may decide the verdict.
    pub downstream: Option<&'a Downstream>,
}

/// The message's cause; `None` for `inbox` and for a message without a verdict.
pub fn cause(m: &Recorded<'_>) -> Option<Cause> {
    match m.verdict? {
        Verdict::Inbox => None,
        Verdict::Spam => Some(found(CauseSource::Folder, m.headers)),
        Verdict::SpamTagged => Some(found(CauseSource::Header, m.headers)),
        Verdict::Missing => Some(Cause {
            reason: "filtered",
            source: CauseSource::Timeout,
            hint: Some(
                "accepted, then in neither inbox nor spam folder by the timeout: dropped or \
                 quarantined after acceptance, or still on its way (a longer --timeout tells)"
                    .into(),
            ),
            url: None,
        }),
        Verdict::Deferred | Verdict::Rejected => Some(refused(m)),
    }
}

/// A refusal, by the precedence of the ledger: the SMTP outcome first, then downstream.
fn refused(m: &Recorded<'_>) -> Cause {
    let provider = |host: Option<&str>, rcpt: Option<&str>| {
        replies::family(m.provider).or_else(|| reason::provider::provider(host, rcpt))
    };
    if let Some(code) = m.smtp_code.filter(|c| *c >= 400) {
        let text = [m.smtp_enhanced, m.smtp_text]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut c = read_reply(
            CauseSource::Smtp,
            provider(m.smtp_host, Some(m.address)),
            replies::Reply {
                code: Some(code),
                status: m.smtp_enhanced,
                text: &format!("{code} {text}"),
            },
        );
        // A direct reply is no report of retries running out, and words nobody placed say
        // no more than no words.
        if matches!(c.reason, "expired" | "onhold") {
            c.reason = reason::UNDEFINED;
        }
        return c;
    }
    if m.smtp_code.is_none()
        && let Some(error) = m.smtp_error
    {
        return session_failure(m.verdict, error);
    }
    if let Some(d) = m.downstream {
        let source = match d.source {
            DownstreamSource::Maillog => CauseSource::Maillog,
            // A DSN names a Status for every recipient (RFC 3464); the rejection notice (MDN)
            // has none, and is stored as a DSN-sourced report.
            DownstreamSource::Dsn if d.status.is_none() => CauseSource::Mdn,
            DownstreamSource::Dsn => CauseSource::Dsn,
        };
        let mut c = read_reply(
            source,
            provider(
                d.remote_mta.as_deref(),
                Some(d.recipient.as_deref().unwrap_or(m.address)),
            ),
            replies::Reply {
                code: d.reply_code(),
                status: d.status.as_deref(),
                text: d.diagnostic.as_deref().unwrap_or(""),
            },
        );
        // A rejection notice with words no rule places is still the recipient's filter.
        if source == CauseSource::Mdn && matches!(c.reason, reason::UNDEFINED | "onhold") {
            c.reason = "filtered";
        }
        return c;
    }
    Cause {
        reason: reason::UNDEFINED,
        source: CauseSource::Smtp,
        hint: None,
        url: None,
    }
}

/// A reply (or a report's diagnostic): the provider's pattern, else the generic rules.
fn read_reply(source: CauseSource, provider: Option<&str>, reply: replies::Reply<'_>) -> Cause {
    let meaning = provider.and_then(|p| replies::lookup(p, reply));
    let generic = || reason::classify(reply.status, Some(reply.text));
    match meaning {
        Some(m) => Cause {
            reason: m.reason.unwrap_or_else(generic),
            source,
            hint: m.hint.map(str::to_owned),
            url: m.url,
        },
        None => Cause {
            reason: generic(),
            source,
            hint: None,
            url: None,
        },
    }
}

/// No reply ended the transaction: the session's error, as `SessionError` words it.
fn session_failure(verdict: Option<Verdict>, error: &str) -> Cause {
    let lower = error.to_ascii_lowercase();
    let reason = if lower.contains("null mx") {
        "notaccept"
    } else if lower.starts_with("dns lookup") {
        // The ledger rejects only for NXDOMAIN; any other DNS failure is deferred.
        if verdict == Some(Verdict::Rejected) {
            "hostunknown"
        } else {
            "networkerror"
        }
    } else if lower.contains("tls") {
        "failedstarttls"
    } else {
        match reason::classify(None, Some(error)) {
            reason::UNDEFINED | "onhold" | "expired" => "networkerror",
            r => r,
        }
    };
    Cause {
        reason,
        source: CauseSource::Smtp,
        hint: None,
        url: None,
    }
}

/// A found message marked as spam (by folder or header): an authentication failure the
/// receiver recorded, else spam.
fn found(source: CauseSource, headers: Option<&HeaderEvidence>) -> Cause {
    let failed = headers
        .map(|h| auth_results::from_receiver(h.values("Authentication-Results")))
        .unwrap_or_default()
        .iter()
        .flat_map(|a| a.results.iter())
        .filter(|r| match r.method.as_str() {
            "spf" => matches!(r.result.as_str(), "fail" | "softfail"),
            "dkim" | "dmarc" => r.result == "fail",
            _ => false,
        })
        .map(|r| format!("{}={}", r.method, r.result))
        .collect::<Vec<_>>();
    if failed.is_empty() {
        Cause {
            reason: "spamdetected",
            source,
            hint: Some(match source {
                CauseSource::Header => "delivered, but marked as spam: see the spam headers".into(),
                _ => "the receiver's filter put it in the spam folder: check content, \
                      reputation and the spam headers"
                    .into(),
            }),
            url: None,
        }
    } else {
        Cause {
            reason: "authfailure",
            source,
            hint: Some(format!(
                "the receiver's Authentication-Results say {}: fix SPF, DKIM or DMARC first",
                failed.join(", ")
            )),
            url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::DownstreamAction;

    fn smtp<'a>(
        verdict: Verdict,
        provider: &'a str,
        code: u16,
        enhanced: Option<&'a str>,
        text: &'a str,
    ) -> Recorded<'a> {
        Recorded {
            verdict: Some(verdict),
            provider,
            address: "seed@example.org",
            smtp_host: Some("mx.example.org"),
            smtp_code: Some(code),
            smtp_enhanced: enhanced,
            smtp_text: Some(text),
            ..Recorded::default()
        }
    }

    #[test]
    fn smtp_replies() {
        let table: &[(Recorded<'_>, &str, bool)] = &[
            (
                smtp(
                    Verdict::Deferred,
                    "gmail",
                    421,
                    Some("4.7.28"),
                    "[127.0.0.1] Our system has detected an unusual rate of unsolicited mail",
                ),
                "ratelimited",
                true,
            ),
            (
                smtp(
                    Verdict::Deferred,
                    "-",
                    450,
                    Some("4.7.1"),
                    "Temporarily deferred: seedprobe lab simulates a rate limit, try again later",
                ),
                "ratelimited",
                false,
            ),
            (
                smtp(
                    Verdict::Rejected,
                    "-",
                    550,
                    Some("5.7.1"),
                    "Message refused: seedprobe lab simulates a block list",
                ),
                "blocked",
                false,
            ),
            (
                smtp(Verdict::Deferred, "-", 451, None, "try later"),
                "undefined",
                false,
            ),
            (
                smtp(
                    Verdict::Rejected,
                    "tonline",
                    554,
                    Some("5.7.1"),
                    "IP=127.0.0.1 - None/bad reputation. (NOWL)",
                ),
                "badreputation",
                true,
            ),
        ];
        for (m, reason, hinted) in table {
            let c = cause(m).unwrap();
            assert_eq!(c.reason, *reason, "{m:?}");
            assert_eq!(c.source, CauseSource::Smtp);
            assert_eq!(c.hint.is_some(), *hinted, "{m:?}");
        }
    }

    #[test]
    fn the_provider_comes_from_the_mx_when_the_seed_names_none() {
        let mut m = smtp(
            Verdict::Rejected,
            "-",
            550,
            Some("5.7.1"),
            "part of their network is on our block list (S3150)",
        );
        m.smtp_host = Some("example-org.mail.protection.outlook.com");
        let c = cause(&m).unwrap();
        assert_eq!(c.reason, "blocked");
        assert_eq!(c.url.as_deref(), Some("https://olcsupport.office.com"));
    }

    #[test]
    fn session_failures() {
        let table = [
            (
                Verdict::Rejected,
                "example.org publishes a null MX (RFC 7505): it accepts no mail",
                "notaccept",
            ),
            (
                Verdict::Rejected,
                "DNS lookup of nx.example failed: no record",
                "hostunknown",
            ),
            (
                Verdict::Deferred,
                "DNS lookup of example.org failed: timed out",
                "networkerror",
            ),
            (
                Verdict::Deferred,
                "mx:25 closed the connection",
                "networkerror",
            ),
            (
                Verdict::Deferred,
                "TLS with mx:25 failed: bad certificate",
                "failedstarttls",
            ),
        ];
        for (verdict, error, want) in table {
            let m = Recorded {
                verdict: Some(verdict),
                smtp_error: Some(error),
                ..Recorded::default()
            };
            assert_eq!(cause(&m).unwrap().reason, want, "{error}");
        }
    }

    #[test]
    fn downstream_reports() {
        let report = |source, status: Option<&str>, diagnostic: &str| Downstream {
            source,
            action: DownstreamAction::Failed,
            recipient: Some("seed@t-online.de".into()),
            status: status.map(str::to_owned),
            remote_mta: Some("mx00.t-online.de".into()),
            diagnostic: Some(diagnostic.into()),
            command: None,
            reason: None,
        };
        let table = [
            (
                report(
                    DownstreamSource::Dsn,
                    Some("5.0.0"),
                    "smtp; 554 IP=192.0.2.1 - None/bad reputation. (NOWL)",
                ),
                CauseSource::Dsn,
                "badreputation",
            ),
            (
                report(
                    DownstreamSource::Maillog,
                    Some("5.1.1"),
                    "host mx said: 550 5.1.1 user unknown",
                ),
                CauseSource::Maillog,
                "userunknown",
            ),
            (
                report(DownstreamSource::Dsn, None, "seedprobe lab refuses it"),
                CauseSource::Mdn,
                "filtered",
            ),
        ];
        for (d, source, reason) in &table {
            let m = Recorded {
                verdict: Some(Verdict::Rejected),
                smtp_code: Some(250),
                downstream: Some(d),
                ..Recorded::default()
            };
            let c = cause(&m).unwrap();
            assert_eq!((c.source, c.reason), (*source, *reason), "{d:?}");
        }
    }

    #[test]
    fn found_and_missing() {
        let fields = |f: &[(&str, &str)]| HeaderEvidence {
            subject: Some("Check".into()),
            fields: f
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let clean = fields(&[]);
        let failed = fields(&[(
            "Authentication-Results",
            "mx.lab.test; spf=fail smtp.mailfrom=a@b; dkim=none",
        )]);
        let passed = fields(&[(
            "Authentication-Results",
            "mx.lab.test; spf=pass smtp.mailfrom=a@b; dkim=pass header.d=b",
        )]);
        let table = [
            (Verdict::Spam, &clean, CauseSource::Folder, "spamdetected"),
            (Verdict::Spam, &failed, CauseSource::Folder, "authfailure"),
            (Verdict::Spam, &passed, CauseSource::Folder, "spamdetected"),
            (
                Verdict::SpamTagged,
                &clean,
                CauseSource::Header,
                "spamdetected",
            ),
            (
                Verdict::SpamTagged,
                &failed,
                CauseSource::Header,
                "authfailure",
            ),
        ];
        for (verdict, h, source, reason) in table {
            let m = Recorded {
                verdict: Some(verdict),
                headers: Some(h),
                ..Recorded::default()
            };
            let c = cause(&m).unwrap();
            assert_eq!((c.source, c.reason), (source, reason), "{verdict} {h:?}");
        }
        let missing = cause(&Recorded {
            verdict: Some(Verdict::Missing),
            ..Recorded::default()
        })
        .unwrap();
        assert_eq!(
            (missing.source, missing.reason),
            (CauseSource::Timeout, "filtered")
        );
        for none in [None, Some(Verdict::Inbox)] {
            let m = Recorded {
                verdict: none,
                ..Recorded::default()
            };
            assert_eq!(cause(&m), None);
        }
    }
}
