//! Sending probe messages directly to the recipient's mail exchanger, the way
//! an MTA would, while keeping a swaks-like record of every SMTP reply.
//!
//! [`deliver`] is the entry point. It never fails: every outcome, from a DNS
//! failure to acceptance, is an [`Ending`] on the last [`Attempt`], and the
//! verdict module decides what it means.

pub mod data;
pub mod mx;
pub mod outcome;
pub mod reply;
mod session;
pub mod transcript;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::CertificateDer;

pub use data::encode_data;
pub use mx::{MxHost, MxPlan};
pub use outcome::{Ending, SessionError, Stage};
pub use reply::{EnhancedStatus, Reply, ReplyError, Severity};
pub use transcript::{LineKind, Transcript, TranscriptLine};

use crate::tls::TlsInfo;

/// The SMTP port MX delivery uses (RFC 5321 §4.5.4.2).
pub const SMTP_PORT: u16 = 25;

/// Where the message goes: a fixed host:port (config override), or the recipient domain's MX (port 25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A fixed server, e.g. a lab relay; the host may be a name or an address.
    Fixed {
        /// Host name or address literal ("[::1]" and "::1" both work).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// The recipient domain's mail exchangers, found via DNS.
    Mx {
        /// The recipient domain.
        domain: String,
    },
}

/// The SMTP envelope (RFC 5321 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path, without angle brackets; empty for the null sender.
    pub mail_from: String,
    /// The forward-path, without angle brackets.
    pub rcpt_to: String,
}

/// How long each network step may take.
///
/// The defaults follow Postfix's smtp(8) client, which tracks RFC 5321
/// §4.5.3.2: a probe should wait for a slow or tarpitting server as long as
/// a real MTA would, or it would report failures a real sender never sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Each DNS lookup, and each TCP connection attempt (per address).
    /// Default 30 s (Postfix `smtp_connect_timeout`).
    pub connect: Duration,
    /// Each command's write and its whole reply, the banner, the TLS
    /// handshake, and sending the message content. Default 300 s (RFC 5321
    /// §4.5.3.2 and Postfix `smtp_helo_timeout`, `smtp_rcpt_timeout`, …).
    /// QUIT gets at most 5 s of it: by then the outcome is already known.
    pub command: Duration,
    /// The reply to the final "." (the server may run content filters then).
    /// Default 600 s (RFC 5321 §4.5.3.2.6, Postfix `smtp_data_done_timeout`):
    /// giving up earlier risks a message the server accepted after we left.
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(300),
            data_end: Duration::from_secs(600),
        }
    }
}

/// Client settings for a delivery.
#[derive(Debug, Clone)]
pub struct SendSettings {
    /// The name we give in EHLO/HELO.
    pub ehlo: String,
    /// Network timeouts.
    pub timeouts: Timeouts,
    /// Extra trust anchors for judging STARTTLS certificates (besides the
    /// webpki roots), e.g. a lab CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// The record of one connection (or of a failure to get one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    /// The host tried: the MX host, the fixed host, or the recipient domain
    /// when the MX lookup itself failed.
    pub host: String,
    /// The address connected to; `None` if no connection was made.
    pub addr: Option<SocketAddr>,
    /// What TLS negotiated, if STARTTLS succeeded.
    pub tls: Option<TlsInfo>,
    /// Everything said on the connection.
    pub transcript: Transcript,
    /// How it ended.
    pub ending: Ending,
}

/// All attempts made to deliver one message, in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    /// One per connection (a TLS fallback adds a second one for the same
    /// host), or a single unconnected one when resolution failed.
    pub attempts: Vec<Attempt>,
}

/// Stands in for an ending when there were no attempts, which [`deliver`]
/// never produces but a hand-built `Delivery` might.
static NO_ATTEMPTS: Ending = Ending::Failed {
    stage: Stage::Resolve,
    error: SessionError::NoAddresses {
        host: String::new(),
    },
};

impl Delivery {
    /// How the delivery ended: the last attempt's ending.
    pub fn ending(&self) -> &Ending {
        self.attempts
            .last()
            .map_or(&NO_ATTEMPTS, |attempt| &attempt.ending)
    }

    fn single_failure(host: &str, stage: Stage, error: SessionError) -> Delivery {
        let mut transcript = Transcript::new();
        transcript.error(error.to_string());
        Delivery {
            attempts: vec![Attempt {
                host: host.to_owned(),
                addr: None,
                tls: None,
                transcript,
                ending: Ending::Failed { stage, error },
            }],
        }
    }
}

