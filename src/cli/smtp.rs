//! `probe smtp`: one swaks-style SMTP dialogue, printed as it happens.
//!
//! It needs no seeds file: everything comes from the command line. The
//! dialogue is shown live (through the send module's observer, so a stalled
//! server is visible), and the exit code names the stage that failed, with
//! swaks's numbers.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use lettre::message::header::{ContentType, Date, HeaderName, HeaderValue, Headers};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use crate::config::{DkimAlgorithm, host_port, is_loopback};
use crate::message::DkimSigner;
use crate::secrets::{Credential, SecretSource};
use crate::send::{
    Auth, AuthMechanism, Delivery, Ending, Envelope, Observed, Outgoing, QuitAfter, Route,
    SMTP_PORT, SUBMISSIONS_PORT, SendSettings, SessionError, Stage, Timeouts, TlsPolicy,
    deliver_many,
};

/// Exit codes, swaks's where swaks has one.
mod code {
    /// Every message accepted (or the session stopped where `--quit-after` said).
    pub const OK: u8 = 0;
    /// Invalid arguments, or no connection (DNS, connect, source address):
    /// either way no SMTP dialogue took place. swaks uses 2 for the latter;
    /// clap, and the rest of `probe`, for the former.
    pub const NO_DIALOGUE: u8 = 2;
    /// probe itself could not run (no async runtime).
    pub const PROBE_FAILURE: u8 = 3;
    /// The server closed or reset the connection in mid-dialogue.
    pub const DROPPED: u8 = 6;
    /// Banner.
    pub const BANNER: u8 = 21;
    /// EHLO/HELO.
    pub const EHLO: u8 = 22;
    /// MAIL FROM.
    pub const MAIL: u8 = 23;
    /// RCPT TO.
    pub const RCPT: u8 = 24;
    /// DATA, or sending the content.
    pub const DATA: u8 = 25;
    /// The reply to the final ".".
    pub const DATA_END: u8 = 26;
    /// AUTH.
    pub const AUTH: u8 = 28;
    /// STARTTLS or the TLS handshake.
    pub const TLS: u8 = 29;
    /// Ctrl-C.
    pub const INTERRUPTED: u8 = 130;
}

const EXIT_CODES_HELP: &str = "\
Exit codes (swaks's numbers):
   0  every message accepted, or stopped where --quit-after said
   2  invalid arguments, or no connection (DNS, connect, source address):
      no SMTP dialogue took place either way; stderr or the *** line says which
   6  the server closed the connection in mid-dialogue
  21  banner   22  EHLO   23  MAIL FROM   24  RCPT TO
  25  DATA     26  after the end of data (the server's verdict on the message)
  28  AUTH     29  TLS (STARTTLS, handshake or certificate)
With --count, the code of the first message that failed; after a 421 or a lost
connection the remaining messages are not sent (no reconnect), and the count of
those is shown.

Credentials are sent only over TLS with a verified certificate (--ca-file adds a
trust anchor), unless the server is loopback (127.0.0.0/8, ::1, localhost) or
--auth-plaintext is given. The password is read only from the environment
variable named by --auth-password-env, never from the command line.";

/// Where to stop, as swaks's `--quit-after` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuitAfterArg {
    /// Once TCP is connected; nothing is sent.
    Connect,
    /// After the banner.
    Banner,
    /// After EHLO (the one after STARTTLS, when TLS is used).
    Ehlo,
    /// After the TLS handshake.
    Tls,
    /// After AUTH.
    Auth,
    /// After MAIL FROM.
    Mail,
    /// After RCPT TO.
    Rcpt,
}

impl From<QuitAfterArg> for QuitAfter {
    fn from(arg: QuitAfterArg) -> QuitAfter {
        match arg {
            QuitAfterArg::Connect => QuitAfter::Connect,
            QuitAfterArg::Banner => QuitAfter::Banner,
            QuitAfterArg::Ehlo => QuitAfter::Ehlo,
            QuitAfterArg::Tls => QuitAfter::Tls,
            QuitAfterArg::Auth => QuitAfter::Auth,
            QuitAfterArg::Mail => QuitAfter::Mail,
            QuitAfterArg::Rcpt => QuitAfter::Rcpt,
        }
    }
}

