//! `probe rescue`: the not-spam loop's policy. Which of a run's messages are brought back
//! from the spam folder, on whose account, and what is recorded.
//!
//! A message is a candidate when its verdict is `spam` (found in the spam folder) and no
//! earlier rescue brought it to INBOX: a second rescue finds nothing to do instead of copying
//! twice. The IMAP side is [`crate::poll::rescue`]; what is printed is the CLI's.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::Config;
use crate::message::Token;
use crate::poll::rescue::{RescueOutcome, rescue};
use crate::poll::{Lookup, PollError};
use crate::run::Plan;
use crate::store::{RescueRecord, Store, StoreError, unix_ms};
use crate::verdict::Verdict;

/// A rescue could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum RescueError {
    /// The store failed, or the run is unknown.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--seed` names a seed with no message in the run.
    #[error("run {run} has no message for seed `{seed}`")]
    NoSuchSeed {
        /// The run.
        run: String,
        /// The seed asked for.
        seed: String,
    },
    /// A candidate's seed is not in the seeds file, so its mailbox cannot be reached.
    #[error("seed `{seed}` of run {run} is not in the seeds file; its mailbox cannot be reached")]
    NotConfigured {
        /// The run.
        run: String,
        /// The seed.
        seed: String,
    },
}

/// One message to bring back.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Seed name.
    pub seed: String,
    /// The message.
    pub token: Token,
    /// The spam folder it was found in (wire name).
    pub folder: String,
}

/// What a rescue will do, worked out from the store before any mailbox is touched.
#[derive(Debug, Clone)]
pub struct RescuePlan {
    /// The run.
    pub run_id: String,
    /// The messages to move, in sending order.
    pub candidates: Vec<Candidate>,
    /// Spam-folder messages an earlier rescue already brought to INBOX.
    pub already: Vec<RescueRecord>,
}

impl RescuePlan {
    /// Plans the rescue of `run_id`'s spam-folder messages, only those of `seeds` when given.
    pub fn new(
        store: &Store,
        config: &Config,
        run_id: &str,
        seeds: &[String],
    ) -> Result<RescuePlan, RescueError> {
        let messages = store.messages(run_id)?;
        for seed in seeds {
            if !messages.iter().any(|m| &m.seed == seed) {
                return Err(RescueError::NoSuchSeed {
                    run: run_id.to_owned(),
                    seed: seed.clone(),
                });
            }
        }
        let done = store.rescues(run_id)?;
        let mut plan = RescuePlan {
            run_id: run_id.to_owned(),
            candidates: Vec::new(),
            already: Vec::new(),
        };
        for m in &messages {
            if !seeds.is_empty() && !seeds.contains(&m.seed) {
                continue;
            }
            let (Some(Verdict::Spam), Some(folder)) = (m.verdict, &m.folder) else {
                continue;
            };
            if let Some(r) = done
                .iter()
                .rev()
                .find(|r| r.token == m.token && r.succeeded())
            {
                plan.already.push(r.clone());
                continue;
            }
            // A token the store holds was made by probe; one that does not parse is skipped
            // rather than searched for loosely.
            let Ok(token) = m.token.parse::<Token>() else {
                continue;
            };
            if !config.seeds.iter().any(|s| s.name == m.seed) {
                return Err(RescueError::NotConfigured {
                    run: run_id.to_owned(),
                    seed: m.seed.clone(),
                });
            }
            plan.candidates.push(Candidate {
                seed: m.seed.clone(),
                token,
                folder: folder.clone(),
            });
        }
        Ok(plan)
    }

    /// The seeds with something to move, in order, once each.
    pub fn seeds(&self) -> Vec<String> {
        let mut seeds: Vec<String> = Vec::new();
        for c in &self.candidates {
            if !seeds.contains(&c.seed) {
                seeds.push(c.seed.clone());
            }
        }
        seeds
    }
}

/// One candidate's result.
#[derive(Debug, Clone)]
pub struct Done {
    /// The message.
    pub candidate: Candidate,
    /// What became of it.
    pub outcome: RescueOutcome,
}

