//! How a transaction ended: stages, endings and session errors.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::ser::SerializeStruct;

use super::QuitAfter;
use super::reply::{Reply, ReplyError, Severity};

/// The SMTP stage at which a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Finding the MX hosts or a host's addresses.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// Waiting for the server greeting (RFC 5321 §4.3.1 "connection establishment").
    Banner,
    /// EHLO, or the HELO fallback.
    Ehlo,
    /// The STARTTLS command and the TLS handshake (RFC 3207), or the
    /// handshake right after connecting for implicit TLS (RFC 8314 §3.3).
    StartTls,
    /// SMTP authentication (RFC 4954).
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// The DATA command and the transfer of the message content.
    Data,
    /// From the moment the final "." was sent until its reply. A failure here
    /// leaves it unknown whether the server took the message (RFC 1047).
    DataEnd,
}

impl Stage {
    /// The stage's name, as serialised ("mail_from", …).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "ehlo",
            Stage::StartTls => "starttls",
            Stage::Auth => "auth",
            Stage::MailFrom => "mail_from",
            Stage::RcptTo => "rcpt_to",
            Stage::Data => "data",
            Stage::DataEnd => "data_end",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one attempt (or the whole delivery) ended. Evidence only: the verdict module, not this one, decides deferred/rejected.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Ending {
    /// A 2xx reply after the end of DATA.
    Accepted {
        /// The server's reply to the final ".".
        reply: Reply,
    },
    /// A 4xx or 5xx reply at some stage.
    Refused {
        /// The stage whose command was refused.
        stage: Stage,
        /// The refusal.
        reply: Reply,
    },
    /// No usable reply: I/O error, timeout, dropped connection, garbage, DNS failure.
    Failed {
        /// The stage that was under way.
        stage: Stage,
        /// What went wrong.
        error: SessionError,
    },
    /// Never attempted: an earlier message of the same batch had its connection ended by
    /// `host` (a 421, or the connection lost), and a host that just said "not now" is not
    /// contacted again in this run, as a real MTA backs off instead of reconnecting at once.
    NotTried {
        /// The host that ended the connection.
        host: String,
        /// How the earlier message's transaction ended there: the evidence.
        earlier: Box<Ending>,
    },
}

impl Ending {
    /// The stage at which the transaction stopped; `None` when accepted.
    /// For a message not tried, the stage where the earlier message's transaction ended.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Ending::Accepted { .. } => None,
            Ending::Refused { stage, .. } | Ending::Failed { stage, .. } => Some(*stage),
            Ending::NotTried { earlier, .. } => earlier.stage(),
        }
    }

    /// The server's last relevant reply, if the ending has one; for a message not tried, the
    /// reply that ended the connection before it (its evidence).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Ending::Accepted { reply } | Ending::Refused { reply, .. } => Some(reply),
            Ending::Failed { .. } => None,
            Ending::NotTried { earlier, .. } => earlier.reply(),
        }
    }

    /// The error when no reply ended the transaction; for a message not tried, the earlier
    /// message's.
    pub fn error(&self) -> Option<&SessionError> {
        match self {
            Ending::Failed { error, .. } => Some(error),
            Ending::NotTried { earlier, .. } => earlier.error(),
            Ending::Accepted { .. } | Ending::Refused { .. } => None,
        }
    }

    /// True when the message was never attempted ([`Ending::NotTried`]).
    pub fn is_not_tried(&self) -> bool {
        matches!(self, Ending::NotTried { .. })
    }

    /// True when the server accepted the message.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Ending::Accepted { .. })
    }

    /// Whether RFC 5321 §5.1 has us try the next MX host after this ending.
    ///
    /// Yes after a failure to reach or talk to the host, or a 4xx; no after
    /// acceptance or a 5xx (the domain's answer is final). Also no after a
    /// failure at the end of data: the host may have taken the message, and a
    /// second copy through another MX would blur where the probe landed.
    /// Bad local input, a source address that cannot be bound and a stop
    /// the caller asked for are no reason to bother another host either.
    /// A message not tried is not tried elsewhere either: the route is left alone for the
    /// rest of the run.
    pub fn warrants_next_mx(&self) -> bool {
        match self {
            Ending::Accepted { .. } | Ending::NotTried { .. } => false,
            Ending::Refused { reply, .. } => reply.severity() == Severity::TransientNegative,
            Ending::Failed { stage, error } => {
                *stage != Stage::DataEnd
                    && !matches!(
                        error,
                        SessionError::BadInput { .. }
                            | SessionError::Bind { .. }
                            | SessionError::Stopped { .. }
                    )
            }
        }
    }

    /// True when the session stopped early because
    /// [`SendSettings::quit_after`](super::SendSettings::quit_after) asked it
    /// to, not because anything went wrong.
    pub fn is_stopped(&self) -> bool {
        matches!(
            self,
            Ending::Failed {
                error: SessionError::Stopped { .. },
                ..
            }
        )
    }
}

