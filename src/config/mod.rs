//! The seeds file: what to send, to whom, and how to read each seed mailbox.
//!
//! [`Config::load`] parses and checks the whole file before anything else happens; every error
//! names the file, line, column and field. The config is plain data: it says where each secret
//! is ([`SecretSource`]) and where in the file that was said ([`SecretField`]); reading the
//! secrets is [`crate::secrets`]'s job, done when a run is planned. `seeds.example.yaml`
//! documents each field.

mod provider;

// The file as written (raw) and the checks that turn it into the model below (check).
mod check;
mod raw;

// The commented seeds file `probe init` writes.
pub mod template;

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use check::{Checker, check_config};
use raw::RawConfig;

pub use check::{DEFAULT_SUBJECT, parse_every};
pub use provider::{KNOWN_SPAM_FOLDERS, Profile, Provider};

use crate::secrets::SecretSource;

/// Default for `timing.imap_connections`: well under Gmail's 15 per account.
pub const DEFAULT_IMAP_CONNECTIONS: usize = 8;

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
    /// `probe check`'s DNS lists, when the file replaces the built-in set.
    pub check_lists: Option<Vec<CheckList>>,
    /// When `probe serve` runs (`schedule:`).
    pub schedule: Schedule,
    /// `probe serve`'s HTTP side (`serve:`).
    pub serve: Serve,
}

/// `schedule:`: how often `probe serve` runs every seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// From one run's start to the next's; `None` when the file says nothing (`--every`, or
    /// serve's default, decides).
    pub every: Option<Duration>,
    /// Each run starts up to this much later than its tick, drawn anew each time, so that
    /// several probe hosts on the same schedule do not all send at the same second.
    pub jitter: Duration,
}

/// `serve:`: the HTTP side of `probe serve`.
#[derive(Debug, Clone, Default)]
pub struct Serve {
    /// Where the bearer token of `POST /runs` comes from; without one that endpoint does not
    /// exist.
    pub token: Option<SecretSource>,
    /// Where `serve.token` is written, for errors found when reading it.
    token_at: (u64, u64),
}

impl Serve {
    /// Where its token source is written.
    pub fn token_field(&self) -> SecretField {
        SecretField {
            at: self.token_at,
            field: "serve.token".to_owned(),
        }
    }
}

/// One DNS list of `checks.lists`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckList {
    /// For people (default: the zone).
    pub name: String,
    /// The zone queries go under.
    pub zone: String,
    /// What is asked.
    pub kind: ListKind,
    /// Block or allow list (default block).
    pub role: ListRole,
    /// The code set answers are read by (src/check/lists.tsv); `-` (the default): any
    /// 127.0.0.0/8 answer is a listing.
    pub codes: String,
}

/// What a DNS list is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// The reversed sending IP.
    Ip,
    /// The sender's domain.
    Domain,
}

/// Whether being on a DNS list is bad or good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListRole {
    /// A block list.
    Block,
    /// An allow list.
    Allow,
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
    /// DKIM signing of every message, in direct mode (in relay mode the relay signs).
    pub dkim: Option<Dkim>,
}

/// `sender.dkim`: how probe signs its messages in direct mode, as the user's MTA signs theirs.
#[derive(Debug, Clone)]
pub struct Dkim {
    /// The signing domain (`d=`); DMARC wants it aligned with the `From:` domain.
    pub domain: String,
    /// The selector (`s=`): the public key is the TXT record `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// The algorithm; `None`: the key's own (an RSA key signs rsa-sha256, Ed25519 ed25519-sha256).
    pub algorithm: Option<DkimAlgorithm>,
    /// Where the private key (PEM) comes from: a file, a variable or a command.
    pub private_key: SecretSource,
    /// Where the private key field is, for errors found when reading the key.
    private_key_at: (u64, u64),
}

impl Dkim {
    /// Where its private key source is written.
    pub fn private_key_field(&self) -> SecretField {
        SecretField {
            at: self.private_key_at,
            field: "sender.dkim.private_key".to_owned(),
        }
    }
}

