//! `probe report --trend`: inbox share per provider over time, from the stored runs.
//!
//! [`Trend::of`] computes the points once (one per run and provider); the table, the JSON
//! document and the HTML page only print them. [`chart`] is the inline SVG chart alone (with
//! its legend), for pages other than [`Trend::to_html`] (`probe serve`'s `/`).
//!
//! The chart draws one polyline per provider. With more than [`PER_RUN_LIMIT`] runs, a run's
//! point would be narrower than a pixel and the lines a scribble, so the chart aggregates per
//! UTC day instead: the day's inbox messages over its measured messages, per provider. The
//! table and the JSON always keep every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::html::escape;
use super::{RunReport, printable, rfc3339};
use crate::verdict::Verdict;

/// Above this many runs the chart shows one point per provider and day, not per run.
pub const PER_RUN_LIMIT: usize = 120;

/// How many of the latest runs the HTML page lists under the chart.
pub const LATEST_ROWS: usize = 20;

const DAY_MS: i64 = 86_400_000;

/// One run's placement at one provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    /// When the run started, Unix milliseconds.
    #[serde(skip)]
    pub started_ms: i64,
    /// When the run started, RFC 3339.
    pub started_at: String,
    /// The run's id.
    pub run_id: String,
    /// The run's label, if any.
    pub label: Option<String>,
    /// The probe host that made the run, if recorded.
    pub host: Option<String>,
    /// The provider (`-` for seeds that name none).
    pub provider: String,
    /// Measured messages (with a verdict or pending; not those never sent or interrupted).
    pub messages: usize,
    /// Messages in the inbox.
    pub inbox: usize,
    /// `inbox / messages`, 0 to 1; null without measured messages.
    pub inbox_share: Option<f64>,
    /// Messages in the inbox but tagged as spam.
    pub spam_tagged: usize,
    /// Messages in the spam folder.
    pub spam: usize,
    /// Messages deferred.
    pub deferred: usize,
    /// Messages rejected.
    pub rejected: usize,
    /// Messages not found.
    pub missing: usize,
    /// Messages without a verdict yet.
    pub pending: usize,
    /// Messages of this run and provider that `probe rescue` moved (or copied) to INBOX.
    pub rescued: usize,
}

/// The trend of a set of runs: points, oldest run first, providers in name order per run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trend {
    /// The window's start (`--since`), RFC 3339; null for every stored run.
    pub since: Option<String>,
    /// How many runs the points come from.
    pub runs: usize,
    /// Every provider that occurs, in name order.
    pub providers: Vec<String>,
    /// One point per run and provider.
    pub points: Vec<TrendPoint>,
}

impl Trend {
    /// The trend of `runs` (in any order), with `since` (Unix ms) as the window's start.
    pub fn of(runs: &[RunReport], since: Option<i64>) -> Trend {
        Trend::with_rescues(runs, &[], since)
    }

    /// [`Trend::of`], with the runs' rescues (`probe rescue`): each point counts its
    /// messages rescued, and the chart marks the runs with any.
    pub fn with_rescues(
        runs: &[RunReport],
        rescues: &[crate::store::RescueRecord],
        since: Option<i64>,
    ) -> Trend {
        let mut sorted: Vec<&RunReport> = runs.iter().collect();
        sorted.sort_by(|a, b| (a.run.started_at, &a.run.id).cmp(&(b.run.started_at, &b.run.id)));
        let mut points = Vec::new();
        let mut providers = std::collections::BTreeSet::new();
        for r in &sorted {
            for (provider, p) in r.placement_by_provider() {
                providers.insert(provider.to_owned());
                let rescued = rescues
                    .iter()
                    .filter(|x| x.run_id == r.run.id && x.succeeded())
                    .filter(|x| {
                        r.messages
                            .iter()
                            .any(|m| m.token == x.token && m.provider == provider)
                    })
                    .count();
                points.push(TrendPoint {
                    started_ms: r.run.started_at,
                    started_at: rfc3339(r.run.started_at),
                    run_id: r.run.id.clone(),
                    label: r.run.label.clone(),
                    host: r.run.host.clone(),
                    provider: provider.to_owned(),
                    messages: p.measured(),
                    inbox: p.count(Verdict::Inbox),
                    inbox_share: p.inbox_share(),
                    spam_tagged: p.count(Verdict::SpamTagged),
                    spam: p.count(Verdict::Spam),
                    deferred: p.count(Verdict::Deferred),
                    rejected: p.count(Verdict::Rejected),
                    missing: p.count(Verdict::Missing),
                    pending: p.pending(),
                    rescued,
                });
            }
        }
        Trend {
            since: since.map(rfc3339),
            runs: sorted.len(),
            providers: providers.into_iter().collect(),
            points,
        }
    }

