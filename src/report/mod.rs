//! Presenting a run: a terminal table, JSON, CSV or HTML. Reads the store's records; decides nothing.

mod history;
pub mod html;
pub mod metrics;
pub mod trend;

pub use crate::verdict::Placement;
pub use history::{CSV_HEADER, JsonRunSummary, RunList, csv_field, summary_line};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::poll::HeaderEvidence;
use crate::send::Stage;
use crate::store::{MessageRecord, RunRecord, SendState};
use crate::verdict::Verdict;
pub use crate::verdict::{Cause, CauseSource};

/// A run and its messages, as stored.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run.
    pub run: RunRecord,
    /// Its messages, in sending order.
    pub messages: Vec<MessageRecord>,
}

/// Text for a terminal: control characters (and the bidirectional overrides that reorder what
/// follows them) are shown escaped, `\n` or `\u{1b}`, instead of acting.
///
/// Labels, seed names, folder names and header values come from users, config files and
/// servers; printed raw, a newline forges a table row and an escape sequence drives the
/// terminal. JSON and CSV quote them by their own rules and need none of this.
pub fn printable(text: &str) -> Cow<'_, str> {
    let acts =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if acts(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The `--json` document. Field names are a stable interface: add, never rename.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// Run id.
    pub run_id: &'a str,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// When every message had a verdict, RFC 3339.
    pub finished_at: Option<String>,
    /// Whether every message has a verdict.
    pub finished: bool,
    /// `direct` or `relay`.
    pub transport: &'a str,
    /// The From mailbox.
    pub sender: &'a str,
    /// The run's label (`--label`), if given.
    pub label: Option<&'a str>,
    /// The probe host that made the run (its host name, or `PROBE_HOST_NAME`).
    pub host: Option<&'a str>,
    /// Why probe could not do its job in this run (the relay refused its login), else null.
    pub failure: Option<&'a str>,
    /// Messages per verdict, `pending` (sent, no verdict yet), and per send state for those
    /// without a verdict that are not simply sent (`not_sent`, `interrupted`, ...).
    pub counts: BTreeMap<&'static str, usize>,
    /// One entry per message.
    pub messages: Vec<JsonMessage<'a>>,
    /// Seeds not sent to because their mailbox could not be read before sending: `seed`,
    /// `provider`, `address`, `problem` (the server's words), `hint`.
    pub not_tested: &'a [crate::store::NotTested],
    /// The sending IP's and domain's checks made with the run, the objects of `probe check
    /// --json`'s `results` (`check`, `subject`, `list`, `status`, `detail`, `code`). Absent
    /// when the run made none (`--no-check`, or a run stored before checks existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<&'a [crate::check::CheckResult]>,
}

/// One message in the JSON report.
#[derive(Debug, Serialize)]
pub struct JsonMessage<'a> {
    /// Seed name.
    pub seed: &'a str,
    /// Provider label or `-`.
    pub provider: &'a str,
    /// Recipient address.
    pub address: &'a str,
    /// The message's token (X-Probe-Id).
    pub token: &'a str,
    /// Where it is in sending: `sent` (its SMTP transaction ended), `not_sent` (never handed
    /// to a server), `queued` or `sending` (probe stopped before or during its transaction;
    /// `probe poll` settles them), `interrupted` (stopped during its transaction and not found:
    /// unknown whether the server took it).
    pub state: &'static str,
    /// The verdict; null while pending, and for a message not sent with none (the relay
    /// refused probe).
    pub verdict: Option<&'static str>,
    /// Why.
    pub reason: Option<&'a str>,
    /// How the SMTP transaction ended.
    pub smtp: JsonSmtp<'a>,
    /// Folder found in.
    pub folder: Option<&'a str>,
    /// Gmail's inbox tab (`primary`, `promotions`, `social`, `updates`, `forums`), where the
    /// server tells.
    pub tab: Option<&'a str>,
    /// From the end of the SMTP transaction to probe's sighting.
    pub latency_ms: Option<u64>,
    /// From the end of the SMTP transaction to the provider's own `Received` stamp (whole
    /// seconds, as `Received` dates have).
    pub delivery_latency_ms: Option<i64>,
    /// The provider's own `Authentication-Results` (spf, dkim, dmarc, arc).
    pub authentication: Vec<crate::evidence::AuthResults>,
    /// Spam verdict headers found on the message.
    pub spam: Option<crate::evidence::SpamSignals>,
    /// TLS of the SMTP connection.
    pub tls: Option<serde_json::Value>,
    /// Header fields of the found message.
    pub headers: Option<serde_json::Value>,
    /// The last polling problem for this seed.
    pub poll_error: Option<&'a str>,
    /// Why it got its verdict: `reason`, `source`, `hint`, `url`; null for `inbox` and for a
    /// message without a verdict.
    pub cause: Option<Cause>,
}

