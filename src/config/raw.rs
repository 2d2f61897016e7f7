//! The seeds file as written: the serde shapes YAML is read into, before any check.
//!
//! Fields that a check may refuse are [`Spanned`], so that the error can name the line and
//! column; [`super::check`] turns these shapes into the [`super::Config`] model.

use std::path::{Path, PathBuf};

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{
    AuthMechanism, ConfigError, ImapTls, ListKind, ListRole, Provider, RelayTls, Transport,
};
use crate::secrets::{BearerMechanism, OAuth2Source, SecretSource};

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
    #[serde(default)]
    pub(super) checks: RawChecks,
    #[serde(default)]
    pub(super) schedule: RawSchedule,
    #[serde(default)]
    pub(super) serve: RawServe,
}

/// `schedule:`, optional: how often `probe serve` runs; durations as written, parsed by the
/// check.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) every: Option<Spanned<String>>,
    pub(super) jitter: Option<Spanned<String>>,
}

/// `serve:`, optional: `probe serve`'s HTTP side.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServe {
    pub(super) token: Option<Spanned<RawSecret>>,
}

/// `checks:`, optional: what `probe check` asks.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChecks {
    pub(super) lists: Option<Spanned<Vec<RawCheckList>>>,
}

/// One of `checks.lists`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheckList {
    pub(super) zone: Spanned<String>,
    pub(super) kind: ListKind,
    pub(super) name: Option<String>,
    pub(super) role: Option<ListRole>,
    pub(super) codes: Option<String>,
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
    pub(super) smtp_port: Option<Spanned<RawNumber>>,
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
    pub(super) port: Option<Spanned<RawNumber>>,
    pub(super) tls: Option<RelayTls>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Spanned<RawSecret>>,
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
    pub(super) imap_connections: Option<Spanned<RawNumber>>,
}

/// A number as written. It is read as text, not as an integer type, so that any value (0,
/// -1, 2^64, 1.5) reaches the check, which refuses it naming the field and the allowed
/// range; the parser would only say "invalid u64".
pub(super) type RawNumber = String;

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
    pub(super) port: Option<Spanned<RawNumber>>,
    pub(super) tls: Option<ImapTls>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Spanned<RawSecret>>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) spam_folder: Option<String>,
}

/// Why a password source was refused. None of these quote what was written: it may be the
/// password itself (`password: seedpass`), so the error shows no snippet of that line either.
pub(super) const SECRET_WRITTEN: &str = "a password is never written in the config: write where it comes from, \
     password: { env: NAME }, { file: PATH }, { command: \"...\" } or { oauth2: { ... } }";
const SECRET_UNKNOWN: &str =
    "unknown password source: write exactly one of env, file, command or oauth2";
const SECRET_TWO: &str = "two password sources: write exactly one of env, file, command or oauth2";
const SECRET_MESSAGES: [&str; 3] = [SECRET_WRITTEN, SECRET_UNKNOWN, SECRET_TWO];

