//! Spam verdict headers: what filters at the receiving provider said about our message.
//!
//! Sources (see the team's provider facts): SpamAssassin and rspamd (`X-Spam-Flag`,
//! `X-Spam-Status`, `X-Spam-Score`, subject prefixes), Microsoft
//! (`X-MS-Exchange-Organization-SCL`, `X-Forefront-Antispam-Report` with SCL/SFV/BCL,
//! `X-Microsoft-Antispam` with BCL), GMX and web.de (`X-UI-Filterresults`).

use serde::{Deserialize, Serialize};

use crate::poll::HeaderEvidence;

/// Subject prefixes spam filters add (SpamAssassin's `rewrite_header Subject`, Amavis, rspamd).
const SUBJECT_MARKS: &[&str] = &["[SPAM]", "***SPAM***", "*****SPAM*****", "{SPAM}", "SPAM:"];

/// Microsoft's spam confidence level from which mail goes to junk (SCL 5..9).
const SCL_JUNK: i32 = 5;

/// The spam signals found in a message's header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpamSignals {
    /// A subject prefix such as `[SPAM]`.
    pub subject_mark: Option<String>,
    /// `X-Spam-Flag: YES`.
    pub flag: bool,
    /// `X-Spam-Status` begins with `Yes`.
    pub status_yes: bool,
    /// The score from `X-Spam-Status: ... score=N` or `X-Spam-Score`.
    pub score: Option<f64>,
    /// Microsoft's spam confidence level (-1..9).
    pub scl: Option<i32>,
    /// Microsoft's spam filter verdict (`SFV:SPM`, `SFV:NSPM`, `SFV:SKN`, ...).
    pub sfv: Option<String>,
    /// Microsoft's bulk complaint level (0..9).
    pub bcl: Option<i32>,
    /// GMX/web.de `X-UI-Filterresults` says `junk`.
    pub ui_junk: bool,
}

impl SpamSignals {
    /// Reads the signals from a message's header evidence.
    pub fn from_headers(headers: &HeaderEvidence) -> SpamSignals {
        let mut s = SpamSignals::default();
        if let Some(subject) = &headers.subject {
            let upper = subject.trim_start().to_ascii_uppercase();
            s.subject_mark = SUBJECT_MARKS
                .iter()
                .find(|m| upper.starts_with(*m))
                .map(|m| m.to_string());
        }
        s.flag = headers
            .values("X-Spam-Flag")
            .any(|v| v.trim().eq_ignore_ascii_case("yes"));
        for status in headers.values("X-Spam-Status") {
            let t = status.trim_start();
            if t.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("yes")) {
                s.status_yes = true;
            }
            if s.score.is_none() {
                s.score = field(t, "score=", ' ').and_then(|v| v.parse().ok());
            }
        }
        if s.score.is_none() {
            s.score = headers
                .values("X-Spam-Score")
                .find_map(|v| v.trim().parse().ok());
        }
        s.scl = headers
            .values("X-MS-Exchange-Organization-SCL")
            .find_map(|v| v.trim().parse().ok());
        for report in headers.values("X-Forefront-Antispam-Report") {
            if s.scl.is_none() {
                s.scl = field(report, "SCL:", ';').and_then(|v| v.parse().ok());
            }
            if s.sfv.is_none() {
                s.sfv = field(report, "SFV:", ';').map(str::to_owned);
            }
            if s.bcl.is_none() {
                s.bcl = field(report, "BCL:", ';').and_then(|v| v.parse().ok());
            }
        }
        if s.bcl.is_none() {
            s.bcl = headers
                .values("X-Microsoft-Antispam")
                .find_map(|v| field(v, "BCL:", ';').and_then(|b| b.parse().ok()));
        }
        // "notjunk:1" is GMX's clean verdict; only a `junk` item marks spam.
        s.ui_junk = headers.values("X-UI-Filterresults").any(|v| {
            v.split(';')
                .any(|item| item.trim().to_ascii_lowercase().starts_with("junk"))
        });
        s
    }

    /// The signals that mark the message as spam, described; empty when it is clean.
    pub fn marks(&self) -> Vec<String> {
        let mut marks = Vec::new();
        if let Some(m) = &self.subject_mark {
            marks.push(format!("subject prefix {m}"));
        }
        if self.flag {
            marks.push("X-Spam-Flag: YES".into());
        }
        if self.status_yes {
            marks.push(match self.score {
                Some(score) => format!("X-Spam-Status: Yes (score {score})"),
                None => "X-Spam-Status: Yes".into(),
            });
        }
        if let Some(scl) = self.scl.filter(|scl| *scl >= SCL_JUNK) {
            marks.push(format!("Microsoft SCL {scl}"));
        }
        if self.sfv.as_deref() == Some("SPM") {
            marks.push("Microsoft SFV:SPM".into());
        }
        if self.ui_junk {
            marks.push("X-UI-Filterresults: junk".into());
        }
        marks
    }
}

/// The value after `key` up to `end` (or the end), e.g. `SCL:5;` → `5`.
fn field<'a>(text: &'a str, key: &str, end: char) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    let value = rest.split(end).next().unwrap_or(rest).trim();
    (!value.is_empty()).then_some(value)
}
