//! The client side of one SMTP connection (RFC 5321 §3, §4.1), with STARTTLS
//! (RFC 3207), implicit TLS (RFC 8314), AUTH (RFC 4954), DSN (RFC 3461) and
//! PIPELINING (RFC 2920).
//!
//! Without PIPELINING, commands go out in lockstep, so each reply is tied to
//! the command that provoked it. With it, a transaction's RSET, MAIL, RCPT
//! and DATA go out in one write and the replies are matched to them in order
//! (RFC 2920 §3.1 keeps replies in command order); the transcript then shows
//! the commands, then the replies, as they crossed the wire.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::auth::{self, Auth, AuthMechanism};
use super::data::encode_data_into;
use super::dsn::xtext;
use super::outcome::{Ending, SessionError, Stage};
use super::reply::{MAX_LINE_LEN, MAX_REPLY_LINES, Reply, ReplyError, ReplyLine, Severity};
use super::reply::{decode_line, shorten};
use super::transcript::{LineKind, Observer, Transcript};
use super::{Attempt, Envelope, Outgoing, QuitAfter, SendSettings, Timeouts, TlsPolicy};
use crate::tls::{self, CertVerdict, TlsInfo};

/// The most we wait for QUIT's reply: the outcome is already known, so a
/// slow goodbye must not hold up the report.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// RFC 5321 §4.5.3.1.4's command line limit, CRLF included. RFC 4954 §4
/// sends a longer AUTH initial response (a big OAuth token) after a 334
/// instead of on the command line.
const MAX_COMMAND_LINE: usize = 512;

/// What one connection did.
pub(crate) enum RunOutcome {
    /// The connection never reached a transaction (connect, banner, EHLO,
    /// TLS, AUTH, or a requested stop before MAIL): the attempt applies to
    /// every message. `handshake_failed` asks for a retry in the clear.
    Setup {
        attempt: Box<Attempt>,
        handshake_failed: bool,
    },
    /// Transactions ran: `settled` messages got their attempt (through the
    /// sink, as each ended; at least one); `unreached` were not tried
    /// because the connection was lost.
    Transactions {
        settled: usize,
        unreached: Vec<usize>,
    },
}

/// Runs one connection: connect, set up, one transaction per job, say
/// goodbye. Each transaction's attempt goes to `sink` as soon as it ends.
pub(crate) async fn run<S: FnMut(usize, Attempt)>(
    host: &str,
    addrs: &[SocketAddr],
    mut transcript: Transcript,
    jobs: &[(usize, &Outgoing)],
    settings: &SendSettings,
    offer_starttls: bool,
    sink: &mut S,
) -> RunOutcome {
    let (tcp, addr) = match connect(host, addrs, settings, &mut transcript).await {
        Ok(connected) => connected,
        Err(error) => {
            let ending = Ending::Failed {
                stage: Stage::Connect,
                error,
            };
            return RunOutcome::Setup {
                attempt: Box::new(Attempt::new(host, None, None, transcript, ending)),
                handshake_failed: false,
            };
        }
    };
    let mut session = Session {
        host,
        addr,
        server: peer_name(host, addr),
        stream: Stream::Plain(tcp),
        inbox: Vec::new(),
        out: Vec::new(),
        transcript,
        timeouts: settings.timeouts,
        tls: None,
        handshake_failed: false,
        broken: false,
        extensions: Extensions::default(),
        secrets: Vec::new(),
        observer: settings.observer.clone(),
    };
    if let Err(ending) = session.open(settings, offer_starttls).await {
        session.close(&ending).await;
        tracing::debug!(server = %session.server, %ending, "SMTP session ended before MAIL");
        let handshake_failed = session.handshake_failed;
        return RunOutcome::Setup {
            attempt: Box::new(session.attempt(ending)),
            handshake_failed,
        };
    }
    for (n, &(index, item)) in jobs.iter().enumerate() {
        if n > 0 {
            let mut transcript = Transcript::with_observer(session.observer.clone());
            transcript.info(format!(
                "Reusing the connection to {} (message {} on it)",
                session.server,
                n + 1
            ));
            session.transcript = transcript;
        }
        let ending = match session.transaction(item, n > 0, settings).await {
            Ok(reply) => Ending::Accepted { reply },
            Err(ending) => ending,
        };
        let usable = session.usable_after(&ending);
        let last = n + 1 == jobs.len();
        if !usable || last {
            session.close(&ending).await;
        }
        tracing::debug!(server = %session.server, %ending, "SMTP transaction ended");
        sink(index, session.attempt(ending));
        if !usable {
            let unreached = jobs[n + 1..].iter().map(|&(index, _)| index).collect();
            return RunOutcome::Transactions {
                settled: n + 1,
                unreached,
            };
        }
    }
    RunOutcome::Transactions {
        settled: jobs.len(),
        unreached: Vec::new(),
    }
}

