//! `probe compare BEFORE AFTER`: the before/after check of an IP or provider migration.

use std::io::Write as _;

use clap::Args;

use super::Exit;
use crate::compare::compare;
use crate::store::{RunFilter, Store};

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run before the change (its id) [default with --host/--label: the one before the
    /// latest].
    #[arg(value_name = "BEFORE", requires = "after")]
    pub before: Option<String>,
    /// The run after the change (its id) [default with --host/--label: the latest].
    #[arg(value_name = "AFTER")]
    pub after: Option<String>,
    /// Without BEFORE and AFTER: compare the latest two runs of this host and/or label.
    #[command(flatten)]
    pub filter: super::history::RunFilterArgs,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the comparison; exit 1 when any seed or check got worse, 0 otherwise.
pub fn main(store: &Store, args: &CompareArgs) -> anyhow::Result<Exit> {
    let filter = args.filter.filter();
    let (before, after) = match (&args.before, &args.after) {
        (Some(before), Some(after)) if filter == RunFilter::default() => {
            (before.clone(), after.clone())
        }
        (None, None) if filter != RunFilter::default() => {
            let runs = store.runs_matching(&filter)?;
            let [after, before, ..] = runs.as_slice() else {
                eprintln!(
                    "probe: error: compare needs two runs; {} match --host/--label",
                    runs.len()
                );
                return Ok(Exit::Usage);
            };
            (before.id.clone(), after.id.clone())
        }
        _ => {
            eprintln!(
                "probe: error: give BEFORE and AFTER run ids, or --host/--label to compare \
                 their latest two runs"
            );
            return Ok(Exit::Usage);
        }
    };
    // Unknown run ids are usage errors (exit 2), as everywhere.
    let before_run = store.run(&before)?;
    let after_run = store.run(&after)?;
    let comparison = compare(
        &before,
        &store.messages(&before)?,
        &after,
        &store.messages(&after)?,
    )
    .with_checks(before_run.checks.as_ref(), after_run.checks.as_ref());
    let rescued = crate::compare::rescue_notes(&comparison, &store.rescues(&before)?);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut doc = serde_json::to_value(&comparison)?;
        // `rescued`: seeds rescued in BEFORE and where AFTER placed them (the not-spam loop).
        if let Some(object) = doc.as_object_mut() {
            object.insert("rescued".into(), serde_json::to_value(&rescued)?);
        }
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", comparison.to_text())?;
        if !rescued.is_empty() {
            write!(
                out,
                "\nnot-spam loop:\n{}",
                crate::compare::rescue_text(&rescued)
            )?;
        }
    }
    Ok(if comparison.worse {
        Exit::NotAllInbox
    } else {
        Exit::Ok
    })
}
