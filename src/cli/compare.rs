//! `probe compare BEFORE AFTER`: the before/after check of an IP or provider migration.

use std::io::Write as _;

use clap::Args;

use super::Exit;
use crate::compare::compare;
use crate::store::Store;

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run before the change (its id).
    #[arg(value_name = "BEFORE")]
    pub before: String,
    /// The run after the change (its id).
    #[arg(value_name = "AFTER")]
    pub after: String,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the comparison; exit 1 when any seed or check got worse, 0 otherwise.
pub fn main(store: &Store, args: &CompareArgs) -> anyhow::Result<Exit> {
    // Unknown run ids are usage errors (exit 2), as everywhere.
    let before = store.run(&args.before)?;
    let after = store.run(&args.after)?;
    let comparison = compare(
        &args.before,
        &store.messages(&args.before)?,
        &args.after,
        &store.messages(&args.after)?,
    )
    .with_checks(before.checks.as_ref(), after.checks.as_ref());
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &comparison)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", comparison.to_text())?;
    }
    Ok(if comparison.worse {
        Exit::NotAllInbox
    } else {
        Exit::Ok
    })
}
