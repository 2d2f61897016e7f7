//! Exit codes: the one table, documented in the README.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::run::RunError;
use crate::store::StoreError;

/// What `probe` tells the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every message reached the inbox (for `send`: every message was accepted).
    Ok,
    /// 1: some message did not reach the inbox, or has no verdict; below `--fail-under`; for
    /// `compare`, some seed got worse; for `seeds check`, some seed is not usable.
    NotAllInbox,
    /// 2: the command line or the config is invalid; nothing was sent.
    Usage,
    /// 3: probe could not do its job: store unusable, every login failed, TLS setup failed.
    ProbeFailure,
    /// 130: interrupted by Ctrl-C; what was recorded is kept.
    Interrupted,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::NotAllInbox => 1,
            Exit::Usage => 2,
            Exit::ProbeFailure => 3,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The exit code for an error that stopped the command.
pub fn for_error(e: &anyhow::Error) -> Exit {
    let user_error = |store: &StoreError| {
        matches!(
            store,
            StoreError::NoSuchRun(_) | StoreError::NoRun(_) | StoreError::BadLocation { .. }
        )
    };
    for cause in e.chain() {
        if cause.is::<ConfigError>() {
            return Exit::Usage;
        }
        match cause.downcast_ref::<RunError>() {
            Some(RunError::Config(_)) => return Exit::Usage,
            Some(RunError::Store(s)) if user_error(s) => return Exit::Usage,
            _ => {}
        }
        if let Some(crate::run::ChecksError::Lists(_)) = cause.downcast_ref() {
            return Exit::Usage;
        }
        if cause.downcast_ref::<StoreError>().is_some_and(user_error) {
            return Exit::Usage;
        }
    }
    Exit::ProbeFailure
}
