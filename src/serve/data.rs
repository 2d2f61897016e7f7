//! The one place `probe serve` reads the store for its pages: one connection of its own
//! (SQLite in WAL mode lets it read while the scheduled run writes through another), used
//! from blocking threads, one request at a time.

use std::sync::{Arc, Mutex};

use crate::compare::{Comparison, compare};
use crate::report::RunList;
use crate::report::RunReport;
use crate::store::{Location, Store, StoreError};

/// How many runs the front page lists.
pub(super) const LISTED: usize = 50;

/// Reading failed: a run that is not there, or the store itself.
#[derive(Debug)]
pub(super) enum ReadError {
    /// No such run (the id is kept for the answer).
    NoSuchRun(String),
    /// Anything else; logged, never shown to the client.
    Store(String),
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchRun(id) => ReadError::NoSuchRun(id),
            other => ReadError::Store(other.to_string()),
        }
    }
}

/// The read side of the store, shared by every request.
#[derive(Clone)]
pub(super) struct Reader {
    store: Arc<Mutex<Store>>,
}

impl Reader {
    /// Opens the store (creating and migrating it, as every command does).
    pub(super) fn open(location: &Location) -> Result<Reader, StoreError> {
        Ok(Reader {
            store: Arc::new(Mutex::new(Store::open_at(location)?)),
        })
    }

    /// Runs `f` on the store on a blocking thread: SQLite calls block.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, ReadError> + Send + 'static,
    ) -> Result<T, ReadError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let store = store
                .lock()
                .map_err(|_| ReadError::Store("store lock poisoned".into()))?;
            f(&store)
        })
        .await
        .map_err(|e| ReadError::Store(format!("reading the store stopped: {e}")))?
    }

    /// One run with its messages.
    pub(super) async fn report(&self, id: String) -> Result<RunReport, ReadError> {
        self.with(move |store| report(store, &id)).await
    }

    /// The newest [`LISTED`] runs, newest first.
    pub(super) async fn latest(&self) -> Result<RunList, ReadError> {
        self.with(|store| {
            let runs = store
                .runs()?
                .into_iter()
                .take(LISTED)
                .map(|run| {
                    let messages = store.messages(&run.id)?;
                    Ok(RunReport { run, messages })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(RunList { runs })
        })
        .await
    }

    /// The newest finished run, if any: what `/metrics` describes. A run still going would
    /// show its pending messages as not in the inbox, a dip that is no dip.
    pub(super) async fn latest_finished(&self) -> Result<Option<RunReport>, ReadError> {
        self.with(|store| {
            let Some(run) = store.runs()?.into_iter().find(|r| r.finished_at.is_some()) else {
                return Ok(None);
            };
            let messages = store.messages(&run.id)?;
            Ok(Some(RunReport { run, messages }))
        })
        .await
    }

    /// Two runs compared, as `probe compare` does.
    pub(super) async fn compare(
        &self,
        before: String,
        after: String,
    ) -> Result<Comparison, ReadError> {
        self.with(move |store| {
            store.run(&before)?;
            store.run(&after)?;
            Ok(compare(
                &before,
                &store.messages(&before)?,
                &after,
                &store.messages(&after)?,
            ))
        })
        .await
    }
}

/// A run and its messages from an open store; also the runner's, for its log line.
pub(super) fn report(store: &Store, id: &str) -> Result<RunReport, ReadError> {
    Ok(RunReport {
        run: store.run(id)?,
        messages: store.messages(id)?,
    })
}
