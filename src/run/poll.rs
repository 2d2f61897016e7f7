//! Polling a run: plan the account polls, spawn them (with the bounces mailbox and the relay's
//! log in relay mode), drain their events into the store as they come, then settle what is
//! still unfound when the accounts end.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::record::Decider;
use super::{Account, Plan, PollSummary, Progress, RunError};
use crate::config::{Config, Transport};
use crate::downstream::Downstream;
use crate::downstream::maillog::{self, LogEntry, MaillogError};
use crate::message::Token;
use crate::poll::{
    self, AccountPoll, ConnectionLimit, Lookup, PollEvent, PollSettings, Position, StartAt,
};
use crate::store::{MessageRecord, PositionRecord, RunRecord, SendState, Store};
use crate::verdict::Evidence;

/// Why a message interrupted in its transaction and not found has no verdict.
const INTERRUPTED: &str = "probe was stopped during its SMTP transaction, and the message was \
     not found by the timeout: whether the server took it is unknown";

/// The name problems of the relay's log are filed under.
const RELAY_LOG: &str = "(relay log)";

/// Polls every account with undecided messages of `run_id` until each has a verdict or its
/// timeout passes; accepted messages still unseen then are `missing` (or `deferred`, when the
/// relay reported the next hop deferring them). In relay mode the bounces mailbox is searched
/// for DSNs and the relay's log is followed at the same time. Messages of seeds the plan has no
/// account for, or of accounts that never logged in, keep no verdict (with the problem noted),
/// so `probe poll` can finish them.
pub async fn poll(
    config: &Config,
    plan: &Plan,
    store: &Store,
    run_id: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PollSummary, RunError> {
    let run = store.run(run_id)?;
    // Messages still queued were never sent: the probe that was to send them is gone.
    store.settle_unsent(run_id)?;
    let mut decider = Decider {
        store,
        run_id,
        seed_by_token: HashMap::new(),
        delayed: HashMap::new(),
        undecided: HashSet::new(),
        provisional: HashMap::new(),
        logged_in: HashSet::new(),
        interrupted: HashSet::new(),
        last_problem: HashMap::new(),
    };
    let polls = plan_polls(config, plan, store, &run, &mut decider)?;
    let mut summary = PollSummary {
        accounts: polls.accounts.len(),
        ..PollSummary::default()
    };
    if polls.accounts.is_empty() {
        store.finish_run_if_done(run_id)?;
        return Ok(summary);
    }
    progress(Progress::Polling {
        pending: decider.undecided.len(),
        seeds: &polls.seeds,
        accounts: polls.accounts.len(),
        timeout: polls
            .last_deadline
            .saturating_duration_since(polls.planned_at),
    });
    let (mut tasks, events) = spawn(config, plan, store, &run, polls, &decider)?;
    drain(&mut tasks, events, &mut decider, progress).await?;
    settle(tasks, &mut decider, progress).await?;
    // Counted from events: a task aborted because every message was decided has no summary.
    summary.logged_in = decider.logged_in.len();
    summary.unpolled = decider
        .last_problem
        .iter()
        .filter(|(seeds, _)| !decider.logged_in.contains(*seeds))
        .map(|(_, problem)| problem.clone())
        .collect();
    summary.unpolled.sort();
    store.finish_run_if_done(run_id)?;
    Ok(summary)
}

/// The account polls of a run, before they start.
struct Polls {
    /// One poll per account (host, port, user): seeds may share a mailbox.
    accounts: BTreeMap<(String, u16, String), AccountPoll>,
    /// The relay's queue id of each accepted message, to read its log by.
    queue_ids: HashMap<String, Token>,
    /// The seed of each message polled for, in the run's order.
    seeds: Vec<String>,
    /// When planned, and the latest deadline of any message.
    planned_at: Instant,
    last_deadline: Instant,
}

impl Polls {
    /// Adds a message to its account's poll (started on first use), due by `deadline`.
    fn add(
        &mut self,
        m: &MessageRecord,
        token: Token,
        account: &Account,
        deadline: Instant,
        decider: &mut Decider<'_>,
    ) {
        self.last_deadline = self.last_deadline.max(deadline);
        let job = match self.accounts.entry(account.key()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => v.insert(account.poll(Vec::new(), Lookup::Placement, deadline)),
        };
        if !job.seeds.contains(&m.seed) {
            job.seeds.push(m.seed.clone());
        }
        job.tokens.push(token);
        job.deadline = job.deadline.max(deadline);
        decider.seed_by_token.insert(token, m.seed.clone());
        if m.state == SendState::Sending {
            decider.interrupted.insert(token);
        }
        if decider.undecided.insert(token) {
            self.seeds.push(m.seed.clone());
        }
        if let Some(report) = m
            .downstream_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Downstream>(j).ok())
        {
            decider.delayed.insert(token, report);
        }
        if let Some(qid) = &m.queue_id {
            self.queue_ids.insert(qid.clone(), token);
        }
    }
}