/// Delivers one message. Never panics, never returns Err: every failure is an Ending.
///
/// Each host is tried with opportunistic STARTTLS; if the TLS handshake
/// fails, the same host is tried once more in the clear, as Postfix does at
/// security level "may". With [`Route::Mx`], hosts are tried in preference
/// order until one accepts or refuses permanently (RFC 5321 §5.1).
pub async fn deliver(
    route: &Route,
    envelope: &Envelope,
    message: &[u8],
    settings: &SendSettings,
) -> Delivery {
    let target = match route {
        Route::Fixed { host, .. } => host,
        Route::Mx { domain } => domain,
    };
    if let Err((stage, error)) = check_input(envelope, settings) {
        return Delivery::single_failure(target, stage, error);
    }
    match route {
        Route::Fixed { host, port } => {
            let targets = [Target {
                host: host.clone(),
                note: format!("Fixed route to {host} port {port}"),
            }];
            deliver_to_hosts(
                &targets,
                *port,
                &HostResolver::System,
                envelope,
                message,
                settings,
            )
            .await
        }
        Route::Mx { domain } => {
            let limit = settings.timeouts.connect;
            let resolver = match mx::system_resolver() {
                Ok(resolver) => resolver,
                Err(error) => return Delivery::single_failure(domain, Stage::Resolve, error),
            };
            let targets = match mx::lookup(&resolver, domain, limit).await {
                Ok(plan) => targets_for(domain, plan),
                Err(error) => return Delivery::single_failure(domain, Stage::Resolve, error),
            };
            let resolver = HostResolver::Dns(Box::new(resolver));
            deliver_to_hosts(&targets, SMTP_PORT, &resolver, envelope, message, settings).await
        }
    }
}

/// A host to try, with a note saying why, for the top of its transcript.
struct Target {
    host: String,
    note: String,
}

fn targets_for(domain: &str, plan: MxPlan) -> Vec<Target> {
    match plan {
        MxPlan::Exchangers(hosts) => hosts
            .into_iter()
            .map(|mx| Target {
                note: format!("MX {} for {domain}: {}", mx.preference, mx.host),
                host: mx.host,
            })
            .collect(),
        MxPlan::Implicit { host } => vec![Target {
            note: format!("No MX records for {domain}; using {host} itself (implicit MX)"),
            host,
        }],
        // mx::lookup turns a null MX into an error; no host is right anyway.
        MxPlan::NullMx => Vec::new(),
    }
}

/// How host names become addresses.
enum HostResolver {
    /// The operating system's resolver (getaddrinfo: /etc/hosts, then DNS),
    /// for fixed routes, which users expect to behave like any other tool.
    System,
    /// hickory, for MX hosts, so that MX and address lookups agree.
    Dns(Box<hickory_resolver::TokioResolver>),
    /// Fixed answers, so the MX fallback logic can be tested on loopback.
    #[cfg(test)]
    Static(Vec<(String, SocketAddr)>),
}

impl HostResolver {
    async fn addresses(
        &self,
        host: &str,
        port: u16,
        limit: Duration,
    ) -> Result<Vec<SocketAddr>, SessionError> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addrs = match self {
            HostResolver::System => {
                match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
                    Err(_) => {
                        return Err(SessionError::Dns {
                            name: host.to_owned(),
                            reason: format!(
                                "no answer within {}",
                                humantime::format_duration(limit)
                            ),
                            nxdomain: false,
                        });
                    }
                    Ok(Err(error)) => {
                        return Err(SessionError::Dns {
                            name: host.to_owned(),
                            reason: error.to_string(),
                            nxdomain: false,
                        });
                    }
                    Ok(Ok(addrs)) => addrs.collect(),
                }
            }
            HostResolver::Dns(resolver) => mx::addresses(resolver, host, port, limit).await?,
            #[cfg(test)]
            HostResolver::Static(table) => table
                .iter()
                .filter(|(name, _)| name == host)
                .map(|(_, addr)| *addr)
                .collect(),
        };
        if addrs.is_empty() {
            return Err(SessionError::NoAddresses {
                host: host.to_owned(),
            });
        }
        Ok(addrs)
    }
}