impl Ending {
    /// What ended a connection, for the messages not tried after it: the reply and who said
    /// it (`421 4.7.0 Try later from mx.example`), or the error (which names the server).
    pub fn cause(&self, host: &str) -> String {
        match self {
            Ending::NotTried { host, earlier } => earlier.cause(host),
            _ => match (self.reply(), self.error()) {
                (Some(reply), _) => format!("{reply} from {host}"),
                (None, Some(error)) => error.to_string(),
                (None, None) => format!("{host} ended the connection"),
            },
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Accepted { reply } => write!(f, "accepted: {reply}"),
            Ending::Refused { stage, reply } => write!(f, "refused at {stage}: {reply}"),
            Ending::Failed { stage, error } => write!(f, "failed at {stage}: {error}"),
            Ending::NotTried { host, earlier } => write!(
                f,
                "not tried: {} on an earlier message of this run",
                earlier.cause(host)
            ),
        }
    }
}

/// Why a session produced no usable reply.
///
/// `server` fields name the peer Postfix-style, "host[address]:port" once
/// connected, "host:port" before; messages are self-contained because they go
/// into transcripts and reports that are read without an error chain.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    /// A step did not complete within its configured timeout.
    #[error("{server}: timed out after {} waiting for {waiting_for}", humantime::format_duration(*after))]
    Timeout {
        /// The peer.
        server: String,
        /// What we were waiting for ("the reply to EHLO", "the TLS handshake", …).
        waiting_for: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The operating system reported an error on the connection.
    #[error("I/O error with {server}: {error}")]
    Io {
        /// The peer.
        server: String,
        /// The error (shared so that endings can be cloned).
        error: Arc<io::Error>,
    },
    /// The server closed the connection when we expected a reply.
    #[error("{server} closed the connection")]
    ConnectionClosed {
        /// The peer.
        server: String,
    },
    /// The server's reply broke RFC 5321 §4.2 syntax or our size limits.
    #[error("{server} sent a malformed reply: {problem}")]
    MalformedReply {
        /// The peer.
        server: String,
        /// What was wrong with it.
        problem: ReplyError,
    },
    /// A well-formed reply that makes no sense at this stage (e.g. 354 to MAIL).
    #[error("{server} sent an unexpected reply: {reply}")]
    UnexpectedReply {
        /// The peer.
        server: String,
        /// The reply.
        reply: Reply,
    },
    /// The TLS handshake failed (or TLS could not be set up locally).
    #[error("TLS with {server} failed: {reason}")]
    Tls {
        /// The peer.
        server: String,
        /// The TLS library's explanation.
        reason: String,
    },
    /// A DNS lookup failed.
    #[error("DNS lookup of {name} failed: {reason}")]
    Dns {
        /// The name looked up.
        name: String,
        /// The resolver's explanation.
        reason: String,
        /// True when the name does not exist (NXDOMAIN), a permanent condition.
        nxdomain: bool,
    },
    /// The domain publishes a null MX (RFC 7505): it accepts no mail.
    #[error("{domain} publishes a null MX (RFC 7505): it accepts no mail")]
    NullMx {
        /// The recipient domain.
        domain: String,
    },
    /// The host name resolved to no usable address.
    #[error("{host} has no IPv4 or IPv6 address")]
    NoAddresses {
        /// The host.
        host: String,
    },
    /// Our own input would break the protocol (e.g. a line break in an address).
    #[error("refusing to send {what} {value:?}: {why}")]
    BadInput {
        /// Which input ("MAIL FROM address", …).
        what: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The TLS policy demanded TLS (or a verified certificate) and did not
    /// get it: STARTTLS not offered or refused, the handshake failed, or the
    /// certificate did not verify. Nothing was sent after that.
    #[error("TLS required with {server}, but {reason}")]
    TlsRequired {
        /// The peer.
        server: String,
        /// What was missing, e.g. "the server does not offer STARTTLS".
        reason: String,
    },
    /// Credentials were not sent because the connection could be read by a
    /// third party: no TLS, or TLS with an unverified certificate, and the
    /// caller did not allow that.
    #[error("refusing to send credentials to {server}: {reason}")]
    PlaintextAuthRefused {
        /// The peer.
        server: String,
        /// Why the connection does not qualify.
        reason: String,
    },
    /// AUTH could not be attempted: the server offers no AUTH, or no
    /// mechanism we are allowed to use (RFC 4954 §3).
    #[error("cannot authenticate with {server}: {reason}")]
    AuthUnavailable {
        /// The peer.
        server: String,
        /// What the server offers and we allow.
        reason: String,
    },
    /// The source address could not be bound (not an address of this host,
    /// or already in use).
    #[error("cannot bind the source address {source_ip}: {error}")]
    Bind {
        /// The source address asked for.
        source_ip: IpAddr,
        /// The operating system's error (shared so that endings can be cloned).
        error: Arc<io::Error>,
    },
    /// Every address of the host is of the other family than the source address.
    #[error("{host} has no {family} address to reach from the source address {source_ip}")]
    NoAddressOfFamily {
        /// The host.
        host: String,
        /// The source address asked for.
        source_ip: IpAddr,
        /// "IPv4" or "IPv6", the source address's family.
        family: &'static str,
    },
    /// The session stopped where the caller asked it to (swaks's
    /// `--quit-after`); nothing went wrong.
    #[error("stopped after {after} as asked")]
    Stopped {
        /// Where.
        after: QuitAfter,
    },
}

impl SessionError {
    /// A stable, machine-readable name for the kind of error ("timeout", …).
    pub fn kind(&self) -> &'static str {
        match self {
            SessionError::Timeout { .. } => "timeout",
            SessionError::Io { .. } => "io",
            SessionError::ConnectionClosed { .. } => "connection_closed",
            SessionError::MalformedReply { .. } => "malformed_reply",
            SessionError::UnexpectedReply { .. } => "unexpected_reply",
            SessionError::Tls { .. } => "tls",
            SessionError::Dns { .. } => "dns",
            SessionError::NullMx { .. } => "null_mx",
            SessionError::NoAddresses { .. } => "no_addresses",
            SessionError::BadInput { .. } => "bad_input",
            SessionError::TlsRequired { .. } => "tls_required",
            SessionError::PlaintextAuthRefused { .. } => "plaintext_auth_refused",
            SessionError::AuthUnavailable { .. } => "auth_unavailable",
            SessionError::Bind { .. } => "bind",
            SessionError::NoAddressOfFamily { .. } => "no_address_of_family",
            SessionError::Stopped { .. } => "stopped",
        }
    }

    pub(crate) fn io(server: &str, error: io::Error) -> SessionError {
        // A peer that vanished is the same evidence whether the kernel saw a
        // FIN at a read or a reset at a write; keep Io for the rest.
        if error.kind() == io::ErrorKind::UnexpectedEof {
            return SessionError::ConnectionClosed {
                server: server.to_owned(),
            };
        }
        SessionError::Io {
            server: server.to_owned(),
            error: Arc::new(error),
        }
    }
}