/// Tries each address in turn; each gets the full connect timeout.
async fn connect(
    host: &str,
    addrs: &[SocketAddr],
    settings: &SendSettings,
    transcript: &mut Transcript,
) -> Result<(TcpStream, SocketAddr), SessionError> {
    let limit = settings.timeouts.connect;
    let source = settings.source_ip;
    let mut last_error = None;
    for &addr in addrs {
        let server = peer_name(host, addr);
        if let Some(source) = source
            && source.is_ipv4() != addr.is_ipv4()
        {
            transcript.info(format!(
                "Skipping {server}: the source address {source} is {}",
                family(source)
            ));
            continue;
        }
        match source {
            Some(source) => transcript.info(format!("Trying {server} from {source}...")),
            None => transcript.info(format!("Trying {server}...")),
        }
        match connect_one(addr, source, limit, &server).await {
            Ok(stream) => {
                transcript.info(format!("Connected to {server}."));
                // Every write is a whole command group or a whole message,
                // so Nagle could only delay the tail of a message.
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            // Binding fails the same way for every address: stop here.
            Err(error @ SessionError::Bind { .. }) => {
                transcript.error(error.to_string());
                return Err(error);
            }
            Err(error) => {
                transcript.error(error.to_string());
                last_error = Some(error);
            }
        }
    }
    let error = match (last_error, source) {
        (Some(error), _) => return Err(error),
        (None, Some(source)) if !addrs.is_empty() => SessionError::NoAddressOfFamily {
            host: host.to_owned(),
            source_ip: source,
            family: family(source),
        },
        (None, _) => SessionError::NoAddresses {
            host: host.to_owned(),
        },
    };
    transcript.error(error.to_string());
    Err(error)
}

async fn connect_one(
    addr: SocketAddr,
    source: Option<IpAddr>,
    limit: Duration,
    server: &str,
) -> Result<TcpStream, SessionError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|error| SessionError::io(server, error))?;
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|error| SessionError::Bind {
                source_ip: source,
                error: Arc::new(error),
            })?;
    }
    match timeout(limit, socket.connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(SessionError::io(server, error)),
        Err(_) => Err(SessionError::Timeout {
            server: server.to_owned(),
            waiting_for: "the TCP connection".to_owned(),
            after: limit,
        }),
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Postfix-style peer name: "host[address]:port", or just the socket address
/// when the host was given as an address literal.
fn peer_name(host: &str, addr: SocketAddr) -> String {
    if host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        == Ok(addr.ip())
    {
        addr.to_string()
    } else {
        format!("{host}[{}]:{}", addr.ip(), addr.port())
    }
}

/// The connection, before or after TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the plain stream is handed to the TLS handshake, or after a
    /// failed one; any I/O on it fails instead of panicking.
    Gone,
}

impl Stream {
    async fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write_all_flush(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            // rustls buffers records; without the flush nothing may leave.
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        }
    }
}

/// The ESMTP extensions a server announced in its EHLO reply (RFC 5321 §4.1.1.1).
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    /// Upper-cased keywords with their parameters as sent.
    entries: Vec<(String, Vec<String>)>,
}

impl Extensions {
    pub(crate) fn from_ehlo(reply: &Reply) -> Extensions {
        // The first line is the server's name and greeting, not an extension.
        let entries = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let first = words.next()?;
                // "AUTH=PLAIN LOGIN": the pre-RFC 4954 form some servers still send.
                let (keyword, inline) = match first.split_once('=') {
                    Some((keyword, value)) => (keyword, Some(value)),
                    None => (first, None),
                };
                let params = inline
                    .into_iter()
                    .chain(words)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                Some((keyword.to_ascii_uppercase(), params))
            })
            .collect();
        Extensions { entries }
    }

    pub(crate) fn has(&self, keyword: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(keyword))
    }

    /// The parameters of every line with this keyword, upper-cased; `None`
    /// when the keyword is not offered.
    pub(crate) fn params(&self, keyword: &str) -> Option<Vec<String>> {
        self.has(keyword).then(|| {
            self.entries
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(keyword))
                .flat_map(|(_, params)| params.iter().map(|p| p.to_ascii_uppercase()))
                .collect()
        })
    }
}

/// The MAIL command, with the parameters the content and envelope call for
/// when the server supports them (RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
/// RFC 3461 DSN when an envelope id is given); without support, the plain
/// command goes out and the server decides.
pub(crate) fn mail_command(
    envelope: &Envelope,
    extensions: &Extensions,
    message: &[u8],
    envid: Option<&str>,
) -> String {
    let mut command = format!("MAIL FROM:<{}>", envelope.mail_from);
    if extensions.has("8BITMIME") && !message.is_ascii() {
        command.push_str(" BODY=8BITMIME");
    }
    if !(envelope.mail_from.is_ascii() && envelope.rcpt_to.is_ascii()) && extensions.has("SMTPUTF8")
    {
        command.push_str(" SMTPUTF8");
    }
    if let Some(envid) = envid.filter(|_| extensions.has("DSN")) {
        // Headers only: a bounce need not carry the probe back in full.
        command.push_str(" RET=HDRS ENVID=");
        command.push_str(&xtext(envid));
    }
    command
}

/// The RCPT command; with DSN, ask for failure and delay notices only (a
/// success notice would be noise) and name the original recipient (RFC 3461
/// §4.1, §4.2).
pub(crate) fn rcpt_command(envelope: &Envelope, dsn: bool) -> String {
    if dsn {
        format!(
            "RCPT TO:<{}> NOTIFY=FAILURE,DELAY ORCPT=rfc822;{}",
            envelope.rcpt_to,
            xtext(&envelope.rcpt_to)
        )
    } else {
        format!("RCPT TO:<{}>", envelope.rcpt_to)
    }
}

