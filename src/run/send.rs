//! Sending: one tagged message per seed, each outcome stored as its transaction ends.

use std::time::SystemTime;

use super::{Plan, Progress, RunError};
use crate::config::{Config, Seed};
use crate::downstream::maillog::LogFollower;
use crate::message::{self, Token};
use crate::send::{self, Delivery, Envelope, Outgoing, Route};
use crate::store::{AttemptRecord, NewRun, SendRecord, Store};
use crate::verdict::{Evidence, classify};

/// Sends one tagged message to each seed and stores each outcome as soon as its transaction
/// ends. Seeds behind the same server share one connection: in relay mode all of them, in
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
    // Every mailbox is checked before the first message: a seed that cannot be read is not
    // sent to, and when none can, nothing is sent and no run is stored.
    let checked = super::positions::check(config, plan, seeds).await;
    let seeds: Vec<&Seed> = seeds
        .iter()
        .filter(|s| !checked.is_not_tested(&s.name))
        .copied()
        .collect();
    if seeds.is_empty() {
        return Err(RunError::Unreadable(checked.not_tested));
    }
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
    checked.record(store, &run_id)?;

    // Group by route, keeping config order within and between groups.
    let mut groups: Vec<(Route, Vec<&Seed>)> = Vec::new();
    for seed in &seeds {
        let route = plan.route(seed);
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
                envid: plan.via_relay().then(|| token.to_string()),
            });
            messages.push(msg);
        }
        let mut failure = None;
        send::deliver_each(&route, &items, plan.send_settings(), &mut |i, delivery| {
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