impl serde::Serialize for SessionError {
    /// Serialises as `{"kind": …, "message": …}`: the kind for programs, the
    /// message for people; the inner error types are not serialisable.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SessionError", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines: vec!["x".into()],
        }
    }

    #[test]
    fn next_mx_rules() {
        let timeout = |stage| Ending::Failed {
            stage,
            error: SessionError::Timeout {
                server: "mx".into(),
                waiting_for: "reply".into(),
                after: Duration::from_secs(1),
            },
        };
        assert!(!Ending::Accepted { reply: reply(250) }.warrants_next_mx());
        assert!(
            Ending::Refused {
                stage: Stage::RcptTo,
                reply: reply(450)
            }
            .warrants_next_mx()
        );
        assert!(
            Ending::Refused {
                stage: Stage::Banner,
                reply: reply(421)
            }
            .warrants_next_mx()
        );
        assert!(
            !Ending::Refused {
                stage: Stage::RcptTo,
                reply: reply(550)
            }
            .warrants_next_mx()
        );
        assert!(timeout(Stage::Connect).warrants_next_mx());
        assert!(timeout(Stage::Data).warrants_next_mx());
        assert!(!timeout(Stage::DataEnd).warrants_next_mx());
        assert!(
            !Ending::Failed {
                stage: Stage::MailFrom,
                error: SessionError::BadInput {
                    what: "x",
                    value: "y".into(),
                    why: "z"
                }
            }
            .warrants_next_mx()
        );
    }

    #[test]
    fn ending_serializes_with_outcome_tag() {
        let ending = Ending::Failed {
            stage: Stage::Ehlo,
            error: SessionError::ConnectionClosed {
                server: "mx.lab.test[127.0.0.1]:25".into(),
            },
        };
        let json = serde_json::to_value(&ending).unwrap();
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["stage"], "ehlo");
        assert_eq!(json["error"]["kind"], "connection_closed");
        assert_eq!(
            json["error"]["message"],
            "mx.lab.test[127.0.0.1]:25 closed the connection"
        );
        assert_eq!(
            ending.to_string(),
            "failed at ehlo: mx.lab.test[127.0.0.1]:25 closed the connection"
        );
    }

    #[test]
    fn timeout_message_is_human() {
        let error = SessionError::Timeout {
            server: "mx:25".into(),
            waiting_for: "the reply to EHLO".into(),
            after: Duration::from_millis(300),
        };
        assert_eq!(
            error.to_string(),
            "mx:25: timed out after 300ms waiting for the reply to EHLO"
        );
    }
}