/// A password source as read: a [`SecretSource`], except that a plain value (the password
/// itself, by mistake) is refused with [`SECRET_WRITTEN`] instead of serde's "unknown variant
/// `seedpass`", which echoed it. Also for the secrets inside `oauth2:`.
pub(super) struct RawSecret(pub(super) SecretSource);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`, not `enum`: the enum path reads a scalar as a variant name and quotes it.
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn written<E: de::Error>(self) -> Result<RawSecret, E> {
        Err(E::custom(SECRET_WRITTEN))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // Serde quotes the value next to this in its own errors; every visit below that could
        // see a password returns SECRET_WRITTEN instead.
        f.write_str("a password source: { env: NAME }, { file: PATH }, { command: \"...\" } or { oauth2: { ... } }")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_none<E: de::Error>(self) -> Result<RawSecret, E> {
        self.written()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSecret, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.written()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSecret, A::Error> {
        // The key is not quoted either: `{ seedpass }` is a key with no value.
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(SECRET_UNKNOWN));
        };
        let source = match key.as_str() {
            "env" => SecretSource::Env(map.next_value()?),
            "file" => SecretSource::File(map.next_value()?),
            "command" => SecretSource::Command(map.next_value()?),
            "oauth2" => SecretSource::Oauth2(map.next_value::<RawOAuth2>()?.into()),
            _ => return Err(de::Error::custom(SECRET_UNKNOWN)),
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(SECRET_TWO));
        }
        Ok(RawSecret(source))
    }
}

/// `oauth2:` as read: [`OAuth2Source`] with its two secrets read as [`RawSecret`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    token_url: String,
    client_id: String,
    client_secret: Option<RawSecret>,
    refresh_token: RawSecret,
    #[serde(default)]
    mechanism: BearerMechanism,
    ca_file: Option<PathBuf>,
}

impl From<RawOAuth2> for OAuth2Source {
    fn from(raw: RawOAuth2) -> Self {
        OAuth2Source {
            token_url: raw.token_url,
            client_id: raw.client_id,
            client_secret: raw.client_secret.map(|s| Box::new(s.0)),
            refresh_token: Box::new(raw.refresh_token.0),
            mechanism: raw.mechanism,
            ca_file: raw.ca_file,
        }
    }
}

impl RawConfig {
    /// Reads the YAML into these shapes. An error is a [`ConfigError::Syntax`]: not YAML, an
    /// unknown field or a wrong type, with the parser's position and a snippet of the file.
    pub(super) fn from_yaml(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
        serde_saphyr::from_str(text).map_err(|e| {
            // The parser's own snippet is dropped: its caret drifted from the position in the
            // header (tabs), and it would show a password written in clear.
            let e = e.without_snippet();
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = match e {
                // The parser's text tells the programmer to "set DuplicateKeyPolicy in
                // Options", which the user cannot.
                serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                    format!("duplicate key {key}: it is already set above in the same mapping")
                }
                serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
                    "duplicate key: it is already set above in the same mapping".to_owned()
                }
                other => plain_message(&other.to_string(), line, column),
            };
            let secret = SECRET_MESSAGES.iter().any(|m| message.contains(m));
            let snippet = if secret {
                String::new()
            } else {
                snippet(text, line, column)
            };
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: format!(
                    "{}{snippet}",
                    message.replace("<input>", &path.display().to_string())
                ),
            }
        })
    }
}

/// The parser's message without its "error: line L column C: " prefix or " at line L, column
/// C" suffix: the error prints the position once, as `file:line:column`.
fn plain_message(message: &str, line: u64, column: u64) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.split_once(": ") {
        Some((pos, rest)) if pos.starts_with("line ") => rest,
        _ => message,
    };
    message
        .strip_suffix(&format!(" at line {line}, column {column}"))
        .unwrap_or(message)
        .to_owned()
}

/// Widest part of a line a snippet shows; a minified or pasted line is cut around the column.
const SNIPPET_WIDTH: usize = 100;

/// Up to three lines ending with `line`, and a caret under `column`: the same line and column
/// as the error's header, counted in characters as the parser counts them. Tabs and control
/// characters show as one space each so that the caret stays under the column.
fn snippet(text: &str, line: u64, column: u64) -> String {
    let (Ok(line), Ok(column)) = (usize::try_from(line), usize::try_from(column)) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    if line == 0 || line > lines.len() || column == 0 {
        return String::new();
    }
    // The same horizontal window for every line, so that they stay aligned.
    let start = (column - 1).saturating_sub(SNIPPET_WIDTH * 2 / 3);
    let cut = |l: &str| {
        let shown: String = l
            .chars()
            .skip(start)
            .take(SNIPPET_WIDTH)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let more = l.chars().count() > start + SNIPPET_WIDTH;
        format!(
            "{}{shown}{}",
            if start > 0 { "..." } else { "" },
            if more { "..." } else { "" }
        )
    };
    let width = line.to_string().len();
    let mut out = format!("\n{:width$} |", "");
    for (i, l) in lines
        .iter()
        .enumerate()
        .take(line)
        .skip(line.saturating_sub(3))
    {
        let shown = format!("{:>width$} | {}", i + 1, cut(l));
        out.push_str(&format!("\n{}", shown.trim_end()));
    }
    let pad = column - 1 - start + if start > 0 { 3 } else { 0 };
    out.push_str(&format!("\n{:width$} | {:pad$}^", "", ""));
    out
}
