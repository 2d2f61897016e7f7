//! The run plan: everything a run needs to know before a message leaves, worked out once.
//!
//! Built from the config, the chosen seeds and their credentials (read here, through
//! [`crate::secrets`], before anything is sent, so a missing password stops the run first):
//! each seed's IMAP account with its TLS configuration, the bounces mailbox in relay mode, and
//! how messages are sent. Sending, marking positions, polling and `probe seeds check` all read
//! their accounts and settings from here rather than from the config.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{BOUNCES, RunError};
use crate::config::{
    self, Config, ConfigError, Imap, ImapTls, RelayTls, SecretField, Seed, Transport,
};
use crate::message::DkimSigner;
use crate::poll::{AccountPoll, Lookup};
use crate::secrets::{Credential, SecretSource};
use crate::send::{Auth, AuthMechanism, Route, SendSettings, Timeouts, TlsPolicy};
use crate::tls::Trust;

/// One IMAP mailbox, as the run reaches it. Seeds with the same server and login share one.
#[derive(Debug, Clone)]
pub struct Account {
    /// The seeds read through it (usually one), in config order.
    pub seeds: Vec<String>,
    /// Server, login name and folders.
    pub imap: Imap,
    /// What it logs in with.
    pub credential: Credential,
    /// Its TLS configuration; `None` for `tls: none`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Account {
    /// A poll of this account on behalf of `seeds`, looking for `lookup`, with no messages yet.
    pub fn poll(&self, seeds: Vec<String>, lookup: Lookup, deadline: Instant) -> AccountPoll {
        AccountPoll {
            seeds,
            imap: self.imap.clone(),
            credential: self.credential.clone(),
            tls: self.tls.clone(),
            tokens: Vec::new(),
            deadline,
            lookup,
        }
    }

    /// Server, port and login: what makes two seeds one mailbox.
    pub fn key(&self) -> (String, u16, String) {
        account_key(&self.imap)
    }
}

/// How a run reaches every mailbox and server it uses.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed accounts, in the order of their first seed.
    accounts: Vec<Account>,
    /// Seed name to its index in `accounts`.
    account_of: HashMap<String, usize>,
    /// The DSN mailbox, in relay mode.
    bounces: Option<Account>,
    /// The relay, in relay mode: every message goes there.
    relay: Option<(String, u16)>,
    /// Port used on MX hosts in direct delivery.
    smtp_port: u16,
    /// SMTP client settings, AUTH and trust included.
    send: SendSettings,
    /// Signs every message, in direct mode with `sender.dkim`.
    dkim: Option<DkimSigner>,
    /// The checks made with the run; `None` with `--no-check` (see `checks.rs`).
    checks: Option<std::sync::Arc<super::checks::RunChecks>>,
}

impl Plan {
    /// Plans a run over `seeds`: reads each seed's credential (trading OAuth 2.0 refresh tokens
    /// for access tokens), and in relay mode the relay's and the bounces mailbox's; builds one
    /// TLS configuration per CA file. A secret that cannot be read is a [`ConfigError`] naming
    /// its file, line and field; a CA file that cannot be used, a [`RunError::Tls`].
    pub async fn build(config: &Config, seeds: &[&Seed]) -> Result<Plan, RunError> {
        let sender = &config.sender;
        let relay = match sender.transport {
            Transport::Relay => sender.relay.as_ref(),
            Transport::Direct => None,
        };
        // Every secret first, in config order, so the first unreadable one is the one named.
        let dkim = match (sender.transport, &sender.dkim) {
            (Transport::Direct, Some(d)) => Some(
                DkimSigner::from_source(
                    &d.domain,
                    &d.selector,
                    d.algorithm,
                    &d.private_key,
                    config.base_dir(),
                    config.timing.imap_timeout,
                )
                .await
                .map_err(|e| config.secret_error(&d.private_key_field(), e.to_string()))?,
            ),
            _ => None,
        };
        let mut credentials = Vec::with_capacity(seeds.len());
        for seed in seeds {
            let field = seed.imap.password_field();
            credentials.push(credential(config, &seed.imap.password, &field).await?);
        }
        let relay_credential = match relay.and_then(|r| Some((r, r.password.as_ref()?))) {
            Some((r, source)) => Some(credential(config, source, &r.password_field()).await?),
            None => None,
        };
        let bounces_credential = match (sender.transport, &sender.bounces) {
            (Transport::Relay, Some(b)) => {
                Some(credential(config, &b.password, &b.password_field()).await?)
            }
            _ => None,
        };

        let mut trust = TrustByFile::new(config.base_dir());
        let mut accounts: Vec<Account> = Vec::new();
        let mut account_of = HashMap::new();
        for (seed, credential) in seeds.iter().zip(credentials) {
            let key = account_key(&seed.imap);
            let index = match accounts.iter().position(|a| a.key() == key) {
                Some(i) => i,
                None => {
                    accounts.push(Account {
                        seeds: Vec::new(),
                        tls: imap_tls(&mut trust, &seed.name, &seed.imap)?,
                        imap: seed.imap.clone(),
                        credential,
                    });
                    accounts.len() - 1
                }
            };
            if !accounts[index].seeds.contains(&seed.name) {
                accounts[index].seeds.push(seed.name.clone());
            }
            account_of.insert(seed.name.clone(), index);
        }
        let bounces = match (&sender.bounces, bounces_credential) {
            (Some(imap), Some(credential)) => Some(Account {
                seeds: vec![BOUNCES.to_owned()],
                tls: imap_tls(&mut trust, BOUNCES, imap)?,
                imap: imap.clone(),
                credential,
            }),
            _ => None,
        };

        let mut send = base_settings(config);
        if let Some(r) = relay {
            send.tls = match r.tls {
                RelayTls::Starttls => TlsPolicy::Verified,
                RelayTls::Implicit => TlsPolicy::Implicit,
                RelayTls::None => TlsPolicy::None,
            };
            if r.ca_file.is_some() {
                send.extra_roots = trust
                    .get(r.ca_file.as_deref(), "sender.relay")?
                    .extra_roots()
                    .to_vec();
            }
            if let (Some(username), Some(credential)) = (&r.username, relay_credential) {
                let mechanisms = r.auth.iter().map(|m| smtp_mechanism(*m)).collect();
                let auth = Auth::from_credential(
                    username.clone(),
                    credential,
                    mechanisms,
                    r.allow_plaintext,
                )
                .map_err(|e| config.secret_error(&r.password_field(), e.to_string()))?;
                send.auth = Some(auth);
            }
        }
        Ok(Plan {
            accounts,
            account_of,
            bounces,
            relay: relay.map(|r| (r.host.clone(), r.port)),
            smtp_port: sender.smtp_port,
            send,
            dkim,
            checks: None,
        })
    }

