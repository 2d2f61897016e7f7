//! `probe serve`: scheduled runs in-process, and their results over HTTP.
//!
//! - `runner.rs`: one thread that makes the runs (what `probe run --all` does, through
//!   [`crate::run::send_then_poll`]), never two at once; on start it first finishes the run a
//!   stopped serve left unfinished ([`crate::run::resume`], as `probe poll` would).
//! - `schedule.rs`: when the next run starts (a fixed grid, jitter, overlaps delaying).
//! - `http.rs`: the endpoints (axum on hyper): `/`, `/runs/{id}`, `/runs/{id}.json`,
//!   `/compare`, `/metrics`, `/healthz`, and `POST /runs` when a token is configured.
//! - `data.rs`: the one place the pages read the store.
//! - `page.rs`: the front page and the serve-only metrics, in the report's style.
//!
//! Stopping (SIGTERM, Ctrl-C: the `stop` future) drops the run in progress: every record it
//! made is already in the store, each write being its own transaction.

mod data;
mod http;
mod page;
mod runner;
mod schedule;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::{Config, ConfigError};
use crate::run::{Plan, RunError};
use crate::secrets::SecretString;
use crate::store::StoreError;

/// The schedule when neither `--every` nor `schedule.every` gives one.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(3600);

/// How `probe serve` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen.
    pub listen: SocketAddr,
    /// From one run's start to the next's (`--every`, else `schedule.every`, else
    /// [`DEFAULT_EVERY`]).
    pub every: Duration,
    /// The store: a SQLite file or a PostgreSQL database.
    pub store: crate::store::Location,
}

/// What serve tells its operator (the CLI writes each on a line of stderr). Never a secret.
#[derive(Debug, Clone)]
pub enum Note {
    /// Listening.
    Listening {
        /// The bound address.
        addr: SocketAddr,
        /// The schedule.
        every: Duration,
        /// Whether `POST /runs` exists.
        token: bool,
    },
    /// The address is not loopback: anyone who reaches it reads the reports.
    Exposed {
        /// The bound address.
        addr: SocketAddr,
    },
    /// Finishing a run left unfinished, before scheduling.
    Resuming {
        /// The run.
        run_id: String,
    },
    /// A run ended.
    Ran {
        /// The run.
        run_id: String,
        /// Messages per verdict, `1 inbox, 2 spam`.
        counts: String,
        /// From its start to its end.
        took: Duration,
    },
    /// A run could not be made (the schedule goes on).
    Failed {
        /// Why, as `probe run` would say it.
        error: String,
        /// Until it failed.
        took: Duration,
    },
    /// Stopped during a run.
    Interrupted {
        /// The run, finished by the next start.
        run_id: String,
    },
    /// Stopped.
    Stopped,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Duration| format!("{:.1}s", d.as_secs_f64());
        match self {
            Note::Listening { addr, every, token } => write!(
                f,
                "listening on http://{addr}/, a run every {}{}",
                humantime::format_duration(*every),
                if *token {
                    "; POST /runs needs the bearer token"
                } else {
                    "; no serve.token, so no POST /runs"
                }
            ),
            Note::Exposed { addr } => write!(
                f,
                "warning: {addr} is not a loopback address: anyone who can reach it reads the \
                 reports (seed addresses, server replies); put it behind a proxy with TLS and \
                 authentication"
            ),
            Note::Resuming { run_id } => write!(f, "finishing run {run_id}, left unfinished"),
            Note::Ran {
                run_id,
                counts,
                took,
            } => write!(f, "run {run_id}: {counts} in {}", secs(took)),
            Note::Failed { error, took } => {
                write!(f, "run failed after {}: {error}", secs(took))
            }
            Note::Interrupted { run_id } => write!(
                f,
                "stopped during run {run_id}: its records are stored, and the next start finishes it"
            ),
            Note::Stopped => f.write_str("stopped"),
        }
    }
}

/// Where notes go.
pub type Notes = Arc<dyn Fn(Note) + Send + Sync>;

/// Why serve could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config (a token or password that cannot be read is named at its field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A run could not be planned at start (a seed's password, a TLS file).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runner thread or the server failed.
    #[error("{0}")]
    Internal(String),
}

/// Serves until `stop` resolves: checks the config's secrets (the token, every seed's
/// password) once, binds, then runs on schedule and answers requests.
pub async fn serve(
    config: Config,
    options: Options,
    notes: Notes,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let token = match &config.serve.token {
        Some(source) => Some(
            source
                .read(config.base_dir(), config.timing.imap_timeout)
                .await
                .map_err(|e| config.secret_error(&config.serve.token_field(), e.to_string()))?,
        ),
        None => None,
    };
    // Every password is read once now, so a wrong one stops serve at start, not at 3 a.m.
    Plan::build(&config, &config.select(&[])?).await?;
    let reader = data::Reader::open(&options.store)?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(options.listen);
    if !addr.ip().is_loopback() {
        notes(Note::Exposed { addr });
    }
    notes(Note::Listening {
        addr,
        every: options.every,
        token: token.is_some(),
    });

    let shared = runner::Shared::default();
    let (request_tx, request_rx) = mpsc::channel(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = runner::Runner {
        jitter: config.schedule.jitter,
        config,
        store: options.store.clone(),
        every: options.every,
        shared: shared.clone(),
        notes: notes.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("probe-runner".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ServeError::Internal(format!("cannot start the runner: {e}")))?;
            rt.block_on(runner.run(request_rx, stop_rx))
                .map_err(ServeError::from)
        })
        .map_err(|e| ServeError::Internal(format!("cannot start the runner thread: {e}")))?;

    let app = http::router(http::App {
        reader,
        shared,
        requests: request_tx,
        token: token.map(Arc::new),
    });
    // The runner ending on its own (its store failed) stops the server too.
    let (runner_done_tx, runner_done_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = tokio::task::spawn_blocking(move || {
        let r = thread.join();
        let _ = runner_done_tx.send(());
        r
    });
    let stop_signal = stop_tx.clone();
    let shutdown = async move {
        tokio::select! {
            _ = stop => {}
            _ = runner_done_rx => {}
        }
        let _ = stop_signal.send(true);
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServeError::Internal(format!("the HTTP server failed: {e}")));
    let _ = stop_tx.send(true);
    let ran = match thread.await {
        Ok(Ok(r)) => r,
        _ => Err(ServeError::Internal("the runner thread panicked".into())),
    };
    served?;
    ran?;
    notes(Note::Stopped);
    Ok(())
}

/// Compares a presented bearer token with the configured one in time that does not depend on
/// where they differ (only on the presented length), so the token cannot be guessed byte by
/// byte from response times.
fn same_token(presented: &[u8], token: &SecretString) -> bool {
    let expected = token.expose().as_bytes();
    let mut diff = u8::from(presented.len() != expected.len());
    for (i, b) in presented.iter().enumerate() {
        diff |= b ^ expected
            .get(i % expected.len().max(1))
            .copied()
            .unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let token = SecretString::new("s3cret-token".into());
        for (presented, ok) in [
            ("s3cret-token", true),
            ("s3cret-tokeN", false),
            ("s3cret-toke", false),
            ("s3cret-token-and-more", false),
            ("s3cret-tokens3cret-token", false),
            ("", false),
        ] {
            assert_eq!(same_token(presented.as_bytes(), &token), ok, "{presented}");
        }
    }
}