    /// The points of each run, oldest first.
    fn by_run(&self) -> Vec<&[TrendPoint]> {
        self.points
            .chunk_by(|a, b| a.run_id == b.run_id && a.started_ms == b.started_ms)
            .collect()
    }

    /// One line per run and provider, for a terminal.
    pub fn to_table(&self) -> String {
        if self.points.is_empty() {
            return "no runs in the window\n".into();
        }
        let head = [
            "started", "run", "label", "host", "provider", "msgs", "inbox", "share", "tagged",
            "spam", "deferred", "rejected", "missing",
        ];
        let rows: Vec<[String; 13]> = self
            .points
            .iter()
            .map(|p| {
                [
                    p.started_at[..16.min(p.started_at.len())].replace('T', " "),
                    printable(&p.run_id).into_owned(),
                    printable(p.label.as_deref().unwrap_or("-")).into_owned(),
                    printable(p.host.as_deref().unwrap_or("-")).into_owned(),
                    printable(&p.provider).into_owned(),
                    p.messages.to_string(),
                    p.inbox.to_string(),
                    share_text(p.inbox_share),
                    p.spam_tagged.to_string(),
                    p.spam.to_string(),
                    p.deferred.to_string(),
                    p.rejected.to_string(),
                    p.missing.to_string(),
                ]
            })
            .collect();
        let mut widths = head.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[&str]| {
            let text: Vec<String> = cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i >= 5 {
                        format!("{c:>w$}")
                    } else {
                        format!("{c:<w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", text.join("  ").trim_end());
        };
        line(&mut out, &head);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&mut out, &cells);
        }
        out
    }

    /// The JSON document (see the README's trend section for its shape).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// One self-contained HTML page: the chart, its legend, and the latest runs in a table.
    pub fn to_html(&self) -> String {
        let mut o = String::new();
        let title = "probe trend: inbox share per provider";
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        let window = match &self.since {
            Some(s) => format!("runs since {}", escape(s)),
            None => "every stored run".into(),
        };
        let _ = writeln!(
            o,
            "<p class=\"window\">{} run(s), {window}; {}.</p>",
            self.runs,
            if self.runs > PER_RUN_LIMIT {
                "one point per provider and UTC day (inbox messages of the day over its messages)"
            } else {
                "one point per run and provider"
            }
        );
        o.push_str(&chart(self));
        latest_table(&mut o, self);
        o.push_str("</body>\n</html>\n");
        o
    }
}

