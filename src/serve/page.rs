//! The front page (the latest runs) and `/metrics`: presentation only, from data read
//! elsewhere. Every text on the page is escaped: labels and ids come from the store.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::runner::Status;
use crate::report::RunList;
use crate::report::RunReport;
use crate::report::html::{COLUMNS as VERDICTS, STYLE, escape};
use crate::report::metrics::render;

fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `GET /`: what serve is doing, then the newest runs, each linked to its report and to a
/// comparison with the run before it.
pub(super) fn index(list: &RunList, status: &Status) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>probe serve</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>probe serve</h1>\n\
         <dl class=\"run\">\n"
    );
    let going = match status.running_since {
        Some(t) => format!("a run, since {}", when(t)),
        None => "waiting".into(),
    };
    let next = status.next.map(when);
    for (k, v) in [
        ("Now", Some(going)),
        ("Next run", next),
        ("Runs made", Some(status.runs.to_string())),
        ("Runs failed", Some(status.failures.to_string())),
    ] {
        let v = v.map_or_else(|| "-".into(), |v| escape(&v));
        let _ = writeln!(o, "<dt>{k}</dt><dd>{v}</dd>");
    }
    o.push_str("</dl>\n");
    // The trend chart (inbox share per provider over time) of the listed runs, above the list.
    let _ = writeln!(
        o,
        "<section id=\"trend\">\n{}</section>",
        crate::report::trend::chart(&crate::report::trend::Trend::of(&list.runs, None))
    );
    o.push_str("<h2>Latest runs</h2>\n");
    if list.runs.is_empty() {
        o.push_str("<p class=\"none\">No run yet: the first starts at the next tick.</p>\n</body>\n</html>\n");
        return o;
    }
    o.push_str(
        "<table class=\"matrix runs\">\n<thead><tr><th>run</th><th>started</th><th>label</th>\
         <th>transport</th><th>source IP</th>",
    );
    for v in VERDICTS {
        let _ = write!(o, "<th>{v}</th>");
    }
    o.push_str("<th>inbox %</th><th>finished</th><th>compare</th></tr></thead>\n<tbody>\n");
    let rows = list.to_json();
    for (i, r) in rows.iter().enumerate() {
        let id = escape(r.run_id);
        let _ = write!(
            o,
            "<tr><td><a href=\"/runs/{id}\">{id}</a> <a href=\"/runs/{id}.json\">json</a></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            escape(&r.started_at),
            escape(r.label.unwrap_or("-")),
            escape(r.transport),
            escape(r.source_ip.unwrap_or("-")),
        );
        for v in VERDICTS {
            let n = r.counts.get(v).copied().unwrap_or(0);
            let class = if n == 0 { "zero" } else { v };
            let _ = write!(o, "<td class=\"n {class}\">{n}</td>");
        }
        let share = list.runs[i]
            .placement()
            .inbox_share()
            .map_or_else(|| "-".into(), |s| format!("{:.0}", s * 100.0));
        let finished = if r.finished { "yes" } else { "no" };
        let _ = write!(o, "<td class=\"n\">{share}</td><td>{finished}</td>");
        match rows.get(i + 1) {
            Some(before) => {
                let _ = writeln!(
                    o,
                    "<td><a href=\"/compare?before={}&amp;after={id}\">with previous</a></td></tr>",
                    escape(before.run_id)
                );
            }
            None => o.push_str("<td>-</td></tr>\n"),
        }
    }
    o.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    o
}

/// `GET /metrics`: what `--metrics-file` writes for the newest finished run (per provider and
/// verdict counts, inbox share per provider, latency, the run's start), then what only a
/// long-running probe knows: that run's duration and end, whether a run is going, and how
/// many runs this process made and could not make.
pub(super) fn metrics(report: Option<&RunReport>, status: &Status) -> String {
    let mut out = match report {
        Some(report) => {
            let up = match &status.last {
                Some((id, up)) if *id == report.run.id => *up,
                _ => true,
            };
            render(report, up)
        }
        None => String::new(),
    };
    let mut family = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    };
    let finished = report.and_then(|r| r.run.finished_at.map(|end| (r.run.started_at, end)));
    family(
        "seedprobe_run_duration_seconds",
        "gauge",
        "From the start of the last finished run to its last verdict.",
        finished.map(|(start, end)| (end - start).max(0) as f64 / 1000.0),
    );
    family(
        "seedprobe_last_run_end_timestamp_seconds",
        "gauge",
        "End of the last finished run (its last verdict), Unix time.",
        finished.map(|(_, end)| end as f64 / 1000.0),
    );
    family(
        "seedprobe_run_in_progress",
        "gauge",
        "1 while probe serve is making a run, 0 otherwise.",
        Some(if status.running_since.is_some() {
            1.0
        } else {
            0.0
        }),
    );
    family(
        "seedprobe_next_run_timestamp_seconds",
        "gauge",
        "When probe serve starts its next scheduled run, Unix time.",
        status
            .next
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64().round()),
    );
    family(
        "seedprobe_serve_runs_total",
        "counter",
        "Runs this probe serve process made to the end.",
        Some(status.runs as f64),
    );
    family(
        "seedprobe_serve_run_failures_total",
        "counter",
        "Runs this probe serve process could not make (see its log).",
        Some(status.failures as f64),
    );
    out
}
