//! A run, end to end: send one tagged message per seed, then poll until each has a verdict.
//!
//! This is glue: it calls [`crate::message`], [`crate::send`], [`crate::poll`] and
//! [`crate::verdict`], and writes each result to the [`Store`] the moment it exists.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::RelayTls;
use crate::config::{Config, ConfigError, Imap, ImapTls, SecretString, Secrets, Seed, Transport};
use crate::downstream::Downstream;
use crate::downstream::maillog::LogFollower;
use crate::message::{self, Token};
use crate::poll::{
    self, AccountPoll, ConnectionLimit, FolderRole, Lookup, PollEvent, PollSettings, Position,
    StartAt,
};
use crate::send::{
    self, Auth, AuthMechanism, Delivery, Envelope, Outgoing, Route, SendSettings, Timeouts,
    TlsPolicy,
};
use crate::store::{
    AttemptRecord, NewRun, PositionRecord, SendRecord, Sighted, Store, StoreError, unix_ms,
};
use crate::verdict::{self, Evidence, Ruling, Standing, Verdict, classify};

/// Why a run could not go on. Per-seed problems are not errors: they are stored and reported.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message could not be composed.
    #[error(transparent)]
    Build(#[from] message::BuildError),
    /// A trust anchor could not be loaded.
    #[error("seed {seed}: {error}")]
    Tls {
        /// The seed.
        seed: String,
        /// What failed.
        error: crate::tls::TlsError,
    },
}

/// Things worth telling the user while a run goes on (the CLI prints them to stderr).
#[derive(Debug)]
pub enum Progress<'a> {
    /// A message's SMTP transaction ended.
    Sent {
        /// Seed name.
        seed: &'a str,
        /// How it ended.
        ending: &'a send::Ending,
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
    /// A polling problem.
    PollProblem {
        /// Seeds affected.
        seeds: &'a [String],
        /// What happened.
        error: &'a poll::PollError,
        /// Whether the account was given up.
        fatal: bool,
    },
}