/// What a timeout waits for, by command verb; static, so that the hot path
/// formats nothing unless something goes wrong.
fn phrases(line: &str) -> (&'static str, &'static str) {
    let verb = line.split([' ', ':']).next().unwrap_or(line);
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => ("EHLO to be sent", "the reply to EHLO"),
        "HELO" => ("HELO to be sent", "the reply to HELO"),
        "STARTTLS" => ("STARTTLS to be sent", "the reply to STARTTLS"),
        "AUTH" => ("AUTH to be sent", "the reply to AUTH"),
        "MAIL" => ("MAIL to be sent", "the reply to MAIL"),
        "RCPT" => ("RCPT to be sent", "the reply to RCPT"),
        "DATA" => ("DATA to be sent", "the reply to DATA"),
        "RSET" => ("RSET to be sent", "the reply to RSET"),
        "QUIT" => ("QUIT to be sent", "the reply to QUIT"),
        _ => ("a command to be sent", "a reply"),
    }
}

struct Session<'a> {
    host: &'a str,
    addr: SocketAddr,
    /// Peer name for messages and logs.
    server: String,
    stream: Stream,
    /// Received bytes not yet consumed as lines.
    inbox: Vec<u8>,
    /// The write buffer, reused for every command group and message.
    out: Vec<u8>,
    /// Where lines go now: the current message's transcript.
    transcript: Transcript,
    timeouts: Timeouts,
    tls: Option<TlsInfo>,
    handshake_failed: bool,
    /// A read or write failed: the dialogue is out of step or the peer gone.
    broken: bool,
    /// What the last EHLO announced.
    extensions: Extensions,
    /// Strings that must not reach the transcript even if the server echoes
    /// them back (the credentials, while AUTH runs).
    secrets: Vec<String>,
    /// For the transcripts of later messages on this connection.
    observer: Option<Observer>,
}

