//! `probe rescue [RUN] [--seed NAME]`: the one command that changes seed mailboxes. It says
//! what it will move, and from where, on stderr before touching anything.

use clap::Args;

use super::Exit;
use crate::config::Config;
use crate::poll::rescue::RescueOutcome;
use crate::report::printable;
use crate::rescue::{RescueError, RescuePlan, RescueSummary, execute};
use crate::run::Plan;
use crate::store::Store;

/// Arguments of `rescue`.
#[derive(Debug, Args)]
pub struct RescueArgs {
    /// The run [default: the latest run].
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Only this seed's message (repeatable).
    #[arg(long = "seed", value_name = "NAME")]
    pub seeds: Vec<String>,
}

/// `probe rescue`: plans from the store, builds the accounts of the seeds concerned, moves.
pub async fn main(config: &Config, store: &Store, args: &RescueArgs) -> anyhow::Result<Exit> {
    let run_id = match &args.run {
        Some(id) => {
            store.run(id)?;
            id.clone()
        }
        None => store.latest_run()?,
    };
    let rescue = match RescuePlan::new(store, config, &run_id, &args.seeds) {
        Ok(plan) => plan,
        Err(e @ (RescueError::NoSuchSeed { .. } | RescueError::NotConfigured { .. })) => {
            eprintln!("probe: error: {}", printable(&e.to_string()));
            return Ok(Exit::Usage);
        }
        Err(RescueError::Store(e)) => return Err(e.into()),
    };
    let names = rescue.seeds();
    let seeds = config.select(&names)?;
    let plan = if names.is_empty() {
        Plan::nothing(config)
    } else {
        Plan::build(config, &seeds).await?
    };
    run(&rescue, &plan, config, store).await
}

/// `probe run --rescue`: the run's spam-folder messages, with the run's own plan.
pub async fn after_run(
    config: &Config,
    plan: &Plan,
    store: &Store,
    run_id: &str,
) -> anyhow::Result<Exit> {
    let rescue = match RescuePlan::new(store, config, run_id, &[]) {
        Ok(rescue) => rescue,
        Err(RescueError::Store(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("probe: rescue: {}", printable(&e.to_string()));
            return Ok(Exit::Usage);
        }
    };
    run(&rescue, plan, config, store).await
}

/// Announces, moves, reports on stderr, and gives the exit code.
async fn run(
    rescue: &RescuePlan,
    plan: &Plan,
    config: &Config,
    store: &Store,
) -> anyhow::Result<Exit> {
    for r in &rescue.already {
        eprintln!(
            "probe rescue: {}: already rescued ({}) from {}; nothing to do",
            r.seed,
            r.outcome,
            printable(&crate::poll::utf7::decode(&r.from_folder))
        );
    }
    if rescue.candidates.is_empty() {
        eprintln!(
            "probe rescue: nothing to move: run {} has no message in a spam folder left to rescue",
            rescue.run_id
        );
        return Ok(Exit::Ok);
    }
    eprintln!(
        "probe rescue: this CHANGES seed mailboxes: moving {} message(s) of run {} to INBOX, as a \"not spam\" click does:",
        rescue.candidates.len(),
        rescue.run_id
    );
    for c in &rescue.candidates {
        eprintln!(
            "  {}: {} from {}",
            c.seed,
            c.token,
            printable(&crate::poll::utf7::decode(&c.folder))
        );
    }
    let summary = match execute(rescue, plan, config, store).await {
        Ok(summary) => summary,
        Err(RescueError::Store(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("probe: error: {}", printable(&e.to_string()));
            return Ok(Exit::Usage);
        }
    };
    Ok(report(&summary))
}

/// One stderr line per message; the exit code: 0 all moved (or not there any more), 1 some
/// not, 3 no mailbox usable.
fn report(summary: &RescueSummary) -> Exit {
    for d in &summary.done {
        let seed = &d.candidate.seed;
        let folder = crate::poll::utf7::decode(&d.candidate.folder);
        let line = match &d.outcome {
            RescueOutcome::Moved { method, keywords } => format!(
                "{seed}: moved from {folder} to INBOX ({}{})",
                method.as_str(),
                if *keywords {
                    ", marked $NotJunk"
                } else {
                    ", keywords not supported"
                }
            ),
            RescueOutcome::Copied { why, .. } => {
                format!("{seed}: copied to INBOX; the original stays in {folder}: {why}")
            }
            RescueOutcome::NotFound => {
                format!("{seed}: not in {folder} any more; nothing to move")
            }
            RescueOutcome::NotTried { error } => format!("{seed}: not moved: {error}"),
            RescueOutcome::Failed { error, .. } => format!("{seed}: could not be moved: {error}"),
        };
        eprintln!("probe rescue: {}", printable(&line));
    }
    if summary.accounts > 0 && summary.unusable.len() == summary.accounts {
        eprintln!("probe: error: no seed mailbox could be used for the rescue:");
        for (seeds, e) in &summary.unusable {
            eprintln!("  {}: {}", seeds.join(", "), printable(&e.to_string()));
        }
        return Exit::ProbeFailure;
    }
    if summary.failed() > 0 {
        Exit::NotAllInbox
    } else {
        Exit::Ok
    }
}