/// Arguments of `probe smtp`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct SmtpArgs {
    /// The recipient (RCPT TO and To:).
    #[arg(long, short = 't', value_name = "ADDR")]
    pub to: String,
    /// The sender (MAIL FROM and From:) [default: $USER@<EHLO name>].
    #[arg(long, short = 'f', value_name = "ADDR")]
    pub from: Option<String>,
    /// The server [default: the recipient domain's MX hosts, in preference order].
    #[arg(long, short = 's', value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// The port, unless --server names one [default: 25, 465 with --tls-on-connect].
    #[arg(long, short = 'p', value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Require STARTTLS: fail (exit 29) if it is not offered or fails.
    #[arg(long, conflicts_with_all = ["tls_on_connect", "tls_optional"])]
    pub tls: bool,
    /// TLS from the first byte (SMTPS/submissions), certificate verified.
    #[arg(long, conflicts_with_all = ["tls_optional", "tls_verify"])]
    pub tls_on_connect: bool,
    /// STARTTLS when offered, in the clear otherwise (the default).
    #[arg(long)]
    pub tls_optional: bool,
    /// Require STARTTLS with a certificate that verifies (implies --tls).
    #[arg(long, conflicts_with = "tls_optional")]
    pub tls_verify: bool,
    /// Also trust this CA (PEM) when verifying certificates.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Authenticate; optionally only with these mechanisms, in this order
    /// (PLAIN, LOGIN, XOAUTH2) [default: the first of those the server offers].
    #[arg(long, value_name = "MECH[,MECH...]", num_args = 0..=1, default_missing_value = "")]
    pub auth: Option<String>,
    /// The user name for AUTH (implies --auth).
    #[arg(long, value_name = "USER")]
    pub auth_user: Option<String>,
    /// The environment variable holding the password (the token for XOAUTH2).
    #[arg(long, value_name = "VAR")]
    pub auth_password_env: Option<String>,
    /// Allow credentials without verified TLS to a server that is not loopback.
    #[arg(long)]
    pub auth_plaintext: bool,
    /// The EHLO name [default: this host's name if fully qualified, else the domain of --from,
    /// else this host's short name].
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,
    /// A header, replacing one of the same name (repeatable).
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// The body text, or @FILE to read it from a file [default: "This is a test mailing"].
    #[arg(long, value_name = "TEXT|@FILE")]
    pub body: Option<String>,
    /// Attach a file (repeatable); the message becomes multipart/mixed.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Connect from this local address.
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<IpAddr>,
    /// The limit for connecting and for each reply.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Stop after this stage and QUIT.
    #[arg(long, value_enum, value_name = "STAGE")]
    pub quit_after: Option<QuitAfterArg>,
    /// Send this many messages over one connection (RSET between them).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Ask this DNS server for MX and address records instead of the system's.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_resolver)]
    pub resolver: Option<SocketAddr>,
    /// Show the size of the message instead of its lines.
    #[arg(long)]
    pub suppress_data: bool,
    /// DKIM-sign each message for this domain (d=); needs --dkim-selector and --dkim-key.
    #[arg(long, value_name = "DOMAIN", requires_all = ["dkim_selector", "dkim_key"])]
    pub dkim_domain: Option<String>,
    /// The DKIM selector (s=): the public key is the TXT record SELECTOR._domainkey.DOMAIN.
    #[arg(long, value_name = "SELECTOR", requires_all = ["dkim_domain", "dkim_key"])]
    pub dkim_selector: Option<String>,
    /// The DKIM private key: PEM (PKCS#8 RSA or Ed25519, PKCS#1 RSA).
    #[arg(long, value_name = "FILE", requires_all = ["dkim_domain", "dkim_selector"])]
    pub dkim_key: Option<PathBuf>,
    /// The DKIM algorithm, rsa-sha256 or ed25519-sha256 [default: the key's own].
    #[arg(long, value_name = "ALGORITHM", requires = "dkim_key", value_parser = parse_dkim_algorithm)]
    pub dkim_algorithm: Option<DkimAlgorithm>,
}

fn parse_dkim_algorithm(text: &str) -> Result<DkimAlgorithm, String> {
    match text.to_ascii_lowercase().as_str() {
        "rsa-sha256" => Ok(DkimAlgorithm::RsaSha256),
        "ed25519-sha256" => Ok(DkimAlgorithm::Ed25519Sha256),
        _ => Err("rsa-sha256 or ed25519-sha256".into()),
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than zero".into()),
        Err(e) => Err(format!("{e}; write e.g. 10s or 2m")),
    }
}

fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    let hp = host_port(text, 53).map_err(|e| format!("not IP[:PORT]: {e}"))?;
    let ip: IpAddr = hp
        .host
        .parse()
        .map_err(|_| format!("{:?} is not an IP address", hp.host))?;
    Ok(SocketAddr::new(ip, hp.port))
}

