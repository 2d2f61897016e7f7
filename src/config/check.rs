//! The checks that turn the [`super::raw`] shapes into the [`Config`] model: defaults filled
//! in, addresses and hosts parsed, every refusal a [`ConfigError::Invalid`] naming the file,
//! line, column and field, so the user can fix the file without guessing.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{RawConfig, RawImap, RawNumber, RawRelay, RawSeed, RawSender};
use super::{
    Config, ConfigError, HostPortError, Imap, ImapTls, KNOWN_SPAM_FOLDERS, MessageTemplate,
    Profile, Provider, Relay, RelayTls, Schedule, Seed, Sender, Serve, Timing, Transport,
    host_port, is_hostname, is_loopback,
};

/// Default subject: the token is what polling searches for.
pub const DEFAULT_SUBJECT: &str = "Deliverability check {token}";
const DEFAULT_BODY: &str = "This is a deliverability test message sent by seedprobe.\r\n\
It measures where mail from this server lands. No action is needed.\r\n";

/// Every port: 0 is no port (it used to become 25 for `smtp_port`, and was accepted for IMAP,
/// where mail went out and every connect was refused).
pub(super) const PORTS: RangeInclusive<u16> = 1..=65535;

/// `timing.imap_connections`: at least one; at most 100, far above what helps (providers allow
/// about 15 per account, and probe uses one per account) and far below what exhausts file
/// descriptors or the async semaphore (which panics above `usize::MAX >> 3`).
pub(super) const IMAP_CONNECTIONS: RangeInclusive<u16> = 1..=100;

/// The durations a field accepts, and why not less.
pub(super) struct DurationRange {
    /// The shortest.
    pub(super) min: Duration,
    /// The longest.
    pub(super) max: Duration,
    /// The range as users write it, for errors: `1s to 1h`.
    pub(super) text: &'static str,
    /// Added to the error when the value is too short: what goes wrong below `min`.
    pub(super) too_short: &'static str,
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// `timing.poll_interval`: 1 s to 1 h. The floor is the point: a shorter interval turns
/// polling into a busy loop (1ns sent 777 KB of IMAP commands in 4 s), and providers throttle
/// or block accounts that poll faster than about once a second, the seed accounts being the
/// user's own. IDLE, where the server has it, finds mail sooner anyway.
pub(super) const POLL_INTERVAL: DurationRange = DurationRange {
    min: SECOND,
    max: HOUR,
    text: "1s to 1h",
    too_short: "; providers throttle or block accounts polled more often than once a second",
};

/// `timing.timeout`: 1 s to 7 days. Seven days covers a relay's retries (Postfix gives up after
/// 5 days) and `probe poll` can look again later; beyond that is a typo, and far beyond
/// (2^63 ms) the deadline wrapped around to 0 s.
pub(super) const TIMEOUT: DurationRange = DurationRange {
    min: SECOND,
    max: Duration::from_secs(7 * 24 * 3600),
    text: "1s to 7d",
    too_short: "",
};

/// `timing.smtp_timeout` and `timing.imap_timeout`: 1 s to 1 h, per reply or step. RFC 5321
/// lets an SMTP server take 10 minutes after the data; an hour without a reply is a dead
/// connection, and under a second fails on any real network.
pub(super) const STEP_TIMEOUT: DurationRange = DurationRange {
    min: SECOND,
    max: HOUR,
    text: "1s to 1h",
    too_short: "",
};

/// `schedule.every` and `probe serve --every`: 1 s to 7 days. Runs never overlap (a long run
/// delays the next), so a short interval is safe for probe; it is the seeds' providers that
/// mind mail every few seconds, which is the user's call (the lab tests use 2 s). Beyond a
/// week is a typo.
pub(super) const EVERY: DurationRange = DurationRange {
    min: SECOND,
    max: Duration::from_secs(7 * 24 * 3600),
    text: "1s to 7d",
    too_short: "",
};

/// `probe serve --every`: a duration within `schedule.every`'s range, or why not, for the
/// command line's error.
pub fn parse_every(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if (EVERY.min..=EVERY.max).contains(&d) => Ok(d),
        Ok(_) => Err(format!("write a duration from {}", EVERY.text)),
        Err(e) => Err(format!("not a duration ({e}); write e.g. 1h or 15m")),
    }
}

