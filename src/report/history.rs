//! History views of stored runs: the table grouped by provider, CSV, and the list of runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{
    Columns, JsonMessage, RunReport, folder_latency_cells, printable, rfc3339, smtp_summary,
    verdict_cell,
};
use crate::store::MessageRecord;
use crate::verdict::{Placement, Verdict};

/// The CSV columns, in order: one row per message.
pub const CSV_HEADER: [&str; 22] = [
    "seed",
    "provider",
    "verdict",
    "address",
    "token",
    "reason",
    "smtp_host",
    "smtp_stage",
    "smtp_code",
    "smtp_enhanced",
    "smtp_text",
    "smtp_error",
    "folder",
    "tab",
    "latency_ms",
    "delivery_latency_ms",
    "spf",
    "dkim",
    "dmarc",
    "spam_score",
    "spam_marks",
    "poll_error",
];

/// One line: `inbox 50.0%, spam 25.0%, tagged 0.0%, deferred 1, rejected 0, missing 0`, and
/// `, pending N` while some are.
pub fn summary_line(p: &Placement) -> String {
    let mut s = format!(
        "inbox {:.1}%, spam {:.1}%, tagged {:.1}%, deferred {}, rejected {}, missing {}",
        p.percent(Verdict::Inbox),
        p.percent(Verdict::Spam),
        p.percent(Verdict::SpamTagged),
        p.count(Verdict::Deferred),
        p.count(Verdict::Rejected),
        p.count(Verdict::Missing),
    );
    if p.pending() > 0 {
        let _ = write!(s, ", pending {}", p.pending());
    }
    if p.not_sent() > 0 {
        let _ = write!(s, ", not sent {}", p.not_sent());
    }
    if p.interrupted() > 0 {
        let _ = write!(s, ", interrupted {}", p.interrupted());
    }
    s
}

/// RFC 4180 field: quoted when it holds a comma, a quote or a line break; quotes doubled.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn auth_result(m: &JsonMessage<'_>, method: &str) -> Option<String> {
    m.authentication
        .iter()
        .find_map(|a| a.get(method))
        .map(|r| r.result.clone())
}

impl RunReport {
    /// The share of messages that reached the inbox unmarked, in percent (`spam_tagged` is not
    /// inbox); 0 for a run without messages.
    pub fn inbox_percent(&self) -> f64 {
        self.placement().percent(Verdict::Inbox)
    }

    /// Placement per provider, in name order.
    pub fn placement_by_provider(&self) -> BTreeMap<&str, Placement> {
        let mut by: BTreeMap<&str, Placement> = BTreeMap::new();
        for m in &self.messages {
            by.entry(m.provider.as_str()).or_default().add(m.placed());
        }
        by
    }

    /// The report table: the run, then per provider a placement summary line and its seeds'
    /// rows. `verbose` adds under each seed its SMTP reply, folder and tab, authentication
    /// results, spam score and marks, and latencies.
    pub fn to_grouped_table(&self, verbose: bool) -> String {
        let json = self.to_json();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "run {}{}: started {}, {}{}, {}",
            self.run.id,
            self.run
                .label
                .as_deref()
                .map(|l| format!(" ({})", printable(l)))
                .unwrap_or_default(),
            json.started_at,
            self.run.transport,
            self.run
                .source_ip
                .as_deref()
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default(),
            if json.finished {
                "finished"
            } else {
                "not finished"
            },
        );
        let header = [
            "SEED",
            "VERDICT",
            "REASON",
            "SMTP REPLY",
            "FOLDER",
            "LATENCY",
        ];
        let rows: Vec<(&str, [String; 6])> = self
            .messages
            .iter()
            .map(|m| {
                let [folder, latency] = folder_latency_cells(m);
                (
                    m.provider.as_str(),
                    [
                        m.seed.clone(),
                        verdict_cell(m.verdict).to_owned(),
                        super::reason_cell(m),
                        smtp_summary(m),
                        folder,
                        latency,
                    ],
                )
            })
            .collect();
        let columns = Columns::fit(&header, rows.iter().map(|(_, row)| row));
        for (provider, placement) in self.placement_by_provider() {
            let _ = writeln!(
                out,
                "\nprovider {}: {} message(s): {}",
                printable(provider),
                placement.total(),
                summary_line(&placement)
            );
            out.push_str(&columns.line("  ", &header));
            let messages = self.messages.iter().zip(&json.messages);
            for ((p, row), (record, m)) in rows.iter().zip(messages) {
                if *p != provider {
                    continue;
                }
                out.push_str(&columns.row("  ", row));
                if verbose {
                    verbose_lines(&mut out, record, m);
                }
            }
        }
        let all = self.placement();
        let _ = writeln!(
            out,
            "\nall: {} message(s): {}",
            all.total(),
            summary_line(&all)
        );
        out.push_str(&self.not_tested_lines());
        // The run's checks, as at the end of `probe run`.
        if self.run.checks.is_some() {
            out.push('\n');
            out.push_str(&self.checks_lines());
        }
        out
    }

    /// CSV (RFC 4180, CRLF line ends): a header line, then one row per message.
    pub fn to_csv(&self) -> String {
        let json = self.to_json();
        let mut out = String::new();
        let row = |out: &mut String, cells: &[String]| {
            let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        };
        row(&mut out, &CSV_HEADER.map(str::to_owned));
        let opt = |s: Option<&str>| s.unwrap_or_default().to_owned();
        let num = |n: Option<String>| n.unwrap_or_default();
        for m in &json.messages {
            row(
                &mut out,
                &[
                    m.seed.to_owned(),
                    m.provider.to_owned(),
                    m.verdict.unwrap_or("pending").to_owned(),
                    m.address.to_owned(),
                    m.token.to_owned(),
                    opt(m.reason),
                    opt(m.smtp.host),
                    opt(m.smtp.stage),
                    num(m.smtp.code.map(|c| c.to_string())),
                    opt(m.smtp.enhanced),
                    opt(m.smtp.text),
                    opt(m.smtp.error),
                    opt(m.folder),
                    opt(m.tab),
                    num(m.latency_ms.map(|l| l.to_string())),
                    num(m.delivery_latency_ms.map(|l| l.to_string())),
                    auth_result(m, "spf").unwrap_or_default(),
                    auth_result(m, "dkim").unwrap_or_default(),
                    auth_result(m, "dmarc").unwrap_or_default(),
                    num(m.spam.as_ref().and_then(|s| s.score).map(|s| s.to_string())),
                    m.spam
                        .as_ref()
                        .map(|s| s.marks().join("; "))
                        .unwrap_or_default(),
                    opt(m.poll_error),
                ],
            );
        }
        out
    }
}