fn share_text(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0))
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 8px}
h2{font-size:17px;margin:24px 0 10px}
p.window{color:#555;margin:0 0 12px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #d6dae1;padding:4px 10px;text-align:left}
th{background:#eef1f5;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.none{color:#889}
";

/// Line colours, one per provider in name order (repeating after ten).
const COLOURS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];

/// The chart's size and margins, in SVG units.
const W: f64 = 900.0;
const H: f64 = 320.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// One plotted point: time (Unix ms), share 0..1, and its tooltip.
struct Dot {
    at: i64,
    share: f64,
    title: String,
}

/// Each provider's dots: per run, or per UTC day above [`PER_RUN_LIMIT`] runs.
fn series(trend: &Trend) -> BTreeMap<&str, Vec<Dot>> {
    let mut out: BTreeMap<&str, Vec<Dot>> = BTreeMap::new();
    if trend.runs <= PER_RUN_LIMIT {
        for p in &trend.points {
            if let Some(share) = p.inbox_share {
                out.entry(&p.provider).or_default().push(Dot {
                    at: p.started_ms,
                    share,
                    title: format!(
                        "{} {} {}: {}/{} inbox",
                        p.provider, p.started_at, p.run_id, p.inbox, p.messages
                    ),
                });
            }
        }
        return out;
    }
    // provider -> day -> (inbox, measured, runs)
    let mut days: BTreeMap<&str, BTreeMap<i64, (usize, usize, usize)>> = BTreeMap::new();
    for p in &trend.points {
        let d = days
            .entry(&p.provider)
            .or_default()
            .entry(p.started_ms.div_euclid(DAY_MS))
            .or_default();
        d.0 += p.inbox;
        d.1 += p.messages;
        d.2 += 1;
    }
    for (provider, days) in days {
        let dots = days
            .into_iter()
            .filter(|(_, (_, measured, _))| *measured > 0)
            .map(|(day, (inbox, measured, runs))| Dot {
                at: day * DAY_MS + DAY_MS / 2,
                share: inbox as f64 / measured as f64,
                title: format!(
                    "{provider} {}: {inbox}/{measured} inbox in {runs} run(s)",
                    &rfc3339(day * DAY_MS)[..10]
                ),
            })
            .collect();
        out.insert(provider, dots);
    }
    out
}

/// The chart as an inline `<figure>`: an SVG (inbox share 0-100 % over time, one polyline per
/// provider, date labels on the time axis) and its legend. Needs no stylesheet and no script;
/// every text is escaped.
pub fn chart(trend: &Trend) -> String {
    let series = series(trend);
    let mut o = String::new();
    let _ = write!(
        o,
        "<figure class=\"trend\" style=\"margin:0 0 16px;background:#fff;border:1px solid #d6dae1;\
         border-radius:6px;padding:10px;max-width:{W}px\">\n\
         <svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" \
         aria-label=\"inbox share per provider over time\" font-family=\"system-ui,sans-serif\" font-size=\"12\">\n"
    );
    let (x0, x1) = (LEFT, W - RIGHT);
    let (y0, y1) = (H - BOTTOM, TOP);
    let y = |share: f64| y0 - (y0 - y1) * share;
    // Horizontal grid and the share axis.
    for pct in [0, 25, 50, 75, 100] {
        let yy = y(f64::from(pct) / 100.0);
        let _ = writeln!(
            o,
            "<line x1=\"{x0}\" y1=\"{yy}\" x2=\"{x1}\" y2=\"{yy}\" stroke=\"{}\" stroke-width=\"1\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">{pct}%</text>",
            if pct == 0 { "#9aa3b0" } else { "#e3e6ea" },
            x0 - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\" fill=\"#555\">inbox share</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
    let all: Vec<i64> = series.values().flatten().map(|d| d.at).collect();
    let (Some(&min), Some(&max)) = (all.iter().min(), all.iter().max()) else {
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#889\">no measured messages in the window</text>\n</svg>\n</figure>",
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0
        );
        return o;
    };
    let span = (max - min) as f64;
    let x = |at: i64| {
        if span == 0.0 {
            (x0 + x1) / 2.0
        } else {
            x0 + 40.0 + (x1 - x0 - 80.0) * (at - min) as f64 / span
        }
    };
    // Time axis: up to six labels, evenly spaced, as precise as the span needs (dates over
    // days, hours and minutes over hours, seconds within an hour); a label equal to the one
    // before it is left out.
    let ticks = if span == 0.0 { 1 } else { 6 };
    let (from, len) = match max - min {
        d if d >= 2 * DAY_MS => (0, 10),
        d if d >= 3_600_000 => (5, 11),
        _ => (11, 8),
    };
    let mut last = String::new();
    for i in 0..ticks {
        let at = if ticks == 1 {
            min
        } else {
            min + ((max - min) as f64 * i as f64 / (ticks - 1) as f64) as i64
        };
        let text = rfc3339(at)[from..from + len].replace('T', " ");
        if text == last {
            continue;
        }
        last.clone_from(&text);
        let xx = x(at);
        let _ = writeln!(
            o,
            "<line x1=\"{xx:.1}\" y1=\"{y0}\" x2=\"{xx:.1}\" y2=\"{}\" stroke=\"#9aa3b0\"/>\
             <text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            y0 + 5.0,
            y0 + 20.0,
            escape(&text)
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">run start (UTC)</text>",
        (x0 + x1) / 2.0,
        H - 4.0
    );
    let colour = |provider: &str| {
        let i = trend
            .providers
            .iter()
            .position(|p| p == provider)
            .unwrap_or(0);
        COLOURS[i % COLOURS.len()]
    };
    // A dashed line at each run after which `probe rescue` moved messages to INBOX: whether
    // placement changed after it is what the lines beside it show.
    let mut marked = std::collections::BTreeMap::<i64, usize>::new();
    for p in trend.points.iter().filter(|p| p.rescued > 0) {
        *marked.entry(p.started_ms).or_default() += p.rescued;
    }
    for (at, n) in marked {
        let xx = x(at);
        let _ = writeln!(
            o,
            "<line class=\"rescue\" x1=\"{xx:.1}\" y1=\"{y0}\" x2=\"{xx:.1}\" y2=\"{y1}\" \
             stroke=\"#6b7280\" stroke-dasharray=\"4 3\"><title>probe rescue: {n} message(s) \
             of the run of {} moved to INBOX</title></line>",
            escape(&rfc3339(at))
        );
    }
    // Earlier providers draw wider, under the later ones: two providers with the same shares
    // show as a line with a halo instead of one hiding the other.
    let width = |provider: &str| {
        let i = trend
            .providers
            .iter()
            .position(|p| p == provider)
            .unwrap_or(0);
        let under = (trend.providers.len() - 1 - i).min(3);
        2.0 + 1.5 * under as f64
    };
    for (provider, dots) in &series {
        let c = colour(provider);
        let w = width(provider);
        let _ = write!(
            o,
            "<g class=\"series\" data-provider=\"{}\">",
            escape(provider)
        );
        if dots.len() > 1 {
            let pts: Vec<String> = dots
                .iter()
                .map(|d| format!("{:.1},{:.1}", x(d.at), y(d.share)))
                .collect();
            let _ = write!(
                o,
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"{w}\" stroke-linejoin=\"round\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
        // Dots only while they stay apart; a line of 1,000 dots is a smear.
        if dots.len() <= 60 {
            for d in dots {
                let _ = write!(
                    o,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{c}\"><title>{}</title></circle>",
                    x(d.at),
                    y(d.share),
                    w / 2.0 + 2.0,
                    escape(&d.title)
                );
            }
        }
        o.push_str("</g>\n");
    }
    o.push_str(
        "</svg>\n<figcaption style=\"display:flex;flex-wrap:wrap;gap:4px 18px;margin-top:6px\">",
    );
    for provider in &trend.providers {
        let _ = write!(
            o,
            "<span class=\"legend\"><span style=\"display:inline-block;width:14px;height:4px;\
             vertical-align:middle;margin-right:6px;background:{}\"></span>{}</span>",
            colour(provider),
            escape(provider)
        );
    }
    o.push_str("</figcaption>\n</figure>\n");
    o
}

/// The latest [`LATEST_ROWS`] runs, newest first: one row per run, a column per provider.
fn latest_table(o: &mut String, trend: &Trend) {
    let runs = trend.by_run();
    let shown = runs.len().min(LATEST_ROWS);
    let _ = write!(
        o,
        "<h2>Latest {shown} of {} run(s)</h2>\n<table class=\"latest\">\n<thead><tr>\
         <th>started</th><th>run</th><th>label</th><th>host</th>",
        runs.len()
    );
    for p in &trend.providers {
        let _ = write!(o, "<th>{}</th>", escape(p));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for run in runs.iter().rev().take(LATEST_ROWS) {
        let first = &run[0];
        let cell = |v: &Option<String>| match v {
            Some(v) if !v.is_empty() => escape(v),
            _ => "<span class=\"none\">-</span>".into(),
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            escape(&first.started_at[..16.min(first.started_at.len())].replace('T', " ")),
            escape(&first.run_id),
            cell(&first.label),
            cell(&first.host)
        );
        for provider in &trend.providers {
            match run.iter().find(|p| &p.provider == provider) {
                Some(p) => {
                    let _ = write!(
                        o,
                        "<td class=\"n\" title=\"{} of {} inbox; spam {}, deferred {}, rejected {}, missing {}\">{}</td>",
                        p.inbox,
                        p.messages,
                        p.spam,
                        p.deferred,
                        p.rejected,
                        p.missing,
                        share_text(p.inbox_share)
                    );
                }
                None => o.push_str("<td class=\"n\"><span class=\"none\">-</span></td>"),
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;
    use crate::store::{MessageRecord, RunRecord};

    fn run(id: &str, at: i64, messages: &[(&str, Option<Verdict>)]) -> RunReport {
        RunReport {
            run: RunRecord {
                id: id.into(),
                started_at: at,
                finished_at: Some(at + 1),
                config_path: "seeds.yaml".into(),
                transport: Transport::Direct,
                sender_from: "probe@example.org".into(),
                timeout_ms: 1000,
                source_ip: None,
                maillog_offset: None,
                label: Some("l".into()),
                failure: None,
                host: Some("h1".into()),
                not_tested: Vec::new(),
                checks: None,
            },
            messages: messages
                .iter()
                .enumerate()
                .map(|(i, (provider, verdict))| MessageRecord {
                    verdict: *verdict,
                    ..MessageRecord::sent(
                        format!("{id}-{i}"),
                        format!("s{i}"),
                        *provider,
                        format!("s{i}@example.net"),
                        at,
                    )
                })
                .collect(),
        }
    }

    /// (provider, messages, inbox, share, spam, deferred, rejected, missing, pending) per point.
    type Row = (
        &'static str,
        usize,
        usize,
        Option<f64>,
        usize,
        usize,
        usize,
        usize,
        usize,
    );

    /// A case: its name, the runs, and the points wanted (run id, row).
    type Case = (&'static str, Vec<RunReport>, Vec<(&'static str, Row)>);

    #[test]
    fn runs_become_points_per_run_and_provider_oldest_first() {
        use Verdict::*;
        let cases: Vec<Case> = vec![
            ("no runs", vec![], vec![]),
            (
                "one run, two providers",
                vec![run(
                    "a",
                    1_000,
                    &[
                        ("gmail", Some(Inbox)),
                        ("gmail", Some(Spam)),
                        ("yahoo", Some(Deferred)),
                    ],
                )],
                vec![
                    ("a", ("gmail", 2, 1, Some(0.5), 1, 0, 0, 0, 0)),
                    ("a", ("yahoo", 1, 0, Some(0.0), 0, 1, 0, 0, 0)),
                ],
            ),
            (
                "given newest first, sorted oldest first; pending counts as not inbox",
                vec![
                    run("new", 2_000, &[("gmail", Some(Rejected)), ("gmail", None)]),
                    run(
                        "old",
                        1_000,
                        &[("gmail", Some(Inbox)), ("gmail", Some(Missing))],
                    ),
                ],
                vec![
                    ("old", ("gmail", 2, 1, Some(0.5), 0, 0, 0, 1, 0)),
                    ("new", ("gmail", 2, 0, Some(0.0), 0, 0, 1, 0, 1)),
                ],
            ),
        ];
        for (name, runs, want) in cases {
            let t = Trend::of(&runs, None);
            let got: Vec<(&str, Row)> = t
                .points
                .iter()
                .map(|p| {
                    (
                        p.run_id.as_str(),
                        (
                            // Leaked: test-only, a few bytes.
                            &*String::leak(p.provider.clone()),
                            p.messages,
                            p.inbox,
                            p.inbox_share,
                            p.spam,
                            p.deferred,
                            p.rejected,
                            p.missing,
                            p.pending,
                        ),
                    )
                })
                .collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(t.runs, runs.len(), "{name}");
        }
    }

    #[test]
    fn the_chart_is_per_run_up_to_the_limit_then_per_day() {
        let cases = [
            (1, 1),
            (PER_RUN_LIMIT, PER_RUN_LIMIT),
            (1_000, 1_000 / 24 + 1),
        ];
        for (runs, dots) in cases {
            // One run an hour.
            let reports: Vec<RunReport> = (0..runs)
                .map(|i| {
                    let v = if i % 2 == 0 {
                        Verdict::Inbox
                    } else {
                        Verdict::Spam
                    };
                    run(
                        &format!("r{i}"),
                        i as i64 * 3_600_000,
                        &[("gmail", Some(v))],
                    )
                })
                .collect();
            let t = Trend::of(&reports, None);
            let s = series(&t);
            assert_eq!(s["gmail"].len(), dots, "{runs} runs");
            let html = t.to_html();
            assert!(html.contains("<svg"), "{runs} runs");
            assert!(!html.contains("<script"), "{runs} runs");
        }
    }

    #[test]
    fn rescues_count_per_provider_and_mark_the_chart() {
        use crate::store::RescueRecord;
        let r = run(
            "a",
            0,
            &[
                ("gmail", Some(Verdict::Spam)),
                ("yahoo", Some(Verdict::Spam)),
            ],
        );
        let rescue = |token: &str, outcome: &str| RescueRecord {
            run_id: "a".into(),
            seed: "s".into(),
            token: token.into(),
            at: 1,
            from_folder: "Junk".into(),
            method: "move".into(),
            outcome: outcome.into(),
            detail: None,
        };
        let cases = [
            ("none", vec![], [0, 0], 0),
            ("one moved", vec![rescue("a-0", "moved")], [1, 0], 1),
            (
                "a failed one is none",
                vec![rescue("a-1", "failed")],
                [0, 0],
                0,
            ),
            (
                "another run's token",
                vec![RescueRecord {
                    run_id: "b".into(),
                    ..rescue("a-0", "moved")
                }],
                [0, 0],
                0,
            ),
        ];
        for (name, rescues, want, lines) in cases {
            let t = Trend::with_rescues(std::slice::from_ref(&r), &rescues, None);
            let got: Vec<usize> = t.points.iter().map(|p| p.rescued).collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(
                chart(&t).matches("class=\"rescue\"").count(),
                lines,
                "{name}"
            );
        }
    }

    #[test]
    fn every_text_in_the_page_is_escaped() {
        let mut r = run("<r>", 0, &[("<b>&", Some(Verdict::Inbox))]);
        r.run.label = Some("\"><script>".into());
        let html = Trend::of(&[r], None).to_html();
        assert!(!html.contains("<b>&"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;b&gt;&amp;"), "{html}");
        assert!(html.contains("&lt;r&gt;"), "{html}");
    }
}
