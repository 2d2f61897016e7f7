//! `probe report --format html`: one self-contained page (inline CSS, no script, no external
//! assets) from the same data as the JSON document. Every text is escaped: server replies and
//! header fields are attacker-controlled.

use std::fmt::Write as _;

use super::{JsonMessage, RunReport};
use crate::poll::HeaderEvidence;
use crate::store::MessageRecord;

/// The matrix columns: the six verdicts, best first, then `pending`.
pub const COLUMNS: [&str; 7] = [
    "inbox",
    "spam_tagged",
    "spam",
    "deferred",
    "missing",
    "rejected",
    "pending",
];

/// The report's style sheet, shared by `probe serve`'s pages so they look alike.
pub const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 12px}
h2{font-size:17px;margin:28px 0 10px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #d6dae1;padding:6px 10px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
dl.run{display:grid;grid-template-columns:max-content auto;gap:4px 16px;margin:0}
dl.run dt{font-weight:600;color:#555}
dl.run dd{margin:0}
table.matrix td.n{text-align:center;min-width:64px;font-variant-numeric:tabular-nums}
table.matrix tfoot th,table.matrix tfoot td{border-top:2px solid #9aa3b0;font-weight:600}
table.matrix td.zero{color:#aab;background:#fff}
td.inbox,span.inbox{background:#c8ecc9}
td.spam_tagged,span.spam_tagged{background:#ffe0b2}
td.spam,span.spam{background:#ffb38f}
td.deferred,span.deferred{background:#fff3a6}
td.rejected,span.rejected{background:#f5a3a3}
td.missing,span.missing{background:#dcdcdc}
td.pending,span.pending{background:#e3ecf7}
table.checks td.pass{background:#c8ecc9}
table.checks td.warn{background:#fff3a6}
table.checks td.fail{background:#f5a3a3}
table.checks td.error{background:#dcdcdc}
span.verdict{padding:1px 8px;border-radius:10px;font-weight:600}
.seeds-head,details.seed>summary{display:grid;grid-template-columns:minmax(140px,1.3fr) minmax(90px,.8fr) 136px minmax(120px,1.6fr) minmax(80px,.8fr) 70px;gap:0 12px;padding:4px 10px 4px 26px;align-items:baseline}
.seeds-head{font-weight:600;background:#eef1f5;border:1px solid #d6dae1;border-bottom:0}
details.seed{background:#fff;border:1px solid #d6dae1;border-top:0}
details.seed:first-of-type{border-top:1px solid #d6dae1}
details.seed>summary{cursor:pointer;list-style:none;position:relative}
details.seed>summary::-webkit-details-marker{display:none}
details.seed>summary::before{content:'\\25b8';position:absolute;left:10px;color:#889}
details.seed[open]>summary::before{content:'\\25be'}
details.seed>summary span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
details.seed>summary .name{font-weight:600}
details.seed>summary .lat{text-align:right;font-variant-numeric:tabular-nums}
details.seed[open]{padding-bottom:10px}
details.seed[open]>summary{background:#f3f5f8}
details.seed table{width:calc(100% - 36px);margin:8px 0 0 26px}
details.seed th{width:170px}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all;margin:0}
table.headers th{width:260px;font-weight:normal;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.none{color:#889}
";

/// Text escaped for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn or_none(v: Option<String>) -> String {
    match v {
        Some(v) if !v.is_empty() => escape(&v),
        _ => "<span class=\"none\">-</span>".into(),
    }
}

fn secs(ms: Option<i64>) -> Option<String> {
    ms.map(|l| format!("{:.1}s", l as f64 / 1000.0))
}

impl RunReport {
    /// The HTML page.
    pub fn to_html(&self) -> String {
        let json = self.to_json();
        let mut o = String::new();
        let title = format!("probe run {}", self.run.id);
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&title),
            escape(&title)
        );
        o.push_str("<dl class=\"run\">\n");
        let finished = match &json.finished_at {
            Some(at) => at.clone(),
            None => "not finished".into(),
        };
        for (k, v) in [
            ("Run", Some(self.run.id.clone())),
            ("Started", Some(json.started_at.clone())),
            ("Finished", Some(finished)),
            ("Label", self.run.label.clone()),
            ("Transport", Some(self.run.transport.to_string())),
            ("Sender", Some(self.run.sender_from.clone())),
            ("Source IP", self.run.source_ip.clone()),
            ("Messages", Some(self.messages.len().to_string())),
        ] {
            let _ = writeln!(o, "<dt>{k}</dt><dd>{}</dd>", or_none(v));
        }
        o.push_str("</dl>\n");

        // Provider by verdict.
        o.push_str("<h2>Placement by provider</h2>\n<table class=\"matrix\">\n<thead><tr><th>provider</th>");
        for c in COLUMNS {
            let _ = write!(o, "<th>{c}</th>");
        }
        o.push_str("<th>total</th></tr></thead>\n<tbody>\n");
        let row = |o: &mut String, name: &str, placement: &super::Placement| {
            let _ = write!(o, "<tr><th>{}</th>", escape(name));
            for c in COLUMNS {
                let n = placement.count_label(c);
                let class = if n == 0 { "zero" } else { c };
                let _ = write!(o, "<td class=\"n {class}\" data-verdict=\"{c}\">{n}</td>");
            }
            let _ = writeln!(o, "<td class=\"n\">{}</td></tr>", placement.total());
        };
        for (provider, placement) in self.placement_by_provider() {
            row(&mut o, provider, &placement);
        }
        o.push_str("</tbody>\n<tfoot>");
        row(&mut o, "all", &self.placement());
        o.push_str("</tfoot>\n</table>\n");

        checks_section(&mut o, self.run.checks.as_ref());

        // Per seed.
        let _ = writeln!(
            o,
            "<h2>Seeds</h2>\n<p class=\"none\">One row per seed; open a row for its SMTP reply, \
             authentication results, header evidence and cause.</p>"
        );
        seed_list_head(&mut o);
        for (record, m) in self.messages.iter().zip(&json.messages) {
            seed_details(&mut o, record, m);
        }
        o.push_str("</body>\n</html>\n");
        o
    }
}

/// The checks made with the run: every result, failures first marked by their status class.
fn checks_section(o: &mut String, checks: Option<&crate::check::Report>) {
    let Some(checks) = checks else {
        return;
    };
    let _ = writeln!(
        o,
        "<h2>Checks of {} and {}</h2>\n<table class=\"checks\">\n\
         <thead><tr><th>check</th><th>subject</th><th>list</th><th>status</th><th>detail</th><th>code</th></tr></thead>\n<tbody>",
        escape(&checks.source_ip.to_string()),
        escape(&checks.domain)
    );
    for r in &checks.results {
        let status = r.status.as_str();
        let _ = writeln!(
            o,
            "<tr class=\"check-{status}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.check),
            escape(&r.subject),
            or_none(r.list.clone()),
            escape(&r.detail),
            or_none(r.code.clone()),
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

/// The seed list's columns: one compact row per seed, the rest folded.
const SEED_COLUMNS: [&str; 6] = ["seed", "provider", "verdict", "reason", "folder", "latency"];

/// The seed list's header row, in the grid the rows use.
fn seed_list_head(o: &mut String) {
    o.push_str("<div class=\"seeds-head\">");
    for c in SEED_COLUMNS {
        let _ = write!(o, "<span>{c}</span>");
    }
    o.push_str("</div>\n");
}

/// One seed: a compact row (the `<summary>`), its details folded under it.
fn seed_details(o: &mut String, record: &MessageRecord, m: &JsonMessage<'_>) {
    let verdict = m.verdict.unwrap_or("pending");
    let latency = secs(m.latency_ms.map(|l| l as i64));
    let reason = m.reason.or(m.cause.as_ref().map(|c| c.reason));
    let _ = writeln!(
        o,
        "<details class=\"seed\" data-verdict=\"{verdict}\"><summary>\
         <span class=\"name\">{}</span><span>{}</span>\
         <span><span class=\"verdict {verdict}\">{verdict}</span></span>\
         <span>{}</span><span>{}</span><span class=\"lat\">{}</span></summary>",
        escape(m.seed),
        escape(m.provider),
        or_none(reason.map(str::to_owned)),
        or_none(m.folder.map(str::to_owned)),
        or_none(latency.clone()),
    );
    o.push_str("<table class=\"detail\">\n");
    // `None` shows as a dash of its own style, not the outcome's plain "-".
    let smtp = record.smtp.reply().or_else(|| record.smtp.error.clone());
    let auth = if m.authentication.is_empty() {
        None
    } else {
        Some(
            m.authentication
                .iter()
                .map(|a| {
                    let methods = a
                        .results
                        .iter()
                        .map(|r| format!("{}={}", r.method, r.result))
                        .collect::<Vec<_>>()
                        .join(" ");
                    if a.authserv_id.is_empty() {
                        methods
                    } else {
                        format!("{}: {methods}", a.authserv_id)
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    let (score, marks) = match &m.spam {
        Some(s) => (s.score.map(|s| s.to_string()), {
            let marks = s.marks();
            (!marks.is_empty()).then(|| marks.join("; "))
        }),
        None => (None, None),
    };
    let opt = |s: Option<&str>| s.map(str::to_owned);
    let rows: [(&str, Option<String>, bool); 9] = [
        ("address", opt(Some(m.address)), false),
        ("SMTP reply", smtp, true),
        (
            "SMTP host / stage",
            Some(format!(
                "{} / {}",
                m.smtp.host.unwrap_or("-"),
                m.smtp.stage.unwrap_or("-")
            )),
            false,
        ),
        ("tab", opt(m.tab), false),
        ("authentication", auth, false),
        ("spam score", score, false),
        ("spam marks", marks, false),
        (
            "latency",
            latency.map(|l| match secs(m.delivery_latency_ms) {
                Some(d) => format!("{l} (provider's Received: {d})"),
                None => l,
            }),
            false,
        ),
        ("polling problem", opt(m.poll_error), false),
    ];
    for (k, v, code) in rows {
        let v = if code && v.is_some() {
            format!("<code>{}</code>", or_none(v))
        } else {
            or_none(v)
        };
        let _ = writeln!(o, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    cause_rows(o, m);
    o.push_str("</table>\n");
    let headers = m
        .headers
        .clone()
        .and_then(|h| serde_json::from_value::<HeaderEvidence>(h).ok());
    if let Some(h) = headers {
        o.push_str("<table class=\"headers\">\n");
        for (name, value) in header_rows(&h) {
            let _ = writeln!(
                o,
                "<tr><th>{}</th><td><pre>{}</pre></td></tr>",
                escape(&name),
                escape(value)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</details>\n");
}

/// The header evidence's rows: the decoded Subject once, then the kept raw fields; the raw
/// Subject field only when it differs from the decoded one (encoded words), named so.
fn header_rows(h: &HeaderEvidence) -> Vec<(String, &str)> {
    let mut rows = Vec::new();
    if let Some(s) = &h.subject {
        rows.push(("Subject".to_owned(), s.as_str()));
    }
    for (name, value) in &h.fields {
        if name.eq_ignore_ascii_case("subject") {
            match &h.subject {
                Some(s) if s.trim() == value.trim() => continue,
                Some(_) => rows.push(("Subject (raw)".to_owned(), value.as_str())),
                None => rows.push((name.clone(), value.as_str())),
            }
        } else {
            rows.push((name.clone(), value.as_str()));
        }
    }
    rows
}

/// The cause's rows of a seed's table: reason and source, hint, and the provider's page as a
/// link (only an https or mailto address; anything else is shown as text).
fn cause_rows(o: &mut String, m: &JsonMessage<'_>) {
    let Some(c) = &m.cause else {
        return;
    };
    let _ = writeln!(
        o,
        "<tr><th>cause</th><td>{} <span class=\"none\">(from {})</span></td></tr>",
        escape(c.reason),
        c.source.as_str()
    );
    if let Some(hint) = &c.hint {
        let _ = writeln!(o, "<tr><th>hint</th><td>{}</td></tr>", escape(hint));
    }
    if let Some(url) = &c.url {
        let url = escape(url);
        let cell = if url.starts_with("https://") || url.starts_with("mailto:") {
            format!("<a href=\"{url}\">{url}</a>")
        } else {
            url
        };
        let _ = writeln!(o, "<tr><th>provider page</th><td>{cell}</td></tr>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let verdicts: Vec<&str> = crate::verdict::Verdict::ALL
            .iter()
            .map(|v| v.as_label())
            .collect();
        assert_eq!(verdicts, COLUMNS[..6]);
    }

    /// A case: its name, the decoded subject, the raw fields, the row names wanted.
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<(String, String)>,
        Vec<&'static str>,
    );

    #[test]
    fn the_subject_shows_once_unless_the_raw_field_differs() {
        let field = |v: &str| ("Subject".to_owned(), v.to_owned());
        let other = ("X-Spam".to_owned(), "yes".to_owned());
        let cases: [Case; 4] = [
            (
                "decoded equals raw",
                Some("hi"),
                vec![field("hi"), other.clone()],
                vec!["Subject", "X-Spam"],
            ),
            (
                "encoded raw",
                Some("hé"),
                vec![field("=?utf-8?q?h=C3=A9?=")],
                vec!["Subject", "Subject (raw)"],
            ),
            ("no decoded", None, vec![field("hi")], vec!["Subject"]),
            ("no field", Some("hi"), vec![], vec!["Subject"]),
        ];
        for (name, subject, fields, want) in cases {
            let h = HeaderEvidence {
                subject: subject.map(str::to_owned),
                fields,
            };
            let got: Vec<String> = header_rows(&h).into_iter().map(|(n, _)| n).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