impl Session<'_> {
    /// Everything before the first MAIL: banner, EHLO, TLS, AUTH.
    async fn open(&mut self, settings: &SendSettings, offer_starttls: bool) -> Result<(), Ending> {
        self.stop_if(settings, QuitAfter::Connect)?;
        if settings.tls == TlsPolicy::Implicit {
            self.handshake(&settings.extra_roots, true)
                .await
                .map_err(|error| failed(Stage::StartTls, self.tls_required(error)))?;
        }
        let banner = self
            .read_reply(self.timeouts.command, "the banner")
            .await
            .map_err(|error| failed(Stage::Banner, error))?;
        self.expect(banner, Stage::Banner, Severity::PositiveCompletion)?;
        self.stop_if(settings, QuitAfter::Banner)?;
        if settings.tls == TlsPolicy::Implicit {
            self.stop_if(settings, QuitAfter::Tls)?;
        }

        let mut extensions = self.greet(&settings.ehlo).await?;
        if self
            .start_tls(settings, &extensions, offer_starttls)
            .await?
        {
            self.stop_if(settings, QuitAfter::Tls)?;
            // RFC 3207 §4.2: forget everything learnt before TLS and ask again.
            extensions = self.greet(&settings.ehlo).await?;
        } else {
            self.stop_if(settings, QuitAfter::Tls)?;
        }
        self.stop_if(settings, QuitAfter::Ehlo)?;
        self.extensions = extensions;

        if let Some(auth) = &settings.auth {
            self.secrets = secrets_of(auth);
            let result = self.authenticate(auth).await;
            self.secrets.clear();
            result?;
        }
        self.stop_if(settings, QuitAfter::Auth)
    }

    /// One mail transaction, up to the reply to the final ".". `reset`
    /// precedes it with RSET: the connection carried an earlier one.
    async fn transaction(
        &mut self,
        item: &Outgoing,
        reset: bool,
        settings: &SendSettings,
    ) -> Result<Reply, Ending> {
        let dsn = item.envid.as_deref().filter(|_| self.extensions.has("DSN"));
        let mail = mail_command(&item.envelope, &self.extensions, &item.message, dsn);
        let rcpt = rcpt_command(&item.envelope, dsn.is_some());
        let stop = settings
            .quit_after
            .filter(|q| matches!(q, QuitAfter::Mail | QuitAfter::Rcpt));
        let mut group: Vec<(&str, Stage, Severity)> = Vec::with_capacity(4);
        if reset {
            // RFC 5321 §4.1.1.5: whatever the last transaction left behind
            // (a refused RCPT after an accepted MAIL) is cleared first.
            group.push(("RSET", Stage::MailFrom, Severity::PositiveCompletion));
        }
        group.push((&mail, Stage::MailFrom, Severity::PositiveCompletion));
        if stop != Some(QuitAfter::Mail) {
            group.push((&rcpt, Stage::RcptTo, Severity::PositiveCompletion));
        }
        if stop.is_none() {
            group.push(("DATA", Stage::Data, Severity::PositiveIntermediate));
        }
        if self.extensions.has("PIPELINING") {
            self.pipelined(&group).await?;
        } else {
            for &(line, stage, want) in &group {
                let reply = self.command(line, stage).await?;
                self.expect(reply, stage, want)?;
            }
        }
        if let Some(after) = stop {
            return Err(self.stopped(after));
        }
        self.send_data(&item.message).await
    }

    /// Sends a command group in one write (RFC 2920 §3.1), then reads every
    /// reply in order, so the dialogue stays in step even after a refusal.
    /// Returns the first refusal, if any.
    async fn pipelined(&mut self, group: &[(&str, Stage, Severity)]) -> Result<(), Ending> {
        let tls = self.in_tls();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        for &(line, _, _) in group {
            self.transcript.sent(line, tls);
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let first_stage = group
            .first()
            .map_or(Stage::MailFrom, |&(_, stage, _)| stage);
        let written = self
            .write(
                &out,
                self.timeouts.command,
                "the pipelined commands to be sent",
            )
            .await;
        self.out = out;
        written.map_err(|error| failed(first_stage, error))?;

        let mut refusal: Option<Ending> = None;
        for &(line, stage, want) in group {
            let (_, awaiting) = phrases(line);
            let reply = self
                .read_reply(self.timeouts.command, awaiting)
                .await
                .map_err(|error| failed(stage, error))?;
            if reply.code == 421 {
                // The server is closing the channel (RFC 5321 §3.8): no more replies will come.
                return Err(Ending::Refused { stage, reply });
            }
            if refusal.is_some() {
                if stage == Stage::Data && reply.severity() == Severity::PositiveIntermediate {
                    // DATA accepted although MAIL or RCPT failed: end the
                    // empty message at once (RFC 2920 §3.1).
                    self.end_empty_data().await?;
                }
                continue;
            }
            if let Err(ending) = self.expect(reply, stage, want) {
                refusal = Some(ending);
            }
        }
        refusal.map_or(Ok(()), Err)
    }

    async fn end_empty_data(&mut self) -> Result<(), Ending> {
        self.transcript.sent(".", self.in_tls());
        self.write(
            b".\r\n",
            self.timeouts.command,
            "the end of data to be sent",
        )
        .await
        .map_err(|error| failed(Stage::DataEnd, error))?;
        self.read_reply(self.timeouts.data_end, "the reply to the end of data")
            .await
            .map(drop)
            .map_err(|error| failed(Stage::DataEnd, error))
    }

    /// The message content and the final ".", in one write, then the verdict on it.
    async fn send_data(&mut self, message: &[u8]) -> Result<Reply, Ending> {
        let tls = self.in_tls();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        encode_data_into(message, &mut out);
        // Only the size: transcripts must never carry message content.
        self.transcript
            .info(format!("{} bytes of message data", out.len()));
        self.transcript.observe_content(&out, tls);
        self.transcript.sent(".", tls);
        out.extend_from_slice(b".\r\n");
        let written = self
            .write(&out, self.timeouts.command, "the message data to be sent")
            .await;
        self.out = out;
        // A write that failed never got the whole terminator out, so the
        // server cannot have taken the message: that is a failure in DATA,
        // not after it (RFC 1047's uncertainty starts with the last byte).
        written.map_err(|error| failed(Stage::Data, error))?;
        let reply = self
            .read_reply(self.timeouts.data_end, "the reply to the end of data")
            .await
            .map_err(|error| failed(Stage::DataEnd, error))?;
        self.expect(reply, Stage::DataEnd, Severity::PositiveCompletion)
    }

    /// EHLO, falling back to HELO when the server rejects EHLO with a 5xx
    /// (RFC 5321 §3.2: a pre-ESMTP server answers "500 command unrecognized").
    async fn greet(&mut self, name: &str) -> Result<Extensions, Ending> {
        let reply = self.command(&format!("EHLO {name}"), Stage::Ehlo).await?;
        if reply.severity() != Severity::PermanentNegative {
            let reply = self.expect(reply, Stage::Ehlo, Severity::PositiveCompletion)?;
            return Ok(Extensions::from_ehlo(&reply));
        }
        let reply = self.command(&format!("HELO {name}"), Stage::Ehlo).await?;
        self.expect(reply, Stage::Ehlo, Severity::PositiveCompletion)?;
        Ok(Extensions::default())
    }

    /// STARTTLS and the handshake, as the policy asks. Returns whether TLS is now on.
    ///
    /// Opportunistically, a 4xx/5xx to STARTTLS (other than 421) leaves the
    /// session in its pre-STARTTLS state (RFC 3207 §4), so we carry on in
    /// the clear like an MTA at security level "may" would: refusing TLS is
    /// not refusing mail. A policy that requires TLS fails instead.
    async fn start_tls(
        &mut self,
        settings: &SendSettings,
        extensions: &Extensions,
        offer_starttls: bool,
    ) -> Result<bool, Ending> {
        let required = matches!(settings.tls, TlsPolicy::Required | TlsPolicy::Verified);
        let offered = extensions.has("STARTTLS");
        match settings.tls {
            TlsPolicy::None | TlsPolicy::Implicit => return Ok(false),
            TlsPolicy::Opportunistic if !(offer_starttls && offered) => return Ok(false),
            TlsPolicy::Required | TlsPolicy::Verified if !offered => {
                return Err(self.fail_required("the server does not offer STARTTLS".into()));
            }
            _ => {}
        }
        let reply = self.command("STARTTLS", Stage::StartTls).await?;
        let refused = matches!(
            reply.severity(),
            Severity::TransientNegative | Severity::PermanentNegative
        );
        if refused && reply.code != 421 {
            if required {
                return Err(self.fail_required(format!("it refused STARTTLS: {reply}")));
            }
            self.transcript
                .info("STARTTLS refused; continuing without TLS");
            return Ok(false);
        }
        self.expect(reply, Stage::StartTls, Severity::PositiveCompletion)?;
        if !self.inbox.is_empty() {
            // Anything already buffered was sent in the clear before the
            // handshake; accepting it as if it came over TLS would let a
            // man in the middle inject replies (cf. CVE-2011-0411).
            self.transcript.error(format!(
                "discarding {} bytes received before the TLS handshake",
                self.inbox.len()
            ));
            self.inbox.clear();
        }
        let enforce = settings.tls == TlsPolicy::Verified;
        match self.handshake(&settings.extra_roots, enforce).await {
            Ok(()) => Ok(true),
            Err(error) => {
                self.handshake_failed = true;
                let error = if required {
                    self.tls_required(error)
                } else {
                    error
                };
                Err(failed(Stage::StartTls, error))
            }
        }
    }

    fn fail_required(&self, reason: String) -> Ending {
        failed(
            Stage::StartTls,
            SessionError::TlsRequired {
                server: self.server.clone(),
                reason,
            },
        )
    }

    /// Under a policy that demands TLS, a failed handshake is the policy's
    /// failure; a timeout stays a timeout, the more telling of the two.
    fn tls_required(&self, error: SessionError) -> SessionError {
        match error {
            SessionError::Tls { server, reason } => SessionError::TlsRequired {
                server,
                reason: format!("the TLS handshake failed: {reason}"),
            },
            other => other,
        }
    }

    /// The TLS handshake on the current plain stream. `enforce` refuses a
    /// certificate that does not verify, naming the verdict.
    async fn handshake(
        &mut self,
        extra_roots: &[CertificateDer<'static>],
        enforce: bool,
    ) -> Result<(), SessionError> {
        let tls_error = |reason: String| SessionError::Tls {
            server: self.server.clone(),
            reason,
        };
        let built = if enforce {
            tls::enforcing_config(extra_roots)
        } else {
            tls::recording_config(extra_roots)
        };
        let (config, recorder) = built.map_err(|e| tls_error(e.to_string()))?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(tls_error("TLS is already active".to_owned()));
        };
        let limit = self.timeouts.command;
        let connecting = TlsConnector::from(config).connect(server_name(self.host, self.addr), tcp);
        let stream = match timeout(limit, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                self.broken = true;
                if enforce
                    && let Some(verdict) = recorder.take()
                    && verdict != CertVerdict::Trusted
                {
                    return Err(SessionError::TlsRequired {
                        server: self.server.clone(),
                        reason: format!("its certificate is {verdict}"),
                    });
                }
                return Err(tls_error(error.to_string()));
            }
            Err(_) => {
                self.broken = true;
                return Err(SessionError::Timeout {
                    server: self.server.clone(),
                    waiting_for: "the TLS handshake".to_owned(),
                    after: limit,
                });
            }
        };
        // No verdict only happens if verification was skipped, which the
        // recording config (no resumption) should never allow; say so rather
        // than claim anything about the certificate.
        let verdict = recorder.take().unwrap_or_else(|| CertVerdict::Invalid {
            reason: "the certificate was not verified".to_owned(),
        });
        let info = tls::tls_info(stream.get_ref().1, verdict);
        self.transcript.info(format!(
            "TLS started with cipher {}:{}",
            info.version, info.cipher
        ));
        self.transcript
            .info(format!("TLS certificate: {}", info.certificate));
        self.tls = Some(info);
        self.stream = Stream::Tls(Box::new(stream));
        Ok(())
    }

    /// AUTH (RFC 4954) with the first acceptable mechanism the server
    /// offers. Credentials go only where no third party can read them,
    /// unless the caller allowed it.
    async fn authenticate(&mut self, auth: &Auth) -> Result<(), Ending> {
        let refuse = |reason: String| SessionError::PlaintextAuthRefused {
            server: self.server.clone(),
            reason,
        };
        if !auth.allow_plaintext {
            match &self.tls {
                None => {
                    return Err(failed(
                        Stage::Auth,
                        refuse("the connection is not encrypted".into()),
                    ));
                }
                Some(info) if info.certificate != CertVerdict::Trusted => {
                    return Err(failed(
                        Stage::Auth,
                        refuse(format!("its TLS certificate is {}", info.certificate)),
                    ));
                }
                Some(_) => {}
            }
        }
        let unavailable = |reason: String| {
            failed(
                Stage::Auth,
                SessionError::AuthUnavailable {
                    server: self.server.clone(),
                    reason,
                },
            )
        };
        let Some(offered) = self.extensions.params("AUTH") else {
            return Err(unavailable("it does not offer AUTH".into()));
        };
        let Some(mechanism) = auth.choose(&offered) else {
            return Err(unavailable(format!(
                "it offers {} and we allow {}",
                if offered.is_empty() {
                    "no mechanism".to_owned()
                } else {
                    offered.join(" ")
                },
                auth.wanted_names()
            )));
        };
        match mechanism {
            // RFC 4954 §4: "*" cancels an exchange the server wants to go on with.
            AuthMechanism::Plain => {
                self.sasl_initial(mechanism, auth::plain_response(auth), "*")
                    .await
            }
            // Google's XOAUTH2: a 334 carries the error details and waits for
            // an empty line before the final 5xx.
            AuthMechanism::Xoauth2 => {
                self.sasl_initial(mechanism, auth::xoauth2_response(auth), "")
                    .await
            }
            AuthMechanism::Login => self.sasl_login(auth).await,
        }
    }

    /// A mechanism with an initial response (RFC 4954 §4).
    async fn sasl_initial(
        &mut self,
        mechanism: AuthMechanism,
        response: String,
        answer_to_more: &str,
    ) -> Result<(), Ending> {
        let name = mechanism.as_str();
        let line = format!("AUTH {name} {response}");
        let reply = if line.len() + 2 <= MAX_COMMAND_LINE {
            self.command_redacted(&line, &format!("AUTH {name} <redacted>"))
                .await?
        } else {
            let reply = self.command(&format!("AUTH {name}"), Stage::Auth).await?;
            self.expect(reply, Stage::Auth, Severity::PositiveIntermediate)?;
            self.command_redacted(&response, "<redacted>").await?
        };
        let reply = if reply.code == 334 {
            self.command(answer_to_more, Stage::Auth).await?
        } else {
            reply
        };
        self.expect(reply, Stage::Auth, Severity::PositiveCompletion)
            .map(drop)
    }

    /// LOGIN: user name and password, each in answer to a 334.
    async fn sasl_login(&mut self, auth: &Auth) -> Result<(), Ending> {
        let reply = self.command("AUTH LOGIN", Stage::Auth).await?;
        self.expect(reply, Stage::Auth, Severity::PositiveIntermediate)?;
        let reply = self
            .command_redacted(&auth::base64(auth.username.as_bytes()), "<redacted>")
            .await?;
        self.expect(reply, Stage::Auth, Severity::PositiveIntermediate)?;
        let reply = self
            .command_redacted(
                &auth::base64(auth.password.expose().as_bytes()),
                "<redacted>",
            )
            .await?;
        self.expect(reply, Stage::Auth, Severity::PositiveCompletion)
            .map(drop)
    }

    /// Stops here if the caller asked to.
    fn stop_if(&mut self, settings: &SendSettings, here: QuitAfter) -> Result<(), Ending> {
        match settings.quit_after {
            Some(after) if after == here => Err(self.stopped(after)),
            _ => Ok(()),
        }
    }

    fn stopped(&mut self, after: QuitAfter) -> Ending {
        self.transcript
            .info(format!("Stopping after {after} as asked"));
        failed(after.stage(), SessionError::Stopped { after })
    }

    /// Whether the next transaction can use this connection.
    fn usable_after(&self, ending: &Ending) -> bool {
        if self.broken {
            return false;
        }
        match ending {
            Ending::Accepted { .. } => true,
            Ending::Refused { reply, .. } => reply.code != 421,
            Ending::Failed { error, .. } => matches!(error, SessionError::Stopped { .. }),
        }
    }

    /// Ends the connection after `ending`: QUIT where the dialogue is still
    /// in step, nothing where it is not.
    async fn close(&mut self, ending: &Ending) {
        match ending {
            Ending::Failed {
                error:
                    SessionError::Stopped {
                        after: QuitAfter::Connect,
                    },
                ..
            } => {
                let _ = timeout(QUIT_TIMEOUT, self.stream.shutdown()).await;
            }
            Ending::Failed {
                error: SessionError::Stopped { .. },
                ..
            } => self.quit().await,
            Ending::Failed { error, .. } => {
                self.transcript.error(error.to_string());
                // Our own refusals leave the dialogue in step: say goodbye.
                let in_step = matches!(
                    error,
                    SessionError::TlsRequired { .. }
                        | SessionError::PlaintextAuthRefused { .. }
                        | SessionError::AuthUnavailable { .. }
                );
                if in_step && !self.broken && !matches!(self.stream, Stream::Gone) {
                    self.quit().await;
                }
            }
            // 421: the server is closing the channel (RFC 5321 §3.8).
            Ending::Refused { reply, .. } if reply.code == 421 => {}
            _ if self.broken => {}
            _ => self.quit().await,
        }
    }

    /// The attempt for the current message; its transcript leaves the session.
    fn attempt(&mut self, ending: Ending) -> Attempt {
        let transcript = std::mem::take(&mut self.transcript);
        Attempt::new(
            self.host,
            Some(self.addr),
            self.tls.clone(),
            transcript,
            ending,
        )
    }

    /// QUIT, best-effort: its reply or failure does not change the ending.
    async fn quit(&mut self) {
        let limit = self.timeouts.command.min(QUIT_TIMEOUT);
        self.transcript.sent("QUIT", self.in_tls());
        let result = match self.write(b"QUIT\r\n", limit, "QUIT to be sent").await {
            Ok(()) => self.read_reply(limit, "the reply to QUIT").await.map(drop),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            self.transcript.error(error.to_string());
        }
        // For TLS this sends close_notify; a server that ignores it is harmless.
        let _ = timeout(limit, self.stream.shutdown()).await;
    }

    /// Sends one command line and reads its reply, both under the command timeout.
    async fn command(&mut self, line: &str, stage: Stage) -> Result<Reply, Ending> {
        self.transcript.sent(line, self.in_tls());
        let (sending, awaiting) = phrases(line);
        self.exchange(line, stage, sending, awaiting).await
    }

    /// A command line that carries credentials: the transcript gets `shown`.
    async fn command_redacted(&mut self, line: &str, shown: &str) -> Result<Reply, Ending> {
        let kind = if self.in_tls() {
            LineKind::SentTls
        } else {
            LineKind::Sent
        };
        self.transcript.push_redacted(kind, shown);
        self.exchange(
            line,
            Stage::Auth,
            "the AUTH exchange to be sent",
            "the reply in the AUTH exchange",
        )
        .await
    }

    async fn exchange(
        &mut self,
        line: &str,
        stage: Stage,
        sending: &str,
        awaiting: &str,
    ) -> Result<Reply, Ending> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        let written = self.write(&out, self.timeouts.command, sending).await;
        self.out = out;
        written.map_err(|error| failed(stage, error))?;
        self.read_reply(self.timeouts.command, awaiting)
            .await
            .map_err(|error| failed(stage, error))
    }

    /// Classifies a reply: the wanted severity passes; 4xx/5xx end the
    /// transaction as refused; anything else is a protocol error.
    fn expect(&self, reply: Reply, stage: Stage, want: Severity) -> Result<Reply, Ending> {
        let severity = reply.severity();
        if severity == want {
            Ok(reply)
        } else if matches!(
            severity,
            Severity::TransientNegative | Severity::PermanentNegative
        ) {
            Err(Ending::Refused { stage, reply })
        } else {
            Err(failed(
                stage,
                SessionError::UnexpectedReply {
                    server: self.server.clone(),
                    reply,
                },
            ))
        }
    }

    fn in_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    async fn write(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        waiting_for: &str,
    ) -> Result<(), SessionError> {
        let result = match timeout(limit, self.stream.write_all_flush(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SessionError::io(&self.server, error)),
            Err(_) => Err(SessionError::Timeout {
                server: self.server.clone(),
                waiting_for: waiting_for.to_owned(),
                after: limit,
            }),
        };
        self.broken |= result.is_err();
        result
    }

    /// Reads one complete reply. The timeout covers the whole reply, not each
    /// read, so a server dribbling a byte at a time cannot stretch it.
    async fn read_reply(
        &mut self,
        limit: Duration,
        waiting_for: &str,
    ) -> Result<Reply, SessionError> {
        let result = match timeout(limit, self.read_reply_lines()).await {
            Ok(result) => result,
            Err(_) => Err(SessionError::Timeout {
                server: self.server.clone(),
                waiting_for: waiting_for.to_owned(),
                after: limit,
            }),
        };
        self.broken |= result.is_err();
        result
    }

    async fn read_reply_lines(&mut self) -> Result<Reply, SessionError> {
        let mut lines: Vec<ReplyLine> = Vec::new();
        loop {
            let raw = self.read_line().await?;
            let text = self.record_received(decode_line(&raw));
            let line = ReplyLine::parse(&text).map_err(|problem| self.malformed(problem))?;
            if let Some(first) = lines.first()
                && first.code != line.code
            {
                return Err(self.malformed(ReplyError::CodeMismatch {
                    code: first.code,
                    line: shorten(&text),
                }));
            }
            let last = line.last;
            lines.push(line);
            if last {
                return Reply::from_lines(lines).map_err(|problem| self.malformed(problem));
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(self.malformed(ReplyError::TooManyLines));
            }
        }
    }

    /// Records a received line, with any echoed credentials cut out, and
    /// returns the text as recorded: replies (and so endings) carry that too.
    fn record_received(&mut self, mut text: String) -> String {
        let mut redacted = false;
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "<redacted>");
                redacted = true;
            }
        }
        let kind = if self.in_tls() {
            LineKind::ReceivedTls
        } else {
            LineKind::Received
        };
        if redacted {
            self.transcript.push_redacted(kind, text.clone());
        } else {
            self.transcript.push(kind, text.clone());
        }
        text
    }

    /// Reads one line (terminated by LF, optionally preceded by CR) and
    /// returns it without the terminator. Never buffers much more than
    /// [`MAX_LINE_LEN`].
    async fn read_line(&mut self) -> Result<Vec<u8>, SessionError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.inbox.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.inbox.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_LINE_LEN {
                    return Err(self.overlong_line());
                }
                return Ok(line);
            }
            // +1 leaves room for the CR of a maximal line whose LF is late.
            if self.inbox.len() > MAX_LINE_LEN + 1 {
                return Err(self.overlong_line());
            }
            let n = self
                .stream
                .read_some(&mut chunk)
                .await
                .map_err(|error| SessionError::io(&self.server, error))?;
            if n == 0 {
                if !self.inbox.is_empty() {
                    let partial = decode_line(&self.inbox);
                    self.transcript
                        .error(format!("incomplete line: {}", shorten(&partial)));
                }
                return Err(SessionError::ConnectionClosed {
                    server: self.server.clone(),
                });
            }
            self.inbox.extend_from_slice(&chunk[..n]);
        }
    }

    fn overlong_line(&mut self) -> SessionError {
        let start = decode_line(&self.inbox[..self.inbox.len().min(200)]);
        self.record_received(format!("{start}…"));
        self.malformed(ReplyError::LineTooLong)
    }

    fn malformed(&self, problem: ReplyError) -> SessionError {
        SessionError::MalformedReply {
            server: self.server.clone(),
            problem,
        }
    }
}

