//! `probe seeds check`: log into every seed, show what polling would use, report problems.
//! Sends nothing and changes nothing in the mailboxes.

use std::fmt::Write as _;

use clap::{Args, Subcommand};

use super::Exit;
use crate::config::{Config, ImapTls, Seed};
use crate::poll::{self, JunkSource, Lookup, PollError};
use crate::run::Plan;
use crate::secrets::Credential;

/// `probe seeds ...`
#[derive(Debug, Subcommand)]
pub enum SeedsCommand {
    /// Log into every seed mailbox and report folders, capabilities and problems.
    Check(CheckArgs),
}

/// Arguments of `probe seeds check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only this seed (repeatable); default: all.
    #[arg(long = "seed", value_name = "NAME")]
    pub seeds: Vec<String>,
}

/// Checks each chosen seed in turn and prints one block per seed.
pub async fn check(config: &Config, args: &CheckArgs) -> anyhow::Result<Exit> {
    let seeds = config.select(&args.seeds)?;
    let plan = Plan::build(config, &seeds).await?;
    let mut problems = 0;
    for seed in seeds {
        let account = plan
            .account_of(&seed.name)
            .expect("the plan has an account for every seed it was built for");
        let job = account.poll(
            vec![seed.name.clone()],
            Lookup::Placement,
            tokio::time::Instant::now(),
        );
        let result = poll::inspect(&job, config.timing.imap_timeout).await;
        let (text, ok) = describe(seed, &account.credential, &result);
        print!("{text}");
        if !ok {
            problems += 1;
        }
    }
    Ok(if problems == 0 {
        Exit::Ok
    } else {
        Exit::NotAllInbox
    })
}

fn describe(
    seed: &Seed,
    credential: &Credential,
    result: &Result<poll::Inspection, PollError>,
) -> (String, bool) {
    let imap = &seed.imap;
    let mut out = String::new();
    let tls = match imap.tls {
        ImapTls::Implicit => "TLS",
        ImapTls::Starttls => "STARTTLS",
        ImapTls::None => "no TLS",
    };
    let _ = writeln!(
        out,
        "{} ({}) {}:{} {tls}, user {}",
        seed.name,
        seed.provider_name(),
        imap.host,
        imap.port,
        imap.username
    );
    let inspection = match result {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(out, "  problem: {e}");
            if let Some(hint) = e.hint(seed.provider_name()) {
                let _ = writeln!(out, "  hint: {hint}");
            }
            return (out, false);
        }
    };
    let _ = writeln!(out, "  login: ok ({})", credential.describe());
    let _ = writeln!(out, "  capabilities: {}", inspection.capabilities.join(" "));
    let folders: Vec<String> = inspection
        .folders
        .iter()
        .map(|f| {
            let name = poll::utf7::decode(&f.name);
            let role = if f.name.eq_ignore_ascii_case("INBOX") {
                " (inbox)"
            } else if inspection.junk.as_ref().is_some_and(|j| j.name == f.name) {
                " (spam)"
            } else {
                ""
            };
            let attr = if f.junk { " \\Junk" } else { "" };
            format!("{name}{role}{attr}")
        })
        .collect();
    let _ = writeln!(out, "  folders: {}", folders.join(", "));
    match &inspection.junk {
        Some(j) => {
            let how = match j.source {
                JunkSource::Configured => "from spam_folder in the config",
                JunkSource::Attribute => "marked \\Junk by the server",
                JunkSource::Name => "by its name",
            };
            let _ = writeln!(
                out,
                "  spam folder: {} ({how})",
                poll::utf7::decode(&j.name)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  problem: no spam folder found: a message filed as spam would show as missing; set imap.spam_folder"
            );
            return (out, false);
        }
    }
    if let Some(wanted) = &imap.spam_folder
        && inspection.junk.as_ref().map(|j| &j.name) != Some(wanted)
    {
        let _ = writeln!(
            out,
            "  problem: the configured spam_folder {wanted:?} is not on the server"
        );
        return (out, false);
    }
    (out, true)
}
