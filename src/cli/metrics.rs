//! `--metrics-file` on `send`, `run` and `poll`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::report::RunReport;
use crate::report::metrics::{render, write_atomic};
use crate::store::Store;

/// The metrics option.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// After the run, write a Prometheus textfile-collector file here (atomically).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// Writes the run's metrics file when asked; `up` is false when no seed mailbox could be polled.
pub fn write(path: Option<&Path>, store: &Store, run_id: &str, up: bool) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let report = RunReport {
        run: store.run(run_id)?,
        messages: store.messages(run_id)?,
    };
    write_atomic(path, &render(&report, up))?;
    Ok(())
}

/// Whether polling could do its job: false when every seed mailbox login failed.
pub fn up(summary: &crate::run::PollSummary) -> bool {
    summary.up()
}
