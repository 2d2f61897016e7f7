//! The seeds file: what to send, to whom, and how to read each seed mailbox.
//!
//! [`Config::load`] parses and checks the whole file before anything else happens; every error
//! names the file, line, column and field. The config is plain data: it says where each secret
//! is ([`SecretSource`]) and where in the file that was said ([`SecretField`]); reading the
//! secrets is [`crate::secrets`]'s job, done when a run is planned. `seeds.example.yaml`
//! documents each field.

mod provider;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use provider::{KNOWN_SPAM_FOLDERS, Profile, Provider};

use crate::secrets::SecretSource;

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Who sends and how.
    pub sender: Sender,
    /// The test message.
    pub message: MessageTemplate,
    /// How long to wait, and how often to look.
    pub timing: Timing,
    /// The seed mailboxes, in file order.
    pub seeds: Vec<Seed>,
}

/// The sending side.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The `From:` mailbox, e.g. `Deliverability Probe <probe@example.org>`.
    pub from: lettre::message::Mailbox,
    /// The name given in EHLO.
    pub ehlo: String,
    /// How messages leave.
    pub transport: Transport,
    /// Local address outgoing SMTP connections are bound to (direct delivery from a chosen IP).
    pub source_ip: Option<IpAddr>,
    /// DNS server for MX and address lookups; `None`: the system's resolver.
    pub resolver: Option<SocketAddr>,
    /// Port used on MX hosts in direct delivery (25; labs use another).
    pub smtp_port: u16,
    /// Direct delivery: a missing or failed STARTTLS is a deferral instead of plaintext.
    pub require_tls: bool,
    /// The user's own MTA, for `transport: relay`.
    pub relay: Option<Relay>,
    /// The mailbox that receives DSNs for `from`.
    pub bounces: Option<Imap>,
    /// The relay's Postfix log, when probe runs on that host.
    pub maillog: Option<PathBuf>,
}

/// Transport security towards the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayTls {
    /// STARTTLS, required and verified (submission, port 587).
    Starttls,
    /// TLS from the first byte, verified (submissions, port 465).
    Implicit,
    /// No TLS: only to loopback or with `allow_plaintext`.
    None,
}

/// A SASL mechanism for AUTH at the relay (RFC 4954).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMechanism {
    /// RFC 4616.
    Plain,
    /// The old LOGIN mechanism.
    Login,
    /// Google's and Microsoft's OAuth 2.0 bearer mechanism; the password is the access token.
    Xoauth2,
}

/// The user's own MTA, for relay (submission) mode.
#[derive(Debug, Clone)]
pub struct Relay {
    /// Host name or address.
    pub host: String,
    /// Port (587 for STARTTLS, 465 for implicit TLS by default).
    pub port: u16,
    /// Transport security.
    pub tls: RelayTls,
    /// AUTH login name; without it no AUTH is attempted.
    pub username: Option<String>,
    /// Where the AUTH password comes from.
    pub password: Option<SecretSource>,
    /// Mechanisms in order of preference; empty: what the server offers.
    pub auth: Vec<AuthMechanism>,
    /// Extra trust anchor (PEM), resolved against the config's directory.
    pub ca_file: Option<PathBuf>,
    /// AUTH may go over a connection without TLS (always true for loopback hosts).
    pub allow_plaintext: bool,
    /// Where the password field is, for errors found when resolving it.
    password_at: (u64, u64),
}

/// How messages leave this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Straight to each seed's MX, as the receiving provider would see our own MTA.
    Direct,
    /// Through the user's own MTA (not implemented yet; refused at load time).
    Relay,
}

impl Transport {
    /// Stable name, for the store and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Direct => "direct",
            Transport::Relay => "relay",
        }
    }
}

/// Subject and body; `{token}` and `{seed}` are replaced per message.
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    /// Must contain `{token}`: polling searches for it.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Pause between polling rounds.
    pub poll_interval: Duration,
    /// After this (from sending), an accepted message not yet found is `missing`.
    pub timeout: Duration,
    /// Limit for each SMTP reply, the end of data included; connecting gets at most 30 s of it.
    pub smtp_timeout: Duration,
    /// Limit for each IMAP command.
    pub imap_timeout: Duration,
    /// At most this many IMAP connections at once across all seed accounts (one per account
    /// in any case; providers limit connections per account, Gmail to about 15).
    pub imap_connections: usize,
}

