//! Checking and marking mailboxes before sending: whether each seed's mailbox can be read at
//! all, and where it stands.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{BOUNCES, Plan};
use crate::config::{Config, Seed};
use crate::poll::{self, AccountPoll, Backoff, Lookup, PollError, Position};
use crate::store::{NotTested, PositionRecord, Store, StoreError};

/// The longest sending waits for [`check`].
const MARK_BUDGET: Duration = Duration::from_secs(10);

/// One account's check: its seeds and what marking it gave.
type Outcome = (Vec<String>, Result<Vec<Position>, PollError>);

/// What the check before sending found.
#[derive(Debug, Default)]
pub(super) struct Checked {
    /// Positions taken, by the seeds of their account.
    positions: Vec<(Vec<String>, Vec<Position>)>,
    /// Accounts that can be read but have no position (searched by date), and why.
    unmarked: Vec<(Vec<String>, String)>,
    /// Seeds whose mailbox cannot be read: not sent to.
    pub(super) not_tested: Vec<NotTested>,
}

impl Checked {
    /// True when `seed`'s mailbox could not be read.
    pub(super) fn is_not_tested(&self, seed: &str) -> bool {
        self.not_tested.iter().any(|n| n.seed == seed)
    }

    /// Stores the positions, the accounts searched by date and the seeds not tested.
    pub(super) fn record(&self, store: &Store, run_id: &str) -> Result<(), StoreError> {
        for (seeds, positions) in &self.positions {
            for seed in seeds {
                for p in positions {
                    store.record_position(
                        run_id,
                        &PositionRecord {
                            seed: seed.clone(),
                            folder: p.folder.clone(),
                            role: p.role,
                            uid_validity: p.uid_validity,
                            uid_next: p.uid_next,
                        },
                    )?;
                }
            }
        }
        for (seeds, error) in &self.unmarked {
            let detail = serde_json::json!({
                "error": error,
                "note": "no position before sending: polling searches by date",
            });
            for seed in seeds {
                store.record_observation(run_id, None, Some(seed), "positions", &detail)?;
            }
        }
        for n in &self.not_tested {
            store.record_not_tested(run_id, n)?;
        }
        Ok(())
    }
}

/// Before sending: logs into each seed's mailbox (and the bounces mailbox in relay mode),
/// noting UIDVALIDITY and UIDNEXT of the inbox and the spam folder, so that polling searches
/// only what arrives after them (`UID n:*`), however big the mailbox.
///
/// The login decides: a seed whose mailbox cannot be logged into (wrong password, TLS refused,
/// port unreachable, no answer) within the IMAP timeout (10 s at most) is *not tested*: no
/// message would ever be found there, so none is sent. A connection that broke (reset,
/// closed) is retried with the polling backoff within that time. A mailbox that logged in
/// but gave no position is searched by date. The bounces mailbox never stops a seed.
pub(super) async fn check(config: &Config, plan: &Plan, seeds: &[&Seed]) -> Checked {
    let timeout = config.timing.imap_timeout;
    let budget = timeout.min(MARK_BUDGET);
    let now = Instant::now();
    let until = now + budget;
    let mut jobs: Vec<AccountPoll> = Vec::new();
    for account in plan.accounts() {
        let sending: Vec<String> = account
            .seeds
            .iter()
            .filter(|name| seeds.iter().any(|s| &s.name == *name))
            .cloned()
            .collect();
        if !sending.is_empty() {
            jobs.push(account.poll(sending, Lookup::Placement, now));
        }
    }
    if let Some(bounces) = plan.bounces() {
        jobs.push(bounces.poll(bounces.seeds.clone(), Lookup::Dsn, now));
    }

    let limit = Arc::new(tokio::sync::Semaphore::new(config.timing.imap_connections));
    let interval = config.timing.poll_interval;
    let mut tasks = tokio::task::JoinSet::new();
    // Every account still being checked, with the flag its login sets.
    let mut pending: HashMap<Vec<String>, (String, Arc<AtomicBool>)> = HashMap::new();
    for job in jobs {
        let flag = Arc::new(AtomicBool::new(false));
        let server = format!("{}:{}", job.imap.host, job.imap.port);
        pending.insert(job.seeds.clone(), (server, flag.clone()));
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut backoff = Backoff::new(interval);
            loop {
                let result = poll::mark_positions(&job, timeout, &flag).await;
                // Only a connection that broke is tried again: a refused connect or a silent
                // server would only spend the time sending waits for.
                let retry =
                    matches!(&result, Err(PollError::Lost { .. })) && !flag.load(Ordering::SeqCst);
                let pause = backoff.take();
                if !retry || Instant::now() + pause >= until {
                    return (job.seeds, result);
                }
                tokio::time::sleep(pause).await;
            }
        });
    }

    let mut checked = Checked::default();
    let who = |name: &str| seeds.iter().find(|s| s.name == name).copied();
    let mut not_tested = |group: &[String], problem: String, hint: Option<&str>| {
        for name in group {
            if let Some(seed) = who(name) {
                checked.not_tested.push(NotTested {
                    seed: seed.name.clone(),
                    provider: seed.provider_name().to_owned(),
                    address: seed.address.to_string(),
                    problem: problem.clone(),
                    hint: hint.map(str::to_owned),
                });
            }
        }
    };
    let mut done: Vec<Outcome> = Vec::new();
    loop {
        match tokio::time::timeout_at(until, tasks.join_next()).await {
            Ok(Some(Ok((seeds, result)))) => {
                pending.remove(&seeds);
                done.push((seeds, result));
            }
            Ok(Some(Err(_))) => continue,
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                break;
            }
        }
    }
    let bounces = |group: &[String]| group.iter().any(|s| s == BOUNCES);
    for (group, result) in done {
        match result {
            Ok(positions) => checked.positions.push((group, positions)),
            // Logged in, then something failed: readable, searched by date.
            Err(e) if e.after_login() || bounces(&group) => {
                checked.unmarked.push((group, e.to_string()))
            }
            Err(e) => {
                let provider = who(&group[0]).map_or("-", |s| s.provider_name());
                not_tested(&group, e.to_string(), e.hint(provider));
            }
        }
    }
    let within = humantime::format_duration(budget).to_string();
    for (group, (server, flag)) in pending {
        if flag.load(Ordering::SeqCst) || bounces(&group) {
            checked
                .unmarked
                .push((group, format!("not done within {within}")));
        } else {
            not_tested(
                &group,
                format!("{server}: no login within {within}"),
                Some("check imap.host and imap.port, and that IMAP is reachable from here"),
            );
        }
    }
    // Config order, whatever order the checks ended in.
    let order = |name: &str| seeds.iter().position(|s| s.name == name);
    checked.not_tested.sort_by_key(|n| order(&n.seed));
    checked
}