async fn deliver_to_hosts(
    targets: &[Target],
    port: u16,
    resolver: &HostResolver,
    envelope: &Envelope,
    message: &[u8],
    settings: &SendSettings,
) -> Delivery {
    let mut attempts: Vec<Attempt> = Vec::new();
    for target in targets {
        let mut transcript = Transcript::new();
        transcript.info(target.note.clone());
        match resolver
            .addresses(&target.host, port, settings.timeouts.connect)
            .await
        {
            Err(error) => {
                transcript.error(error.to_string());
                attempts.push(Attempt {
                    host: target.host.clone(),
                    addr: None,
                    tls: None,
                    transcript,
                    ending: Ending::Failed {
                        stage: Stage::Resolve,
                        error,
                    },
                });
            }
            Ok(addrs) => {
                let (attempt, handshake_failed) = session::run(
                    &target.host,
                    &addrs,
                    transcript,
                    envelope,
                    message,
                    settings,
                    true,
                )
                .await;
                attempts.push(attempt);
                if handshake_failed {
                    let mut transcript = Transcript::new();
                    transcript.info(format!(
                        "Retrying {} without STARTTLS after the TLS handshake failed",
                        target.host
                    ));
                    let (attempt, _) = session::run(
                        &target.host,
                        &addrs,
                        transcript,
                        envelope,
                        message,
                        settings,
                        false,
                    )
                    .await;
                    attempts.push(attempt);
                }
            }
        }
        let go_on = attempts
            .last()
            .is_some_and(|attempt| attempt.ending.warrants_next_mx());
        if !go_on {
            break;
        }
    }
    Delivery { attempts }
}