/// A DKIM signing algorithm (RFC 6376, RFC 8463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DkimAlgorithm {
    /// RSA with SHA-256: what every verifier knows.
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    /// Ed25519 with SHA-256: short keys; not every verifier knows it yet, so it is usually
    /// added next to an RSA signature.
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The name in `a=` and in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
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

    /// The transport of a stored name, the inverse of [`Transport::as_str`].
    pub fn from_label(label: &str) -> Option<Transport> {
        match label {
            "direct" => Some(Transport::Direct),
            "relay" => Some(Transport::Relay),
            _ => None,
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

/// Why a config was refused. Every variant names the file; all but `Read` and `TooLarge`
/// name a position.
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
    /// The file is larger than [`MAX_CONFIG_BYTES`]: not a seeds file.
    #[error("{path}: the config is larger than 1 MiB, the most probe reads; is it the seeds file?")]
    TooLarge {
        /// The config file.
        path: PathBuf,
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

/// The largest config file [`Config::load`] reads: a seeds file is a few KiB, and without a
/// limit `--config /dev/zero` (or a log file given by mistake) is read until memory runs out.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The error for a file that is not UTF-8, at the first invalid byte: its line, and its
/// column in characters as the parser counts them.
fn not_utf8(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> ConfigError {
    let valid = &bytes[..e.valid_up_to()];
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    // The prefix is valid UTF-8 by construction.
    let column = std::str::from_utf8(&valid[line_start..]).map_or(0, |s| s.chars().count()) + 1;
    let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
    ConfigError::Syntax {
        path: path.to_owned(),
        line: line as u64,
        column: column as u64,
        message: format!(
            "not UTF-8 text (byte 0x{byte:02X} at offset {}); save the file as UTF-8",
            e.valid_up_to()
        ),
    }
}

impl Config {
    /// Reads and checks a config file. Nothing is resolved or contacted. At most
    /// [`MAX_CONFIG_BYTES`] are read, and the file must be UTF-8.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text =
            String::from_utf8(bytes).map_err(|e| not_utf8(path, e.as_bytes(), e.utf8_error()))?;
        Self::parse(path, &text)
    }

    /// Checks a config given as text; `path` is used in errors and for relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw = RawConfig::from_yaml(path, text)?;
        check_config(path, raw)
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

/// Why a `host[:port]` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// Nothing was given.
    #[error("it is empty")]
    Empty,
    /// The port is not a number from 1 to 65535.
    #[error("the port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// The host is neither a host name nor an IP address.
    #[error("the host {0:?} is not a host name or IP address")]
    Host(String),
    /// `[` without its `]`, or text after the `]` that is not `:port`.
    #[error("an IPv6 address goes in brackets, alone or with :port: [::1] or [::1]:2525")]
    Brackets,
    /// A bare IPv6 address whose last group could be a port (`::1:3525`).
    #[error(
        "an IPv6 address with a port needs brackets: write [{host}]:{port} for port {port}, or [{address}] for the address alone"
    )]
    Ambiguous {
        /// The address, were the last group the port.
        host: String,
        /// The last group, read as a port.
        port: String,
        /// The whole text, read as an address.
        address: String,
    },
}

/// Parses `host`, `host:port`, `[v6]` or `[v6]:port`, or a bare IPv6 address; `default_port`
/// when none is given. A bare IPv6 address that could end in a port (`::1:3525`) is refused
/// instead of guessed: brackets say which was meant. Used for the config's `mx` and
/// `resolver` and for `probe smtp --server`, so both read the same text the same way.
pub fn host_port(s: &str, default_port: u16) -> Result<HostPort, HostPortError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(HostPortError::Empty);
    }
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n != 0 => Ok(n),
        _ => Err(HostPortError::Port(p.to_owned())),
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // Any host may be bracketed (Postfix's `[mail.example.org]:587`); IPv6 with a port must.
        let (host, after) = rest.split_once(']').ok_or(HostPortError::Brackets)?;
        match after {
            "" => (host, default_port),
            p => (
                host,
                port(p.strip_prefix(':').ok_or(HostPortError::Brackets)?)?,
            ),
        }
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
        // `::1:3525` is both the address ::1:3525 and ::1 on port 3525.
        if let Some((h, p)) = s.rsplit_once(':')
            && !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && h.parse::<std::net::Ipv6Addr>().is_ok()
        {
            return Err(HostPortError::Ambiguous {
                host: h.to_owned(),
                port: p.to_owned(),
                address: s.to_owned(),
            });
        }
        (s, default_port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, port(p)?),
            None => (s, default_port),
        }
    };
    if port == 0 {
        return Err(HostPortError::Port("0".to_owned()));
    }
    if !(is_hostname(host) || host.parse::<IpAddr>().is_ok()) {
        return Err(HostPortError::Host(host.to_owned()));
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// [`host_port`], for callers with their own error message.
pub fn parse_host_port(s: &str, default_port: u16) -> Option<HostPort> {
    host_port(s, default_port).ok()
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
        assert_eq!(hp("2001:db8::1").as_deref(), Some("[2001:db8::1]:25"));
        assert_eq!(hp("[::1:3525]").as_deref(), Some("[::1:3525]:25"));
        assert_eq!(hp("mx.example.org:0"), None);
        assert_eq!(hp("mx example:25"), None);
        assert_eq!(hp(""), None);
    }

    #[test]
    fn host_port_says_why() {
        let err = |s| host_port(s, 25).unwrap_err().to_string();
        // Was ::1:3525 on port 25, silently.
        assert_eq!(
            err("::1:3525"),
            "an IPv6 address with a port needs brackets: write [::1]:3525 for port 3525, or [::1:3525] for the address alone"
        );
        assert!(err("fe80::1:25").contains("[fe80::1]:25"));
        assert_eq!(
            err("mx.example.org:0"),
            "the port \"0\" is not a number from 1 to 65535"
        );
        assert!(err("[::1]:0").contains("the port \"0\""));
        assert!(err("[::1]:70000").contains("the port \"70000\""));
        assert!(err("mx.example.org:smtp").contains("the port \"smtp\""));
        assert!(err("[::1").contains("brackets"));
        assert!(err("[::1]2525").contains("brackets"));
        assert!(err("[mx example]:25").contains("the host \"mx example\" is not a host name"));
        let ok = host_port("[mx.example.org]:587", 25).unwrap();
        assert_eq!(ok.to_string(), "mx.example.org:587");
        assert_eq!(err(" "), "it is empty");
        // Port 0 as the default is refused too (probe smtp --port 0).
        assert!(host_port("mx.example.org", 0).is_err());
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
