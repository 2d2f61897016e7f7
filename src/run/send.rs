//! Sending: one tagged message per seed, each outcome stored as its transaction ends.

use std::time::SystemTime;

use super::{Plan, Progress, RunError};
use crate::config::{Config, Seed};
use crate::downstream::maillog::LogFollower;
use crate::message::{self, Token};
use crate::send::{self, Delivery, Ending, Envelope, Outgoing, Route, Stage};
use crate::store::{AttemptRecord, NewRun, SendRecord, SendState, Store};
use crate::verdict::{Evidence, classify};

/// Sends one tagged message to each seed and stores each outcome as soon as its transaction
/// ends. Every message is stored (`queued`) before anything is sent, and marked `sending`
/// before its transaction begins (see [`SendState`]). Seeds behind the same server share one connection: in relay mode all of them, in
/// direct mode those with the same `mx` override or the same recipient domain. Before
/// sending, each mailbox is checked and its position noted (`positions.rs`): seeds whose
/// mailbox cannot be read are not sent to ([`RunError::Unreadable`] when that is every seed).
/// Returns the new run's id.
pub async fn send(
    config: &Config,
    plan: &Plan,
    seeds: &[&Seed],
    store: &mut Store,
    label: Option<&str>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<String, RunError> {
    let sender = &config.sender;
    let maillog_offset = match (plan.via_relay(), &sender.maillog) {
        (true, Some(path)) => Some(LogFollower::at_end(&config.base_dir().join(path)).offset()),
        _ => None,
    };
    // The sending IP's and domain's checks start now and run beside everything below; they
    // are collected after the last message (checks.rs says why).
    let checks = plan.checks().map(|c| c.start());
    // Every mailbox is checked before the first message: a seed that cannot be read is not
    // sent to, and when none can, nothing is sent and no run is stored.
    let checked = super::positions::check(config, plan, seeds).await;
    let seeds: Vec<&Seed> = seeds
        .iter()
        .filter(|s| !checked.is_not_tested(&s.name))
        .copied()
        .collect();
    if seeds.is_empty() {
        if let Some(checks) = checks {
            checks.abort();
        }
        return Err(RunError::Unreadable(checked.not_tested));
    }
    let run_id = ulid::Ulid::new().to_string();
    store.create_run(&NewRun {
        id: run_id.clone(),
        started_at: SystemTime::now(),
        config_path: config.path.display().to_string(),
        transport: sender.transport,
        sender_from: sender.from.to_string(),
        ehlo: sender.ehlo.clone(),
        timeout: config.timing.timeout,
        source_ip: sender.source_ip.map(|ip| ip.to_string()),
        maillog_offset,
        label: label.map(str::to_owned),
    })?;
    checked.record(store, &run_id)?;
    // Shared by the two callbacks below; every write is its own transaction.
    let store: &Store = store;

    // Group by route, keeping config order within and between groups.
    let mut groups: Vec<(Route, Vec<&Seed>)> = Vec::new();
    for seed in &seeds {
        let route = plan.route(seed);
        match groups.iter_mut().find(|(r, _)| *r == route) {
            Some((_, members)) => members.push(seed),
            None => groups.push((route, vec![seed])),
        }
    }

    // Every seed's message is built and stored (`queued`, with its token) before anything is
    // sent: a probe killed from here on leaves every seed of the run in the store.
    let mut batches = Vec::with_capacity(groups.len());
    for (route, members) in groups {
        let mut messages = Vec::with_capacity(members.len());
        let mut items = Vec::with_capacity(members.len());
        for seed in &members {
            let token = Token::generate();
            let msg = message::build(
                sender,
                &config.message,
                &seed.address,
                &seed.name,
                token,
                plan.dkim(),
            )?;
            store.record_send(&queued_record(&run_id, seed, &msg))?;
            items.push(Outgoing {
                envelope: Envelope {
                    mail_from: sender.from.email.to_string(),
                    rcpt_to: seed.address.to_string(),
                },
                message: msg.bytes.clone(),
                // DSNs name the message by its envelope id; only the relay sends us any.
                envid: plan.via_relay().then(|| token.to_string()),
            });
            messages.push(msg);
        }
        batches.push((route, members, messages, items));
    }

    for (route, members, messages, items) in batches {
        let failure = std::cell::RefCell::new(None);
        let mut relay_refused = None;
        // Committed before the transaction begins, so before DATA: a message that may have
        // reached the server is never lost, even to kill -9.
        let mut on_start = |i: usize| {
            if failure.borrow().is_some() {
                return;
            }
            let token: &Token = &messages[i].token;
            if let Err(e) = store.mark_sending(&token.to_string()) {
                *failure.borrow_mut() = Some(e);
            }
        };
        let mut on_done = |i: usize, delivery: &Delivery| {
            if failure.borrow().is_some() {
                return;
            }
            let (seed, msg) = (members[i], &messages[i]);
            progress(Progress::Sent {
                seed: &seed.name,
                ending: delivery.ending(),
            });
            let mut record = send_record(&run_id, seed, msg, delivery);
            if plan.via_relay() && refuses_probe(delivery.ending()) {
                // The user's relay refused probe's login or TLS: no provider said anything,
                // so no verdict; the message is kept as not sent, with the relay's words.
                let words = format!("{}: {}", route_host(&route), delivery.ending());
                record.decision = None;
                record.state = SendState::NotSent;
                record.note = Some(format!("not sent: the relay refused probe ({words})"));
                relay_refused.get_or_insert(words);
            }
            if let Err(e) = store.record_send(&record) {
                *failure.borrow_mut() = Some(e);
            }
        };
        send::deliver_each_watched(
            &route,
            &items,
            plan.send_settings(),
            &mut on_start,
            &mut on_done,
        )
        .await;
        if let Some(e) = failure.into_inner() {
            return Err(e.into());
        }
        if let Some(failure) = relay_refused {
            store.record_run_failure(&run_id, &failure)?;
            store.settle_unsent(&run_id)?;
            record_checks(store, &run_id, checks).await?;
            store.finish_run_if_done(&run_id)?;
            return Err(RunError::Relay { failure });
        }
    }
    record_checks(store, &run_id, checks).await?;
    store.finish_run_if_done(&run_id)?;
    Ok(run_id)
}

/// Collects the run's checks (when they were made) and stores them with the run.
async fn record_checks(
    store: &Store,
    run_id: &str,
    checks: Option<super::checks::Pending>,
) -> Result<(), RunError> {
    let Some(pending) = checks else {
        return Ok(());
    };
    if let Some(report) = pending.collect().await {
        store.record_checks(run_id, &report)?;
    }
    Ok(())
}

/// In relay mode, whether an ending is the relay refusing probe itself: AUTH refused or
/// impossible, or TLS (verified, as credentials require) not to be had. That says nothing of
/// any seed's provider.
fn refuses_probe(ending: &Ending) -> bool {
    matches!(
        ending,
        Ending::Refused {
            stage: Stage::Auth | Stage::StartTls,
            ..
        } | Ending::Failed {
            stage: Stage::Auth | Stage::StartTls,
            ..
        }
    )
}

fn route_host(route: &Route) -> String {
    match route {
        Route::Fixed { host, port } => format!("{host}:{port}"),
        Route::Mx { domain, .. } => domain.clone(),
    }
}

/// A message's row before anything of it is sent.
fn queued_record(run_id: &str, seed: &Seed, msg: &message::TestMessage) -> SendRecord {
    SendRecord::queued(
        run_id,
        &msg.token.to_string(),
        &seed.name,
        seed.provider_name(),
        seed.address.as_ref(),
        &msg.subject,
        &msg.message_id,
    )
}

fn send_record(
    run_id: &str,
    seed: &Seed,
    msg: &message::TestMessage,
    delivery: &Delivery,
) -> SendRecord {
    let ending = delivery.ending();
    let reply = ending.reply();
    // A message not tried carries the earlier message's reply or error as its evidence.
    let error = ending.error();
    let last = delivery.attempts.last();
    SendRecord {
        smtp_host: last.map(|a| a.host.clone()),
        smtp_stage: ending.stage(),
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
        // Not tried after a 421: deferred, but never handed to a server.
        state: if ending.is_not_tried() {
            SendState::NotSent
        } else {
            SendState::Sent
        },
        note: None,
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
        // Who, what and when are as the queued row recorded them.
        ..queued_record(run_id, seed, msg)
    }
}