/// IMAP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS before login.
    Starttls,
    /// No TLS: allowed with a password only to loopback or with `allow_plaintext`.
    None,
}

/// One seed mailbox.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Unique name, used on the command line (`--seed`) and in reports.
    pub name: String,
    /// Provider profile, if any.
    pub provider: Option<Provider>,
    /// The address messages are sent to.
    pub address: lettre::Address,
    /// Fixed SMTP server instead of the MX lookup.
    pub mx: Option<HostPort>,
    /// How to read the mailbox.
    pub imap: Imap,
}

impl Seed {
    /// The provider's stable name, or `-`.
    pub fn provider_name(&self) -> &'static str {
        self.provider.map(|p| p.profile().name).unwrap_or("-")
    }
}

/// A host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How to reach a seed mailbox over IMAP.
#[derive(Debug, Clone)]
pub struct Imap {
    /// Server name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: ImapTls,
    /// Login name.
    pub username: String,
    /// Where the password comes from.
    pub password: SecretSource,
    /// Extra trust anchor (PEM), resolved against the config's directory.
    pub ca_file: Option<PathBuf>,
    /// Spam folder to use instead of discovery.
    pub spam_folder: Option<String>,
    /// Spam folder names to try after the `\Junk` attribute.
    pub spam_folder_names: Vec<String>,
    /// Where the password field is (line, column), for errors found when resolving it.
    password_at: (u64, u64),
    /// The field path of the password, e.g. `seeds[2].imap.password`.
    password_field: String,
}

/// Why a config was refused. Every variant names the file; all but `Read` name a position.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read config: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid YAML, or not the expected shape (unknown field, wrong type).
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// The parser's explanation, with a snippet of the file.
        message: String,
    },
    /// Well-formed but wrong: a bad address, a duplicate name, a missing password, ...
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// Where in the document, e.g. `seeds[2].imap.password`.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// `--seed` named a seed the file does not have.
    #[error("{path}: no seed named {name:?} (seeds: {known})")]
    UnknownSeed {
        /// The config file.
        path: PathBuf,
        /// The name given.
        name: String,
        /// The names the file has, comma-separated.
        known: String,
    },
}

// ---- the document as written -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    sender: Spanned<RawSender>,
    #[serde(default)]
    message: RawMessage,
    #[serde(default)]
    timing: RawTiming,
    seeds: Spanned<Vec<RawSeed>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    from: Spanned<String>,
    ehlo: Option<Spanned<String>>,
    transport: Option<Spanned<Transport>>,
    source_ip: Option<Spanned<String>>,
    resolver: Option<Spanned<String>>,
    smtp_port: Option<u16>,
    #[serde(default)]
    require_tls: bool,
    relay: Option<Spanned<RawRelay>>,
    bounces: Option<Spanned<RawBounces>>,
    maillog: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    host: Spanned<String>,
    port: Option<u16>,
    tls: Option<RelayTls>,
    username: Option<String>,
    password: Option<Spanned<SecretSource>>,
    #[serde(default)]
    auth: Vec<AuthMechanism>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    allow_plaintext: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBounces {
    imap: Spanned<RawImap>,
    #[serde(default)]
    allow_plaintext: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    subject: Option<Spanned<String>>,
    body: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    poll_interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    smtp_timeout: Option<Spanned<String>>,
    imap_timeout: Option<Spanned<String>>,
    imap_connections: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    name: Spanned<String>,
    provider: Option<Provider>,
    address: Spanned<String>,
    mx: Option<Spanned<String>>,
    #[serde(default)]
    allow_plaintext: bool,
    imap: Spanned<RawImap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<ImapTls>,
    username: Option<String>,
    password: Option<Spanned<SecretSource>>,
    ca_file: Option<PathBuf>,
    spam_folder: Option<String>,
}

/// Default for `timing.imap_connections`: well under Gmail's 15 per account.
pub const DEFAULT_IMAP_CONNECTIONS: usize = 8;

