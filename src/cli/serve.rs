//! `probe serve`: the command line around [`crate::serve`]: options, signals, the log lines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{Cli, Exit};
use crate::config::{Config, parse_every};
use crate::serve::{self, DEFAULT_EVERY, Options, ServeError};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to serve HTTP. Another address than loopback is allowed, with a warning: the
    /// pages show seed addresses and server replies to anyone who reaches them.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9108")]
    pub listen: SocketAddr,
    /// A run every this long (overrides schedule.every) [default: schedule.every, else 1h].
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    pub every: Option<Duration>,
}

/// Serves until SIGTERM or Ctrl-C; exit 0 when stopped so, or the error's code.
pub async fn main(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Exit> {
    let config = Config::load(&cli.config)?;
    let every = args
        .every
        .or(config.schedule.every)
        .unwrap_or(DEFAULT_EVERY);
    let options = Options {
        listen: args.listen,
        every,
        store: super::store_location(cli)?,
    };
    let notes: serve::Notes = Arc::new(|note| eprintln!("probe serve: {note}"));
    // Unwrapped so that the exit code is the inner error's (a config error is a usage error).
    serve::serve(config, options, notes, stopped())
        .await
        .map_err(|e| match e {
            ServeError::Config(e) => anyhow::Error::from(e),
            ServeError::Run(e) => e.into(),
            ServeError::Store(e) => e.into(),
            other => other.into(),
        })?;
    Ok(Exit::Ok)
}

/// Resolves on SIGTERM (systemd's stop, `kill`) or Ctrl-C.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
