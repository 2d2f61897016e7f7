//! The checks that turn the [`super::raw`] shapes into the [`Config`] model: defaults filled
//! in, addresses and hosts parsed, every refusal a [`ConfigError::Invalid`] naming the file,
//! line, column and field, so the user can fix the file without guessing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{RawConfig, RawImap, RawRelay, RawSeed, RawSender};
use super::{
    Config, ConfigError, Imap, ImapTls, KNOWN_SPAM_FOLDERS, MessageTemplate, Profile, Provider,
    Relay, RelayTls, Seed, Sender, Timing, Transport, is_hostname, is_loopback, parse_host_port,
};

/// Default subject: the token is what polling searches for.
pub const DEFAULT_SUBJECT: &str = "Deliverability check {token}";
const DEFAULT_BODY: &str = "This is a deliverability test message sent by seedprobe.\r\n\
It measures where mail from this server lands. No action is needed.\r\n";

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

    /// A duration as written (`5s`, `2m`), `default` when absent; zero is refused.
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
            None => super::DEFAULT_IMAP_CONNECTIONS,
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
