//! A run as a Prometheus textfile-collector file (node_exporter's `--collector.textfile`).
//!
//! Metrics, each with HELP and TYPE lines, all gauges (a file describes the latest run):
//!
//! - `seedprobe_messages{provider,verdict}`: messages per provider and verdict; every verdict
//!   (and `pending`) is written for every provider of the run, zeros included, so that series do
//!   not vanish between runs.
//! - `seedprobe_inbox_ratio{provider}`: inbox messages / messages of that provider (pending and
//!   `spam_tagged` count as not inbox); without the `provider` label, over the whole run
//!   (`seedprobe_inbox_ratio{provider=""}` in PromQL).
//! - `seedprobe_delivery_latency_seconds{seed,provider}`: end of the SMTP transaction to probe's
//!   sighting, for each message found.
//! - `seedprobe_last_run_timestamp_seconds`: when the run started (Unix time).
//! - `seedprobe_poll_errors`: messages whose last poll recorded a problem.
//! - `seedprobe_up`: 1 when probe could do its job, 0 when no seed mailbox could be polled.
//!
//! [`write_atomic`] writes `PATH.tmp` beside `PATH`, syncs it and renames it over `PATH`, so the
//! collector never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::report::RunReport;
use crate::verdict::Verdict;

/// Writing the metrics file failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write metrics file {path}: {source}")]
pub struct MetricsError {
    /// The file being written (the temporary one, or the final one for the rename).
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Escapes a label value as the exposition format requires: backslash, double quote, newline.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, pairs: &[(&str, &str)], value: f64) {
    let _ = writeln!(out, "{name}{} {value}", labels(pairs));
}

/// The file's contents for a run. `up` is false when no seed mailbox could be polled.
pub fn render(report: &RunReport, up: bool) -> String {
    let per_provider = report.placement_by_provider();
    let mut out = String::new();
    family(
        &mut out,
        "seedprobe_messages",
        "Messages of the last run per provider and verdict (pending: no verdict yet).",
    );
    for (provider, placement) in &per_provider {
        let counts = Verdict::ALL
            .map(|v| (v.as_label(), placement.count(v)))
            .into_iter()
            .chain([(Verdict::label_or_pending(None), placement.pending())]);
        for (verdict, n) in counts {
            sample(
                &mut out,
                "seedprobe_messages",
                &[("provider", provider), ("verdict", verdict)],
                n as f64,
            );
        }
    }
    family(
        &mut out,
        "seedprobe_inbox_ratio",
        "Share of the last run's messages in the inbox, per provider; without provider, overall.",
    );
    for (provider, placement) in &per_provider {
        if let Some(ratio) = placement.inbox_share() {
            sample(
                &mut out,
                "seedprobe_inbox_ratio",
                &[("provider", provider)],
                ratio,
            );
        }
    }
    if let Some(ratio) = report.placement().inbox_share() {
        sample(&mut out, "seedprobe_inbox_ratio", &[], ratio);
    }
    family(
        &mut out,
        "seedprobe_delivery_latency_seconds",
        "From the end of the SMTP transaction to probe finding the message, per seed.",
    );
    for m in &report.messages {
        if let Some(d) = m.latency() {
            sample(
                &mut out,
                "seedprobe_delivery_latency_seconds",
                &[("seed", &m.seed), ("provider", &m.provider)],
                d.as_millis() as f64 / 1000.0,
            );
        }
    }
    family(
        &mut out,
        "seedprobe_last_run_timestamp_seconds",
        "Start of the last run, Unix time.",
    );
    sample(
        &mut out,
        "seedprobe_last_run_timestamp_seconds",
        &[],
        report.run.started_at as f64 / 1000.0,
    );
    family(
        &mut out,
        "seedprobe_poll_errors",
        "Messages of the last run whose polling recorded a problem.",
    );
    let errors = report
        .messages
        .iter()
        .filter(|m| m.poll_error.is_some())
        .count();
    sample(&mut out, "seedprobe_poll_errors", &[], errors as f64);
    family(
        &mut out,
        "seedprobe_up",
        "1 when the last run could poll its seed mailboxes, 0 when every login failed.",
    );
    sample(&mut out, "seedprobe_up", &[], if up { 1.0 } else { 0.0 });
    out
}

/// Writes `contents` to `path` atomically: `PATH.tmp` in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), MetricsError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let err = |p: &Path| {
        let p = p.to_owned();
        move |source| MetricsError { path: p, source }
    };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(err(&tmp))?;
        f.write_all(contents.as_bytes()).map_err(err(&tmp))?;
        f.sync_all().map_err(err(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(err(path))?;
        // The rename itself is durable once the directory is synced; best effort.
        if let Some(Ok(d)) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(std::fs::File::open)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(
            labels(&[("seed", "x\"y"), ("provider", "-")]),
            "{seed=\"x\\\"y\",provider=\"-\"}"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("m.prom");
        write_atomic(&path, "seedprobe_up 1\n").unwrap();
        write_atomic(&path, "seedprobe_up 0\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "seedprobe_up 0\n");
        assert!(!dir.join("m.prom.tmp").exists());
        let missing = dir.join("no/such/dir/m.prom");
        assert!(write_atomic(&missing, "x").is_err());
    }
}
