//! The seeds file as written: the serde shapes YAML is read into, before any check.
//!
//! Fields that a check may refuse are [`Spanned`], so that the error can name the line and
//! column; [`super::check`] turns these shapes into the [`super::Config`] model.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{AuthMechanism, ConfigError, ImapTls, Provider, RelayTls, SecretSource, Transport};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) sender: Spanned<RawSender>,
    #[serde(default)]
    pub(super) message: RawMessage,
    #[serde(default)]
    pub(super) timing: RawTiming,
    pub(super) seeds: Spanned<Vec<RawSeed>>,
}

/// `sender:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSender {
    pub(super) from: Spanned<String>,
    pub(super) ehlo: Option<Spanned<String>>,
    pub(super) transport: Option<Spanned<Transport>>,
    pub(super) source_ip: Option<Spanned<String>>,
    pub(super) resolver: Option<Spanned<String>>,
    pub(super) smtp_port: Option<u16>,
    #[serde(default)]
    pub(super) require_tls: bool,
    pub(super) relay: Option<Spanned<RawRelay>>,
    pub(super) bounces: Option<Spanned<RawBounces>>,
    pub(super) maillog: Option<PathBuf>,
    pub(super) dkim: Option<Spanned<RawDkim>>,
}

/// `sender.dkim:`, direct mode's DKIM signature.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    pub(super) domain: Spanned<String>,
    pub(super) selector: Spanned<String>,
    pub(super) private_key: Spanned<SecretSource>,
    pub(super) algorithm: Option<super::DkimAlgorithm>,
}

/// `sender.relay:`, for `transport: relay`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    pub(super) host: Spanned<String>,
    pub(super) port: Option<u16>,
    pub(super) tls: Option<RelayTls>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Spanned<SecretSource>>,
    #[serde(default)]
    pub(super) auth: Vec<AuthMechanism>,
    pub(super) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) allow_plaintext: bool,
}

/// `sender.bounces:`, the mailbox delivery status notifications come back to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBounces {
    pub(super) imap: Spanned<RawImap>,
    #[serde(default)]
    pub(super) allow_plaintext: bool,
}

/// `message:`, optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessage {
    pub(super) subject: Option<Spanned<String>>,
    pub(super) body: Option<String>,
}

/// `timing:`, optional; durations as written (`5s`, `15m`), parsed by the check.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTiming {
    pub(super) poll_interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) smtp_timeout: Option<Spanned<String>>,
    pub(super) imap_timeout: Option<Spanned<String>>,
    pub(super) imap_connections: Option<Spanned<usize>>,
}

/// One entry of `seeds:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeed {
    pub(super) name: Spanned<String>,
    pub(super) provider: Option<Provider>,
    pub(super) address: Spanned<String>,
    pub(super) mx: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_plaintext: bool,
    pub(super) imap: Spanned<RawImap>,
}

/// An `imap:` block: a seed's, or the bounces mailbox's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) tls: Option<ImapTls>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Spanned<SecretSource>>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) spam_folder: Option<String>,
}

impl RawConfig {
    /// Reads the YAML into these shapes. An error is a [`ConfigError::Syntax`]: not YAML, an
    /// unknown field or a wrong type, with the parser's position and snippet.
    pub(super) fn from_yaml(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
        serde_saphyr::from_str(text).map_err(|e| {
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
        })
    }
}