/// How a rescue went.
#[derive(Debug, Default)]
pub struct RescueSummary {
    /// Per candidate, in plan order.
    pub done: Vec<Done>,
    /// Mailboxes that could not be used at all (login, TLS, the folder), with the seeds
    /// behind each.
    pub unusable: Vec<(Vec<String>, PollError)>,
    /// Mailboxes tried.
    pub accounts: usize,
}

impl RescueSummary {
    /// Messages that did not reach INBOX although they were in the spam folder.
    pub fn failed(&self) -> usize {
        self.done
            .iter()
            .filter(|d| {
                matches!(
                    d.outcome,
                    RescueOutcome::Failed { .. } | RescueOutcome::NotTried { .. }
                )
            })
            .count()
    }
}

/// Carries out `rescue` with the accounts of `plan` (built for its seeds), recording each
/// message that was moved, copied or refused as it happens.
pub async fn execute(
    rescue_plan: &RescuePlan,
    plan: &Plan,
    config: &Config,
    store: &Store,
) -> Result<RescueSummary, RescueError> {
    let timeout: Duration = config.timing.imap_timeout;
    // One connection per mailbox and folder, in the order of their first candidate.
    let mut groups: BTreeMap<(usize, String), Vec<&Candidate>> = BTreeMap::new();
    let mut order: Vec<(usize, String)> = Vec::new();
    for c in &rescue_plan.candidates {
        let Some(index) = plan
            .accounts()
            .iter()
            .position(|a| a.seeds.contains(&c.seed))
        else {
            return Err(RescueError::NotConfigured {
                run: rescue_plan.run_id.clone(),
                seed: c.seed.clone(),
            });
        };
        let key = (index, c.folder.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(c);
    }
    let mut summary = RescueSummary::default();
    for key in order {
        let candidates = &groups[&key];
        let account = &plan.accounts()[key.0];
        let seeds: Vec<String> = account.seeds.clone();
        let job = account.poll(seeds.clone(), Lookup::Placement, Instant::now() + timeout);
        let tokens: Vec<Token> = candidates.iter().map(|c| c.token).collect();
        summary.accounts += 1;
        let result = rescue(&job, &key.1, &tokens, timeout).await;
        for candidate in candidates {
            let outcome = match result.done.iter().find(|r| r.token == candidate.token) {
                Some(r) => r.outcome.clone(),
                // Not reached: the connection or the folder failed first.
                None => match &result.stopped {
                    Some(e) => RescueOutcome::NotTried {
                        error: e.to_string(),
                    },
                    None => RescueOutcome::NotFound,
                },
            };
            record(store, &rescue_plan.run_id, candidate, &outcome)?;
            summary.done.push(Done {
                candidate: (*candidate).clone(),
                outcome,
            });
        }
        if let Some(e) = result.stopped
            && result.done.is_empty()
        {
            summary.unusable.push((seeds, e));
        }
    }
    Ok(summary)
}

/// Stores what was done to a message; nothing for one that was not found or not reached
/// (nothing was done to it).
fn record(
    store: &Store,
    run_id: &str,
    c: &Candidate,
    outcome: &RescueOutcome,
) -> Result<(), StoreError> {
    let (method, result, detail) = match outcome {
        RescueOutcome::NotFound | RescueOutcome::NotTried { .. } => return Ok(()),
        RescueOutcome::Moved { method, .. } => (method.as_str(), "moved", None),
        RescueOutcome::Copied { why, .. } => ("copy", "copied", Some(why.clone())),
        RescueOutcome::Failed { method, error } => (method.as_str(), "failed", Some(error.clone())),
    };
    store.record_rescue(&RescueRecord {
        run_id: run_id.to_owned(),
        seed: c.seed.clone(),
        token: c.token.to_string(),
        at: unix_ms(SystemTime::now()),
        from_folder: c.folder.clone(),
        method: method.to_owned(),
        outcome: result.to_owned(),
        detail,
    })
}
