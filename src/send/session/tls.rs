//! TLS on the session: STARTTLS (RFC 3207) or TLS from the first byte
//! (RFC 8314 §3.3), as the [`TlsPolicy`] asks, with the handshake's details
//! and certificate verdict recorded for the attempt.

use std::net::SocketAddr;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::envelope::Extensions;
use super::wire::Stream;
use super::{Session, failed};
use crate::send::outcome::{Ending, SessionError, Stage};
use crate::send::reply::Severity;
use crate::send::{SendSettings, TlsPolicy};
use crate::tls::{self, CertVerdict};

impl Session<'_> {
    /// STARTTLS and the handshake, as the policy asks. Returns whether TLS is now on.
    ///
    /// Opportunistically, a 4xx/5xx to STARTTLS (other than 421) leaves the
    /// session in its pre-STARTTLS state (RFC 3207 §4), so we carry on in
    /// the clear like an MTA at security level "may" would: refusing TLS is
    /// not refusing mail. A policy that requires TLS fails instead.
    pub(super) async fn start_tls(
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
    pub(super) fn tls_required(&self, error: SessionError) -> SessionError {
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
    pub(super) async fn handshake(
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