    /// A plan with no accounts and nothing to send with: for polling a run that has nothing
    /// left to poll, which reads no secret.
    pub fn nothing(config: &Config) -> Plan {
        Plan {
            accounts: Vec::new(),
            account_of: HashMap::new(),
            bounces: None,
            relay: None,
            smtp_port: config.sender.smtp_port,
            send: base_settings(config),
            dkim: None,
            checks: None,
        }
    }

    /// This plan, making `checks` with the run (`probe run` and `probe send` without
    /// `--no-check`).
    pub fn with_checks(mut self, checks: super::checks::RunChecks) -> Plan {
        self.checks = Some(std::sync::Arc::new(checks));
        self
    }

    /// The checks made with the run, if any.
    pub fn checks(&self) -> Option<&std::sync::Arc<super::checks::RunChecks>> {
        self.checks.as_ref()
    }

    /// The seed accounts, in the order of their first seed.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The account a seed is read through, when the seed is part of the plan.
    pub fn account_of(&self, seed: &str) -> Option<&Account> {
        self.account_of.get(seed).map(|&i| &self.accounts[i])
    }

    /// The bounces mailbox, in relay mode when the config has one.
    pub fn bounces(&self) -> Option<&Account> {
        self.bounces.as_ref()
    }

    /// True when messages go through the user's relay.
    pub fn via_relay(&self) -> bool {
        self.relay.is_some()
    }

    /// Where a seed's message is sent: the relay, the seed's fixed `mx`, or its domain's MX
    /// hosts. Seeds with the same route share one connection.
    pub fn route(&self, seed: &Seed) -> Route {
        match (&self.relay, &seed.mx) {
            (Some((host, port)), _) => Route::Fixed {
                host: host.clone(),
                port: *port,
            },
            (None, Some(hp)) => Route::Fixed {
                host: hp.host.clone(),
                port: hp.port,
            },
            (None, None) => Route::Mx {
                domain: seed.address.domain().to_ascii_lowercase(),
                port: self.smtp_port,
            },
        }
    }

    /// SMTP client settings for the run.
    pub fn send_settings(&self) -> &SendSettings {
        &self.send
    }

    /// What signs each message: in direct mode with `sender.dkim`, else nothing (the relay
    /// signs).
    pub fn dkim(&self) -> Option<&DkimSigner> {
        self.dkim.as_ref()
    }
}

/// Reads one secret into a credential; an error names where the config gives its source.
async fn credential(
    config: &Config,
    source: &SecretSource,
    field: &SecretField,
) -> Result<Credential, ConfigError> {
    Credential::resolve(source, config.base_dir(), config.timing.imap_timeout)
        .await
        .map_err(|e| config.secret_error(field, e.to_string()))
}

/// Seeds with the same server and login share one mailbox, and one connection.
fn account_key(imap: &Imap) -> (String, u16, String) {
    (imap.host.clone(), imap.port, imap.username.clone())
}

