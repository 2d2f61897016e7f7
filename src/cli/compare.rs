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

/// Prints the comparison; exit 1 when any seed got worse, 0 otherwise.
pub fn main(store: &Store, args: &CompareArgs) -> anyhow::Result<Exit> {
    // Unknown run ids are usage errors (exit 2), as everywhere.
    store.run(&args.before)?;
    store.run(&args.after)?;
    let comparison = compare(
        &args.before,
        &store.messages(&args.before)?,
        &args.after,
        &store.messages(&args.after)?,
    );
    let rescued = crate::compare::rescue_notes(&comparison, &store.rescues(&args.before)?);
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
