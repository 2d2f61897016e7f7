//! Recording: what polling reports becomes stored observations and verdicts, as it comes.

use std::collections::{HashMap, HashSet};

use super::{BOUNCES, Progress, RunError};
use crate::downstream::Downstream;
use crate::message::Token;
use crate::poll::{self, PollEvent};
use crate::store::{Sighted, Store, unix_ms};
use crate::verdict::{self, Evidence, Ruling, Standing, Verdict};

/// Turns polling events into stored observations and verdicts.
pub(super) struct Decider<'a> {
    pub(super) store: &'a Store,
    pub(super) run_id: &'a str,
    pub(super) seed_by_token: HashMap<Token, String>,
    /// The first "next hop deferred" report per message, from a DSN or the log.
    pub(super) delayed: HashMap<Token, Downstream>,
    /// Messages whose verdict may still change: none yet, or an open one.
    pub(super) undecided: HashSet<Token>,
    /// Messages with an open verdict (rejected on a failure report), still searched for.
    pub(super) provisional: HashMap<Token, Verdict>,
    /// Seed accounts (by their seeds) where a login succeeded.
    pub(super) logged_in: HashSet<Vec<String>>,
    /// Messages whose transaction probe was stopped in: found, they are decided as any other;
    /// not found by the deadline, whether the server took them is unknown.
    pub(super) interrupted: HashSet<Token>,
    /// The last problem of each seed account, by its seeds.
    pub(super) last_problem: HashMap<Vec<String>, String>,
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

    /// Puts `evidence` through the ledger ([`verdict::weigh`]) and stores the decision it
    /// makes, if any.
    pub(super) fn weigh(
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
        if seeds.iter().all(|s| s != BOUNCES) {
            self.last_problem.insert(seeds.to_vec(), text.clone());
        }
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
