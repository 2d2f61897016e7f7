//! A run, end to end: send one tagged message per seed, then poll until each has a verdict.
//!
//! This is glue, in the order things happen:
//!
//! - [`plan`]: built once from the config, the chosen seeds and their resolved credentials:
//!   each seed's IMAP account (with its TLS configuration) and how its message is sent. Every
//!   step below, and `probe seeds check`, takes it.
//! - [`send()`] (`send.rs`): notes each mailbox's position (`positions.rs`), then sends and
//!   stores each outcome as it happens; the sending IP's and domain's checks ([`checks`]) run
//!   beside both and are stored with the run.
//! - [`poll()`] (`poll.rs`): polls every account with undecided messages until each has a
//!   verdict; `record.rs` turns what polling reports into stored observations and verdicts.
//!
//! It calls [`crate::message`], [`crate::send`], [`crate::poll`], [`crate::downstream`] and
//! [`crate::verdict`], and writes each result to the [`Store`](crate::store::Store) the moment
//! it exists.

pub mod checks;
pub mod plan;
mod poll;
mod positions;
mod record;
mod send;

use std::time::Duration;

pub use checks::{ChecksError, RunChecks};
pub use plan::{Account, Plan};
pub use poll::poll;
pub use send::send;

use crate::config::ConfigError;
use crate::message;
use crate::store::StoreError;

/// Why a run could not go on. Per-seed problems are not errors: they are stored and reported.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config is unusable (a secret that cannot be read is named here, at its field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message could not be composed.
    #[error(transparent)]
    Build(#[from] message::BuildError),
    /// The relay refused probe itself (its AUTH, or its TLS): a problem of the user's own
    /// relay, not an answer of any seed's provider. The run is stored with this failure and
    /// its messages as not sent.
    #[error(
        "the relay refused probe: {failure}; nothing was sent and no seed was tested \
         (check sender.relay: username, password, tls, ca_file)"
    )]
    Relay {
        /// The relay's words, or what failed.
        failure: String,
    },
    /// No chosen seed's mailbox could be read before sending, so nothing was sent.
    #[error("no seed mailbox can be read, so nothing was sent:{}", unreadable_list(.0))]
    Unreadable(Vec<crate::store::NotTested>),
    /// A trust anchor could not be loaded.
    #[error("seed {seed}: {error}")]
    Tls {
        /// The seed (or `sender.relay`, or the bounces mailbox).
        seed: String,
        /// What failed.
        error: crate::tls::TlsError,
    },
}

/// One line per seed (and its hint): what its mailbox check met.
fn unreadable_list(seeds: &[crate::store::NotTested]) -> String {
    let mut out = String::new();
    for n in seeds {
        out.push_str(&format!("\n  {}: {}", n.seed, n.problem));
        if let Some(hint) = &n.hint {
            out.push_str(&format!("\n    hint: {hint}"));
        }
    }
    out
}

/// Things worth telling the user while a run goes on (the CLI prints them to stderr).
#[derive(Debug)]
pub enum Progress<'a> {
    /// A message's SMTP transaction ended.
    Sent {
        /// Seed name.
        seed: &'a str,
        /// How it ended.
        ending: &'a crate::send::Ending,
    },
    /// Polling started.
    Polling {
        /// Messages awaiting a verdict.
        pending: usize,
        /// The seeds of those messages, one per message, in the run's order.
        seeds: &'a [String],
        /// Accounts polled.
        accounts: usize,
        /// The longest wait.
        timeout: Duration,
    },
    /// A verdict was reached by polling.
    Decided {
        /// Seed name.
        seed: &'a str,
        /// Its verdict.
        verdict: crate::verdict::Verdict,
    },
    /// A polling problem: an IMAP account's, or the relay log's.
    PollProblem {
        /// Seeds affected.
        seeds: &'a [String],
        /// What happened.
        error: &'a dyn std::error::Error,
        /// Whether the account (or the log) was given up.
        fatal: bool,
    },
}

/// How polling went, for the exit code.
#[derive(Debug, Clone, Default)]
pub struct PollSummary {
    /// Seed accounts that had messages to look for.
    pub accounts: usize,
    /// Of those, accounts where a login succeeded.
    pub logged_in: usize,
    /// The last problem of each account that was never polled, as shown to people: what
    /// really happened (a refused login, a reset, a stall after login), not a guess.
    pub unpolled: Vec<String>,
}

impl PollSummary {
    /// Whether polling could do its job: false when every seed mailbox login failed
    /// (`seedprobe_up` in the metrics).
    pub fn up(&self) -> bool {
        !(self.accounts > 0 && self.logged_in == 0)
    }
}

/// The name polling problems of the bounces mailbox are filed under.
const BOUNCES: &str = "(bounces mailbox)";

/// What [`send_then_poll`] made: the run and how its polling went.
#[derive(Debug, Clone)]
pub struct Done {
    /// The new run's id.
    pub run_id: String,
    /// How polling went.
    pub summary: PollSummary,
}

/// A whole run, as `probe run` and `probe serve` make it: [`send()`] to `seeds`, then [`poll()`]
/// until each message has a verdict. Each step stores what it sees as it happens, so dropping
/// this future (Ctrl-C, SIGTERM) keeps every record, and [`resume`] finishes the run later.
pub async fn send_then_poll(
    config: &crate::config::Config,
    plan: &Plan,
    seeds: &[&crate::config::Seed],
    store: &mut crate::store::Store,
    label: Option<&str>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Done, RunError> {
    let run_id = send(config, plan, seeds, store, label, progress).await?;
    let summary = poll(config, plan, store, &run_id, progress).await?;
    Ok(Done { run_id, summary })
}

/// Polls a stored run's messages that still await a verdict, as `probe poll` and a restarted
/// `probe serve` do: the plan covers only their seeds (still in the config), so no password
/// is read for a seed that has nothing left to find.
pub async fn resume(
    config: &crate::config::Config,
    store: &crate::store::Store,
    run_id: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PollSummary, RunError> {
    let wanted: Vec<String> = store
        .messages(run_id)?
        .iter()
        .filter(|m| m.awaits_verdict())
        .map(|m| m.seed.clone())
        .filter(|name| config.seeds.iter().any(|s| &s.name == name))
        .collect();
    let seeds = config.select(&wanted)?;
    let plan = if wanted.is_empty() {
        Plan::nothing(config)
    } else {
        Plan::build(config, &seeds).await?
    };
    poll(config, &plan, store, run_id, progress).await
}