/// Default subject: the token is what polling searches for.
pub const DEFAULT_SUBJECT: &str = "Deliverability check {token}";
const DEFAULT_BODY: &str = "This is a deliverability test message sent by seedprobe.\r\n\
It measures where mail from this server lands. No action is needed.\r\n";

struct Checker<'a> {
    path: &'a Path,
}

impl Checker<'_> {
    fn invalid<T>(
        &self,
        at: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.invalid_at(
            (at.referenced.line(), at.referenced.column()),
            field,
            message,
        )
    }

    fn invalid_at(
        &self,
        (line, column): (u64, u64),
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        raw: &Option<Spanned<String>>,
        field: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        match humantime::parse_duration(raw.value.trim()) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(self.invalid(raw, field, "must be longer than zero")),
            Err(e) => Err(self.invalid(
                raw,
                field,
                format!(
                    "{:?} is not a duration ({e}); write e.g. 5s, 2m or 15m",
                    raw.value
                ),
            )),
        }
    }
}

impl Config {
    /// Reads and checks a config file. Nothing is resolved or contacted.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks a config given as text; `path` is used in errors and for relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = e.to_string();
            // The parser prefixes its own "error: line L column C: "; we print the position once.
            let message = message
                .strip_prefix("error: ")
                .unwrap_or(&message)
                .to_owned();
            let message = match message.split_once(": ") {
                Some((pos, rest)) if pos.starts_with("line ") => rest.to_owned(),
                _ => message,
            };
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: message.replace("<input>", &path.display().to_string()),
            }
        })?;
        let check = Checker { path };

        let sender = check_sender(&check, &raw.sender)?;

        let subject = match &raw.message.subject {
            Some(s) if !s.value.contains("{token}") => {
                return Err(check.invalid(
                    s,
                    "message.subject",
                    "must contain {token}: polling finds each message by it",
                ));
            }
            Some(s) => s.value.clone(),
            None => DEFAULT_SUBJECT.to_owned(),
        };
        let message = MessageTemplate {
            subject,
            body: raw.message.body.unwrap_or_else(|| DEFAULT_BODY.to_owned()),
        };

        let t = &raw.timing;
        let timing = Timing {
            poll_interval: check.duration(
                &t.poll_interval,
                "timing.poll_interval",
                Duration::from_secs(5),
            )?,
            timeout: check.duration(&t.timeout, "timing.timeout", Duration::from_secs(15 * 60))?,
            smtp_timeout: check.duration(
                &t.smtp_timeout,
                "timing.smtp_timeout",
                Duration::from_secs(120),
            )?,
            imap_timeout: check.duration(
                &t.imap_timeout,
                "timing.imap_timeout",
                Duration::from_secs(30),
            )?,
            imap_connections: match &t.imap_connections {
                Some(n) if n.value == 0 => {
                    return Err(check.invalid(n, "timing.imap_connections", "must be at least 1"));
                }
                Some(n) => n.value,
                None => DEFAULT_IMAP_CONNECTIONS,
            },
        };

        if raw.seeds.value.is_empty() {
            return Err(check.invalid(&raw.seeds, "seeds", "no seeds: add at least one"));
        }
        let mut seeds = Vec::with_capacity(raw.seeds.value.len());
        let mut names: HashMap<String, u64> = HashMap::new();
        for (i, raw_seed) in raw.seeds.value.iter().enumerate() {
            let seed = check_seed(&check, i, raw_seed)?;
            if let Some(first) = names.insert(seed.name.clone(), raw_seed.name.referenced.line()) {
                return Err(check.invalid(
                    &raw_seed.name,
                    format!("seeds[{i}].name"),
                    format!(
                        "duplicate seed name {:?} (first used on line {first}); names must be unique",
                        seed.name
                    ),
                ));
            }
            seeds.push(seed);
        }

        Ok(Config {
            path: path.to_owned(),
            sender,
            message,
            timing,
            seeds,
        })
    }

    /// The directory relative paths in the config are resolved against.
    pub fn base_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The seeds named, in config order; all of them when `names` is empty.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Seed>, ConfigError> {
        if names.is_empty() {
            return Ok(self.seeds.iter().collect());
        }
        for name in names {
            if !self.seeds.iter().any(|s| &s.name == name) {
                return Err(ConfigError::UnknownSeed {
                    path: self.path.clone(),
                    name: name.clone(),
                    known: self
                        .seeds
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(self
            .seeds
            .iter()
            .filter(|s| names.contains(&s.name))
            .collect())
    }

    /// The error for a secret that could not be read: the file, the line and column of its
    /// field, the field, and why (never the secret).
    pub fn secret_error(&self, at: &SecretField, message: impl Into<String>) -> ConfigError {
        Checker { path: &self.path }.invalid_at(at.at, &at.field, message)
    }
}

/// Where a secret's source is written in the config, for errors found when reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretField {
    /// Line and column (1-based).
    at: (u64, u64),
    /// The field path, e.g. `seeds[2].imap.password`.
    field: String,
}

impl Imap {
    /// Where its password source is written.
    pub fn password_field(&self) -> SecretField {
        SecretField {
            at: self.password_at,
            field: self.password_field.clone(),
        }
    }
}

impl Relay {
    /// Where its password source is written.
    pub fn password_field(&self) -> SecretField {
        SecretField {
            at: self.password_at,
            field: "sender.relay.password".to_owned(),
        }
    }
}

fn check_sender(check: &Checker, raw: &Spanned<RawSender>) -> Result<Sender, ConfigError> {
    let s = &raw.value;
    let from: lettre::message::Mailbox = s.from.value.parse().map_err(|e| {
        check.invalid(
            &s.from,
            "sender.from",
            format!(
                "{:?} is not a mailbox ({e}); write \"Name <user@example.org>\" or user@example.org",
                s.from.value
            ),
        )
    })?;
    let transport = s
        .transport
        .as_ref()
        .map(|t| t.value)
        .unwrap_or(Transport::Direct);
    let relay = match &s.relay {
        Some(r) => Some(check_relay(check, r)?),
        None if transport == Transport::Relay => {
            return Err(check.invalid(
                raw,
                "sender.relay",
                "transport: relay needs a relay: block (host, port, tls, username, password)",
            ));
        }
        None => None,
    };
    let source_ip = match &s.source_ip {
        Some(ip) => Some(ip.value.trim().parse::<IpAddr>().map_err(|_| {
            check.invalid(
                ip,
                "sender.source_ip",
                format!(
                    "{:?} is not an IP address; write e.g. 192.0.2.10 or 2001:db8::10",
                    ip.value
                ),
            )
        })?),
        None => None,
    };
    let resolver = match &s.resolver {
        Some(r) => Some(
            parse_host_port(&r.value, 53)
                .and_then(|hp| Some(SocketAddr::new(hp.host.parse().ok()?, hp.port)))
                .ok_or_else(|| {
                    check.invalid(
                        r,
                        "sender.resolver",
                        format!("{:?} is not IP[:port]; write e.g. 127.0.0.1:5353", r.value),
                    )
                })?,
        ),
        None => None,
    };
    let bounces = match &s.bounces {
        Some(b) => Some(check_imap(
            check,
            "sender.bounces.imap",
            &b.value.imap,
            None,
            &from.email,
            b.value.allow_plaintext,
        )?),
        None => None,
    };
    let ehlo = match &s.ehlo {
        Some(e) => {
            if !is_hostname(&e.value) {
                return Err(check.invalid(
                    e,
                    "sender.ehlo",
                    format!(
                        "{:?} is not a host name; give this host's fully qualified name",
                        e.value
                    ),
                ));
            }
            e.value.clone()
        }
        None => default_ehlo(&from),
    };
    Ok(Sender {
        from,
        ehlo,
        transport,
        source_ip,
        resolver,
        smtp_port: s.smtp_port.filter(|p| *p != 0).unwrap_or(25),
        require_tls: s.require_tls,
        relay,
        bounces,
        maillog: s.maillog.clone(),
    })
}

fn check_relay(check: &Checker, raw: &Spanned<RawRelay>) -> Result<Relay, ConfigError> {
    let r = &raw.value;
    let host = r.host.value.trim().to_owned();
    if !(is_hostname(&host) || host.parse::<IpAddr>().is_ok()) {
        return Err(check.invalid(
            &r.host,
            "sender.relay.host",
            format!("{host:?} is not a host name or address"),
        ));
    }
    let tls = r.tls.unwrap_or(RelayTls::Starttls);
    let allow_plaintext = r.allow_plaintext || is_loopback(&host);
    match (&r.username, &r.password) {
        (Some(_), None) => {
            return Err(check.invalid(
                raw,
                "sender.relay.password",
                "username given but no password source; add password: { env: VAR }, { file: PATH } or { command: \"...\" }",
            ));
        }
        (None, Some(p)) => {
            return Err(check.invalid(
                p,
                "sender.relay.username",
                "a password but no username; add username:",
            ));
        }
        _ => {}
    }
    if tls == RelayTls::None && r.password.is_some() && !allow_plaintext {
        return Err(check.invalid(
            raw,
            "sender.relay.tls",
            format!(
                "tls: none would send the password in clear to {host}; use starttls or implicit, or set allow_plaintext: true"
            ),
        ));
    }
    Ok(Relay {
        port: r.port.unwrap_or(match tls {
            RelayTls::Implicit => 465,
            RelayTls::Starttls | RelayTls::None => 587,
        }),
        host,
        tls,
        username: r.username.clone(),
        password: r.password.as_ref().map(|p| p.value.clone()),
        auth: r.auth.clone(),
        ca_file: r.ca_file.clone(),
        allow_plaintext,
        password_at: r
            .password
            .as_ref()
            .map(|p| (p.referenced.line(), p.referenced.column()))
            .unwrap_or((0, 0)),
    })
}

fn check_seed(check: &Checker, i: usize, raw: &RawSeed) -> Result<Seed, ConfigError> {
    let f = |field: &str| format!("seeds[{i}].{field}");
    let name = raw.name.value.trim().to_owned();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))
    {
        return Err(check.invalid(
            &raw.name,
            f("name"),
            format!(
                "{:?} is not a usable name; use letters, digits and - _ . @ +",
                raw.name.value
            ),
        ));
    }
    let address: lettre::Address = raw.address.value.trim().parse().map_err(|e| {
        check.invalid(
            &raw.address,
            f("address"),
            format!(
                "{:?} is not an email address ({e}); write user@example.com",
                raw.address.value
            ),
        )
    })?;
    let mx = match &raw.mx {
        None => None,
        Some(m) => Some(parse_host_port(&m.value, 25).ok_or_else(|| {
            check.invalid(
                m,
                f("mx"),
                format!(
                    "{:?} is not host[:port]; write e.g. mx.example.org:25 or 127.0.0.1:2525",
                    m.value
                ),
            )
        })?),
    };

    let imap = check_imap(
        check,
        &f("imap"),
        &raw.imap,
        raw.provider.map(Provider::profile),
        &address,
        raw.allow_plaintext,
    )?;
    Ok(Seed {
        name,
        provider: raw.provider,
        imap,
        address,
        mx,
    })
}

