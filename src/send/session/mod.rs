//! The client side of one SMTP connection (RFC 5321 §3, §4.1), with STARTTLS
//! (RFC 3207), implicit TLS (RFC 8314), AUTH (RFC 4954), DSN (RFC 3461) and
//! PIPELINING (RFC 2920).
//!
//! Without PIPELINING, commands go out in lockstep, so each reply is tied to
//! the command that provoked it. With it, a transaction's RSET, MAIL, RCPT
//! and DATA go out in one write and the replies are matched to them in order
//! (RFC 2920 §3.1 keeps replies in command order); the transcript then shows
//! the commands, then the replies, as they crossed the wire.
//!
//! One [`Session`] type, with an `impl` block per concern, one file each:
//!
//! - this file: connecting, the session's state, and [`run`], which ties the
//!   steps together (open, one transaction per message, close);
//! - [`wire`]: writing commands and reading replies under their timeouts,
//!   with every line captured in the transcript;
//! - [`tls`]: STARTTLS and implicit TLS, recording what the handshake showed;
//! - [`sasl`]: the AUTH exchange (the settings it uses are [`super::auth`]);
//! - [`envelope`]: EHLO, the mail transaction (MAIL, RCPT, DATA, RSET, with
//!   PIPELINING) and QUIT.

mod envelope;
mod sasl;
mod tls;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use super::outcome::{Ending, SessionError, Stage};
use super::reply::Severity;
use super::transcript::{Observer, Transcript};
use super::{Attempt, Outgoing, QuitAfter, SendSettings, Timeouts, TlsPolicy};
use crate::tls::TlsInfo;
use envelope::{Extensions, QUIT_TIMEOUT};
use sasl::secrets_of;
use wire::Stream;

/// What one connection did.
pub(crate) enum RunOutcome {
    /// The connection never reached a transaction (connect, banner, EHLO,
    /// TLS, AUTH, or a requested stop before MAIL): the attempt applies to
    /// every message. `handshake_failed` asks for a retry in the clear.
    Setup {
        attempt: Box<Attempt>,
        handshake_failed: bool,
    },
    /// Transactions ran: messages got their attempt through the sink, as
    /// each ended (at least one); `unreached` were not tried because the
    /// connection was lost, and `lost_after` is how the last settled
    /// transaction ended (a 421, a drop) when that happened.
    Transactions {
        unreached: Vec<usize>,
        lost_after: Option<Ending>,
    },
}

/// What the sink of [`run`] hears about a job.
pub(crate) enum Event {
    /// Its transaction is about to begin: nothing of it is on the wire yet.
    Starting,
    /// Its transaction ended, so did this attempt.
    Ended(Box<Attempt>),
}

/// Runs one connection: connect, set up, one transaction per job, say
/// goodbye. `sink` hears of each transaction just before it begins, and
/// gets its attempt as soon as it ends.
pub(crate) async fn run<S: FnMut(usize, Event)>(
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
        sink(index, Event::Starting);
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
        let lost_after = (!usable).then(|| ending.clone());
        sink(index, Event::Ended(Box::new(session.attempt(ending))));
        if lost_after.is_some() {
            let unreached = jobs[n + 1..].iter().map(|&(index, _)| index).collect();
            return RunOutcome::Transactions {
                unreached,
                lost_after,
            };
        }
    }
    RunOutcome::Transactions {
        unreached: Vec::new(),
        lost_after: None,
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

/// One SMTP connection and what it has learnt so far. Each concern adds its
/// own `impl` block in its own file; the fields live here so that all of
/// them share one state.
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

    /// Stops here if the caller asked to.
    fn stop_if(&mut self, settings: &SendSettings, here: QuitAfter) -> Result<(), Ending> {
        match settings.quit_after {
            Some(after) if after == here => Err(self.stopped(after)),
            _ => Ok(()),
        }
    }

    pub(super) fn stopped(&mut self, after: QuitAfter) -> Ending {
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
            Ending::NotTried { .. } => false,
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
}

/// Every failed step ends the same way; this keeps the call sites short.
fn failed(stage: Stage, error: SessionError) -> Ending {
    Ending::Failed { stage, error }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
