//! The client side of one SMTP connection (RFC 5321 §3, §4.1; STARTTLS per RFC 3207).
//!
//! Commands go out in lockstep, one at a time, without PIPELINING: the
//! transcript then reads as a dialogue, and each reply is unambiguously tied
//! to the command and stage that provoked it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::data::encode_data;
use super::outcome::{Ending, SessionError, Stage};
use super::reply::{MAX_LINE_LEN, MAX_REPLY_LINES, Reply, ReplyError, ReplyLine, Severity};
use super::reply::{decode_line, shorten};
use super::transcript::Transcript;
use super::{Attempt, Envelope, SendSettings, Timeouts};
use crate::tls::{self, CertVerdict, TlsInfo};

/// The most we wait for QUIT's reply: the outcome is already known, so a
/// slow goodbye must not hold up the report.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one connection: connect, converse, say goodbye.
///
/// Returns the attempt and whether the TLS handshake itself failed, in which
/// case the caller retries once without STARTTLS.
pub(crate) async fn run(
    host: &str,
    addrs: &[SocketAddr],
    mut transcript: Transcript,
    envelope: &Envelope,
    message: &[u8],
    settings: &SendSettings,
    offer_starttls: bool,
) -> (Attempt, bool) {
    let (tcp, addr) = match connect(host, addrs, settings.timeouts.connect, &mut transcript).await {
        Ok(connected) => connected,
        Err(error) => {
            let attempt = Attempt {
                host: host.to_owned(),
                addr: None,
                tls: None,
                transcript,
                ending: Ending::Failed {
                    stage: Stage::Connect,
                    error,
                },
            };
            return (attempt, false);
        }
    };
    let mut session = Session {
        host,
        addr,
        server: peer_name(host, addr),
        stream: Stream::Plain(tcp),
        inbox: Vec::new(),
        transcript,
        timeouts: settings.timeouts,
        tls: None,
        handshake_failed: false,
    };
    let ending = match session
        .converse(envelope, message, settings, offer_starttls)
        .await
    {
        Ok(reply) => Ending::Accepted { reply },
        Err(ending) => ending,
    };
    match &ending {
        // The connection is out of step or gone; a QUIT would only add noise.
        Ending::Failed { error, .. } => session.transcript.error(error.to_string()),
        // 421: the server is closing the channel (RFC 5321 §3.8).
        Ending::Refused { reply, .. } if reply.code == 421 => {}
        _ => session.quit().await,
    }
    tracing::debug!(server = %session.server, %ending, "SMTP session ended");
    let attempt = Attempt {
        host: host.to_owned(),
        addr: Some(addr),
        tls: session.tls,
        transcript: session.transcript,
        ending,
    };
    (attempt, session.handshake_failed)
}

/// Tries each address in turn; each gets the full connect timeout.
async fn connect(
    host: &str,
    addrs: &[SocketAddr],
    limit: Duration,
    transcript: &mut Transcript,
) -> Result<(TcpStream, SocketAddr), SessionError> {
    let mut last_error = SessionError::NoAddresses {
        host: host.to_owned(),
    };
    for &addr in addrs {
        let server = peer_name(host, addr);
        transcript.info(format!("Trying {server}..."));
        last_error = match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                transcript.info(format!("Connected to {server}."));
                return Ok((stream, addr));
            }
            Ok(Err(error)) => SessionError::io(&server, error),
            Err(_) => SessionError::Timeout {
                server,
                waiting_for: "the TCP connection".to_owned(),
                after: limit,
            },
        };
        transcript.error(last_error.to_string());
    }
    if addrs.is_empty() {
        transcript.error(last_error.to_string());
    }
    Err(last_error)
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

/// The connection, before or after STARTTLS.
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
    /// Upper-cased keywords; parameters are not needed yet.
    keywords: Vec<String>,
}

impl Extensions {
    pub(crate) fn from_ehlo(reply: &Reply) -> Extensions {
        // The first line is the server's name and greeting, not an extension.
        let keywords = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_ascii_uppercase)
            .collect();
        Extensions { keywords }
    }

    pub(crate) fn has(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }
}

/// The MAIL command, with the parameters the content and envelope call for
/// when the server supports them (RFC 6152 8BITMIME, RFC 6531 SMTPUTF8);
/// without support, the plain command goes out and the server decides.
pub(crate) fn mail_command(envelope: &Envelope, extensions: &Extensions, message: &[u8]) -> String {
    let mut command = format!("MAIL FROM:<{}>", envelope.mail_from);
    if !message.is_ascii() && extensions.has("8BITMIME") {
        command.push_str(" BODY=8BITMIME");
    }
    if !(envelope.mail_from.is_ascii() && envelope.rcpt_to.is_ascii()) && extensions.has("SMTPUTF8")
    {
        command.push_str(" SMTPUTF8");
    }
    command
}

struct Session<'a> {
    host: &'a str,
    addr: SocketAddr,
    /// Peer name for messages and logs.
    server: String,
    stream: Stream,
    /// Received bytes not yet consumed as lines.
    inbox: Vec<u8>,
    transcript: Transcript,
    timeouts: Timeouts,
    tls: Option<TlsInfo>,
    handshake_failed: bool,
}