/// `schedule.jitter`: 0 s (none) to 1 day; it may not exceed `every` either (checked apart),
/// or a delayed run would start after the next tick.
pub(super) const JITTER: DurationRange = DurationRange {
    min: Duration::ZERO,
    max: Duration::from_secs(24 * 3600),
    text: "0s to 1d",
    too_short: "",
};

/// Makes the errors: every refusal goes through it, so none comes without the file and a
/// position.
pub(super) struct Checker<'a> {
    /// The config file, for the errors.
    pub(super) path: &'a Path,
}

impl Checker<'_> {
    /// A refusal at the position of a field as read.
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

    /// A refusal at a position kept from reading, for checks made later (resolving secrets),
    /// once only the model is left.
    pub(super) fn invalid_at(
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

    /// A whole number as written, `None` when absent; outside `range` (or not a whole number
    /// at all) it is refused with the range, so no value can overflow what uses it.
    fn number<T>(
        &self,
        raw: &Option<Spanned<RawNumber>>,
        field: &str,
        range: RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: Copy + fmt::Display + Into<i128> + TryFrom<i128>,
    {
        let Some(raw) = raw else { return Ok(None) };
        let (min, max) = (*range.start(), *range.end());
        let text = raw.value.trim();
        // i128 holds every integer YAML users write (2^64 included); what it cannot hold has
        // only digits and is out of range too.
        let parsed = text.parse::<i128>();
        if let Ok(n) = parsed
            && (min.into()..=max.into()).contains(&n)
            && let Ok(value) = T::try_from(n)
        {
            return Ok(Some(value));
        }
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        let whole =
            parsed.is_ok() || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        let shown = shorten(text);
        let message = if whole {
            format!("{shown} is out of range: write a whole number from {min} to {max}")
        } else {
            format!("{shown:?} is not a whole number from {min} to {max}")
        };
        Err(self.invalid(raw, field, message))
    }

    /// A duration as written (`5s`, `2m`), `default` when absent; outside `range` (zero, a
    /// nanosecond poll, millions of years) it is refused with the range.
    fn duration(
        &self,
        raw: &Option<Spanned<String>>,
        field: &str,
        range: &DurationRange,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        let text = raw.value.trim();
        let shown = shorten(text);
        let message = match humantime::parse_duration(text) {
            Ok(d) if (range.min..=range.max).contains(&d) => return Ok(d),
            Ok(d) if d < range.min => format!(
                "{shown} is too short: write a duration from {}{}",
                range.text, range.too_short
            ),
            Ok(_) | Err(humantime::DurationError::NumberOverflow) => {
                format!("{shown} is too long: write a duration from {}", range.text)
            }
            Err(e) => format!(
                "{shown:?} is not a duration ({e}); write e.g. 5s, 2m or 15m, from {}",
                range.text
            ),
        };
        Err(self.invalid(raw, field, message))
    }
}

/// A value for an error message: a pasted megabyte stays out of it.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 24;
    if text.chars().count() <= SHOWN {
        text.to_owned()
    } else {
        let head: String = text.chars().take(SHOWN).collect();
        format!("{head}...")
    }
}

