//! `probe runs` and `probe report`: stored runs read back; `--fail-under` for `probe run`.

use std::io::Write as _;
use std::time::SystemTime;

use clap::{Args, ValueEnum};

use super::Exit;
use crate::report::trend::Trend;
use crate::report::{RunList, RunReport};
use crate::store::{RunFilter, Store, unix_ms};

/// Arguments of `runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
    /// Delete the runs started longer ago than this (e.g. `90d`), with all their records.
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    pub prune_older_than: Option<std::time::Duration>,
    /// Which runs.
    #[command(flatten)]
    pub filter: RunFilterArgs,
}

/// `--host` and `--label`: which runs, in a store several probe hosts write into.
#[derive(Debug, Clone, Args)]
pub struct RunFilterArgs {
    /// Only runs made on this probe host (its host name, or PROBE_HOST_NAME where it ran).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Only runs with this label.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
}

impl RunFilterArgs {
    /// The store's filter.
    pub fn filter(&self) -> RunFilter {
        RunFilter {
            host: self.host.clone(),
            label: self.label.clone(),
        }
    }
}

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Grouped by provider, with a placement summary per provider (`-v`: details per seed).
    Table,
    /// The `--json` document of `run`/`poll`.
    Json,
    /// One row per message, with a header line (RFC 4180).
    Csv,
    /// One self-contained HTML page (inline CSS, no script, no external assets).
    Html,
}

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run [default: the latest run, of `--host`/`--label` if given].
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Which run is the latest (without RUN).
    #[command(flatten)]
    pub filter: RunFilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// Inbox share per provider over time, from the stored runs (table, json or html).
    #[arg(long, conflicts_with = "run")]
    pub trend: bool,
    /// With --trend: only runs started within this time (e.g. `30d`, `12h`) [default: every run].
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration, requires = "trend")]
    pub since: Option<std::time::Duration>,
}

/// `probe runs [--json] [--prune-older-than AGE]`.
pub fn runs(store: &mut Store, args: &RunsArgs) -> anyhow::Result<Exit> {
    if let Some(age) = args.prune_older_than {
        if args.filter.filter() != RunFilter::default() {
            eprintln!(
                "probe: error: --prune-older-than deletes the old runs of every host and label; \
                 leave out --host and --label"
            );
            return Ok(Exit::Usage);
        }
        let before = unix_ms(SystemTime::now()) - age.as_millis() as i64;
        let deleted = store.prune_runs_started_before(before)?;
        println!(
            "deleted {deleted} run(s) started more than {} ago",
            humantime::format_duration(age)
        );
        return Ok(Exit::Ok);
    }
    let list = RunList {
        runs: store
            .runs_matching(&args.filter.filter())?
            .into_iter()
            .map(|run| {
                let messages = store.messages(&run.id)?;
                Ok(RunReport { run, messages })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &list.to_json())?;
        writeln!(out)?;
    } else {
        print!("{}", list.to_table());
    }
    Ok(Exit::Ok)
}

/// `probe report [RUN] [--format table|json|csv|html] [-o PATH]`; `verbose` is the global `-v`.
pub fn report(store: &Store, args: &ReportArgs, verbose: bool) -> anyhow::Result<Exit> {
    if args.trend {
        return trend(store, args);
    }
    let filter = args.filter.filter();
    let id = match &args.run {
        Some(_) if filter != RunFilter::default() => {
            eprintln!(
                "probe: error: --host and --label choose the latest run; give them or a RUN, not both"
            );
            return Ok(Exit::Usage);
        }
        Some(id) => id.clone(),
        None => store.latest_run_matching(&filter)?,
    };
    let report = RunReport {
        run: store.run(&id)?,
        messages: store.messages(&id)?,
    };
    let text = match args.format {
        ReportFormat::Table => {
            let rescues = store.rescues(&id)?;
            report.to_grouped_table(verbose) + &crate::report::rescue_lines(&rescues)
        }
        ReportFormat::Json => {
            let rescues = store.rescues(&id)?;
            let json = crate::report::json_with_rescues(&report.to_json(), &rescues)?;
            let mut s = serde_json::to_string_pretty(&json)?;
            s.push('\n');
            s
        }
        ReportFormat::Csv => report.to_csv(),
        ReportFormat::Html => report.to_html(),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(Exit::Ok)
}

/// The report's text to `-o PATH`, or to standard output.
fn write_output(output: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `probe report --trend [--since AGE] [--host H] [--label L] [--format table|json|html]`.
fn trend(store: &Store, args: &ReportArgs) -> anyhow::Result<Exit> {
    if args.format == ReportFormat::Csv {
        eprintln!("probe: error: --trend prints a table, json or html, not csv");
        return Ok(Exit::Usage);
    }
    let since = args
        .since
        .map(|age| unix_ms(SystemTime::now()) - age.as_millis() as i64);
    let runs = store
        .runs_matching(&args.filter.filter())?
        .into_iter()
        .filter(|run| since.is_none_or(|since| run.started_at >= since))
        .map(|run| {
            let messages = store.messages(&run.id)?;
            Ok(RunReport { run, messages })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rescues = Vec::new();
    for r in &runs {
        rescues.extend(store.rescues(&r.run.id)?);
    }
    let trend = Trend::with_rescues(&runs, &rescues, since);
    let text = match args.format {
        ReportFormat::Table => trend.to_table(),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&trend.to_json())?;
            s.push('\n');
            s
        }
        ReportFormat::Html | ReportFormat::Csv => trend.to_html(),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(Exit::Ok)
}

/// `--fail-under PCT`: with it, the exit code says whether the inbox share reached `PCT`;
/// without it, `exit` stands. A probe failure always stands.
pub fn fail_under(
    store: &Store,
    run_id: &str,
    percent: Option<f64>,
    exit: Exit,
) -> anyhow::Result<Exit> {
    let Some(percent) = percent else {
        return Ok(exit);
    };
    if exit == Exit::ProbeFailure {
        return Ok(exit);
    }
    let report = RunReport {
        run: store.run(run_id)?,
        messages: store.messages(run_id)?,
    };
    let share = report.inbox_percent();
    if share < percent {
        eprintln!("probe: inbox share {share:.1}% is below --fail-under {percent}%");
        Ok(Exit::NotAllInbox)
    } else {
        Ok(Exit::Ok)
    }
}

/// Parses a percentage between 0 and 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("not a number: {text}"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{text} is not a percentage between 0 and 100"))
    }
}
