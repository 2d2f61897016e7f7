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
//! - `seedprobe_messages_by_reason{provider,reason}`: messages per provider and cause reason
//!   (see `verdict::cause`; inbox and undecided messages have none). Only the reasons that
//!   occur are written: zeros for all of Sisimai's ~30 reasons per provider would bury the few
//!   that matter, and an alert on a reason is an alert on its presence.
//! - `seedprobe_check_failed{check,list,subject}`: 1 when a check made with the run (`probe
//!   check`'s, which `probe run` makes unless `--no-check`) failed, 0 when it did not (pass, warn, or could not be
//!   checked); `list` is the DNS list's zone for `dnsbl`/`dnswl`, else empty. Every stored
//!   result is written, so an alert on `== 1` fires when a listing appears. Absent for a run
//!   made without checks.
//! - `seedprobe_last_run_timestamp_seconds`: when the run started (Unix time).
//! - `seedprobe_poll_errors`: messages whose last poll recorded a problem.
//! - `seedprobe_up`: 1 when probe could do its job, 0 when no seed mailbox could be polled.
//!
//! [`write_atomic`] writes a temporary file beside `PATH` (a name of its own per writer, so
//! probes running at once do not write into each other's), syncs it and renames it over `PATH`,
//! so the collector never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::report::RunReport;

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
        "Messages of the last run per provider and verdict (pending: no verdict yet; not_sent, interrupted: none for that reason).",
    );
    for (provider, placement) in &per_provider {
        for (verdict, n) in placement.labelled() {
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
    reasons(&mut out, report);
    checks(&mut out, report);
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

/// `seedprobe_messages_by_reason`: messages per provider and the reason of their cause.
fn reasons(out: &mut String, report: &RunReport) {
    let mut counts = std::collections::BTreeMap::<(&str, &str), usize>::new();
    for m in &report.messages {
        if let Some(c) = crate::report::cause(m) {
            *counts.entry((m.provider.as_str(), c.reason)).or_default() += 1;
        }
    }
    family(
        out,
        "seedprobe_messages_by_reason",
        "Messages of the last run per provider and the reason for their verdict (not inbox).",
    );
    for ((provider, reason), n) in counts {
        sample(
            out,
            "seedprobe_messages_by_reason",
            &[("provider", provider), ("reason", reason)],
            n as f64,
        );
    }
}

/// `seedprobe_check_failed`: each check made with the run, 1 for a failure.
fn checks(out: &mut String, report: &RunReport) {
    let Some(checks) = &report.run.checks else {
        return;
    };
    family(
        out,
        "seedprobe_check_failed",
        "1 when a check made with the last run failed (a listing, no PTR, SPF fail, ...), else 0.",
    );
    for r in &checks.results {
        let failed = r.status == crate::check::Status::Fail;
        sample(
            out,
            "seedprobe_check_failed",
            &[
                ("check", &r.check),
                ("list", r.list.as_deref().unwrap_or("")),
                ("subject", &r.subject),
            ],
            if failed { 1.0 } else { 0.0 },
        );
    }
}

/// Writes `contents` to `path` atomically: `PATH.<pid>.<n>.tmp` in the same directory (the
/// same file system, so the rename is atomic), fsync, rename.
///
/// The temporary name is unique to this writer: several probes (a timer and a manual run) may
/// write the same file at once, and a shared `PATH.tmp` let one rename another's half-written
/// file or find it gone. The collector reads only `*.prom`, so it never picks up a temporary.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), MetricsError> {
    let err = |p: &Path| {
        let p = p.to_owned();
        move |source| MetricsError { path: p, source }
    };
    let (mut f, tmp) = create_temporary(path).map_err(err(path))?;
    let result = (|| {
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

/// Creates a new temporary file beside `path`, named `PATH.<pid>.<n>.tmp`.
///
/// The process id separates processes and `n` (a counter mixed with the clock) threads and
/// earlier writers whose leftovers a crash kept; `create_new` makes a clash an error instead
/// of a shared file, and the next name is tried.
fn create_temporary(path: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut name = path.as_os_str().to_owned();
        name.push(format!(
            ".{}.{:x}.tmp",
            std::process::id(),
            u64::from(clock) ^ (n << 32) ^ n
        ));
        let tmp = PathBuf::from(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()))
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
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.prom"]);
        let missing = dir.join("no/such/dir/m.prom");
        assert!(write_atomic(&missing, "x").is_err());
    }

    /// Several probes (a timer and a manual run) writing one file at once: each write succeeds,
    /// the file is one writer's whole content, and no temporary file is left behind.
    #[test]
    fn concurrent_writers_do_not_collide() {
        const WRITERS: usize = 6;
        const ROUNDS: usize = 40;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.prom");
        let start = std::sync::Barrier::new(WRITERS);
        let contents: Vec<String> = (0..WRITERS)
            .map(|w| format!("seedprobe_up 1\n# writer {w}\n{}\n", "x".repeat(4096)))
            .collect();
        std::thread::scope(|scope| {
            for body in &contents {
                let (path, start) = (&path, &start);
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..ROUNDS {
                        write_atomic(path, body).unwrap();
                    }
                });
            }
        });
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(contents.contains(&written), "a mixed file: {written:.80}");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.prom"]);
    }
}