/// Runs `probe smtp` to its exit code. It has its own runtime and exit codes
/// (swaks's), so it does not go through the run/send/poll table.
pub(crate) fn main(args: &SmtpArgs) -> ExitCode {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("probe smtp: error: {e:#}");
            return ExitCode::from(code::NO_DIALOGUE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("probe smtp: error: cannot start the async runtime: {e}");
            return ExitCode::from(code::PROBE_FAILURE);
        }
    };
    let exit = runtime.block_on(async {
        tokio::select! {
            exit = converse(plan) => exit,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("probe smtp: interrupted");
                code::INTERRUPTED
            }
        }
    });
    ExitCode::from(exit)
}

/// Everything checked and composed before a connection is made.
struct Plan {
    route: Route,
    items: Vec<Outgoing>,
    settings: SendSettings,
    suppress_data: bool,
}

fn plan(args: &SmtpArgs) -> anyhow::Result<Plan> {
    let to: lettre::Address = args
        .to
        .trim()
        .parse()
        .with_context(|| format!("--to {:?} is not an email address", args.to))?;
    let given_from: Option<lettre::Address> = match &args.from {
        Some(from) => Some(
            from.trim()
                .parse()
                .with_context(|| format!("--from {from:?} is not an email address"))?,
        ),
        None => None,
    };
    let ehlo = match &args.ehlo {
        Some(name) => name.clone(),
        None => default_ehlo(&host_name(), given_from.as_ref()),
    };
    if ehlo.is_empty() || ehlo.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("--ehlo {ehlo:?} is not a host name");
    }
    let from: lettre::Address = match given_from {
        Some(from) => from,
        None => {
            let user = std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "probe".into());
            format!("{user}@{ehlo}")
                .parse()
                .with_context(|| format!("no usable default sender {user}@{ehlo}; give --from"))?
        }
    };

    let default_port = if args.tls_on_connect {
        SUBMISSIONS_PORT
    } else {
        SMTP_PORT
    };
    let port = args.port.unwrap_or(default_port);
    let route = match &args.server {
        Some(server) => {
            let hp = host_port(server, port)
                .with_context(|| format!("--server {server:?} is not HOST[:PORT]"))?;
            Route::Fixed {
                host: hp.host,
                port: hp.port,
            }
        }
        None => Route::Mx {
            domain: to.domain().to_ascii_lowercase(),
            port,
        },
    };
    let loopback = matches!(&route, Route::Fixed { host, .. } if is_loopback(host));

    let tls = if args.tls_on_connect {
        TlsPolicy::Implicit
    } else if args.tls_verify {
        TlsPolicy::Verified
    } else if args.tls {
        TlsPolicy::Required
    } else {
        TlsPolicy::Opportunistic
    };
    let extra_roots = crate::tls::Trust::load(args.ca_file.as_deref())?
        .extra_roots()
        .to_vec();

    let auth =
        if args.auth.is_some() || args.auth_user.is_some() || args.auth_password_env.is_some() {
            Some(auth_from(args, loopback)?)
        } else {
            None
        };

    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = match &args.body {
        Some(text) => match text.strip_prefix('@') {
            Some(path) => {
                std::fs::read(path).with_context(|| format!("--body: cannot read {path}"))?
            }
            None => text.clone().into_bytes(),
        },
        None => b"This is a test mailing\n".to_vec(),
    };
    let attachments = args
        .attach
        .iter()
        .map(|path| read_attachment(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dkim = dkim_from(args)?;
    let mut items = Vec::with_capacity(args.count as usize);
    for n in 1..=args.count {
        let mut message = compose(&from, &to, &headers, &body, &attachments, n, args.count)?;
        if let Some(signer) = &dkim {
            message = signer.sign(&message)?;
        }
        items.push(Outgoing {
            envelope: Envelope {
                mail_from: from.to_string(),
                rcpt_to: to.to_string(),
            },
            message,
            envid: None,
        });
    }

    let settings = SendSettings {
        ehlo,
        timeouts: Timeouts {
            connect: args.timeout,
            command: args.timeout,
            data_end: args.timeout,
        },
        extra_roots,
        resolver: args.resolver,
        source_ip: args.source_ip,
        tls,
        auth,
        quit_after: args.quit_after.map(QuitAfter::from),
        observer: None,
    };
    Ok(Plan {
        route,
        items,
        settings,
        suppress_data: args.suppress_data,
    })
}

fn auth_from(args: &SmtpArgs, loopback: bool) -> anyhow::Result<Auth> {
    let Some(username) = args.auth_user.clone() else {
        bail!("--auth needs --auth-user");
    };
    let Some(var) = &args.auth_password_env else {
        bail!(
            "--auth needs --auth-password-env VAR (the password is never taken from the command line)"
        );
    };
    let password = SecretSource::Env(var.clone())
        .resolve(Path::new("."))
        .map_err(|e| anyhow::anyhow!("--auth-password-env: {e}"))?;
    let mechanisms = args
        .auth
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("any"))
        .map(|m| {
            AuthMechanism::from_name(m)
                .with_context(|| format!("--auth: unknown mechanism {m:?} (PLAIN, LOGIN, XOAUTH2)"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Auth::from_credential(
        username,
        Credential::Password(password),
        mechanisms,
        args.auth_plaintext || loopback,
    )?)
}

/// The signer `--dkim-domain`, `--dkim-selector` and `--dkim-key` describe (clap sees that
/// they come together), or none.
fn dkim_from(args: &SmtpArgs) -> anyhow::Result<Option<DkimSigner>> {
    let (Some(domain), Some(selector), Some(key)) =
        (&args.dkim_domain, &args.dkim_selector, &args.dkim_key)
    else {
        return Ok(None);
    };
    let dns_name = |flag: &str, value: &str| {
        let value = value.trim().trim_end_matches('.').to_ascii_lowercase();
        let usable = !value.is_empty()
            && value.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if usable {
            Ok(value)
        } else {
            Err(anyhow::anyhow!("{flag} {value:?} is not a DNS name"))
        }
    };
    let domain = dns_name("--dkim-domain", domain)?;
    let selector = dns_name("--dkim-selector", selector)?;
    let signer = DkimSigner::from_file(&domain, &selector, args.dkim_algorithm, key)
        .map_err(|e| anyhow::anyhow!("--dkim-key {}: {e}", key.display()))?;
    Ok(Some(signer))
}

fn parse_header(text: &str) -> anyhow::Result<HeaderValue> {
    let Some((name, value)) = text.split_once(':') else {
        bail!("--header {text:?} is not 'Name: value'");
    };
    if value.chars().any(|c| c.is_control() && c != '\t') {
        bail!("--header {text:?}: the value contains a line break or control character");
    }
    let name = HeaderName::new_from_ascii(name.trim().to_owned()).map_err(|_| {
        anyhow::anyhow!("--header {text:?}: {:?} is not a header name", name.trim())
    })?;
    Ok(HeaderValue::new(name, value.trim().to_owned()))
}

struct FileAttachment {
    name: String,
    bytes: Vec<u8>,
    content_type: ContentType,
}

fn read_attachment(path: &Path) -> anyhow::Result<FileAttachment> {
    let bytes =
        std::fs::read(path).with_context(|| format!("--attach: cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into());
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let mime = match extension.as_deref() {
        Some("txt" | "log") => "text/plain",
        Some("htm" | "html") => "text/html",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    };
    let content_type = ContentType::parse(mime).context("content type")?;
    Ok(FileAttachment {
        name,
        bytes,
        content_type,
    })
}

/// One message, like swaks's default: `Subject: test <date>`, an X-Mailer,
/// the user's headers over the defaults.
fn compose(
    from: &lettre::Address,
    to: &lettre::Address,
    headers: &[HeaderValue],
    body: &[u8],
    attachments: &[FileAttachment],
    n: u32,
    count: u32,
) -> anyhow::Result<Vec<u8>> {
    let now = SystemTime::now();
    let date = {
        let mut h = Headers::new();
        h.set(Date::new(now));
        h.get_raw("Date").unwrap_or_default().to_owned()
    };
    let subject = if count > 1 {
        format!("test {date} ({n} of {count})")
    } else {
        format!("test {date}")
    };
    let mut builder = lettre::Message::builder()
        .from(Mailbox::new(None, from.clone()))
        .to(Mailbox::new(None, to.clone()))
        .subject(subject)
        .date(now)
        .message_id(Some(format!(
            "<{}.probe-smtp@{}>",
            ulid::Ulid::new(),
            from.domain()
        )))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Mailer"),
            format!("seedprobe {} (probe smtp)", env!("CARGO_PKG_VERSION")),
        ));
    if attachments.is_empty() {
        builder = builder.header(ContentType::TEXT_PLAIN);
    }
    for header in headers {
        builder = builder.raw_header(header.clone());
    }
    let message = if attachments.is_empty() {
        builder.body(body.to_vec())?
    } else {
        let mut parts = MultiPart::mixed().singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body.to_vec()),
        );
        for file in attachments {
            parts = parts.singlepart(
                Attachment::new(file.name.clone())
                    .body(file.bytes.clone(), file.content_type.clone()),
            );
        }
        builder.multipart(parts)?
    };
    Ok(message.formatted())
}

/// This host's name as the kernel has it (often the short name), or empty.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The EHLO name when `--ehlo` is not given: `host` when it is fully qualified, else the domain
/// of `--from`, else `host` as it is (`localhost` when there is none).
///
/// Providers refuse or mark down a name that is not fully qualified (Postfix's
/// `reject_non_fqdn_helo_hostname`, and `localhost` is what spam bots say), so a short host
/// name gives way to the sender's domain, which is at least a real, resolvable name and is
/// what `sender.ehlo` defaults to in the seeds file too. Without `--from` the short name is
/// still this host's own name, which the README promises.
fn default_ehlo(host: &str, from: Option<&lettre::Address>) -> String {
    let usable = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    if host.contains('.') && usable(host) {
        return host.to_owned();
    }
    match from {
        Some(from) => from.domain().to_owned(),
        None if usable(host) => host.to_owned(),
        None => "localhost".into(),
    }
}

/// The dialogue, printed as it happens; returns the exit code.
async fn converse(plan: Plan) -> u8 {
    let Plan {
        route,
        items,
        mut settings,
        suppress_data,
    } = plan;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    settings.observer = Some(tx);
    let delivering = deliver_many(&route, &items, &settings);
    tokio::pin!(delivering);
    let deliveries = loop {
        tokio::select! {
            biased;
            Some(event) = rx.recv() => show(&event, suppress_data),
            deliveries = &mut delivering => break deliveries,
        }
    };
    while let Ok(event) = rx.try_recv() {
        show(&event, suppress_data);
    }
    if deliveries.len() > 1 {
        let accepted = deliveries
            .iter()
            .filter(|d| d.ending().is_accepted())
            .count();
        say(&format!(
            "=== {accepted} of {} messages accepted",
            deliveries.len()
        ));
        // After a 421 or a lost connection the rest are not sent: a server that said "not
        // now" is not reconnected to at once.
        if let Some(first) = deliveries.iter().find(|d| d.ending().is_not_tried()) {
            let not_sent = deliveries
                .iter()
                .filter(|d| d.ending().is_not_tried())
                .count();
            let cause = match first.ending() {
                Ending::NotTried { host, earlier } => earlier.cause(host),
                other => other.to_string(),
            };
            say(&format!(
                "=== {not_sent} of {} messages not sent: {cause}; not reconnecting",
                deliveries.len()
            ));
        }
    }
    exit_code(&deliveries)
}

fn show(event: &Observed, suppress_data: bool) {
    match event {
        Observed::Line(line) => say(&format!("{}{}", line.kind.prefix(), line.text)),
        Observed::Content { .. } if suppress_data => {}
        Observed::Content { tls, text } => {
            say(&format!("{}{text}", if *tls { "~> " } else { "-> " }));
        }
    }
}

/// One line on stdout; a closed pipe (`| head`) must not abort the dialogue.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The first failing message's code, in item order.
fn exit_code(deliveries: &[Delivery]) -> u8 {
    deliveries
        .iter()
        .map(|d| exit_for(d.ending()))
        .find(|&c| c != code::OK)
        .unwrap_or(code::OK)
}

fn exit_for(ending: &Ending) -> u8 {
    if ending.is_stopped() {
        return code::OK;
    }
    let stage = match ending {
        Ending::Accepted { .. } => return code::OK,
        // Only after an earlier message failed, whose code comes first anyway.
        Ending::NotTried { earlier, .. } => return exit_for(earlier),
        Ending::Failed {
            stage,
            error: SessionError::ConnectionClosed { .. } | SessionError::Io { .. },
        } if !matches!(stage, Stage::Resolve | Stage::Connect) => return code::DROPPED,
        Ending::Refused { stage, .. } | Ending::Failed { stage, .. } => *stage,
    };
    match stage {
        Stage::Resolve | Stage::Connect => code::NO_DIALOGUE,
        Stage::Banner => code::BANNER,
        Stage::Ehlo => code::EHLO,
        Stage::StartTls => code::TLS,
        Stage::Auth => code::AUTH,
        Stage::MailFrom => code::MAIL,
        Stage::RcptTo => code::RCPT,
        Stage::Data => code::DATA,
        Stage::DataEnd => code::DATA_END,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::Reply;
    use std::sync::Arc;

    #[test]
    fn ehlo_name_is_one_a_provider_accepts() {
        let from: lettre::Address = "me@example.org".parse().unwrap();
        let rows = [
            ("mail.example.net", Some(&from), "mail.example.net"),
            ("mail.example.net", None, "mail.example.net"),
            ("vm", Some(&from), "example.org"),
            ("vm", None, "vm"),
            ("", Some(&from), "example.org"),
            ("", None, "localhost"),
            ("bad name.example", Some(&from), "example.org"),
        ];
        for (host, from, want) in rows {
            assert_eq!(default_ehlo(host, from), want, "{host:?} {from:?}");
        }
    }

    #[test]
    fn exit_codes_follow_swaks() {
        let reply = |code| Reply {
            code,
            enhanced: None,
            lines: vec!["x".into()],
        };
        let refused = |stage| Ending::Refused {
            stage,
            reply: reply(550),
        };
        let closed = |stage| Ending::Failed {
            stage,
            error: SessionError::ConnectionClosed { server: "s".into() },
        };
        let cases = [
            (Ending::Accepted { reply: reply(250) }, 0),
            (
                Ending::Failed {
                    stage: Stage::RcptTo,
                    error: SessionError::Stopped {
                        after: QuitAfter::Rcpt,
                    },
                },
                0,
            ),
            (
                Ending::Failed {
                    stage: Stage::Connect,
                    error: SessionError::Io {
                        server: "s".into(),
                        error: Arc::new(std::io::ErrorKind::ConnectionRefused.into()),
                    },
                },
                2,
            ),
            (
                Ending::Failed {
                    stage: Stage::Resolve,
                    error: SessionError::NullMx { domain: "d".into() },
                },
                2,
            ),
            (closed(Stage::Ehlo), 6),
            (closed(Stage::DataEnd), 6),
            (refused(Stage::Banner), 21),
            (refused(Stage::Ehlo), 22),
            (refused(Stage::MailFrom), 23),
            (refused(Stage::RcptTo), 24),
            (refused(Stage::Data), 25),
            (refused(Stage::DataEnd), 26),
            (refused(Stage::Auth), 28),
            (
                Ending::Failed {
                    stage: Stage::StartTls,
                    error: SessionError::TlsRequired {
                        server: "s".into(),
                        reason: "r".into(),
                    },
                },
                29,
            ),
        ];
        for (ending, want) in cases {
            assert_eq!(exit_for(&ending), want, "{ending}");
        }
    }

    #[test]
    fn attachments_make_a_multipart_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.pdf");
        std::fs::write(&path, b"%PDF-1.4 not really").unwrap();
        let file = read_attachment(&path).unwrap();
        let from: lettre::Address = "a@lab.test".parse().unwrap();
        let message = compose(&from, &from, &[], b"see attached", &[file], 2, 3).unwrap();
        let text = String::from_utf8(message).unwrap();
        assert!(text.contains("Content-Type: multipart/mixed;"), "{text}");
        assert!(
            text.contains("Content-Disposition: attachment; filename=\"report.pdf\""),
            "{text}"
        );
        assert!(text.contains("Content-Type: application/pdf"), "{text}");
        assert!(text.contains(" (2 of 3)\r\n"), "{text}");
        assert!(text.contains("see attached"), "{text}");
    }

    #[test]
    fn headers_and_resolvers() {
        let from: lettre::Address = "a@lab.test".parse().unwrap();
        let h = parse_header("X-Test:  hello").unwrap();
        let message = compose(&from, &from, &[h], b"body", &[], 1, 1).unwrap();
        let text = String::from_utf8(message).unwrap();
        assert!(text.contains("\r\nX-Test: hello\r\n"), "{text}");
        let subject = parse_header("Subject: mine").unwrap();
        let message = compose(&from, &from, &[subject], b"body", &[], 1, 1).unwrap();
        let text = String::from_utf8(message).unwrap();
        assert_eq!(text.matches("Subject:").count(), 1, "{text}");
        assert!(text.contains("Subject: mine\r\n"), "{text}");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("X-Evil: a\r\nBcc: x@y").is_err());
        assert_eq!(
            parse_resolver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(parse_resolver("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_resolver("dns.example:53").is_err());
    }
}
