//! Spam verdict headers: what filters at the receiving provider said about our message.
//!
//! Sources (see the team's provider facts): SpamAssassin and rspamd (`X-Spam-Flag`,
//! `X-Spam-Status`, `X-Spam-Score`, `X-Spam-Level`, subject prefixes), rspamd and OpenSMTPD's
//! filters (`X-Spam: Yes`, `X-Spamd-Result`), Microsoft
//! (`X-MS-Exchange-Organization-SCL`, `X-Forefront-Antispam-Report` with SCL/SFV/BCL,
//! `X-Microsoft-Antispam` with BCL), GMX and web.de (`X-UI-Filterresults`).

use serde::{Deserialize, Serialize};

use super::HeaderEvidence;

/// Subject prefixes spam filters add (SpamAssassin's `rewrite_header Subject`, Amavis, rspamd).
const SUBJECT_MARKS: &[&str] = &["[SPAM]", "***SPAM***", "*****SPAM*****", "{SPAM}", "SPAM:"];

/// Microsoft's spam confidence level from which mail goes to junk (SCL 5..9).
const SCL_JUNK: i32 = 5;

/// Stars in `X-Spam-Level` from which the message counts as marked. SpamAssassin writes one
/// star per whole point of score (rspamd's `x-spam-level` routine does the same), and 5.0 is
/// SpamAssassin's default `required_score`: five stars is "over the default threshold". The
/// stars are only read when no filter said yes or no itself (`X-Spam-Flag`, `X-Spam-Status`,
/// `X-Spam`): a site that raised its threshold writes `X-Spam-Status: No` with six stars, and
/// its own word wins.
const LEVEL_STARS_SPAM: usize = 5;

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
    /// `X-Spam: Yes`, as rspamd's `spam-header` routine and OpenSMTPD's filters write it.
    #[serde(default)]
    pub x_spam_yes: bool,
    /// rspamd's `X-Spamd-Result` begins `default: True` (rspamd's action was `reject`).
    #[serde(default)]
    pub spamd_result_true: bool,
    /// The number of stars (`*`) in `X-Spam-Level`.
    #[serde(default)]
    pub level_stars: Option<usize>,
    /// A filter stated its verdict, yes or no (`X-Spam-Flag`, `X-Spam-Status`, `X-Spam`), so
    /// the `X-Spam-Level` stars are not read as one.
    #[serde(default)]
    pub explicit_verdict: bool,
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
        for value in headers.values("X-Spam") {
            // "Yes", or "Yes, score=..." from some filters; only the first word counts.
            let first = value.trim().split([',', ';', ' ']).next().unwrap_or("");
            s.x_spam_yes |= first.eq_ignore_ascii_case("yes");
        }
        s.explicit_verdict = ["X-Spam-Flag", "X-Spam-Status", "X-Spam"]
            .iter()
            .any(|name| headers.values(name).next().is_some());
        // "default: True [16.20 / 15.00]; SYMBOL(1.00)[...]; ...": True only for `reject`.
        for result in headers.values("X-Spamd-Result") {
            let Some(rest) = result.trim_start().strip_prefix("default:") else {
                continue;
            };
            let rest = rest.trim_start();
            if rest
                .get(..4)
                .is_some_and(|w| w.eq_ignore_ascii_case("true"))
            {
                s.spamd_result_true = true;
            }
            if s.score.is_none() {
                s.score = field(rest, "[", '/').and_then(|v| v.parse().ok());
            }
        }
        if s.score.is_none() {
            s.score = headers
                .values("X-Spam-Score")
                .find_map(|v| v.trim().parse().ok());
        }
        s.level_stars = headers
            .values("X-Spam-Level")
            .map(|v| v.trim().chars().take_while(|c| *c == '*').count())
            .max();
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
        if self.x_spam_yes {
            marks.push("X-Spam: Yes".into());
        }
        if self.spamd_result_true {
            marks.push(match self.score {
                Some(score) => format!("X-Spamd-Result: default: True (score {score})"),
                None => "X-Spamd-Result: default: True".into(),
            });
        }
        if let Some(stars) = self
            .level_stars
            .filter(|n| *n >= LEVEL_STARS_SPAM && !self.explicit_verdict)
        {
            marks.push(format!("X-Spam-Level: {stars} stars"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(fields: &[(&str, &str)]) -> Vec<String> {
        let headers = HeaderEvidence {
            subject: Some("Deliverability check".into()),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        SpamSignals::from_headers(&headers).marks()
    }

    /// (header fields, the marks they make)
    type Row<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

    #[test]
    fn marks_of_each_filter() {
        let rows: &[Row] = &[
            // OpenSMTPD's junk filter and rspamd's spam-header routine.
            (&[("X-Spam", "Yes")], &["X-Spam: Yes"]),
            (&[("X-Spam", "yes")], &["X-Spam: Yes"]),
            (&[("X-Spam", "No")], &[]),
            (&[("X-Spam", "yesterday")], &[]),
            // rspamd: True only when its action was reject; the score is in the brackets.
            (
                &[(
                    "X-Spamd-Result",
                    "default: True [16.20 / 15.00]; BAYES_SPAM(5.10)[99.99%]",
                )],
                &["X-Spamd-Result: default: True (score 16.2)"],
            ),
            (
                &[(
                    "X-Spamd-Result",
                    "default: False [3.10 / 15.00]; R_SPF_ALLOW(-0.20)[+ip4]",
                )],
                &[],
            ),
            // Stars: five or more, when no filter said yes or no itself.
            (&[("X-Spam-Level", "*****")], &["X-Spam-Level: 5 stars"]),
            (&[("X-Spam-Level", "****")], &[]),
            (&[("X-Spam-Level", "")], &[]),
            (
                &[
                    ("X-Spam-Status", "No, score=6.1 required=8.0"),
                    ("X-Spam-Level", "******"),
                ],
                &[],
            ),
            (
                &[
                    ("X-Spam-Status", "Yes, score=6.1 required=5.0"),
                    ("X-Spam-Level", "******"),
                ],
                &["X-Spam-Status: Yes (score 6.1)"],
            ),
            // Exchange on premises: the organisation's SCL alone.
            (
                &[("X-MS-Exchange-Organization-SCL", "5")],
                &["Microsoft SCL 5"],
            ),
            (
                &[("X-MS-Exchange-Organization-SCL", " 9 ")],
                &["Microsoft SCL 9"],
            ),
            (&[("X-MS-Exchange-Organization-SCL", "1")], &[]),
            (&[("X-MS-Exchange-Organization-SCL", "-1")], &[]),
        ];
        for (fields, want) in rows {
            assert_eq!(marks(fields), *want, "{fields:?}");
        }
    }
}
