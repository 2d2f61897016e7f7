//! `probe maillog`: a Postfix log summarised per provider, as a table or JSON.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::Exit;
use crate::maillog::{self, ProviderSummary, Summary};

/// Arguments of `maillog`.
#[derive(Debug, Args)]
pub struct MaillogArgs {
    /// Postfix logs (syslog or `maillog_file`; `.gz` too), read in order; `-` for stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub files: Vec<PathBuf>,
    /// Only lines at or after this: a date (2026-11-29), a date and time (2026-11-29T16:00)
    /// on the log's clock, or a duration back from now (7d, 12h).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when any provider's deferred or bounced share is above this percentage.
    #[arg(long, value_name = "PCT", value_parser = super::history::parse_percent)]
    pub fail_over: Option<f64>,
}

/// Reads the logs and prints the summary: exit 2 when a log cannot be read or `--since` is
/// not understood (nothing is printed then: a partial summary would pass for a whole one),
/// 1 when a provider is over `--fail-over`, 0 otherwise.
pub fn main(args: &MaillogArgs) -> Exit {
    let since = match args.since.as_deref() {
        Some(text) => match maillog::parse_since(text, std::time::SystemTime::now()) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("probe: error: {e}");
                return Exit::Usage;
            }
        },
        None => None,
    };
    let paths: Vec<&Path> = args.files.iter().map(PathBuf::as_path).collect();
    let summary = match maillog::summarise(&paths, since) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("probe: error: {e}");
            return Exit::Usage;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        out.write_all(table(&summary).as_bytes())
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a message.
    if let Err(e) = written.and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("probe: error: cannot write the output: {e}");
        return Exit::ProbeFailure;
    }
    match args.fail_over {
        Some(pct) => {
            let over = summary.over(pct);
            for p in &over {
                let (deferred, bounced) = p.shares();
                eprintln!(
                    "probe: {}: {deferred:.1}% deferred, {bounced:.1}% bounced (over {pct}%)",
                    p.provider
                );
            }
            if over.is_empty() {
                Exit::Ok
            } else {
                Exit::NotAllInbox
            }
        }
        None => Exit::Ok,
    }
}

/// How many reasons the table shows per provider (the JSON has them all).
const TOP_REASONS: usize = 3;

/// The totals, then one row per provider with its top reasons below it.
fn table(s: &Summary) -> String {
    let t = &s.totals;
    let mut out = format!(
        "delivered {}  deferred {}  bounced {}  rejected {}  expired {}\n",
        t.delivered, t.deferred, t.bounced, t.rejected, t.expired
    );
    if s.providers.is_empty() {
        out.push_str("no deliveries in the log\n");
        return out;
    }
    let width = s
        .providers
        .iter()
        .map(|p| p.provider.len())
        .max()
        .unwrap_or(0)
        .max("provider".len());
    out.push_str(&format!(
        "\n{:width$}  {:>9}  {:>8}  {:>7}  {:>9}  {:>8}\n",
        "provider", "delivered", "deferred", "bounced", "deferred%", "bounced%"
    ));
    for p in &s.providers {
        out.push_str(&row(p, width));
    }
    out
}

fn row(p: &ProviderSummary, width: usize) -> String {
    let (deferred, bounced) = p.shares();
    let mut out = format!(
        "{:width$}  {:>9}  {:>8}  {:>7}  {:>8.1}%  {:>7.1}%\n",
        p.provider.escape_debug().to_string(),
        p.delivered,
        p.deferred,
        p.bounced,
        deferred,
        bounced
    );
    for r in p.reasons.iter().take(TOP_REASONS) {
        // Control characters escaped: a hostile reply cannot rewrite the terminal.
        let example: String = r.example.escape_debug().to_string();
        let example: String = example.chars().take(120).collect();
        out.push_str(&format!("  {:>6}  {:<16}  {example}\n", r.count, r.reason));
    }
    out
}
