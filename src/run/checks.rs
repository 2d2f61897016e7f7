//! The checks made with a run (`probe check`'s, for the run's source IP and sender domain).
//!
//! How they relate to sending, decided here:
//!
//! - They never hold a message back: they start with the mailbox check before sending
//!   (`positions.rs`), run on their own task beside it and beside the sending, and are only
//!   collected once the last message has been handed over.
//! - Every lookup is bounded by [`LOOKUP_LIMIT`] (`probe check`'s default `--timeout`), and
//!   the whole set by [`BUDGET`]: a resolver that does not answer costs the run at most that
//!   after its last message, and every check then reads `error`.
//! - A failed check (a listing, no PTR, SPF fail) never stops the run: the postmaster wants the
//!   measurement anyway, and the report shows the check beside it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::check::dns::Dns;
use crate::check::lists::{ListSet, ListsError};
use crate::check::{self, Report, Target};
use crate::config::Config;

/// The bound on each DNS lookup of a run's checks.
pub const LOOKUP_LIMIT: Duration = Duration::from_secs(5);

/// The bound on all of a run's checks: an SPF evaluation, the longest chain of lookups, takes
/// up to three lookup limits (see `check::spf`).
pub const BUDGET: Duration = Duration::from_secs(16);

/// Why a run's checks cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ChecksError {
    /// The seeds file's `checks.lists` are unusable (a usage error: nothing is sent).
    #[error(transparent)]
    Lists(#[from] ListsError),
    /// The sending IP is unknown or no resolver can be set up: the run goes on without checks.
    #[error("{0}")]
    Unavailable(String),
}

/// What a run checks, and through which resolver.
pub struct RunChecks {
    target: Target,
    dns: Dns,
    lists: ListSet,
    /// Whether the source IP was found by asking the kernel (no `sender.source_ip`).
    discovered: bool,
}

impl std::fmt::Debug for RunChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunChecks")
            .field("ip", &self.target.ip)
            .field("domain", &self.target.domain)
            .field("resolver", &self.dns.server())
            .finish_non_exhaustive()
    }
}

impl RunChecks {
    /// The checks for a run of `config` (with `--source-ip` already applied): the source IP is
    /// `sender.source_ip`, else the address this host would use; the domain is the From
    /// domain, the envelope sender's for SPF; the DKIM selector is `sender.dkim`'s in direct
    /// mode; lookups go through `sender.resolver` when set.
    pub fn new(config: &Config) -> Result<RunChecks, ChecksError> {
        let lists = ListSet::configured(config)?;
        let sender = &config.sender;
        let (ip, discovered): (IpAddr, bool) = match sender.source_ip {
            Some(ip) => (ip, false),
            None => (
                check::discover_source_ip().map_err(|e| {
                    ChecksError::Unavailable(format!(
                        "cannot tell which address this host sends from ({e}); set sender.source_ip or pass --source-ip"
                    ))
                })?,
                true,
            ),
        };
        let mut target = Target::of_sender(sender, ip);
        if sender.transport == crate::config::Transport::Direct {
            target.dkim = sender
                .dkim
                .as_ref()
                .map(|d| (d.domain.to_ascii_lowercase(), d.selector.clone()));
        }
        let dns = Dns::new(sender.resolver, LOOKUP_LIMIT).map_err(ChecksError::Unavailable)?;
        Ok(RunChecks {
            target,
            dns,
            lists,
            discovered,
        })
    }

    /// The IP checked.
    pub fn source_ip(&self) -> IpAddr {
        self.target.ip
    }

    /// Whether the IP was found by asking the kernel rather than configured.
    pub fn discovered(&self) -> bool {
        self.discovered
    }

    /// Starts every check on its own task.
    pub(super) fn start(self: &Arc<Self>) -> Pending {
        let me = self.clone();
        Pending(tokio::spawn(async move {
            tokio::time::timeout(BUDGET, check::run(&me.target, &me.dns, &me.lists))
                .await
                .ok()
        }))
    }
}

/// Checks under way.
pub(super) struct Pending(JoinHandle<Option<Report>>);

impl Pending {
    /// Their results: at once when done, else within what is left of [`BUDGET`]; `None` when
    /// they did not end within it.
    pub(super) async fn collect(self) -> Option<Report> {
        self.0.await.ok().flatten()
    }

    /// Stops them (nothing was sent, so nothing is stored).
    pub(super) fn abort(self) {
        self.0.abort();
    }
}
