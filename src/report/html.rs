//! `probe report --format html`: one self-contained page (inline CSS, no script, no external
//! assets) from the same data as the JSON document. Every text is escaped: server replies and
//! header fields are attacker-controlled.

use std::fmt::Write as _;

use super::{JsonMessage, RunReport};
use crate::poll::HeaderEvidence;
use crate::store::MessageRecord;

/// The matrix columns: the six verdicts, best first, then `pending`.
const COLUMNS: [&str; 7] = [
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
.seed{background:#fff;border:1px solid #d6dae1;border-radius:6px;margin:0 0 14px;padding:10px 14px}
.seed h3{margin:0 0 8px;font-size:15px}
.seed table{width:100%}
.seed th{width:170px}
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
        o.push_str("<h2>Seeds</h2>\n");
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

fn seed_details(o: &mut String, record: &MessageRecord, m: &JsonMessage<'_>) {
    let verdict = m.verdict.unwrap_or("pending");
    let _ = write!(
        o,
        "<section class=\"seed\">\n<h3>{} <span class=\"verdict {verdict}\">{verdict}</span></h3>\n<table>\n",
        escape(m.seed)
    );
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
    let rows: [(&str, Option<String>, bool); 13] = [
        ("provider", opt(Some(m.provider)), false),
        ("address", opt(Some(m.address)), false),
        ("verdict", opt(Some(verdict)), false),
        ("reason", opt(m.reason), false),
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
        ("folder", opt(m.folder), false),
        ("tab", opt(m.tab), false),
        ("authentication", auth, false),
        ("spam score", score, false),
        ("spam marks", marks, false),
        (
            "latency",
            secs(m.latency_ms.map(|l| l as i64)).map(|l| match secs(m.delivery_latency_ms) {
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
        o.push_str("<h4>Header evidence</h4>\n<table class=\"headers\">\n");
        if let Some(s) = &h.subject {
            let _ = writeln!(
                o,
                "<tr><th>Subject</th><td><pre>{}</pre></td></tr>",
                escape(s)
            );
        }
        for (name, value) in &h.fields {
            let _ = writeln!(
                o,
                "<tr><th>{}</th><td><pre>{}</pre></td></tr>",
                escape(name),
                escape(value)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</section>\n");
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
}