/// An account's TLS configuration, `None` for `tls: none`.
fn imap_tls(
    trust: &mut TrustByFile,
    who: &str,
    imap: &Imap,
) -> Result<Option<Arc<rustls::ClientConfig>>, RunError> {
    Ok(match imap.tls {
        ImapTls::None => None,
        ImapTls::Implicit | ImapTls::Starttls => {
            Some(trust.get(imap.ca_file.as_deref(), who)?.verifying())
        }
    })
}

/// One [`Trust`] per CA file (and one without), built on first use: accounts behind the same
/// CA share a configuration instead of each parsing the file.
struct TrustByFile<'a> {
    base: &'a Path,
    built: HashMap<Option<PathBuf>, Trust>,
}

impl<'a> TrustByFile<'a> {
    fn new(base: &'a Path) -> Self {
        TrustByFile {
            base,
            built: HashMap::new(),
        }
    }

    /// The trust for a CA file as written in the config (relative to its directory); `who`
    /// names the user of it in an error.
    fn get(&mut self, ca_file: Option<&Path>, who: &str) -> Result<Trust, RunError> {
        let path = ca_file.map(|p| self.base.join(p));
        if let Some(trust) = self.built.get(&path) {
            return Ok(trust.clone());
        }
        let trust = Trust::load(path.as_deref()).map_err(|error| RunError::Tls {
            seed: who.to_owned(),
            error,
        })?;
        self.built.insert(path, trust.clone());
        Ok(trust)
    }
}

/// SMTP settings every run has: EHLO, timeouts, source address, resolver, STARTTLS policy.
fn base_settings(config: &Config) -> SendSettings {
    let sender = &config.sender;
    let timing = &config.timing;
    SendSettings {
        ehlo: sender.ehlo.clone(),
        // A host that does not answer a SYN within 30 s will not; replies get the full limit.
        timeouts: Timeouts {
            connect: timing.smtp_timeout.min(Duration::from_secs(30)),
            command: timing.smtp_timeout,
            data_end: timing.smtp_timeout,
        },
        source_ip: sender.source_ip,
        resolver: sender.resolver,
        tls: if sender.require_tls {
            TlsPolicy::Required
        } else {
            TlsPolicy::Opportunistic
        },
        ..SendSettings::default()
    }
}

fn smtp_mechanism(m: config::AuthMechanism) -> AuthMechanism {
    match m {
        config::AuthMechanism::Plain => AuthMechanism::Plain,
        config::AuthMechanism::Login => AuthMechanism::Login,
        config::AuthMechanism::Xoauth2 => AuthMechanism::Xoauth2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config in `dir` whose seeds read their password from the file `pw` there.
    fn config(dir: &Path, seeds: &str) -> Config {
        let text = format!(
            "sender:\n  from: probe@example.org\n  ehlo: probe.example.org\nseeds:\n{seeds}"
        );
        Config::parse(&dir.join("t.yaml"), &text).unwrap()
    }

    fn seed(name: &str, user: &str, extra: &str) -> String {
        format!(
            "  - name: {name}\n    address: {name}@example.org\n{extra}    imap: {{ host: imap.example.org, username: {user}, password: {{ file: pw }} }}\n"
        )
    }

    #[tokio::test]
    async fn seeds_share_accounts_and_trust() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let seeds = [
            seed("a", "shared", ""),
            seed("b", "shared", "    mx: \"127.0.0.1:2525\"\n"),
            seed("c", "own", ""),
        ]
        .concat();
        let config = config(dir.path(), &seeds);
        let chosen: Vec<&Seed> = config.seeds.iter().collect();
        let plan = Plan::build(&config, &chosen).await.unwrap();
        assert_eq!(plan.accounts().len(), 2);
        assert_eq!(plan.accounts()[0].seeds, ["a", "b"]);
        let (a, c) = (plan.account_of("a").unwrap(), plan.account_of("c").unwrap());
        assert_eq!(a.key(), plan.account_of("b").unwrap().key());
        assert_eq!(
            a.credential,
            Credential::Password(crate::secrets::SecretString::new("s3cret".into()))
        );
        // One TLS configuration per CA file (here: none), not one per account.
        assert!(Arc::ptr_eq(
            a.tls.as_ref().unwrap(),
            c.tls.as_ref().unwrap()
        ));
        assert!(plan.bounces().is_none() && !plan.via_relay());
        assert_eq!(
            plan.route(&config.seeds[0]),
            Route::Mx {
                domain: "example.org".into(),
                port: 25
            }
        );
        assert_eq!(
            plan.route(&config.seeds[1]),
            Route::Fixed {
                host: "127.0.0.1".into(),
                port: 2525
            }
        );
        assert!(plan.send_settings().auth.is_none());
    }

    #[tokio::test]
    async fn an_unreadable_secret_names_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &seed("a", "u", ""));
        let chosen: Vec<&Seed> = config.seeds.iter().collect();
        let err = Plan::build(&config, &chosen).await.unwrap_err().to_string();
        assert!(
            err.contains("t.yaml:7:60: seeds[0].imap.password: cannot read password file"),
            "{err}"
        );
    }
}
