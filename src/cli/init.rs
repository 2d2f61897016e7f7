//! `probe init ADDRESS...`: write a commented seeds file for those addresses, the provider of
//! each found from its domain or, for a custom domain, from its MX hosts.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::Exit;
use crate::check::dns::{Answer, Dns};
use crate::config::Provider;
use crate::config::template::{self, Detected, NewSeed};
use crate::reason::provider::provider;

/// Arguments of `probe init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The seed mailboxes' addresses.
    #[arg(value_name = "ADDRESS", required = true)]
    pub addresses: Vec<String>,
    /// The sender address (your real mail's From) [default: probe@ this host's domain, marked
    /// CHANGE in the file].
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// Overwrite the seeds file (--config) when it exists.
    #[arg(long)]
    pub force: bool,
    /// The DNS server for the MX lookups of custom domains [default: the system's].
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<SocketAddr>,
}

/// Runs `probe init`, writing to `path`.
pub async fn main(path: &Path, args: &InitArgs) -> anyhow::Result<Exit> {
    for address in &args.addresses {
        if address.parse::<lettre::Address>().is_err() {
            eprintln!("probe: error: {address:?} is not a mail address (user@domain)");
            return Ok(Exit::Usage);
        }
    }
    if path.exists() && !args.force {
        eprintln!(
            "probe: error: {} exists; it is left as it is (give --force to overwrite it)",
            path.display()
        );
        return Ok(Exit::Usage);
    }
    // The system resolver is read only when a custom domain needs an MX lookup.
    let mut dns: Option<Dns> = None;
    let mut seeds = Vec::new();
    for address in &args.addresses {
        let domain = address
            .rsplit('@')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(group) = provider(None, Some(address)) {
            seeds.push(NewSeed {
                address: address.clone(),
                provider: Provider::for_group(group, &domain),
                detected: Detected::Domain,
            });
            continue;
        }
        if dns.is_none() {
            dns = Some(
                Dns::new(args.resolver, Duration::from_secs(5))
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
        let dns = dns.as_ref().context("the resolver was just made")?;
        let mx = match dns.mx(&domain).await {
            Ok(Answer::Found(mut hosts)) => {
                hosts.sort();
                hosts.into_iter().map(|(_, h)| h).next()
            }
            Ok(_) => None,
            Err(e) => {
                eprintln!("probe: warning: MX of {domain}: {e}; its provider is left open");
                None
            }
        };
        let group = mx.as_deref().and_then(|h| provider(Some(h), None));
        seeds.push(match (group, mx) {
            (Some(group), Some(mx)) => NewSeed {
                address: address.clone(),
                provider: Provider::for_group(group, &domain),
                detected: Detected::Mx(mx),
            },
            (_, mx) => NewSeed {
                address: address.clone(),
                provider: None,
                detected: Detected::Unknown(mx),
            },
        });
    }
    let (from, guessed) = match &args.from {
        Some(f) => (f.clone(), false),
        None => (format!("probe@{}", host_domain()), true),
    };
    let text = template::seeds_file(&from, guessed, &seeds);
    write_new(path, &text, args.force)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("probe: wrote {}", path.display());
    if guessed {
        eprintln!("  set sender.from to the address your real mail is sent from ({from} now)");
    }
    for ((name, var), seed) in template::seed_names(&seeds).iter().zip(&seeds) {
        let provider = seed
            .provider
            .map(|p| p.profile().name)
            .unwrap_or("unknown provider: set imap.host");
        eprintln!("  {name}: {} ({provider}): export {var}=...", seed.address);
    }
    eprintln!(
        "  then run `probe seeds check --config {}`: it logs into each seed and sends nothing",
        path.display()
    );
    Ok(Exit::Ok)
}

/// Writes `text` to a new file, or over an old one with `force`; the file is created
/// exclusively otherwise, so a file that appeared meanwhile is not overwritten either.
fn write_new(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())
}

/// The domain part of this host's fully qualified name, else `localhost`.
fn host_domain() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match host.trim().split_once('.') {
        Some((_, domain)) if !domain.is_empty() => domain.to_owned(),
        _ => "localhost".to_owned(),
    }
}
