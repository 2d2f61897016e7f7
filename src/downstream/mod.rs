//! Downstream: what became of a message after the relay accepted it.
//!
//! In relay mode the relay's `250` is not the end. The relay reports later, in a delivery
//! status notification (DSN, RFC 3464) sent to the bounces mailbox ([`dsn`]), and in its own
//! Postfix log ([`maillog`]). Both become a [`Downstream`] report; [`crate::verdict`] decides
//! what a report means for the verdict.
//!
//! Bounces that are no DSN are read too: plain-text reports ([`plain`]) and Amazon SES's JSON
//! notifications ([`ses`]). What a report says in fixed words of its own, the SMTP command
//! refused and a reason from its mailer's message table, is [`stated`]'s; this module only
//! reads what reports say, [`crate::reason`] classifies it.

pub mod dsn;
pub mod maillog;
pub mod plain;
pub mod ses;
pub mod stated;

use serde::{Deserialize, Serialize};

/// What the relay says happened on the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownstreamAction {
    /// Still trying: the next hop deferred it (DSN `Action: delayed`, log `status=deferred`).
    Delayed,
    /// Given up: the next hop refused it (DSN `Action: failed`, log `status=bounced`/`expired`).
    Failed,
    /// Handed on (DSN `delivered`/`relayed`/`expanded`, log `status=sent`).
    Delivered,
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownstreamSource {
    /// A DSN in the bounces mailbox.
    Dsn,
    /// A line of the relay's Postfix log.
    Maillog,
}

/// One downstream report about one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downstream {
    /// DSN or log.
    pub source: DownstreamSource,
    /// What happened.
    pub action: DownstreamAction,
    /// The recipient it is about.
    pub recipient: Option<String>,
    /// Enhanced status code, e.g. `4.7.1` (DSN `Status`, log `dsn=`).
    pub status: Option<String>,
    /// The remote host (DSN `Remote-MTA`, log `relay=`).
    pub remote_mta: Option<String>,
    /// The remote reply (DSN `Diagnostic-Code`, the log's parenthesised text).
    pub diagnostic: Option<String>,
    /// The SMTP command the remote reply answered (`RCPT`, `DATA`, `MAIL`, `CONN`, ...), when
    /// the report says it: the same words mean an unknown address after RCPT and a filter
    /// after DATA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A reason the report itself states in its own fixed wording (a mailer's message table,
    /// as Sisimai's lhost modules read it), which then wins over classifying the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Downstream {
    /// The SMTP reply code inside the diagnostic (`smtp; 550 5.7.1 ...` or `said: 450 ...`).
    pub fn reply_code(&self) -> Option<u16> {
        let d = self.diagnostic.as_deref()?;
        let d = d.strip_prefix("smtp;").unwrap_or(d);
        let d = match d.find(" said: ") {
            Some(i) => &d[i + 7..],
            None => d,
        };
        let code = d.trim_start().get(..3)?;
        code.parse()
            .ok()
            .filter(|c| (200..600).contains(c))
            .or_else(|| reply_code_in(d))
    }
}

/// Builds the tables reports are read against now rather than at the first report (a
/// reader that starts several threads does this on the one that would otherwise wait).
pub fn prepare() {
    plain::prepare();
    stated::prepare();
}

/// The first SMTP reply code (`550`, `421-`) in free text: a word of three digits with a class
/// of 4 or 5, as plain-text bounces quote the remote reply mid-sentence.
pub fn reply_code_in(text: &str) -> Option<u16> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | '[' | ']' | '\'' | '"'))
        .find_map(|w| {
            let w = w.strip_suffix('-').unwrap_or(w);
            let code = w.strip_prefix('#').unwrap_or(w);
            (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
                .then(|| code.parse::<u16>().ok())
                .flatten()
                .filter(|c| (400..600).contains(c))
        })
}