/// Checks an `imap:` block (a seed's, or the bounces mailbox's). `field` is its path.
fn check_imap(
    check: &Checker,
    field: &str,
    raw: &Spanned<RawImap>,
    profile: Option<Profile>,
    address: &lettre::Address,
    allow_plaintext: bool,
) -> Result<Imap, ConfigError> {
    let f = |sub: &str| format!("{field}.{sub}");
    let imap_raw = &raw.value;
    let host = match (&imap_raw.host, profile) {
        (Some(h), _) => h.clone(),
        (None, Some(p)) => p.imap_host.to_owned(),
        (None, None) => {
            return Err(check.invalid(
                raw,
                f("host"),
                "missing: give imap.host, or a provider (gmail, outlook, yahoo, aol, gmx, webde, tonline, icloud)",
            ));
        }
    };
    let tls = imap_raw
        .tls
        .or(profile.map(|p| p.imap_tls))
        .unwrap_or(ImapTls::Implicit);
    let port = imap_raw.port.unwrap_or(match tls {
        ImapTls::Implicit => 993,
        ImapTls::Starttls | ImapTls::None => 143,
    });
    let Some(password) = &imap_raw.password else {
        return Err(check.invalid(
            raw,
            f("password"),
            "missing password source; add password: { env: VAR }, { file: PATH } or { command: \"...\" }",
        ));
    };
    if tls == ImapTls::None && !allow_plaintext && !is_loopback(&host) {
        return Err(check.invalid(
            raw,
            f("tls"),
            format!(
                "tls: none would send the password in clear to {host}; use implicit or starttls, or set allow_plaintext: true"
            ),
        ));
    }
    let spam_folder_names = profile
        .map(|p| p.spam_folders)
        .unwrap_or(KNOWN_SPAM_FOLDERS)
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok(Imap {
        host,
        port,
        tls,
        username: imap_raw
            .username
            .clone()
            .unwrap_or_else(|| address.to_string()),
        password: password.value.clone(),
        ca_file: imap_raw.ca_file.clone(),
        spam_folder: imap_raw.spam_folder.clone(),
        spam_folder_names,
        password_at: (password.referenced.line(), password.referenced.column()),
        password_field: f("password"),
    })
}

/// Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
pub fn parse_host_port(s: &str, default_port: u16) -> Option<HostPort> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, default_port),
            p => (host, p.strip_prefix(':')?.parse().ok()?),
        }
    } else if s.parse::<IpAddr>().is_ok() {
        (s, default_port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (s, default_port),
        }
    };
    if port == 0 || !(is_hostname(host) || host.parse::<IpAddr>().is_ok()) {
        return None;
    }
    Some(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// True for `localhost` and loopback addresses: where plaintext never leaves the machine.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The machine's host name when it is fully qualified, else the sender's domain.
fn default_ehlo(from: &lettre::message::Mailbox) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    if host.contains('.') && is_hostname(&host) {
        host
    } else {
        from.email.domain().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let hp = |s| parse_host_port(s, 25).map(|h| h.to_string());
        assert_eq!(hp("127.0.0.1:2525").as_deref(), Some("127.0.0.1:2525"));
        assert_eq!(hp("mx.example.org").as_deref(), Some("mx.example.org:25"));
        assert_eq!(hp("[::1]:2525").as_deref(), Some("[::1]:2525"));
        assert_eq!(hp("::1").as_deref(), Some("[::1]:25"));
        assert_eq!(hp("mx.example.org:0"), None);
        assert_eq!(hp("mx example:25"), None);
        assert_eq!(hp(""), None);
    }

    fn parse(seed: &str) -> Result<Config, ConfigError> {
        let text = format!("sender:\n  from: probe@example.org\nseeds:\n{seed}");
        Config::parse(Path::new("t.yaml"), &text)
    }

    #[test]
    fn plaintext_needs_loopback_or_consent() {
        let seed = |host: &str, allow: &str| {
            format!(
                "  - name: a\n    address: a@example.org\n{allow}    imap: {{ host: {host}, tls: none, password: {{ env: X }} }}\n"
            )
        };
        assert!(parse(&seed("127.0.0.2", "")).is_ok());
        assert!(parse(&seed("::1", "")).is_ok());
        let err = parse(&seed("imap.example.org", ""))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.yaml:6:11: seeds[0].imap.tls:"), "{err}");
        let ok = parse(&seed("imap.example.org", "    allow_plaintext: true\n")).unwrap();
        assert_eq!(ok.seeds[0].imap.port, 143);
    }

    #[test]
    fn profile_fills_imap_defaults() {
        let c = parse(
            "  - name: g\n    provider: gmail\n    address: s@gmail.com\n    mx: mx.example.org\n    imap: { password: { env: X } }\n",
        )
        .unwrap();
        let s = &c.seeds[0];
        assert_eq!((s.imap.host.as_str(), s.imap.port), ("imap.gmail.com", 993));
        assert_eq!(s.imap.tls, ImapTls::Implicit);
        assert_eq!(s.imap.username, "s@gmail.com");
        assert_eq!(
            s.imap.spam_folder_names,
            ["[Gmail]/Spam", "[Google Mail]/Spam"]
        );
        assert_eq!(s.mx.as_ref().unwrap().port, 25);
        assert_eq!(s.provider_name(), "gmail");
        let err = parse("  - name: g\n    provider: hotmale\n    address: s@x.org\n    imap: { password: { env: X } }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown variant `hotmale`") && err.contains("gmail"),
            "{err}"
        );
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "127.0.0.3", "::1", "[::1]", "localhost"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "imap.gmail.com", "localhost.example.org"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