/// The `-v` lines under a seed. Every value may come from a server (reply text, folder,
/// header fields), so each is made printable: a line break in one must not forge a line.
fn verbose_lines(out: &mut String, record: &MessageRecord, m: &JsonMessage<'_>) {
    let indent = "      ";
    if let Some(c) = &m.cause {
        let _ = writeln!(
            out,
            "{indent}cause: {} (from {}){}",
            c.reason,
            c.source.as_str(),
            c.hint
                .as_deref()
                .map(|h| format!(": {}", printable(h)))
                .unwrap_or_default()
        );
        if let Some(url) = &c.url {
            let _ = writeln!(out, "{indent}see: {}", printable(url));
        }
    }
    let _ = writeln!(
        out,
        "{indent}smtp: {} (host {}, stage {})",
        printable(&record.smtp.to_string()),
        printable(m.smtp.host.unwrap_or("-")),
        m.smtp.stage.unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "{indent}folder: {}, tab: {}",
        printable(m.folder.unwrap_or("-")),
        printable(m.tab.unwrap_or("-"))
    );
    let auth = ["spf", "dkim", "dmarc"]
        .map(|method| {
            format!(
                "{method}={}",
                auth_result(m, method).as_deref().unwrap_or("-")
            )
        })
        .join(" ");
    let _ = writeln!(out, "{indent}auth: {}", printable(&auth));
    let (score, marks) = match &m.spam {
        Some(s) => (
            s.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            s.marks(),
        ),
        None => ("-".into(), Vec::new()),
    };
    let _ = writeln!(
        out,
        "{indent}spam: score {score}, marks: {}",
        if marks.is_empty() {
            "-".to_owned()
        } else {
            printable(&marks.join("; ")).into_owned()
        }
    );
    let ms = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "{indent}latency: {}, delivery {}",
        ms(m.latency_ms.map(|l| format!("{:.1}s", l as f64 / 1000.0))),
        ms(m.delivery_latency_ms
            .map(|l| format!("{:.1}s", l as f64 / 1000.0))),
    );
    if let Some(reason) = m.reason {
        let _ = writeln!(out, "{indent}reason: {}", printable(reason));
    }
}

/// `probe runs`: stored runs, newest first.
#[derive(Debug, Clone)]
pub struct RunList {
    /// Each run with its messages.
    pub runs: Vec<RunReport>,
}

/// One run in `probe runs --json`.
#[derive(Debug, Serialize)]
pub struct JsonRunSummary<'a> {
    /// Run id.
    pub run_id: &'a str,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// The run's label.
    pub label: Option<&'a str>,
    /// The probe host that made the run.
    pub host: Option<&'a str>,
    /// `direct` or `relay`.
    pub transport: &'a str,
    /// The local address sending bound to, if chosen.
    pub source_ip: Option<&'a str>,
    /// The From mailbox.
    pub sender: &'a str,
    /// Number of messages.
    pub messages: usize,
    /// Messages per verdict (and `pending`).
    pub counts: BTreeMap<&'static str, usize>,
    /// Whether every message has a verdict.
    pub finished: bool,
}

impl RunList {
    /// The `--json` document: a list, newest first.
    pub fn to_json(&self) -> Vec<JsonRunSummary<'_>> {
        self.runs
            .iter()
            .map(|r| JsonRunSummary {
                run_id: &r.run.id,
                started_at: rfc3339(r.run.started_at),
                label: r.run.label.as_deref(),
                host: r.run.host.as_deref(),
                transport: r.run.transport.as_str(),
                source_ip: r.run.source_ip.as_deref(),
                sender: &r.run.sender_from,
                messages: r.messages.len(),
                counts: r.counts(),
                finished: r.run.finished_at.is_some(),
            })
            .collect()
    }

    /// One line per run.
    pub fn to_table(&self) -> String {
        let header = [
            "RUN",
            "STARTED",
            "LABEL",
            "HOST",
            "TRANSPORT",
            "SOURCE IP",
            "FINISHED",
            "COUNTS",
        ];
        let rows: Vec<[String; 8]> = self
            .to_json()
            .into_iter()
            .map(|r| {
                [
                    r.run_id.to_owned(),
                    r.started_at,
                    r.label.unwrap_or("-").to_owned(),
                    r.host.unwrap_or("-").to_owned(),
                    r.transport.to_owned(),
                    r.source_ip.unwrap_or("-").to_owned(),
                    if r.finished { "yes" } else { "no" }.to_owned(),
                    r.counts
                        .iter()
                        .map(|(k, v)| format!("{v} {k}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        let columns = Columns::fit(&header, &rows);
        let mut out = columns.line("", &header);
        for row in &rows {
            out.push_str(&columns.row("", row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(""), "");
    }
}