/// Checks the whole document and builds the [`Config`]; the first problem found is the error.
pub(super) fn check_config(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
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
            &POLL_INTERVAL,
            Duration::from_secs(5),
        )?,
        timeout: check.duration(
            &t.timeout,
            "timing.timeout",
            &TIMEOUT,
            Duration::from_secs(15 * 60),
        )?,
        smtp_timeout: check.duration(
            &t.smtp_timeout,
            "timing.smtp_timeout",
            &STEP_TIMEOUT,
            Duration::from_secs(120),
        )?,
        imap_timeout: check.duration(
            &t.imap_timeout,
            "timing.imap_timeout",
            &STEP_TIMEOUT,
            Duration::from_secs(30),
        )?,
        imap_connections: check
            .number(
                &t.imap_connections,
                "timing.imap_connections",
                IMAP_CONNECTIONS,
            )?
            .map(usize::from)
            .unwrap_or(super::DEFAULT_IMAP_CONNECTIONS),
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

    let check_lists = check_lists(&check, &raw.checks)?;
    let schedule = check_schedule(&check, &raw.schedule)?;
    let serve = check_serve(&check, &raw.serve)?;

    Ok(Config {
        path: path.to_owned(),
        sender,
        message,
        timing,
        seeds,
        check_lists,
        schedule,
        serve,
    })
}

/// `schedule:`: `every` and `jitter` within their ranges, and the jitter shorter than the
/// interval.
fn check_schedule(check: &Checker, raw: &super::raw::RawSchedule) -> Result<Schedule, ConfigError> {
    let every = match &raw.every {
        Some(_) => Some(check.duration(&raw.every, "schedule.every", &EVERY, Duration::ZERO)?),
        None => None,
    };
    let jitter = check.duration(&raw.jitter, "schedule.jitter", &JITTER, Duration::ZERO)?;
    if let (Some(every), Some(at)) = (every, &raw.jitter)
        && jitter >= every
    {
        return Err(check.invalid(
            at,
            "schedule.jitter",
            format!(
                "{} is not shorter than schedule.every ({}): a run would start after the next tick",
                shorten(at.value.trim()),
                humantime::format_duration(every)
            ),
        ));
    }
    Ok(Schedule { every, jitter })
}

/// `serve:`: the token's source. An OAuth 2.0 grant gives a mailbox login, not a shared secret
/// for callers to present, so it is refused here.
fn check_serve(check: &Checker, raw: &super::raw::RawServe) -> Result<Serve, ConfigError> {
    let Some(token) = &raw.token else {
        return Ok(Serve::default());
    };
    if matches!(token.value.0, crate::secrets::SecretSource::Oauth2(_)) {
        return Err(check.invalid(
            token,
            "serve.token",
            "an OAuth 2.0 grant is for mailbox logins: give the token as env, file or command",
        ));
    }
    Ok(Serve {
        token: Some(token.value.0.clone()),
        token_at: (token.referenced.line(), token.referenced.column()),
    })
}

