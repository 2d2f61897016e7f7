//! The runner: one thread of its own that makes the scheduled runs, one at a time.
//!
//! A run's future holds the store across its awaits (SQLite connections are not shared
//! between threads), so it runs on a single-threaded runtime on this thread, with its own
//! store connection; the HTTP side only reads [`Status`] and asks for runs through a channel.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::schedule::Ticks;
use super::{Note, Notes, data};
use crate::config::Config;
use crate::run::{self, Plan, RunError};
use crate::store::{Location, Store, StoreError};

/// What the runner is doing, for `/`, `/metrics` and `POST /runs`.
#[derive(Debug, Default, Clone)]
pub(super) struct Status {
    /// Since when a run (or the resumption of one) is going, if one is.
    pub(super) running_since: Option<SystemTime>,
    /// When the next scheduled run starts.
    pub(super) next: Option<SystemTime>,
    /// Runs this process finished (sent and polled to the end).
    pub(super) runs: u64,
    /// Runs this process could not make (the error is logged).
    pub(super) failures: u64,
    /// The last run this process finished: its id and whether polling could do its job.
    pub(super) last: Option<(String, bool)>,
}

/// Shared between the runner and the HTTP side.
pub(super) type Shared = Arc<Mutex<Status>>;

/// Locks the status; a panic elsewhere while it was held leaves plain data, still usable.
pub(super) fn status(shared: &Shared) -> std::sync::MutexGuard<'_, Status> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the runner thread needs.
pub(super) struct Runner {
    pub(super) config: Config,
    pub(super) store: Location,
    pub(super) every: Duration,
    pub(super) jitter: Duration,
    pub(super) shared: Shared,
    pub(super) notes: Notes,
}

impl Runner {
    /// Runs until `stop` turns true: first finishes the newest unfinished run (left by a
    /// stopped serve or run), then makes a run at each tick and on each request.
    pub(super) async fn run(
        self,
        mut requests: mpsc::Receiver<()>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let mut store = Store::open_at(&self.store)?;
        match store.latest_unfinished_run() {
            Ok(id) => {
                (self.notes)(Note::Resuming { run_id: id.clone() });
                let work = async {
                    run::resume(&self.config, &store, &id, &mut |_| {})
                        .await
                        .map(|summary| run::Done {
                            run_id: id.clone(),
                            summary,
                        })
                };
                if !self.watch(work, &store, &mut stop).await {
                    return Ok(());
                }
            }
            Err(StoreError::NoRun(_)) => {}
            Err(e) => return Err(e),
        }
        let mut ticks = Ticks::new(self.every, self.jitter, Instant::now());
        loop {
            self.set_next(ticks.start());
            tokio::select! {
                _ = tokio::time::sleep_until(ticks.start()) => ticks.advance(Instant::now()),
                Some(()) = requests.recv() => {}
                _ = stop.changed() => return Ok(()),
            }
            status(&self.shared).running_since = Some(SystemTime::now());
            let started = Instant::now();
            let result = tokio::select! {
                r = one_run(&self.config, &mut store) => Some(r),
                _ = stop.changed() => None,
            };
            let Some(result) = result else {
                self.interrupted(&store);
                return Ok(());
            };
            self.ended(&store, result, started.elapsed());
        }
    }

    /// Runs `work` (a resumption) unless stopped first; returns false when stopped.
    async fn watch(
        &self,
        work: impl std::future::Future<Output = Result<run::Done, RunError>>,
        store: &Store,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let started = Instant::now();
        status(&self.shared).running_since = Some(SystemTime::now());
        tokio::select! {
            r = work => {
                self.ended(store, r, started.elapsed());
                true
            }
            _ = stop.changed() => {
                self.interrupted(store);
                false
            }
        }
    }

    fn set_next(&self, start: Instant) {
        let wait = start.saturating_duration_since(Instant::now());
        status(&self.shared).next = Some(SystemTime::now() + wait);
    }

    /// A run ended (well or not): the status and the log line.
    fn ended(&self, store: &Store, result: Result<run::Done, RunError>, took: Duration) {
        let mut s = status(&self.shared);
        s.running_since = None;
        match result {
            Ok(done) => {
                s.runs += 1;
                let up = done.summary.up();
                s.last = Some((done.run_id.clone(), up));
                drop(s);
                let counts = match data::report(store, &done.run_id) {
                    Ok(report) => report
                        .counts()
                        .into_iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(k, n)| format!("{n} {k}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(_) => "counts unreadable".into(),
                };
                (self.notes)(Note::Ran {
                    run_id: done.run_id,
                    counts,
                    took,
                });
            }
            Err(e) => {
                s.failures += 1;
                drop(s);
                (self.notes)(Note::Failed {
                    error: e.to_string(),
                    took,
                });
            }
        }
    }

    /// Stopped during a run: what it recorded is in the store, and the next start finishes it.
    fn interrupted(&self, store: &Store) {
        status(&self.shared).running_since = None;
        if let Ok(id) = store.latest_unfinished_run() {
            (self.notes)(Note::Interrupted { run_id: id });
        }
    }
}

/// What `probe run --all` does: plan every seed (passwords read anew each run, so a rotated
/// one is picked up), send, poll.
async fn one_run(config: &Config, store: &mut Store) -> Result<run::Done, RunError> {
    let seeds = config.select(&[])?;
    let plan = Plan::build(config, &seeds).await?;
    run::send_then_poll(config, &plan, &seeds, store, None, &mut |_| {}).await
}