/// What a polling task was, to read its result.
enum Task {
    /// A seed mailbox: its unfound messages may become `missing` (or `deferred`).
    Placement(poll::AccountSummary),
    /// The bounces mailbox or the relay's log: reports only.
    FollowUp,
}

/// Where the tasks' reports arrive: polling events, and the relay log's failure.
struct Events {
    polls: mpsc::UnboundedReceiver<PollEvent>,
    log_failure: mpsc::UnboundedReceiver<MaillogError>,
}

/// Gathers the run's undecided messages into one poll per account, each with its messages and
/// the deadline of the last of them, and tells `decider` which messages to wait for.
fn plan_polls(
    config: &Config,
    plan: &Plan,
    store: &Store,
    run: &RunRecord,
    decider: &mut Decider<'_>,
) -> Result<Polls, RunError> {
    let run_id = run.id.as_str();
    let timeout = Duration::from_millis(run.timeout_ms.max(0) as u64);
    let pending: Vec<_> = store
        .messages(run_id)?
        .into_iter()
        .filter(|m| m.awaits_verdict())
        .collect();
    let now_wall = SystemTime::now();
    let now = Instant::now();
    let mut polls = Polls {
        accounts: BTreeMap::new(),
        queue_ids: HashMap::new(),
        seeds: Vec::new(),
        planned_at: now,
        last_deadline: now,
    };
    for m in &pending {
        if !config.seeds.iter().any(|s| s.name == m.seed) {
            store.record_poll_error(
                run_id,
                std::slice::from_ref(&m.seed),
                &format!("seed {} is not in {}", m.seed, config.path.display()),
            )?;
            continue;
        }
        let Some(account) = plan.account_of(&m.seed) else {
            continue;
        };
        let Ok(token) = m.token.parse::<Token>() else {
            continue;
        };
        let sent = std::time::UNIX_EPOCH + Duration::from_millis(m.sent_at.max(0) as u64);
        let remaining = (sent + timeout)
            .duration_since(now_wall)
            .unwrap_or(Duration::ZERO);
        polls.add(m, token, account, now + remaining, decider);
    }
    Ok(polls)
}