/// The final SMTP reply (or error).
#[derive(Debug, Serialize)]
pub struct JsonSmtp<'a> {
    /// Last host tried.
    pub host: Option<&'a str>,
    /// Stage where the transaction ended.
    pub stage: Option<&'a str>,
    /// Reply code.
    pub code: Option<u16>,
    /// Enhanced status code, e.g. `4.7.1`.
    pub enhanced: Option<&'a str>,
    /// Reply text.
    pub text: Option<&'a str>,
    /// Error when no reply ended the transaction.
    pub error: Option<&'a str>,
}

impl RunReport {
    /// The run's placement summary: what every view of the run counts from.
    pub fn placement(&self) -> Placement {
        Placement::of(self.messages.iter().map(MessageRecord::placed))
    }

    /// Messages per verdict label, with `pending` for undecided sent ones and the send state
    /// (`not_sent`, `interrupted`, and `queued` or `sending` while a run goes on) for the other
    /// undecided ones (those that occur).
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        // Placement counts queued and sending messages as pending (polling may still decide
        // them); the JSON names their state, as it always has.
        let in_flight = |m: &&MessageRecord| {
            m.verdict.is_none() && matches!(m.state, SendState::Queued | SendState::Sending)
        };
        let mut counts = Placement::of(
            self.messages
                .iter()
                .filter(|m| !in_flight(m))
                .map(MessageRecord::placed),
        )
        .counts();
        for m in self.messages.iter().filter(in_flight) {
            *counts.entry(m.state.as_str()).or_default() += 1;
        }
        counts
    }

    /// The JSON document.
    pub fn to_json(&self) -> JsonReport<'_> {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        };
        JsonReport {
            run_id: &self.run.id,
            started_at: rfc3339(self.run.started_at),
            finished_at: self.run.finished_at.map(rfc3339),
            finished: self.run.finished_at.is_some(),
            transport: self.run.transport.as_str(),
            sender: &self.run.sender_from,
            label: self.run.label.as_deref(),
            host: self.run.host.as_deref(),
            failure: self.run.failure.as_deref(),
            counts: self.counts(),
            messages: self
                .messages
                .iter()
                .map(|m| {
                    let headers = m
                        .headers_json
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<HeaderEvidence>(j).ok());
                    let delivery_latency_ms = headers
                        .as_ref()
                        .and_then(crate::evidence::received::received_at)
                        // Received dates have whole seconds: clamp what truncation makes negative.
                        .map(|at| (crate::store::unix_ms(at) - m.sent_at).max(0));
                    JsonMessage {
                        seed: &m.seed,
                        provider: &m.provider,
                        address: &m.address,
                        token: &m.token,
                        state: m.state.as_str(),
                        verdict: m.verdict.map(Verdict::as_label),
                        reason: m.verdict_reason.as_deref(),
                        smtp: JsonSmtp {
                            host: m.smtp.host.as_deref(),
                            stage: m.smtp.stage.map(Stage::as_str),
                            code: m.smtp.code,
                            enhanced: m.smtp.enhanced.as_deref(),
                            text: m.smtp.text.as_deref(),
                            error: m.smtp.error.as_deref(),
                        },
                        folder: m.folder.as_deref(),
                        tab: m.tab.as_deref(),
                        latency_ms: m.latency().map(|d| d.as_millis() as u64),
                        delivery_latency_ms,
                        authentication: headers
                            .as_ref()
                            .map(|h| {
                                crate::evidence::auth_results::from_receiver(
                                    h.values("Authentication-Results"),
                                )
                            })
                            .unwrap_or_default(),
                        spam: headers
                            .as_ref()
                            .map(crate::evidence::SpamSignals::from_headers),
                        tls: parse(&m.tls_json),
                        headers: parse(&m.headers_json),
                        poll_error: m.poll_error.as_deref(),
                        cause: cause(m),
                    }
                })
                .collect(),
            not_tested: &self.run.not_tested,
            checks: self.run.checks.as_ref().map(|c| c.results.as_slice()),
        }
    }

    /// The checks made with the run, for a terminal: a summary line, then every result that
    /// is not `pass` (nothing when the run made no checks).
    pub fn checks_lines(&self) -> String {
        use crate::check::Status;
        let mut out = String::new();
        let Some(checks) = &self.run.checks else {
            return out;
        };
        let counts = [Status::Pass, Status::Warn, Status::Fail, Status::Error]
            .map(|s| format!("{} {}", checks.count(s), s.as_str()))
            .join(", ");
        let head = format!(
            "checks of {} and {}: {counts}",
            checks.source_ip, checks.domain
        );
        let _ = writeln!(out, "{}", printable(&head));
        for r in checks.results.iter().filter(|r| r.status != Status::Pass) {
            let list = r
                .list
                .as_deref()
                .map(|l| format!(" {l}"))
                .unwrap_or_default();
            let line = format!("  {} {}{list}: {}", r.status.as_str(), r.check, r.detail);
            let _ = writeln!(out, "{}", printable(&line));
        }
        out
    }

    /// Lines for the seeds that were not tested (nothing when every seed was).
    pub fn not_tested_lines(&self) -> String {
        let mut out = String::new();
        for n in &self.run.not_tested {
            let line = format!("{}: not tested: {}", n.seed, n.problem);
            let _ = writeln!(out, "{}", printable(&line));
            if let Some(hint) = &n.hint {
                let _ = writeln!(out, "  hint: {}", printable(hint));
            }
        }
        out
    }

    /// The terminal table: one row per seed, then the counts and any polling problems.
    pub fn to_table(&self) -> String {
        let header = [
            "SEED",
            "PROVIDER",
            "VERDICT",
            "REASON",
            "SMTP REPLY",
            "FOLDER",
            "LATENCY",
        ];
        let rows: Vec<[String; 7]> = self
            .messages
            .iter()
            .map(|m| {
                let [folder, latency] = folder_latency_cells(m);
                [
                    m.seed.clone(),
                    m.provider.clone(),
                    match (m.verdict, m.state) {
                        (None, SendState::Sent) | (Some(_), _) => {
                            verdict_cell(m.verdict).to_owned()
                        }
                        (None, state) => state.as_str().to_owned(),
                    },
                    reason_cell(m),
                    smtp_summary(m),
                    folder,
                    latency,
                ]
            })
            .collect();
        let columns = Columns::fit(&header, &rows);
        let mut out = columns.line("", &header);
        for row in &rows {
            out.push_str(&columns.row("", row));
        }
        let counts = self
            .counts()
            .into_iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let label = self
            .run
            .label
            .as_deref()
            .map(|l| format!(" ({})", printable(l)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\nrun {}{label}: {} message(s): {counts}",
            self.run.id,
            self.messages.len()
        );
        if let Some(failure) = &self.run.failure {
            let _ = writeln!(out, "{}", printable(&format!("probe failed: {failure}")));
        }
        // Why each message did not make the inbox, untruncated: the reply the table cuts short,
        // or what the relay's next hop said.
        for m in &self.messages {
            match (m.verdict, &m.verdict_reason, &m.poll_error) {
                (Some(Verdict::Inbox), _, _) => {}
                (Some(_), Some(reason), _) => {
                    let _ = writeln!(out, "{}", printable(&format!("{}: {reason}", m.seed)));
                    out.push_str(&cause_lines(m));
                }
                (None, _, Some(e)) => {
                    let line = format!("{}: not decided: {e}", m.seed);
                    let _ = writeln!(out, "{}", printable(&line));
                }
                // Not sent, without a verdict: why.
                (None, Some(reason), None) => {
                    let _ = writeln!(out, "{}", printable(&format!("{}: {reason}", m.seed)));
                }
                _ => {}
            }
        }
        out.push_str(&self.not_tested_lines());
        if self.run.checks.is_some() {
            out.push('\n');
            out.push_str(&self.checks_lines());
        }
        out
    }
}