/// What must never be echoed into a transcript during AUTH. Very short
/// values are left out: cutting them out would shred ordinary reply text.
fn secrets_of(auth: &Auth) -> Vec<String> {
    let password = auth.password.expose();
    [
        password.to_owned(),
        auth::base64(password.as_bytes()),
        auth::plain_response(auth),
        auth::xoauth2_response(auth),
    ]
    .into_iter()
    .filter(|s| s.len() >= 4)
    .collect()
}

fn failed(stage: Stage, error: SessionError) -> Ending {
    Ending::Failed { stage, error }
}

/// The name the certificate is checked against: the host we meant to reach
/// (the MX name, as DANE and MTA-STS also use), or the address when the host
/// is not a valid DNS name.
fn server_name(host: &str, addr: SocketAddr) -> ServerName<'static> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).unwrap_or(ServerName::IpAddress(addr.ip().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> Reply {
        Reply::parse(lines).unwrap()
    }

    #[test]
    fn ehlo_keywords() {
        let ext = Extensions::from_ehlo(&reply(&[
            "250-mx.lab.test Hello STARTTLS friend",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-starttls",
            "250 8BITMIME",
        ]));
        assert!(ext.has("STARTTLS"));
        assert!(ext.has("SIZE"));
        assert!(ext.has("8bitmime"));
        assert!(!ext.has("SMTPUTF8"));
        // The greeting line's words are not extensions.
        assert!(!Extensions::from_ehlo(&reply(&["250 mx STARTTLS"])).has("STARTTLS"));
    }

    #[test]
    fn mail_command_parameters() {
        let ascii = Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "seed@lab.test".into(),
        };
        let utf8 = Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "séed@lab.test".into(),
        };
        let none = Extensions::default();
        let all = Extensions::from_ehlo(&reply(&["250-mx", "250-8BITMIME", "250 SMTPUTF8"]));
        let cases = [
            (
                &ascii,
                &none,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
            (
                &ascii,
                &all,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
            (
                &ascii,
                &none,
                "café".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
            (
                &ascii,
                &all,
                "café".as_bytes(),
                "MAIL FROM:<probe@lab.test> BODY=8BITMIME",
            ),
            (
                &utf8,
                &all,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test> SMTPUTF8",
            ),
            (
                &utf8,
                &none,
                "plain".as_bytes(),
                "MAIL FROM:<probe@lab.test>",
            ),
        ];
        for (envelope, ext, message, want) in cases {
            assert_eq!(mail_command(envelope, ext, message, None), want);
        }
        let bounce = Envelope {
            mail_from: String::new(),
            rcpt_to: "seed@lab.test".into(),
        };
        assert_eq!(mail_command(&bounce, &none, b"", None), "MAIL FROM:<>");
    }

    #[test]
    fn dsn_parameters_only_when_offered() {
        let envelope = Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "seed+tag@lab.test".into(),
        };
        let dsn = Extensions::from_ehlo(&reply(&["250-mx", "250 DSN"]));
        let none = Extensions::default();
        assert_eq!(
            mail_command(&envelope, &dsn, b"x", Some("run=1+a")),
            "MAIL FROM:<probe@lab.test> RET=HDRS ENVID=run+3D1+2Ba"
        );
        assert_eq!(
            mail_command(&envelope, &none, b"x", Some("run=1+a")),
            "MAIL FROM:<probe@lab.test>"
        );
        assert_eq!(
            rcpt_command(&envelope, true),
            "RCPT TO:<seed+tag@lab.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;seed+2Btag@lab.test"
        );
        assert_eq!(
            rcpt_command(&envelope, false),
            "RCPT TO:<seed+tag@lab.test>"
        );
    }

    #[test]
    fn auth_parameters() {
        let ext = Extensions::from_ehlo(&reply(&[
            "250-mx",
            "250-AUTH PLAIN login",
            "250-AUTH=XOAUTH2",
            "250 SIZE 100",
        ]));
        assert_eq!(
            ext.params("auth"),
            Some(vec!["PLAIN".into(), "LOGIN".into(), "XOAUTH2".into()])
        );
        assert_eq!(ext.params("STARTTLS"), None);
        let bare = Extensions::from_ehlo(&reply(&["250-mx", "250 AUTH"]));
        assert_eq!(bare.params("AUTH"), Some(Vec::new()));
    }

    #[test]
    fn peer_names() {
        let addr: SocketAddr = "127.0.0.1:2525".parse().unwrap();
        assert_eq!(peer_name("127.0.0.1", addr), "127.0.0.1:2525");
        assert_eq!(
            peer_name("mx.lab.test", addr),
            "mx.lab.test[127.0.0.1]:2525"
        );
        let v6: SocketAddr = "[::1]:25".parse().unwrap();
        assert_eq!(peer_name("::1", v6), "[::1]:25");
        assert_eq!(peer_name("[::1]", v6), "[::1]:25");
    }

    #[test]
    fn server_names() {
        let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
        assert!(matches!(
            server_name("mx.lab.test", addr),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("127.0.0.1", addr),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("bad name!", addr),
            ServerName::IpAddress(_)
        ));
    }
}