/// Rejects input that would corrupt the SMTP dialogue before anything is
/// sent: a line break in an address would smuggle in extra commands.
fn check_input(envelope: &Envelope, settings: &SendSettings) -> Result<(), (Stage, SessionError)> {
    let bad = |what, value: &str, why| SessionError::BadInput {
        what,
        value: value.to_owned(),
        why,
    };
    let ehlo = &settings.ehlo;
    if ehlo.is_empty() {
        return Err((Stage::Ehlo, bad("EHLO name", ehlo, "it is empty")));
    }
    if ehlo.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err((
            Stage::Ehlo,
            bad(
                "EHLO name",
                ehlo,
                "it contains white space or control characters",
            ),
        ));
    }
    let path_problem = |address: &str| {
        address
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>')
            .then_some("it contains angle brackets or control characters")
    };
    if let Some(why) = path_problem(&envelope.mail_from) {
        return Err((
            Stage::MailFrom,
            bad("MAIL FROM address", &envelope.mail_from, why),
        ));
    }
    if envelope.rcpt_to.is_empty() {
        return Err((
            Stage::RcptTo,
            bad("RCPT TO address", &envelope.rcpt_to, "it is empty"),
        ));
    }
    if let Some(why) = path_problem(&envelope.rcpt_to) {
        return Err((
            Stage::RcptTo,
            bad("RCPT TO address", &envelope.rcpt_to, why),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    fn settings() -> SendSettings {
        SendSettings {
            ehlo: "probe.lab.test".into(),
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                command: Duration::from_secs(2),
                data_end: Duration::from_secs(2),
            },
            extra_roots: Vec::new(),
        }
    }

    fn envelope() -> Envelope {
        Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "seed@lab.test".into(),
        }
    }

    /// A one-connection SMTP server that answers RCPT with `rcpt_reply` and
    /// accepts everything else.
    async fn mx_server(rcpt_reply: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &str = if in_data {
                    if line != "." {
                        continue;
                    }
                    in_data = false;
                    "250 2.0.0 queued\r\n"
                } else if line.starts_with("RCPT") {
                    rcpt_reply
                } else if line == "DATA" {
                    in_data = true;
                    "354 go ahead\r\n"
                } else if line == "QUIT" {
                    "221 bye\r\n"
                } else {
                    "250 ok\r\n"
                };
                write.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (addr, task)
    }

    fn targets(names: &[&str]) -> Vec<Target> {
        names
            .iter()
            .map(|&host| Target {
                host: host.to_owned(),
                note: format!("MX for lab.test: {host}"),
            })
            .collect()
    }

    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
        // dropped here: connecting to it is refused
    }

    #[tokio::test]
    async fn transient_refusal_moves_to_next_mx() {
        let (first, first_task) = mx_server("451 4.3.0 try later\r\n").await;
        let (second, second_task) = mx_server("250 ok\r\n").await;
        let resolver = HostResolver::Static(vec![
            ("mx1.lab.test".into(), first),
            ("mx2.lab.test".into(), second),
        ]);
        let delivery = deliver_to_hosts(
            &targets(&["mx1.lab.test", "mx2.lab.test"]),
            SMTP_PORT,
            &resolver,
            &envelope(),
            b"Subject: x\n\nhi\n",
            &settings(),
        )
        .await;
        let hosts: Vec<&str> = delivery.attempts.iter().map(|a| a.host.as_str()).collect();
        assert_eq!(hosts, ["mx1.lab.test", "mx2.lab.test"]);
        assert!(matches!(
            &delivery.attempts[0].ending,
            Ending::Refused { stage: Stage::RcptTo, reply } if reply.code == 451
        ));
        assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
        first_task.await.unwrap();
        second_task.await.unwrap();
    }

    #[tokio::test]
    async fn permanent_refusal_stops_at_first_mx() {
        let (first, first_task) = mx_server("550 5.1.1 no such user\r\n").await;
        let resolver = HostResolver::Static(vec![
            ("mx1.lab.test".into(), first),
            ("mx2.lab.test".into(), closed_port().await),
        ]);
        let delivery = deliver_to_hosts(
            &targets(&["mx1.lab.test", "mx2.lab.test"]),
            SMTP_PORT,
            &resolver,
            &envelope(),
            b"hi\n",
            &settings(),
        )
        .await;
        assert_eq!(delivery.attempts.len(), 1);
        assert!(matches!(
            delivery.ending(),
            Ending::Refused { stage: Stage::RcptTo, reply } if reply.code == 550
        ));
        first_task.await.unwrap();
    }

    #[tokio::test]
    async fn unreachable_and_unresolvable_hosts_move_to_next_mx() {
        let (last, last_task) = mx_server("250 ok\r\n").await;
        let resolver = HostResolver::Static(vec![
            ("down.lab.test".into(), closed_port().await),
            ("mx.lab.test".into(), last),
        ]);
        let delivery = deliver_to_hosts(
            &targets(&["down.lab.test", "nowhere.lab.test", "mx.lab.test"]),
            SMTP_PORT,
            &resolver,
            &envelope(),
            b"hi\n",
            &settings(),
        )
        .await;
        assert_eq!(delivery.attempts.len(), 3);
        assert!(matches!(
            &delivery.attempts[0].ending,
            Ending::Failed {
                stage: Stage::Connect,
                error: SessionError::Io { .. }
            }
        ));
        assert!(matches!(
            &delivery.attempts[1].ending,
            Ending::Failed {
                stage: Stage::Resolve,
                error: SessionError::NoAddresses { .. }
            }
        ));
        assert_eq!(delivery.attempts[1].addr, None);
        assert_eq!(delivery.attempts[2].addr, Some(last));
        assert!(delivery.ending().is_accepted());
        last_task.await.unwrap();
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_connecting() {
        let route = Route::Fixed {
            host: "127.0.0.1".into(),
            port: closed_port().await.port(),
        };
        let mut injected = envelope();
        injected.rcpt_to = "seed@lab.test>\r\nRCPT TO:<other@lab.test".into();
        let delivery = deliver(&route, &injected, b"hi", &settings()).await;
        assert!(matches!(
            delivery.ending(),
            Ending::Failed {
                stage: Stage::RcptTo,
                error: SessionError::BadInput { .. }
            }
        ));
        assert_eq!(delivery.attempts[0].addr, None);

        let mut bad_ehlo = settings();
        bad_ehlo.ehlo = "two words".into();
        let delivery = deliver(&route, &envelope(), b"hi", &bad_ehlo).await;
        assert!(matches!(
            delivery.ending(),
            Ending::Failed {
                stage: Stage::Ehlo,
                error: SessionError::BadInput { .. }
            }
        ));
    }

    #[test]
    fn implicit_mx_targets_the_domain() {
        let targets = targets_for(
            "lab.test",
            MxPlan::Implicit {
                host: "lab.test".into(),
            },
        );
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].host, "lab.test");
    }

    #[test]
    fn empty_delivery_has_an_ending() {
        let delivery = Delivery {
            attempts: Vec::new(),
        };
        assert!(matches!(
            delivery.ending(),
            Ending::Failed {
                stage: Stage::Resolve,
                ..
            }
        ));
    }

    #[test]
    fn deliver_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let route = Route::Mx {
            domain: "lab.test".into(),
        };
        let envelope = envelope();
        let settings = settings();
        // Not awaited: only the type is checked, so no DNS query is made.
        assert_send(deliver(&route, &envelope, b"", &settings));
    }
}