/// `checks.lists`: zones that are DNS names; an empty list would silently check nothing.
fn check_lists(
    check: &Checker,
    raw: &super::raw::RawChecks,
) -> Result<Option<Vec<super::CheckList>>, ConfigError> {
    let Some(lists) = &raw.lists else {
        return Ok(None);
    };
    if lists.value.is_empty() {
        return Err(check.invalid(
            lists,
            "checks.lists",
            "no lists: remove checks.lists to use the built-in set",
        ));
    }
    let mut out = Vec::with_capacity(lists.value.len());
    for (i, l) in lists.value.iter().enumerate() {
        let zone = l
            .zone
            .value
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if zone.len() > 253 || !zone.contains('.') || !zone.split('.').all(label_ok) {
            return Err(check.invalid(
                &l.zone,
                format!("checks.lists[{i}].zone"),
                format!(
                    "{:?} is not a DNS zone such as zen.spamhaus.org",
                    shorten(&l.zone.value)
                ),
            ));
        }
        out.push(super::CheckList {
            name: l.name.clone().unwrap_or_else(|| zone.clone()),
            zone,
            kind: l.kind,
            role: l.role.unwrap_or(super::ListRole::Block),
            codes: l.codes.clone().unwrap_or_else(|| "-".to_owned()),
        });
    }
    Ok(Some(out))
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
            host_port(&r.value, 53)
                .map_err(|e| e.to_string())
                .and_then(|hp| match hp.host.parse() {
                    Ok(ip) => Ok(SocketAddr::new(ip, hp.port)),
                    Err(_) => Err(format!("{:?} is not an IP address", hp.host)),
                })
                .map_err(|e| {
                    check.invalid(
                        r,
                        "sender.resolver",
                        format!(
                            "{:?} is not IP[:port]: {e}; write e.g. 127.0.0.1:5353 or [::1]:5353",
                            r.value
                        ),
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
    let smtp_port = check
        .number(&s.smtp_port, "sender.smtp_port", PORTS)?
        .unwrap_or(25);
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
        smtp_port,
        require_tls: s.require_tls,
        relay,
        bounces,
        maillog: s.maillog.clone(),
        dkim: match &s.dkim {
            Some(d) => Some(check_dkim(check, d, transport)?),
            None => None,
        },
    })
}

/// `sender.dkim`: the signing domain and selector are DNS names, the key comes from a file, a
/// variable or a command, and only direct mode signs.
fn check_dkim(
    check: &Checker,
    raw: &Spanned<super::raw::RawDkim>,
    transport: Transport,
) -> Result<super::Dkim, ConfigError> {
    let d = &raw.value;
    if transport == Transport::Relay {
        // Refused rather than ignored: the relay signs what it relays, as it signs the user's
        // real mail, so a probe signature would be a second one the real mail does not carry;
        // and a warning scrolls by in a cron job while the user believes probe signs.
        return Err(check.invalid(
            raw,
            "sender.dkim",
            "transport: relay leaves DKIM signing to the relay, as for your real mail; \
             remove sender.dkim (probe signs only with transport: direct)",
        ));
    }
    let name = |field: &Spanned<String>, what: &str, example: &str| {
        let value = field
            .value
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if is_hostname(&value) {
            Ok(value)
        } else {
            Err(check.invalid(
                field,
                format!("sender.dkim.{what}"),
                format!("{:?} is not a DNS name; write e.g. {example}", field.value),
            ))
        }
    };
    let domain = name(&d.domain, "domain", "example.org")?;
    let selector = name(&d.selector, "selector", "s2026")?;
    if let super::SecretSource::Oauth2(_) = d.private_key.value {
        return Err(check.invalid(
            &d.private_key,
            "sender.dkim.private_key",
            "an OAuth 2.0 grant gives a token, not a key; use { file: PATH }, { env: VAR } or { command: \"...\" }",
        ));
    }
    Ok(super::Dkim {
        domain,
        selector,
        algorithm: d.algorithm,
        private_key: d.private_key.value.clone(),
        private_key_at: (
            d.private_key.referenced.line(),
            d.private_key.referenced.column(),
        ),
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
    let port = check
        .number(&r.port, "sender.relay.port", PORTS)?
        .unwrap_or(match tls {
            RelayTls::Implicit => 465,
            RelayTls::Starttls | RelayTls::None => 587,
        });
    Ok(Relay {
        port,
        host,
        tls,
        username: r.username.clone(),
        password: r.password.as_ref().map(|p| p.value.0.clone()),
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
        Some(m) => Some(host_port(&m.value, 25).map_err(|e| {
            // These two already show how to write it.
            let example = match e {
                HostPortError::Ambiguous { .. } | HostPortError::Brackets => "",
                _ => "; write e.g. mx.example.org, 127.0.0.1:2525 or [::1]:2525",
            };
            check.invalid(
                m,
                f("mx"),
                format!("{:?} is not host[:port]: {e}{example}", m.value),
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
    let port = check
        .number(&imap_raw.port, &f("port"), PORTS)?
        .unwrap_or(match tls {
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
        password: password.value.0.clone(),
        ca_file: imap_raw.ca_file.clone(),
        spam_folder: imap_raw.spam_folder.clone(),
        spam_folder_names,
        password_at: (password.referenced.line(), password.referenced.column()),
        password_field: f("password"),
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

    /// A file with `section:` and `line` under it, and one seed.
    fn section(section: &str, line: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "sender:\n  from: probe@example.org\n{section}:\n  {line}\nseeds:\n  - name: a\n    address: a@example.org\n    imap: {{ host: 127.0.0.1, tls: none, password: {{ env: X }} }}\n"
        );
        Config::parse(Path::new("t.yaml"), &text)
    }

    #[test]
    fn schedule_and_serve_have_ranges_and_positions() {
        let ok = |s: &str, l: &str| section(s, l).unwrap();
        assert_eq!(ok("schedule", "every: 1h").schedule.every, Some(HOUR));
        assert_eq!(
            ok("schedule", "{ every: 1h, jitter: 5m }").schedule.jitter,
            Duration::from_secs(300)
        );
        assert_eq!(ok("schedule", "jitter: 5m").schedule.every, None);
        let serve = ok("serve", "token: { env: PROBE_SERVE_TOKEN }").serve;
        assert!(
            matches!(serve.token, Some(crate::secrets::SecretSource::Env(v)) if v == "PROBE_SERVE_TOKEN")
        );
        assert_eq!(ok("timing", "timeout: 5s").serve.token, None);
        for (s, line, error) in [
            (
                "schedule",
                "every: 10ms",
                "t.yaml:4:10: schedule.every: 10ms is too short: write a duration from 1s to 7d",
            ),
            (
                "schedule",
                "every: 30d",
                "t.yaml:4:10: schedule.every: 30d is too long: write a duration from 1s to 7d",
            ),
            (
                "schedule",
                "every: often",
                "t.yaml:4:10: schedule.every: \"often\" is not a duration",
            ),
            (
                "schedule",
                "jitter: 2d",
                "t.yaml:4:11: schedule.jitter: 2d is too long: write a duration from 0s to 1d",
            ),
            (
                "schedule",
                "{ every: 5m, jitter: 5m }",
                "t.yaml:4:24: schedule.jitter: 5m is not shorter than schedule.every (5m)",
            ),
            ("schedule", "hourly: yes", "unknown field"),
            ("serve", "token: hunter2", "t.yaml:4:"),
            (
                "serve",
                "token: { oauth2: { token_url: https://x.example/t, client_id: c, refresh_token: { env: R } } }",
                "t.yaml:4:10: serve.token: an OAuth 2.0 grant is for mailbox logins",
            ),
        ] {
            let err = section(s, line).unwrap_err().to_string();
            assert!(err.contains(error), "{line}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    fn timing(line: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "sender:\n  from: probe@example.org\ntiming:\n  {line}\nseeds:\n  - name: a\n    address: a@example.org\n    imap: {{ host: 127.0.0.1, tls: none, password: {{ env: X }} }}\n"
        );
        Config::parse(Path::new("t.yaml"), &text)
    }

    #[test]
    fn durations_have_ranges() {
        let ok = |line: &str| {
            timing(line)
                .unwrap_or_else(|e| panic!("{line}: {e}"))
                .timing
        };
        assert_eq!(ok("poll_interval: 1s").poll_interval, SECOND);
        assert_eq!(ok("poll_interval: 1h").poll_interval, HOUR);
        assert_eq!(ok("timeout: 7d").timeout, TIMEOUT.max);
        assert_eq!(ok("smtp_timeout: 1h").smtp_timeout, HOUR);
        assert_eq!(ok("imap_timeout: 1s").imap_timeout, SECOND);
        let err = |line: &str| timing(line).unwrap_err().to_string();
        for (line, expect) in [
            // A busy loop: 777 KB of IMAP commands in 4 s.
            (
                "poll_interval: 1ns",
                "t.yaml:4:18: timing.poll_interval: 1ns is too short: write a duration from 1s to 1h; providers throttle",
            ),
            ("poll_interval: 999ms", "999ms is too short"),
            (
                "poll_interval: 61m",
                "61m is too long: write a duration from 1s to 1h",
            ),
            // Above 2^63 ms the deadline wrapped around to 0 s.
            (
                "timeout: 300000000y",
                "t.yaml:4:12: timing.timeout: 300000000y is too long: write a duration from 1s to 7d",
            ),
            // Above u64 seconds humantime itself overflows: still "too long".
            (
                "timeout: 100000000000000000000y",
                "100000000000000000000y is too long",
            ),
            (
                "timeout: 0s",
                "0s is too short: write a duration from 1s to 7d",
            ),
            (
                "smtp_timeout: 2h",
                "timing.smtp_timeout: 2h is too long: write a duration from 1s to 1h",
            ),
            (
                "imap_timeout: 10ms",
                "timing.imap_timeout: 10ms is too short",
            ),
            ("imap_timeout: soon", "\"soon\" is not a duration"),
        ] {
            let e = err(line);
            assert!(e.contains(expect), "{line}: {e}");
        }
    }

    #[test]
    fn ports_have_a_range() {
        let imap = |port: &str| {
            format!(
                "  - name: a\n    address: a@example.org\n    imap: {{ host: 127.0.0.1, port: {port}, tls: none, password: {{ env: X }} }}\n"
            )
        };
        assert_eq!(parse(&imap("1")).unwrap().seeds[0].imap.port, 1);
        assert_eq!(parse(&imap("\"65535\"")).unwrap().seeds[0].imap.port, 65535);
        for (port, expect) in [
            (
                "0",
                "t.yaml:6:36: seeds[0].imap.port: 0 is out of range: write a whole number from 1 to 65535",
            ),
            ("65536", "65536 is out of range"),
            ("-25", "-25 is out of range"),
            ("imap", "\"imap\" is not a whole number from 1 to 65535"),
        ] {
            let e = parse(&imap(port)).unwrap_err().to_string();
            assert!(e.contains(expect), "{port}: {e}");
        }
        let relay = "sender:\n  from: probe@example.org\n  transport: relay\n  relay: { host: 127.0.0.1, port: 0 }\nseeds:\n";
        let e = Config::parse(Path::new("t.yaml"), &format!("{relay}{}", imap("1")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.yaml:4:35: sender.relay.port: 0 is out of range"),
            "{e}"
        );
    }

    /// A seed whose password field is `password`, as written.
    fn with_password(password: &str) -> String {
        format!(
            "  - name: a\n    address: a@example.org\n    imap:\n      host: 127.0.0.1\n      tls: none\n      password: {password}\n"
        )
    }

    #[test]
    fn a_password_written_in_clear_is_not_echoed() {
        for (password, at) in [
            // Was "unknown variant `seedpass`", and the snippet showed the line.
            ("seedpass", "t.yaml:9:17: "),
            ("\"seed pass\"", "t.yaml:9:17: "),
            ("123456", "t.yaml:9:17: "),
            ("[seedpass]", "t.yaml:9:17: "),
            ("{ seedpass }", "t.yaml:9:17: "),
            ("{ env: X, seedpass: 1 }", "t.yaml:9:17: "),
            (
                "{ oauth2: { token_url: https://t.example, client_id: c, refresh_token: seedpass } }",
                "t.yaml:9:",
            ),
            (
                "{ oauth2: { token_url: https://t.example, client_id: c, client_secret: seedpass, refresh_token: { env: R } } }",
                "t.yaml:9:",
            ),
        ] {
            let e = parse(&with_password(password)).unwrap_err().to_string();
            assert!(e.starts_with(at), "{password}: {e}");
            assert!(!e.contains("seed"), "{password}: echoed: {e}");
            assert!(
                e.contains("{ env: NAME }")
                    || e.contains("exactly one of env, file, command or oauth2"),
                "{e}"
            );
        }
        // Sources still read as before.
        let c = parse(&with_password("{ oauth2: { token_url: https://t.example, client_id: c, client_secret: { file: s }, refresh_token: { env: R }, mechanism: oauthbearer } }")).unwrap();
        let super::super::SecretSource::Oauth2(o) = &c.seeds[0].imap.password else {
            panic!()
        };
        assert_eq!(
            *o.refresh_token,
            super::super::SecretSource::Env("R".into())
        );
        assert_eq!(o.mechanism, crate::secrets::BearerMechanism::Oauthbearer);
        let c = parse(&with_password("{ command: \"pass show a\" }")).unwrap();
        assert_eq!(
            c.seeds[0].imap.password,
            super::super::SecretSource::Command("pass show a".into())
        );
    }

    #[test]
    fn duplicate_keys_are_named_for_users() {
        let e = parse("  - name: a\n    name: b\n    address: a@example.org\n    imap: { password: { env: X } }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:5:5: duplicate key name: it is already set above"),
            "{e}"
        );
        assert!(
            !e.contains("DuplicateKeyPolicy") && !e.contains("Options"),
            "{e}"
        );
    }

    #[test]
    fn the_snippet_caret_is_at_the_header_column() {
        // A tab and wide characters before the error: the parser's caret drifted right.
        let e = parse("  - { name: \"\tñ\", adress: x }\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.yaml:4:19: unknown field `adress`"), "{e}");
        let lines: Vec<&str> = e.lines().collect();
        let (code, caret) = (lines[lines.len() - 2], lines[lines.len() - 1]);
        assert!(code.starts_with("4 | "), "{e}");
        let column = caret.find('^').unwrap() - "  | ".len() + 1;
        assert_eq!(column, 19, "{e}");
        assert_eq!(
            code["4 | ".len()..].chars().nth(column - 1),
            Some('a'),
            "{e}"
        );
        // A long line is cut around the column, the caret still under it.
        let long = format!("  - {{ name: \"{}\", adress: x }}\n", "x".repeat(500));
        let e = parse(&long).unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        let (code, caret) = (lines[lines.len() - 2], lines[lines.len() - 1]);
        let at = caret.find('^').unwrap();
        assert!(code.len() < 120 && code[at..].starts_with("adress"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_utf8_gets_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, b"sender:\n  from: \"\xc3\xbc\xff <a@b.c>\"\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "s.yaml:2:11: not UTF-8 text (byte 0xFF at offset 19); save the file as UTF-8"
            ),
            "{e}"
        );
    }

    #[test]
    fn reading_stops_at_one_mebibyte() {
        // Read without limit, /dev/zero took all memory.
        let e = Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/dev/zero: the config is larger than 1 MiB, the most probe reads; is it the seeds file?"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        let mut text = format!(
            "sender:\n  from: a@example.org\nseeds:\n{}",
            with_password("{ env: X }")
        );
        text.push_str(&"#".repeat(super::super::MAX_CONFIG_BYTES as usize - text.len()));
        std::fs::write(&path, &text).unwrap();
        Config::load(&path).unwrap();
        text.push('#');
        std::fs::write(&path, &text).unwrap();
        assert!(Config::load(&path).is_err());
    }

    #[test]
    fn defaults_are_within_their_ranges() {
        let t = timing("imap_connections: 8").unwrap().timing;
        assert!((POLL_INTERVAL.min..=POLL_INTERVAL.max).contains(&t.poll_interval));
        assert!((TIMEOUT.min..=TIMEOUT.max).contains(&t.timeout));
        for step in [t.smtp_timeout, t.imap_timeout] {
            assert!((STEP_TIMEOUT.min..=STEP_TIMEOUT.max).contains(&step));
        }
        let n = u16::try_from(super::super::DEFAULT_IMAP_CONNECTIONS).unwrap();
        assert!(IMAP_CONNECTIONS.contains(&n));
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
}