impl Session<'_> {
    /// The whole transaction, up to the reply to the final ".".
    async fn converse(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        settings: &SendSettings,
        offer_starttls: bool,
    ) -> Result<Reply, Ending> {
        let banner = self
            .read_reply(self.timeouts.command, "the banner")
            .await
            .map_err(|error| failed(Stage::Banner, error))?;
        self.expect(banner, Stage::Banner, Severity::PositiveCompletion)?;

        let mut extensions = self.greet(&settings.ehlo).await?;
        if offer_starttls
            && extensions.has("STARTTLS")
            && self.start_tls(&settings.extra_roots).await?
        {
            // RFC 3207 §4.2: forget everything learnt before TLS and ask again.
            extensions = self.greet(&settings.ehlo).await?;
        }

        let mail = mail_command(envelope, &extensions, message);
        let reply = self.command(&mail, Stage::MailFrom).await?;
        self.expect(reply, Stage::MailFrom, Severity::PositiveCompletion)?;

        let rcpt = format!("RCPT TO:<{}>", envelope.rcpt_to);
        let reply = self.command(&rcpt, Stage::RcptTo).await?;
        self.expect(reply, Stage::RcptTo, Severity::PositiveCompletion)?;

        let reply = self.command("DATA", Stage::Data).await?;
        self.expect(reply, Stage::Data, Severity::PositiveIntermediate)?;

        let content = encode_data(message);
        // Only the size: transcripts must never carry message content.
        self.transcript
            .info(format!("{} bytes of message data", content.len()));
        self.write(
            &content,
            self.timeouts.command,
            "the message data to be sent",
        )
        .await
        .map_err(|error| failed(Stage::Data, error))?;

        self.transcript.sent(".", self.in_tls());
        self.write(
            b".\r\n",
            self.timeouts.command,
            "the end of data to be sent",
        )
        .await
        .map_err(|error| failed(Stage::DataEnd, error))?;
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

    /// STARTTLS and the handshake. Returns whether TLS is now on.
    ///
    /// A 4xx/5xx to STARTTLS (other than 421) leaves the session in its
    /// pre-STARTTLS state (RFC 3207 §4), so we carry on in the clear like an
    /// MTA at security level "may" would: refusing TLS is not refusing mail.
    async fn start_tls(
        &mut self,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<bool, Ending> {
        let reply = self.command("STARTTLS", Stage::StartTls).await?;
        let refused = matches!(
            reply.severity(),
            Severity::TransientNegative | Severity::PermanentNegative
        );
        if refused && reply.code != 421 {
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
        match self.handshake(extra_roots).await {
            Ok(()) => Ok(true),
            Err(error) => {
                self.handshake_failed = true;
                Err(failed(Stage::StartTls, error))
            }
        }
    }

    async fn handshake(
        &mut self,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<(), SessionError> {
        let tls_error = |reason: String| SessionError::Tls {
            server: self.server.clone(),
            reason,
        };
        let (config, recorder) =
            tls::recording_config(extra_roots).map_err(|e| tls_error(e.to_string()))?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(tls_error("TLS is already active".to_owned()));
        };
        let limit = self.timeouts.command;
        let connecting = TlsConnector::from(config).connect(server_name(self.host, self.addr), tcp);
        let stream = match timeout(limit, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(tls_error(error.to_string())),
            Err(_) => {
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
        let verb = line.split([' ', ':']).next().unwrap_or(line).to_owned();
        self.transcript.sent(line, self.in_tls());
        let mut wire = Vec::with_capacity(line.len() + 2);
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
        self.write(&wire, self.timeouts.command, &format!("{verb} to be sent"))
            .await
            .map_err(|error| failed(stage, error))?;
        self.read_reply(self.timeouts.command, &format!("the reply to {verb}"))
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
        match timeout(limit, self.stream.write_all_flush(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SessionError::io(&self.server, error)),
            Err(_) => Err(SessionError::Timeout {
                server: self.server.clone(),
                waiting_for: waiting_for.to_owned(),
                after: limit,
            }),
        }
    }

    /// Reads one complete reply. The timeout covers the whole reply, not each
    /// read, so a server dribbling a byte at a time cannot stretch it.
    async fn read_reply(
        &mut self,
        limit: Duration,
        waiting_for: &str,
    ) -> Result<Reply, SessionError> {
        match timeout(limit, self.read_reply_lines()).await {
            Ok(result) => result,
            Err(_) => Err(SessionError::Timeout {
                server: self.server.clone(),
                waiting_for: waiting_for.to_owned(),
                after: limit,
            }),
        }
    }

    async fn read_reply_lines(&mut self) -> Result<Reply, SessionError> {
        let mut lines: Vec<ReplyLine> = Vec::new();
        loop {
            let raw = self.read_line().await?;
            let text = decode_line(&raw);
            self.transcript.received(text.clone(), self.in_tls());
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
        self.transcript.received(format!("{start}…"), self.in_tls());
        self.malformed(ReplyError::LineTooLong)
    }

    fn malformed(&self, problem: ReplyError) -> SessionError {
        SessionError::MalformedReply {
            server: self.server.clone(),
            problem,
        }
    }
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
            assert_eq!(mail_command(envelope, ext, message), want);
        }
        let bounce = Envelope {
            mail_from: String::new(),
            rcpt_to: "seed@lab.test".into(),
        };
        assert_eq!(mail_command(&bounce, &none, b""), "MAIL FROM:<>");
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
