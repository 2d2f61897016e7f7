//! The wire: commands out, replies in (RFC 5321 §4.2), each under its
//! timeout, and every line captured in the transcript as it crosses.
//!
//! A read or write that fails marks the session broken: after that, the
//! dialogue is out of step and nothing more may be said on it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

use super::{Session, failed};
use crate::send::outcome::{Ending, SessionError, Stage};
use crate::send::reply::{MAX_LINE_LEN, MAX_REPLY_LINES, Reply, ReplyError, ReplyLine, Severity};
use crate::send::reply::{decode_line, shorten};
use crate::send::transcript::LineKind;

/// The connection, before or after TLS.
pub(super) enum Stream {
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

    pub(super) async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        }
    }
}

/// What a timeout waits for, by command verb; static, so that the hot path
/// formats nothing unless something goes wrong.
pub(super) fn phrases(line: &str) -> (&'static str, &'static str) {
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

impl Session<'_> {
    /// Sends one command line and reads its reply, both under the command timeout.
    pub(super) async fn command(&mut self, line: &str, stage: Stage) -> Result<Reply, Ending> {
        self.transcript.sent(line, self.in_tls());
        let (sending, awaiting) = phrases(line);
        self.exchange(line, stage, sending, awaiting).await
    }

    /// A command line that carries credentials: the transcript gets `shown`.
    pub(super) async fn command_redacted(
        &mut self,
        line: &str,
        shown: &str,
    ) -> Result<Reply, Ending> {
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
    pub(super) fn expect(
        &self,
        reply: Reply,
        stage: Stage,
        want: Severity,
    ) -> Result<Reply, Ending> {
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

    pub(super) fn in_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    pub(super) async fn write(
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
    pub(super) async fn read_reply(
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
