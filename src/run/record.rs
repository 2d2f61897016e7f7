//! Recording: what polling reports becomes stored observations and verdicts, as it comes.

use std::collections::{HashMap, HashSet};

use super::{BOUNCES, Progress, RunError};
use crate::downstream::{Downstream, DownstreamAction};
use crate::message::Token;
use crate::poll::{self, PollEvent};
use crate::store::{Sighted, Store, unix_ms};
use crate::verdict::{Decision, Evidence, classify};

/// Turns polling events into stored observations and verdicts.
pub(super) struct Decider<'a> {
    pub(super) store: &'a Store,
    pub(super) run_id: &'a str,
    pub(super) seed_by_token: HashMap<Token, String>,
    /// The first "next hop deferred" report per message, from a DSN or the log.
    pub(super) delayed: HashMap<Token, Downstream>,
    pub(super) undecided: HashSet<Token>,
    /// Seed accounts (by their seeds) where a login succeeded.
    pub(super) logged_in: HashSet<Vec<String>>,
}

impl Decider<'_> {
    pub(super) fn decide(
        &mut self,
        token: Token,
        decision: &Decision,
        found: Option<Sighted<'_>>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), RunError> {
        if !self.undecided.remove(&token) {
            return Ok(());
        }
        self.store
            .record_decision(&token.to_string(), decision, found)?;
        if let Some(seed) = self.seed_by_token.get(&token) {
            progress(Progress::Decided {
                seed,
                verdict: decision.verdict,
            });
        }
        Ok(())
    }

    pub(super) fn on_event(
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
                if let Some(decision) = classify(Evidence::Found {
                    role: s.role,
                    folder: &s.folder,
                    headers: &s.evidence,
                }) {
                    let headers = serde_json::to_string(&s.evidence).unwrap_or_default();
                    // Reports show the folder as the user sees it, not in modified UTF-7.
                    let folder = poll::utf7::decode(&s.folder);
                    let sighted = Sighted {
                        folder: &folder,
                        role: s.role.as_str(),
                        seen_at: s.seen_at,
                        headers: &headers,
                        tab: s.tab.as_deref(),
                    };
                    self.decide(s.token, &decision, Some(sighted), progress)?;
                }
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
                match classify(Evidence::Downstream(&report)) {
                    Some(decision) => {
                        store.record_downstream(&token.to_string(), &json)?;
                        self.decide(token, &decision, None, progress)?;
                    }
                    None if report.action == DownstreamAction::Delayed => {
                        store.record_downstream(&token.to_string(), &json)?;
                        self.delayed.entry(token).or_insert(report);
                    }
                    None => {}
                }
            }
            PollEvent::Error {
                seeds,
                error,
                fatal,
            } => self.on_problem(&seeds, &error, fatal, progress)?,
        }
        Ok(())
    }

    /// Stores a polling problem (an account's, or the relay log's) against its seeds.
    pub(super) fn on_problem(
        &mut self,
        seeds: &[String],
        error: &dyn std::error::Error,
        fatal: bool,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), RunError> {
        let (store, run_id) = (self.store, self.run_id);
        let text = error.to_string();
        for seed in seeds {
            store.record_observation(
                run_id,
                None,
                Some(seed),
                "poll_error",
                &serde_json::json!({ "error": text, "fatal": fatal }),
            )?;
        }
        store.record_poll_error(run_id, seeds, &text)?;
        progress(Progress::PollProblem {
            seeds,
            error,
            fatal,
        });
        Ok(())
    }
}