/// Sends one tagged message to each seed and stores each outcome as soon as its transaction
/// ends. Seeds behind the same server share one connection: in relay mode all of them, in
/// direct mode those with the same `mx` override or the same recipient domain. Returns the new
/// run's id.
pub async fn send(
    config: &Config,
    seeds: &[&Seed],
    secrets: &Secrets,
    store: &mut Store,
    label: Option<&str>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<String, RunError> {
    let sender = &config.sender;
    let relay = match sender.transport {
        Transport::Relay => sender.relay.as_ref(),
        Transport::Direct => None,
    };
    let maillog_offset = match (relay, &sender.maillog) {
        (Some(_), Some(path)) => Some(LogFollower::at_end(&config.base_dir().join(path)).offset()),
        _ => None,
    };
    let settings = send_settings(config, relay, secrets)?;
    let run_id = ulid::Ulid::new().to_string();
    store.create_run(&NewRun {
        id: run_id.clone(),
        started_at: SystemTime::now(),
        config_path: config.path.display().to_string(),
        transport: sender.transport.as_str().to_owned(),
        sender_from: sender.from.to_string(),
        ehlo: sender.ehlo.clone(),
        timeout: config.timing.timeout,
        source_ip: sender.source_ip.map(|ip| ip.to_string()),
        maillog_offset,
        label: label.map(str::to_owned),
    })?;
    mark_positions(config, seeds, secrets, store, &run_id).await;

    // Group by route, keeping config order within and between groups.
    let mut groups: Vec<(Route, Vec<&Seed>)> = Vec::new();
    for seed in seeds {
        let route = match (relay, &seed.mx) {
            (Some(r), _) => Route::Fixed {
                host: r.host.clone(),
                port: r.port,
            },
            (None, Some(hp)) => Route::Fixed {
                host: hp.host.clone(),
                port: hp.port,
            },
            (None, None) => Route::Mx {
                domain: seed.address.domain().to_ascii_lowercase(),
                port: sender.smtp_port,
            },
        };
        match groups.iter_mut().find(|(r, _)| *r == route) {
            Some((_, members)) => members.push(seed),
            None => groups.push((route, vec![seed])),
        }
    }

    for (route, members) in groups {
        let mut messages = Vec::with_capacity(members.len());
        let mut items = Vec::with_capacity(members.len());
        for seed in &members {
            let token = Token::generate();
            let msg = message::build(sender, &config.message, &seed.address, &seed.name, token)?;
            items.push(Outgoing {
                envelope: Envelope {
                    mail_from: sender.from.email.to_string(),
                    rcpt_to: seed.address.to_string(),
                },
                message: msg.bytes.clone(),
                // DSNs name the message by its envelope id; only the relay sends us any.
                envid: relay.map(|_| token.to_string()),
            });
            messages.push(msg);
        }
        let mut failure = None;
        send::deliver_each(&route, &items, &settings, &mut |i, delivery| {
            if failure.is_some() {
                return;
            }
            let (seed, msg) = (members[i], &messages[i]);
            progress(Progress::Sent {
                seed: &seed.name,
                ending: delivery.ending(),
            });
            if let Err(e) = store.record_send(&send_record(&run_id, seed, msg, delivery)) {
                failure = Some(e);
            }
        })
        .await;
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    store.finish_run_if_done(&run_id)?;
    Ok(run_id)
}

/// SMTP settings for this run: direct to MX hosts, or to the relay with AUTH.
fn send_settings(
    config: &Config,
    relay: Option<&crate::config::Relay>,
    secrets: &Secrets,
) -> Result<SendSettings, RunError> {
    let sender = &config.sender;
    let timing = &config.timing;
    let mut settings = SendSettings {
        ehlo: sender.ehlo.clone(),
        // A host that does not answer a SYN within 30 s will not; replies get the full limit.
        timeouts: Timeouts {
            connect: timing.smtp_timeout.min(Duration::from_secs(30)),
            command: timing.smtp_timeout,
            data_end: timing.smtp_timeout,
        },
        source_ip: sender.source_ip,
        resolver: sender.resolver,
        tls: if sender.require_tls {
            TlsPolicy::Required
        } else {
            TlsPolicy::Opportunistic
        },
        ..SendSettings::default()
    };
    if let Some(relay) = relay {
        settings.tls = match relay.tls {
            RelayTls::Starttls => TlsPolicy::Verified,
            RelayTls::Implicit => TlsPolicy::Implicit,
            RelayTls::None => TlsPolicy::None,
        };
        if let Some(ca) = &relay.ca_file {
            settings.extra_roots =
                crate::tls::load_ca_file(&config.base_dir().join(ca)).map_err(|error| {
                    RunError::Tls {
                        seed: "sender.relay".into(),
                        error,
                    }
                })?;
        }
        if let (Some(username), Some(password)) = (&relay.username, &secrets.relay) {
            settings.auth = Some(Auth {
                username: username.clone(),
                password: password.clone(),
                mechanisms: relay
                    .auth
                    .iter()
                    .map(|m| match m {
                        crate::config::AuthMechanism::Plain => AuthMechanism::Plain,
                        crate::config::AuthMechanism::Login => AuthMechanism::Login,
                        crate::config::AuthMechanism::Xoauth2 => AuthMechanism::Xoauth2,
                    })
                    .collect(),
                allow_plaintext: relay.allow_plaintext,
            });
        }
    }
    Ok(settings)
}

fn send_record(
    run_id: &str,
    seed: &Seed,
    msg: &message::TestMessage,
    delivery: &Delivery,
) -> SendRecord {
    let ending = delivery.ending();
    let reply = ending.reply();
    let error = match ending {
        send::Ending::Failed { error, .. } => Some(error),
        _ => None,
    };
    let last = delivery.attempts.last();
    SendRecord {
        run_id: run_id.to_owned(),
        token: msg.token.to_string(),
        seed: seed.name.clone(),
        provider: seed.provider_name().to_owned(),
        address: seed.address.to_string(),
        subject: msg.subject.clone(),
        message_id: msg.message_id.clone(),
        sent_at: SystemTime::now(),
        smtp_host: last.map(|a| a.host.clone()),
        smtp_stage: ending.stage().map(|s| s.as_str().to_owned()),
        smtp_code: reply.map(|r| r.code),
        smtp_enhanced: reply.and_then(|r| r.enhanced).map(|e| e.to_string()),
        smtp_text: reply.map(|r| r.text()),
        smtp_error: error.map(|e| e.to_string()),
        smtp_error_kind: error.map(|e| e.kind().to_owned()),
        tls_json: last
            .and_then(|a| a.tls.as_ref())
            .and_then(|t| serde_json::to_string(t).ok()),
        queue_id: reply
            .filter(|_| ending.is_accepted())
            .and_then(|r| r.queue_id())
            .map(str::to_owned),
        decision: classify(Evidence::Sent(ending)),
        attempts: delivery
            .attempts
            .iter()
            .map(|a| AttemptRecord {
                host: a.host.clone(),
                addr: a.addr.map(|s| s.to_string()),
                ending: a.ending.to_string(),
                tls_json: a.tls.as_ref().and_then(|t| serde_json::to_string(t).ok()),
                transcript_json: serde_json::to_string(&a.transcript)
                    .unwrap_or_else(|_| "[]".into()),
            })
            .collect(),
    }
}

/// How polling went, for the exit code.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollSummary {
    /// Seed accounts that had messages to look for.
    pub accounts: usize,
    /// Of those, accounts where a login succeeded.
    pub logged_in: usize,
}

/// What a polling task was, to read its result.
enum Task {
    /// A seed mailbox: its unfound messages may become `missing` (or `deferred`).
    Placement(poll::AccountSummary),
    /// The bounces mailbox or the relay's log: reports only.
    FollowUp,
}

/// Polls every account with undecided messages of `run_id` until each has a verdict or its
/// timeout passes; accepted messages still unseen then are `missing` (or `deferred`, when the
/// relay reported the next hop deferring them). In relay mode the bounces mailbox is searched
/// for DSNs and the relay's log is followed at the same time. Messages of accounts that never
/// logged in keep no verdict, with the problem noted, so `probe poll` can finish them.
pub async fn poll(
    config: &Config,
    secrets: &Secrets,
    store: &Store,
    run_id: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PollSummary, RunError> {
    let run = store.run(run_id)?;
    let timeout = Duration::from_millis(run.timeout_ms.max(0) as u64);
    let pending: Vec<_> = store
        .messages(run_id)?
        .into_iter()
        .filter(|m| m.verdict.is_none())
        .collect();
    let seed_of = |name: &str| config.seeds.iter().find(|s| s.name == name);

    // One job per account (host, port, user): seeds may share a mailbox.
    let mut jobs: BTreeMap<(String, u16, String), AccountPoll> = BTreeMap::new();
    let mut decider = Decider {
        store,
        run_id,
        seed_by_token: HashMap::new(),
        delayed: HashMap::new(),
        undecided: HashSet::new(),
        provisional: HashMap::new(),
        logged_in: HashSet::new(),
    };
    let mut queue_ids: HashMap<String, Token> = HashMap::new();
    let now_wall = SystemTime::now();
    let now = Instant::now();
    let mut last_deadline = now;
    let mut polled_seeds: Vec<String> = Vec::new();
    for m in &pending {
        let Some(seed) = seed_of(&m.seed) else {
            store.record_poll_error(
                run_id,
                std::slice::from_ref(&m.seed),
                &format!("seed {} is not in {}", m.seed, config.path.display()),
            )?;
            continue;
        };
        let Some(password) = secrets.seeds.get(&seed.name) else {
            continue;
        };
        let Ok(token) = m.token.parse::<Token>() else {
            continue;
        };
        let sent = std::time::UNIX_EPOCH + Duration::from_millis(m.sent_at.max(0) as u64);
        let remaining = (sent + timeout)
            .duration_since(now_wall)
            .unwrap_or(Duration::ZERO);
        let deadline = now + remaining;
        last_deadline = last_deadline.max(deadline);
        let key = account_key(&seed.imap);
        let job = match jobs.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => v.insert(account(
                config,
                &seed.name,
                &seed.imap,
                password,
                Lookup::Placement,
                deadline,
            )?),
        };
        if !job.seeds.contains(&seed.name) {
            job.seeds.push(seed.name.clone());
        }
        job.tokens.push(token);
        job.deadline = job.deadline.max(deadline);
        decider.seed_by_token.insert(token, seed.name.clone());
        if decider.undecided.insert(token) {
            polled_seeds.push(seed.name.clone());
        }
        if let Some(report) = m
            .downstream_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Downstream>(j).ok())
        {
            decider.delayed.insert(token, report);
        }
        if let Some(qid) = &m.queue_id {
            queue_ids.insert(qid.clone(), token);
        }
    }

    let mut summary = PollSummary {
        accounts: jobs.len(),
        ..PollSummary::default()
    };
    if jobs.is_empty() {
        store.finish_run_if_done(run_id)?;
        return Ok(summary);
    }
    progress(Progress::Polling {
        pending: decider.undecided.len(),
        seeds: &polled_seeds,
        accounts: jobs.len(),
        timeout: last_deadline.saturating_duration_since(now),
    });

    let settings = PollSettings {
        interval: config.timing.poll_interval,
        command_timeout: config.timing.imap_timeout,
        max_connections: max_connections(config),
    };
    let limit = ConnectionLimit::new(settings.max_connections);
    // Where each account's search starts: the positions noted before sending, or the run's
    // start date where there are none.
    let positions = store.positions(run_id)?;
    let sent_after = std::time::UNIX_EPOCH + Duration::from_millis(run.started_at.max(0) as u64);
    let start_for = |seeds: &[String]| StartAt {
        positions: positions
            .iter()
            .filter(|p| seeds.contains(&p.seed))
            .filter_map(|p| {
                let position = Position {
                    folder: p.folder.clone(),
                    role: FolderRole::from_label(&p.role)?,
                    uid_validity: p.uid_validity,
                    uid_next: p.uid_next,
                };
                Some((p.folder.clone(), position))
            })
            .collect(),
        sent_after: Some(sent_after),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let all_tokens: Vec<Token> = decider.undecided.iter().copied().collect();
    if run.transport == Transport::Relay.as_str() {
        if let (Some(imap), Some(password)) = (&config.sender.bounces, &secrets.bounces) {
            let mut job = account(config, BOUNCES, imap, password, Lookup::Dsn, last_deadline)?;
            job.seeds.push(BOUNCES.to_owned());
            job.tokens = all_tokens.clone();
            let (start, limit, tx) = (start_for(&job.seeds), limit.clone(), tx.clone());
            tasks.spawn(async move {
                poll::poll_account(job, start, settings, limit, tx).await;
                Task::FollowUp
            });
        }
        if let (Some(path), Some(offset)) = (&config.sender.maillog, run.maillog_offset) {
            let path = config.base_dir().join(path);
            let tx = tx.clone();
            let interval = settings.interval;
            tasks.spawn(async move {
                follow_maillog(
                    path,
                    offset.max(0) as u64,
                    queue_ids,
                    interval,
                    last_deadline,
                    tx,
                )
                .await;
                Task::FollowUp
            });
        }
    }
    for job in jobs.into_values() {
        let (start, limit, tx) = (start_for(&job.seeds), limit.clone(), tx.clone());
        tasks.spawn(async move {
            Task::Placement(poll::poll_account(job, start, settings, limit, tx).await)
        });
    }
    drop(tx);

    // Store each event as it comes. Polling stops as soon as every message has a verdict;
    // otherwise the channel closes when every task is done.
    while let Some(event) = rx.recv().await {
        decider.on_event(event, progress)?;
        if decider.undecided.is_empty() {
            tasks.abort_all();
            break;
        }
    }

    while let Some(joined) = tasks.join_next().await {
        let Ok(Task::Placement(account)) = joined else {
            continue;
        };
        // Only an account searched once more after its deadline can call a message missing;
        // one that was given up leaves its messages undecided for a later `probe poll`.
        if !account.completed {
            continue;
        }
        // The ledger says what the deadline means: missing or deferred for a message with no
        // verdict, and final for one rejected on a failure report that was never seen since.
        for token in account.unfound {
            let delayed = decider.delayed.get(&token).cloned();
            let evidence = Evidence::NotFoundByDeadline {
                delayed: delayed.as_ref(),
            };
            decider.weigh(token, evidence, None, progress)?;
        }
    }
    // Counted from events: a task aborted because every message was decided has no summary.
    summary.logged_in = decider.logged_in.len();
    store.finish_run_if_done(run_id)?;
    Ok(summary)
}

/// The name polling problems of the bounces mailbox are filed under.
const BOUNCES: &str = "(bounces mailbox)";

/// IMAP connections open at once, across accounts.
fn max_connections(config: &Config) -> usize {
    config.timing.imap_connections
}

/// Seeds with the same server and login share one mailbox, and one connection.
fn account_key(imap: &Imap) -> (String, u16, String) {
    (imap.host.clone(), imap.port, imap.username.clone())
}

/// An account to poll, with no seeds or messages yet.
fn account(
    config: &Config,
    who: &str,
    imap: &Imap,
    password: &SecretString,
    lookup: Lookup,
    deadline: Instant,
) -> Result<AccountPoll, RunError> {
    let tls = match imap.tls {
        ImapTls::None => None,
        _ => Some(tls_for(config, who, imap.ca_file.as_deref())?),
    };
    Ok(AccountPoll {
        seeds: Vec::new(),
        imap: imap.clone(),
        password: password.clone(),
        tls,
        tokens: Vec::new(),
        deadline,
        lookup,
    })
}

/// The longest sending waits for [`mark_positions`].
const MARK_BUDGET: Duration = Duration::from_secs(10);

/// Before sending: notes UIDVALIDITY and UIDNEXT of each seed's inbox and spam folder (and of
/// the bounces mailbox in relay mode), so that polling searches only what arrives after them
/// (`UID n:*`), however big the mailbox. Best effort and brief: an account not marked within
/// the IMAP timeout (10 s at most) is searched by date instead, and sending goes on regardless.
async fn mark_positions(
    config: &Config,
    seeds: &[&Seed],
    secrets: &Secrets,
    store: &Store,
    run_id: &str,
) {
    let timeout = config.timing.imap_timeout;
    let now = Instant::now();
    let mut accounts: BTreeMap<(String, u16, String), AccountPoll> = BTreeMap::new();
    for seed in seeds {
        let Some(password) = secrets.seeds.get(&seed.name) else {
            continue;
        };
        let job = match accounts.entry(account_key(&seed.imap)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                // A TLS setup that fails here fails polling too, which reports it.
                let Ok(job) = account(
                    config,
                    &seed.name,
                    &seed.imap,
                    password,
                    Lookup::Placement,
                    now,
                ) else {
                    continue;
                };
                v.insert(job)
            }
        };
        job.seeds.push(seed.name.clone());
    }
    let mut jobs: Vec<AccountPoll> = accounts.into_values().collect();
    if config.sender.transport == Transport::Relay
        && let (Some(imap), Some(password)) = (&config.sender.bounces, &secrets.bounces)
        && let Ok(mut job) = account(config, BOUNCES, imap, password, Lookup::Dsn, now)
    {
        job.seeds.push(BOUNCES.to_owned());
        jobs.push(job);
    }

    let limit = Arc::new(tokio::sync::Semaphore::new(max_connections(config)));
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

/// Reads the relay's log as it grows and reports delivery lines for our queue ids.
async fn follow_maillog(
    path: std::path::PathBuf,
    offset: u64,
    queue_ids: HashMap<String, Token>,
    interval: Duration,
    deadline: Instant,
    events: mpsc::UnboundedSender<PollEvent>,
) {
    let mut follower = LogFollower::from_offset(offset);
    loop {
        match follower.read_new(&path) {
            Ok(entries) => {
                for entry in entries {
                    if let Some(token) = queue_ids.get(&entry.queue_id) {
                        let _ = events.send(PollEvent::Downstream {
                            token: *token,
                            report: entry.report,
                            origin: path.display().to_string(),
                        });
                    }
                }
            }
            Err(e) => {
                let _ = events.send(PollEvent::Error {
                    seeds: vec!["(relay log)".into()],
                    error: poll::PollError::Maillog {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    },
                    fatal: true,
                });
                return;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
    }
}

/// Turns polling events into stored observations and verdicts.
struct Decider<'a> {
    store: &'a Store,
    run_id: &'a str,
    seed_by_token: HashMap<Token, String>,
    /// The first "next hop deferred" report per message, from a DSN or the log.
    delayed: HashMap<Token, Downstream>,
    /// Messages whose verdict may still change: none yet, or an open one.
    undecided: HashSet<Token>,
    /// Messages with an open verdict (rejected on a failure report), still searched for.
    provisional: HashMap<Token, Verdict>,
    /// Seed accounts (by their seeds) where a login succeeded.
    logged_in: HashSet<Vec<String>>,
}

impl Decider<'_> {
    /// What is known of a message, for the ledger. A message this poll does not track has
    /// nothing more to learn.
    fn standing(&self, token: Token) -> Standing {
        if !self.undecided.contains(&token) {
            Standing::Final
        } else if let Some(v) = self.provisional.get(&token) {
            Standing::Open(*v)
        } else {
            Standing::Pending {
                deferral_kept: self.delayed.contains_key(&token),
            }
        }
    }

    /// Puts `evidence` through the ledger and stores the decision it makes, if any.
    fn weigh(
        &mut self,
        token: Token,
        evidence: Evidence<'_>,
        found: Option<Sighted<'_>>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Ruling, RunError> {
        let standing = self.standing(token);
        let ruling = verdict::weigh(standing, evidence);
        if let Ruling::Decide { decision, .. } = &ruling {
            self.store
                .record_decision(&token.to_string(), decision, found)?;
            if let Some(seed) = self.seed_by_token.get(&token) {
                progress(Progress::Decided {
                    seed,
                    verdict: decision.verdict,
                });
            }
        }
        match standing.after(&ruling) {
            Standing::Final => {
                self.undecided.remove(&token);
                self.provisional.remove(&token);
            }
            Standing::Open(v) => {
                self.provisional.insert(token, v);
            }
            Standing::Pending { .. } => {}
        }
        Ok(ruling)
    }

    fn on_event(
        &mut self,
        event: PollEvent,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), RunError> {
        let (store, run_id) = (self.store, self.run_id);
        match event {
            PollEvent::JunkFolder { seeds, folder } => {
                // Sent once per account, after its first login.
                if seeds.iter().all(|s| s != BOUNCES) {
                    self.logged_in.insert(seeds.clone());
                }
                let detail = match &folder {
                    Some(f) => serde_json::json!({ "folder": f.name, "source": f.source }),
                    None => serde_json::json!({ "folder": null,
                        "note": "no spam folder found: a message filed as spam would show as missing" }),
                };
                for seed in &seeds {
                    store.record_observation(run_id, None, Some(seed), "junk_folder", &detail)?;
                }
            }
            PollEvent::Found(s) => {
                let seed = self.seed_by_token.get(&s.token).cloned();
                let token = s.token.to_string();
                store.record_observation(
                    run_id,
                    Some(&token),
                    seed.as_deref(),
                    "found",
                    &serde_json::json!({ "folder": s.folder, "role": s.role, "uid": s.uid,
                        "tab": s.tab, "seen_at": unix_ms(s.seen_at), "headers": s.evidence }),
                )?;
                let headers = serde_json::to_string(&s.evidence).unwrap_or_default();
                // Reports show the folder as the user sees it, not in modified UTF-7.
                let folder = poll::utf7::decode(&s.folder);
                let sighted = Sighted {
                    folder: &folder,
                    role: s.role,
                    seen_at: s.seen_at,
                    headers: &headers,
                    tab: s.tab.as_deref(),
                };
                let evidence = Evidence::Found {
                    role: s.role,
                    folder: &s.folder,
                    headers: &s.evidence,
                };
                self.weigh(s.token, evidence, Some(sighted), progress)?;
            }
            PollEvent::Searching {
                seeds,
                folder,
                scope,
            } => {
                let detail = serde_json::json!({ "folder": folder, "scope": scope });
                for seed in &seeds {
                    store.record_observation(run_id, None, Some(seed), "search", &detail)?;
                }
            }
            PollEvent::Reconnected { seeds, reconnects } => {
                let detail = serde_json::json!({ "reconnects": reconnects });
                for seed in &seeds {
                    store.record_observation(run_id, None, Some(seed), "reconnect", &detail)?;
                }
            }
            PollEvent::Downstream {
                token,
                report,
                origin,
            } => {
                let seed = self.seed_by_token.get(&token).cloned();
                let json = serde_json::to_string(&report).unwrap_or_default();
                store.record_observation(
                    run_id,
                    Some(&token.to_string()),
                    seed.as_deref(),
                    "downstream",
                    &serde_json::json!({ "origin": origin, "report": report }),
                )?;
                let ruling = self.weigh(token, Evidence::Downstream(&report), None, progress)?;
                // The report that decided, or the deferral kept for the deadline, is stored
                // with the message (and read back by a later `probe poll`).
                match ruling {
                    Ruling::Decide { .. } => store.record_downstream(&token.to_string(), &json)?,
                    Ruling::Keep => {
                        store.record_downstream(&token.to_string(), &json)?;
                        self.delayed.insert(token, report);
                    }
                    Ruling::Confirm | Ruling::Ignore => {}
                }
            }
            PollEvent::Error {
                seeds,
                error,
                fatal,
            } => {
                let text = error.to_string();
                for seed in &seeds {
                    store.record_observation(
                        run_id,
                        None,
                        Some(seed),
                        "poll_error",
                        &serde_json::json!({ "error": text, "fatal": fatal }),
                    )?;
                }
                store.record_poll_error(run_id, &seeds, &text)?;
                progress(Progress::PollProblem {
                    seeds: &seeds,
                    error: &error,
                    fatal,
                });
            }
        }
        Ok(())
    }
}

fn tls_for(
    config: &Config,
    who: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, RunError> {
    let tls_err = |error| RunError::Tls {
        seed: who.to_owned(),
        error,
    };
    let roots = match ca_file {
        Some(path) => crate::tls::load_ca_file(&config.base_dir().join(path)).map_err(tls_err)?,
        None => Vec::new(),
    };
    crate::tls::verifying_config(&roots).map_err(tls_err)
}