const SMTP_WIDTH: usize = 64;

/// Left-aligned text columns, two spaces apart, sized to the widest cell; the last column is
/// not padded. One layout for every terminal table.
pub(crate) struct Columns<const N: usize>([usize; N]);

impl<const N: usize> Columns<N> {
    /// Widths that fit the header and every row.
    pub(crate) fn fit<'a>(
        header: &[&str; N],
        rows: impl IntoIterator<Item = &'a [String; N]>,
    ) -> Self {
        let mut widths = header.map(|h| h.chars().count());
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(printable(cell).chars().count());
            }
        }
        Columns(widths)
    }

    /// One line, `indent` first, with its newline.
    pub(crate) fn line(&self, indent: &str, cells: &[&str; N]) -> String {
        let mut l = String::from(indent);
        for (i, (cell, w)) in cells.iter().zip(self.0).enumerate() {
            let cell = printable(cell);
            if i + 1 == N {
                l.push_str(&cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        let mut l = l.trim_end().to_owned();
        l.push('\n');
        l
    }

    /// A row of owned cells.
    pub(crate) fn row(&self, indent: &str, cells: &[String; N]) -> String {
        self.line(indent, &cells.each_ref().map(String::as_str))
    }
}

/// The verdict as shown, `pending` while there is none.
pub(crate) fn verdict_cell(verdict: Option<Verdict>) -> &'static str {
    Verdict::label_or_pending(verdict)
}

/// Folder and latency cells, `-` when unknown.
pub(crate) fn folder_latency_cells(m: &MessageRecord) -> [String; 2] {
    [
        m.folder.clone().unwrap_or_else(|| "-".into()),
        m.latency()
            .map(|d| format!("{:.1}s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into()),
    ]
}

fn smtp_summary(m: &MessageRecord) -> String {
    let text = m.smtp.to_string();
    if text.chars().count() > SMTP_WIDTH {
        let cut: String = text.chars().take(SMTP_WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// A stored message's cause ([`crate::verdict::cause`]), read from its record: what every view
/// of a run shows.
pub fn cause(m: &MessageRecord) -> Option<Cause> {
    let headers = m
        .headers_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<HeaderEvidence>(j).ok());
    let downstream = m
        .downstream_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<crate::downstream::Downstream>(j).ok());
    crate::verdict::cause::cause(&crate::verdict::cause::Recorded {
        verdict: m.verdict,
        provider: &m.provider,
        address: &m.address,
        smtp_host: m.smtp.host.as_deref(),
        smtp_code: m.smtp.code,
        smtp_enhanced: m.smtp.enhanced.as_deref(),
        smtp_text: m.smtp.text.as_deref(),
        smtp_error: m.smtp.error.as_deref(),
        headers: headers.as_ref(),
        downstream: downstream.as_ref(),
    })
}

/// The REASON cell: the cause's reason, `-` when there is none.
pub(crate) fn reason_cell(m: &MessageRecord) -> String {
    cause(m).map_or_else(|| "-".into(), |c| c.reason.to_owned())
}

/// The lines under a message's explanation that say what to do: the cause's hint and page.
fn cause_lines(m: &MessageRecord) -> String {
    let mut out = String::new();
    if let Some(c) = cause(m) {
        let mut line = format!("  cause: {} (from {})", c.reason, c.source.as_str());
        if let Some(hint) = &c.hint {
            let _ = write!(line, ": {hint}");
        }
        let _ = writeln!(out, "{}", printable(&line));
        if let Some(url) = &c.url {
            let _ = writeln!(out, "  see: {}", printable(url));
        }
    }
    out
}

/// A JSON report with each message's rescue (`probe rescue`): every message gains `rescue`
/// (null, or its latest rescue: `at`, `from_folder`, `method`, `outcome`, `detail`), and the
/// document `rescued`: how many of its messages were brought to INBOX. Kept apart from
/// [`RunReport::to_json`] so a report without rescues reads the store as before.
pub fn json_with_rescues(
    report: &JsonReport<'_>,
    rescues: &[crate::store::RescueRecord],
) -> serde_json::Result<serde_json::Value> {
    let mut doc = serde_json::to_value(report)?;
    let latest = |token: &str| rescues.iter().rev().find(|r| r.token == token);
    let mut rescued = 0;
    if let Some(messages) = doc.get_mut("messages").and_then(|m| m.as_array_mut()) {
        for m in messages {
            let token = m["token"].as_str().unwrap_or_default().to_owned();
            let entry = match latest(&token) {
                Some(r) => {
                    rescued += usize::from(r.succeeded());
                    serde_json::json!({
                        "at": rfc3339(r.at),
                        "from_folder": r.from_folder,
                        "method": r.method,
                        "outcome": r.outcome,
                        "detail": r.detail,
                    })
                }
                None => serde_json::Value::Null,
            };
            if let Some(object) = m.as_object_mut() {
                object.insert("rescue".into(), entry);
            }
        }
    }
    if let Some(object) = doc.as_object_mut() {
        object.insert("rescued".into(), rescued.into());
    }
    Ok(doc)
}

/// Lines under the table for a run's rescues: one per message, its latest rescue (nothing
/// when there was none).
pub fn rescue_lines(rescues: &[crate::store::RescueRecord]) -> String {
    let mut out = String::new();
    // Each message once, in the order first rescued, with its latest attempt.
    let mut seen: Vec<&str> = Vec::new();
    for first in rescues {
        if seen.contains(&first.token.as_str()) {
            continue;
        }
        seen.push(&first.token);
        let Some(r) = rescues.iter().rev().find(|r| r.token == first.token) else {
            continue;
        };
        let line = match r.outcome.as_str() {
            "moved" => format!(
                "{}: rescued ({}) from {} to INBOX at {}",
                r.seed,
                r.method,
                crate::poll::utf7::decode(&r.from_folder),
                rfc3339(r.at)
            ),
            "copied" => format!(
                "{}: rescued (copied to INBOX, the original stays in {}) at {}",
                r.seed,
                crate::poll::utf7::decode(&r.from_folder),
                rfc3339(r.at)
            ),
            _ => format!(
                "{}: rescue failed at {}: {}",
                r.seed,
                rfc3339(r.at),
                r.detail.as_deref().unwrap_or("-")
            ),
        };
        let _ = writeln!(out, "{}", printable(&line));
    }
    if out.is_empty() {
        return out;
    }
    format!("\nnot-spam rescues:\n{out}")
}