/// Starts every poll, and in relay mode the bounces mailbox's and the log follower, each
/// searching from the positions noted before sending (or the run's start date).
fn spawn(
    config: &Config,
    plan: &Plan,
    store: &Store,
    run: &RunRecord,
    polls: Polls,
    decider: &Decider<'_>,
) -> Result<(JoinSet<Task>, Events), RunError> {
    let settings = PollSettings {
        interval: config.timing.poll_interval,
        command_timeout: config.timing.imap_timeout,
        max_connections: config.timing.imap_connections,
    };
    let limit = ConnectionLimit::new(settings.max_connections);
    let starts = Starts {
        positions: store.positions(&run.id)?,
        sent_after: std::time::UNIX_EPOCH + Duration::from_millis(run.started_at.max(0) as u64),
    };
    let (tx, polls_rx) = mpsc::unbounded_channel();
    let (log_tx, log_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    if run.transport == Transport::Relay {
        if let Some(bounces) = plan.bounces() {
            let mut job = bounces.poll(bounces.seeds.clone(), Lookup::Dsn, polls.last_deadline);
            job.tokens = decider.undecided.iter().copied().collect();
            let (start, limit, tx) = (starts.of(&job.seeds), limit.clone(), tx.clone());
            tasks.spawn(async move {
                poll::poll_account(job, start, settings, limit, tx).await;
                Task::FollowUp
            });
        }
        if let (Some(path), Some(offset)) = (&config.sender.maillog, run.maillog_offset) {
            tasks.spawn(follow_log(
                config.base_dir().join(path),
                offset.max(0) as u64,
                polls.queue_ids,
                (settings.interval, polls.last_deadline),
                tx.clone(),
                log_tx,
            ));
        }
    }
    for job in polls.accounts.into_values() {
        let (start, limit, tx) = (starts.of(&job.seeds), limit.clone(), tx.clone());
        tasks.spawn(async move {
            Task::Placement(poll::poll_account(job, start, settings, limit, tx).await)
        });
    }
    let events = Events {
        polls: polls_rx,
        log_failure: log_rx,
    };
    Ok((tasks, events))
}

/// Where each account's search starts: the positions noted before sending, or the run's
/// start date where there are none.
struct Starts {
    positions: Vec<PositionRecord>,
    sent_after: SystemTime,
}

impl Starts {
    /// The start for an account polled on behalf of `seeds`.
    fn of(&self, seeds: &[String]) -> StartAt {
        StartAt {
            positions: self
                .positions
                .iter()
                .filter(|p| seeds.contains(&p.seed))
                .map(|p| {
                    let position = Position {
                        folder: p.folder.clone(),
                        role: p.role,
                        uid_validity: p.uid_validity,
                        uid_next: p.uid_next,
                    };
                    (p.folder.clone(), position)
                })
                .collect(),
            sent_after: Some(self.sent_after),
        }
    }
}

/// Follows the relay's log every `interval` until `deadline`, reporting the lines about our
/// queue ids as downstream events, and a log that cannot be read on `failure`.
async fn follow_log(
    path: PathBuf,
    offset: u64,
    queue_ids: HashMap<String, Token>,
    (interval, deadline): (Duration, Instant),
    events: mpsc::UnboundedSender<PollEvent>,
    failure: mpsc::UnboundedSender<MaillogError>,
) -> Task {
    let origin = path.display().to_string();
    let mut report = |entry: LogEntry| {
        if let Some(token) = queue_ids.get(&entry.queue_id) {
            let _ = events.send(PollEvent::Downstream {
                token: *token,
                report: entry.report,
                origin: origin.clone(),
            });
        }
    };
    if let Err(e) = maillog::follow(&path, offset, interval, deadline, &mut report).await {
        let _ = failure.send(e);
    }
    Task::FollowUp
}

/// Stores each event as it comes. Polling stops as soon as every message has a verdict;
/// otherwise the channels close when every task is done.
async fn drain(
    tasks: &mut JoinSet<Task>,
    mut events: Events,
    decider: &mut Decider<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(), RunError> {
    loop {
        tokio::select! {
            Some(event) = events.polls.recv() => decider.on_event(event, progress)?,
            Some(failure) = events.log_failure.recv() => {
                decider.on_problem(&[RELAY_LOG.to_owned()], &failure, true, progress)?;
            }
            else => return Ok(()),
        }
        if decider.undecided.is_empty() {
            tasks.abort_all();
            return Ok(());
        }
    }
}

/// Waits for the tasks to end and decides what their accounts did not find by the deadline.
async fn settle(
    mut tasks: JoinSet<Task>,
    decider: &mut Decider<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(), RunError> {
    while let Some(joined) = tasks.join_next().await {
        let Ok(Task::Placement(account)) = joined else {
            continue;
        };
        // Only an account searched once more after its deadline can call a message missing;
        // one that was given up leaves its messages undecided for a later `probe poll`.
        if !account.completed {
            continue;
        }
        for token in account.unfound {
            // Probe was stopped during its transaction: not finding it does not make it
            // `missing` (nothing says the server took it). It keeps no verdict, for good.
            if decider.interrupted.contains(&token) && decider.undecided.remove(&token) {
                decider
                    .store
                    .mark_interrupted(&token.to_string(), INTERRUPTED)?;
                continue;
            }
            // The ledger says what the deadline means: missing or deferred for a message with
            // no verdict, and final for one rejected on a failure report never seen since.
            let delayed = decider.delayed.get(&token).cloned();
            let evidence = Evidence::NotFoundByDeadline {
                delayed: delayed.as_ref(),
            };
            decider.weigh(token, evidence, None, progress)?;
        }
    }
    Ok(())
}
