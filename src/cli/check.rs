//! `probe check`: the sending IP's and domain's DNS and list status, before sending.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::Exit;
use crate::check::dns::Dns;
use crate::check::lists::ListSet;
use crate::check::{self, Report, Target};
use crate::config::{Config, Transport};
use crate::report::printable;

/// Arguments of `probe check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The sending IP to check [default: sender.source_ip, else the address this host uses to
    /// reach the internet].
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<IpAddr>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Ask these DNS lists instead of the built-in set (the format of src/check/lists.tsv).
    #[arg(long, value_name = "FILE")]
    pub lists: Option<PathBuf>,
    /// Check that this DKIM selector's public key is published (under the From domain, or
    /// --dkim-domain).
    #[arg(long, value_name = "NAME")]
    pub dkim_selector: Option<String>,
    /// The DKIM signing domain (d=) [default: the From domain].
    #[arg(long, value_name = "DOMAIN", requires = "dkim_selector")]
    pub dkim_domain: Option<String>,
    /// The DKIM private key (PEM, PKCS#8 or PKCS#1) whose public half the selector's record
    /// must publish.
    #[arg(long, value_name = "FILE", requires = "dkim_selector")]
    pub dkim_key: Option<PathBuf>,
    /// The bound on each DNS lookup.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s}: {e}"))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(120) {
        return Err(format!("{s}: use 100ms to 2m"));
    }
    Ok(d)
}

/// Runs `probe check`.
pub async fn main(config: &Config, args: &CheckArgs) -> anyhow::Result<Exit> {
    // The config's checks.lists replace the built-in set; --lists replaces both.
    let mut lists = if args.lists.is_some() {
        ListSet::builtin()
    } else {
        match ListSet::configured(config) {
            Ok(set) => set,
            Err(e) => {
                eprintln!("probe: error: {e}");
                return Ok(Exit::Usage);
            }
        }
    };
    if let Some(path) = &args.lists {
        let origin = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("probe: error: cannot read the lists file {origin}: {e}");
                return Ok(Exit::Usage);
            }
        };
        match ListSet::parse(&text, &origin).and_then(|file| lists.replace_lists(file, &origin)) {
            Ok(set) => lists = set,
            Err(e) => {
                eprintln!("probe: error: {e}");
                return Ok(Exit::Usage);
            }
        }
    }
    let sender = &config.sender;
    if sender.transport == Transport::Relay && args.source_ip.is_none() {
        eprintln!(
            "probe: note: transport is relay: your relay's IP is the one receivers judge; pass it with --source-ip"
        );
    }
    let ip = match args.source_ip.or(sender.source_ip) {
        Some(ip) => ip,
        None => match check::discover_source_ip() {
            Ok(ip) => {
                eprintln!(
                    "probe: checking {ip}, the address this host uses to reach the internet (no --source-ip or sender.source_ip){}",
                    if is_private(ip) {
                        "; it is a private address: behind NAT, receivers see your public address, pass that with --source-ip"
                    } else {
                        ""
                    }
                );
                ip
            }
            Err(e) => {
                eprintln!(
                    "probe: error: cannot tell which address this host sends from ({e}); pass --source-ip"
                );
                return Ok(Exit::Usage);
            }
        },
    };
    let dkim_key = match &args.dkim_key {
        None => None,
        Some(path) => {
            let read = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|pem| check::dkim::local_key(&pem));
            match read {
                Ok(key) => Some(key),
                Err(e) => {
                    eprintln!("probe: error: the DKIM key {}: {e}", path.display());
                    return Ok(Exit::Usage);
                }
            }
        }
    };
    let mut target = Target::of_sender(sender, ip);
    target.dkim = args.dkim_selector.as_ref().map(|selector| {
        let d = args.dkim_domain.clone();
        let d = d.unwrap_or_else(|| target.domain.clone());
        (d.to_ascii_lowercase(), selector.clone())
    });
    target.dkim_key = dkim_key;
    let dns = match Dns::new(sender.resolver, args.timeout) {
        Ok(dns) => dns,
        Err(e) => anyhow::bail!("{e}"),
    };
    let report = check::run(&target, &dns, &lists).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    let errors = report.count(check::Status::Error);
    if errors > 0 {
        // Errors do not set the exit code (nothing is known to be wrong), so say it here.
        eprintln!(
            "probe: {errors} of {} checks could not be made (status error): a DNS timeout or a refused query; see each detail",
            report.results.len()
        );
    }
    Ok(if report.failed() {
        Exit::NotAllInbox
    } else {
        Exit::Ok
    })
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn print_table(report: &Report) {
    let rows: Vec<[String; 5]> = report
        .results
        .iter()
        .map(|r| {
            [
                r.check.clone(),
                printable(&r.subject).into_owned(),
                r.list.clone().unwrap_or_else(|| "-".into()),
                r.status.as_str().to_owned(),
                printable(&r.detail).into_owned(),
            ]
        })
        .collect();
    let head = ["CHECK", "SUBJECT", "LIST", "STATUS", "DETAIL"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate().take(4) {
            out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
        }
        out.push_str(cells[4]);
        println!("{}", out.trim_end());
    };
    println!("source IP {}, domain {}", report.source_ip, report.domain);
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    use check::Status::*;
    println!(
        "{} pass, {} warn, {} fail, {} error",
        report.count(Pass),
        report.count(Warn),
        report.count(Fail),
        report.count(Error)
    );
}
