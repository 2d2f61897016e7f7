//! Marking positions: where each mailbox stands before the run sends.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Plan;
use crate::config::{Config, Seed};
use crate::poll::{self, AccountPoll, Lookup};
use crate::store::{PositionRecord, Store};

/// The longest sending waits for [`mark`].
const MARK_BUDGET: Duration = Duration::from_secs(10);

/// Before sending: notes UIDVALIDITY and UIDNEXT of each seed's inbox and spam folder (and of
/// the bounces mailbox in relay mode), so that polling searches only what arrives after them
/// (`UID n:*`), however big the mailbox. Best effort and brief: an account not marked within
/// the IMAP timeout (10 s at most) is searched by date instead, and sending goes on regardless.
pub(super) async fn mark(
    config: &Config,
    plan: &Plan,
    seeds: &[&Seed],
    store: &Store,
    run_id: &str,
) {
    let timeout = config.timing.imap_timeout;
    let now = Instant::now();
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
    let mut tasks = tokio::task::JoinSet::new();
    let mut unmarked: Vec<Vec<String>> = Vec::new();
    for job in jobs {
        unmarked.push(job.seeds.clone());
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = poll::mark_positions(&job, timeout).await;
            (job.seeds, result)
        });
    }
    let until = now + timeout.min(MARK_BUDGET);
    // Store errors are not fatal here: the send records that follow would meet them first.
    let note = |seeds: &[String], error: String| {
        let detail = serde_json::json!({
            "error": error,
            "note": "no position before sending: polling searches by date",
        });
        for seed in seeds {
            let _ = store.record_observation(run_id, None, Some(seed), "positions", &detail);
        }
    };
    loop {
        let (seeds, result) = match tokio::time::timeout_at(until, tasks.join_next()).await {
            Ok(Some(Ok(done))) => done,
            Ok(Some(Err(_))) => continue,
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                for seeds in &unmarked {
                    note(
                        seeds,
                        format!(
                            "not done within {}",
                            humantime::format_duration(timeout.min(MARK_BUDGET))
                        ),
                    );
                }
                break;
            }
        };
        unmarked.retain(|s| *s != seeds);
        match result {
            Ok(positions) => {
                for seed in &seeds {
                    for p in &positions {
                        let _ = store.record_position(
                            run_id,
                            &PositionRecord {
                                seed: seed.clone(),
                                folder: p.folder.clone(),
                                role: p.role.as_str().to_owned(),
                                uid_validity: p.uid_validity,
                                uid_next: p.uid_next,
                            },
                        );
                    }
                }
            }
            Err(e) => note(&seeds, e.to_string()),
        }
    }
}
