//! Sending probe messages, directly to the recipient's mail exchanger the way
//! an MTA would or through a relay, while keeping a swaks-like record of
//! every SMTP reply.
//!
//! [`deliver`] sends one message, [`deliver_many`] several over one
//! connection. Neither fails: every outcome, from a DNS failure to
//! acceptance, is an [`Ending`] on the last [`Attempt`], and the verdict
//! module decides what it means.

pub mod auth;
pub mod data;
pub mod dsn;
pub mod mx;
pub mod outcome;
pub mod reply;
mod session;
pub mod transcript;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::CertificateDer;

pub use auth::{Auth, AuthMechanism};
pub use data::{encode_data, encode_data_into};
pub use dsn::xtext;
pub use mx::{MxHost, MxPlan};
pub use outcome::{Ending, SessionError, Stage};
pub use reply::{EnhancedStatus, Reply, ReplyError, Severity};
pub use transcript::{LineKind, Observed, Observer, Transcript, TranscriptLine};

use crate::tls::TlsInfo;

/// The SMTP port MX delivery uses (RFC 5321 §4.5.4.2).
pub const SMTP_PORT: u16 = 25;

/// The port for submission over implicit TLS (RFC 8314 §3.3).
pub const SUBMISSIONS_PORT: u16 = 465;

/// Where the message goes: a fixed host:port (config override, relay), or
/// the recipient domain's MX.
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
        /// The port on every exchanger: [`SMTP_PORT`] on the Internet; a lab
        /// may listen elsewhere.
        port: u16,
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

/// One message of a batch for [`deliver_many`] and [`deliver_each`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Who sends it to whom.
    pub envelope: Envelope,
    /// The RFC 5322 message (any line endings; see [`encode_data`]).
    pub message: Vec<u8>,
    /// The envelope id for delivery status notifications (RFC 3461 §4.4):
    /// with it, and when the server offers DSN, MAIL carries `RET=HDRS
    /// ENVID=…` and RCPT `NOTIFY=FAILURE,DELAY ORCPT=…`, so a bounce can be
    /// matched to the probe. Printable ASCII, at most 100 characters.
    pub envid: Option<String>,
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

/// When and how strictly to use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsPolicy {
    /// Never STARTTLS, even when offered.
    None,
    /// STARTTLS when offered (RFC 3207; Postfix security level "may"): the
    /// certificate verdict is recorded, not enforced, and a failed handshake
    /// is retried once in the clear on a new connection.
    #[default]
    Opportunistic,
    /// STARTTLS must be offered and the handshake must succeed (Postfix
    /// "encrypt", `sender.require_tls` for direct delivery); the certificate
    /// verdict is still only recorded. Otherwise the attempt fails with
    /// [`SessionError::TlsRequired`] at [`Stage::StartTls`].
    Required,
    /// As `Required`, and the certificate must verify against the webpki
    /// roots plus [`SendSettings::extra_roots`] (Postfix "secure"): for
    /// relays and submission servers, where credentials go.
    Verified,
    /// TLS from the first byte (RFC 8314 §3.3, port 465), certificate verified.
    Implicit,
}

/// Where to stop a session early, as swaks's `--quit-after` does: QUIT is
/// sent where a session exists, and the ending is
/// [`SessionError::Stopped`] (see [`Ending::is_stopped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuitAfter {
    /// Once TCP is connected; nothing is sent, not even QUIT.
    Connect,
    /// After the banner.
    Banner,
    /// After the EHLO the transaction would use: the second one when
    /// STARTTLS ran, as in swaks.
    Ehlo,
    /// After the TLS handshake (or where it would have been, when TLS is not used).
    Tls,
    /// After AUTH (or where it would have been, without credentials).
    Auth,
    /// After MAIL FROM. With several messages, each transaction stops there
    /// and the next begins after RSET.
    Mail,
    /// After RCPT TO, likewise per message.
    Rcpt,
}

impl QuitAfter {
    /// Every value, in dialogue order.
    pub const ALL: [QuitAfter; 7] = [
        QuitAfter::Connect,
        QuitAfter::Banner,
        QuitAfter::Ehlo,
        QuitAfter::Tls,
        QuitAfter::Auth,
        QuitAfter::Mail,
        QuitAfter::Rcpt,
    ];

    /// The name, as swaks spells it ("connect", "rcpt", …).
    pub fn as_str(self) -> &'static str {
        match self {
            QuitAfter::Connect => "connect",
            QuitAfter::Banner => "banner",
            QuitAfter::Ehlo => "ehlo",
            QuitAfter::Tls => "tls",
            QuitAfter::Auth => "auth",
            QuitAfter::Mail => "mail",
            QuitAfter::Rcpt => "rcpt",
        }
    }

    /// The stage the session is in when it stops.
    pub fn stage(self) -> Stage {
        match self {
            QuitAfter::Connect => Stage::Connect,
            QuitAfter::Banner => Stage::Banner,
            QuitAfter::Ehlo => Stage::Ehlo,
            QuitAfter::Tls => Stage::StartTls,
            QuitAfter::Auth => Stage::Auth,
            QuitAfter::Mail => Stage::MailFrom,
            QuitAfter::Rcpt => Stage::RcptTo,
        }
    }
}

impl fmt::Display for QuitAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Client settings for a delivery.
#[derive(Debug, Clone)]
pub struct SendSettings {
    /// The name we give in EHLO/HELO.
    pub ehlo: String,
    /// Network timeouts.
    pub timeouts: Timeouts,
    /// Extra trust anchors for judging TLS certificates (besides the webpki
    /// roots), e.g. a lab CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The DNS server for MX and address lookups (UDP, TCP for truncated
    /// answers), instead of the system's configuration; with it, a fixed
    /// route's host name is looked up there too.
    pub resolver: Option<SocketAddr>,
    /// The local address every connection is made from. Destination
    /// addresses of the other family are skipped.
    pub source_ip: Option<IpAddr>,
    /// When and how strictly to use TLS.
    pub tls: TlsPolicy,
    /// Credentials, for a relay or submission server; `None` sends no AUTH.
    pub auth: Option<Auth>,
    /// Stop early, for `probe smtp --quit-after`; `None` runs whole transactions.
    pub quit_after: Option<QuitAfter>,
    /// Gets every transcript line as it happens, and the message content as
    /// it is sent (which transcripts never keep).
    pub observer: Option<Observer>,
}

impl Default for SendSettings {
    /// [`SendSettings::new`] with an empty EHLO name, which must be set:
    /// delivery refuses an empty one before connecting.
    fn default() -> Self {
        SendSettings::new(String::new())
    }
}

impl SendSettings {
    /// Settings with this EHLO name and defaults for the rest: Postfix-like
    /// timeouts, opportunistic TLS, system resolver, no AUTH.
    pub fn new(ehlo: impl Into<String>) -> SendSettings {
        SendSettings {
            ehlo: ehlo.into(),
            timeouts: Timeouts::default(),
            extra_roots: Vec::new(),
            resolver: None,
            source_ip: None,
            tls: TlsPolicy::default(),
            auth: None,
            quit_after: None,
            observer: None,
        }
    }

    /// A transcript that feeds the observer, if any.
    fn transcript(&self) -> Transcript {
        Transcript::with_observer(self.observer.clone())
    }
}

/// The record of one connection (or of a failure to get one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    /// The host tried: the MX host, the fixed host, or the recipient domain
    /// when the MX lookup itself failed.
    pub host: String,
    /// The address connected to; `None` if no connection was made.
    pub addr: Option<SocketAddr>,
    /// What TLS negotiated, if it was started.
    pub tls: Option<TlsInfo>,
    /// Everything said on the connection for this message. A message sent
    /// on a connection reused from an earlier one starts with a note saying
    /// so; the banner, EHLO and TLS lines are in the first message's.
    pub transcript: Transcript,
    /// How it ended.
    pub ending: Ending,
}

impl Attempt {
    fn new(
        host: &str,
        addr: Option<SocketAddr>,
        tls: Option<TlsInfo>,
        mut transcript: Transcript,
        ending: Ending,
    ) -> Attempt {
        transcript.detach();
        Attempt {
            host: host.to_owned(),
            addr,
            tls,
            transcript,
            ending,
        }
    }
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
}

/// One failed attempt that never reached a server.
fn unconnected_failure(
    host: &str,
    stage: Stage,
    error: SessionError,
    settings: &SendSettings,
) -> Attempt {
    let mut transcript = settings.transcript();
    transcript.error(error.to_string());
    Attempt::new(
        host,
        None,
        None,
        transcript,
        Ending::Failed { stage, error },
    )
}

/// Delivers one message. Never panics, never returns Err: every failure is an Ending.
///
/// With [`TlsPolicy::Opportunistic`] each host is tried with STARTTLS; if
/// the TLS handshake fails, the same host is tried once more in the clear,
/// as Postfix does at security level "may". With [`Route::Mx`], hosts are
/// tried in preference order until one accepts or refuses permanently
/// (RFC 5321 §5.1).
pub async fn deliver(
    route: &Route,
    envelope: &Envelope,
    message: &[u8],
    settings: &SendSettings,
) -> Delivery {
    let item = Outgoing {
        envelope: envelope.clone(),
        message: message.to_vec(),
        envid: None,
    };
    let mut deliveries = deliver_many(route, std::slice::from_ref(&item), settings).await;
    deliveries.pop().unwrap_or(Delivery {
        attempts: Vec::new(),
    })
}

/// Delivers several messages over one connection while it lasts; one
/// [`Delivery`] per item, in order. See [`deliver_each`].
pub async fn deliver_many(
    route: &Route,
    items: &[Outgoing],
    settings: &SendSettings,
) -> Vec<Delivery> {
    let mut done: Vec<Option<Delivery>> = vec![None; items.len()];
    deliver_each(route, items, settings, &mut |index, delivery: &Delivery| {
        done[index] = Some(delivery.clone());
    })
    .await;
    done.into_iter()
        .map(|delivery| {
            delivery.unwrap_or(Delivery {
                attempts: Vec::new(),
            })
        })
        .collect()
}

/// Delivers several messages over one connection while it lasts, and calls
/// `on_done(index, delivery)` once per item, the moment its delivery is
/// final (so a caller can store it before the next transaction ends). Never
/// panics, never fails as a whole.
///
/// Transactions are separated by RSET (RFC 5321 §4.1.1.5); a refusal of one
/// message does not stop the next. With PIPELINING (RFC 2920) offered, RSET,
/// MAIL, RCPT and DATA go out in one write and their replies are read in
/// order. If the server ends the connection (421) or it is lost, the message
/// in flight gets that ending and the rest are not tried in this call: each
/// gets [`Ending::NotTried`], with that ending as its evidence, and no other
/// host of the route is tried for them. The MX rules of [`deliver`] apply to
/// the message in flight and to a connection that fails before its first
/// transaction.
pub async fn deliver_each<F>(
    route: &Route,
    items: &[Outgoing],
    settings: &SendSettings,
    on_done: &mut F,
) where
    F: FnMut(usize, &Delivery),
{
    deliver_each_watched(route, items, settings, &mut |_| {}, on_done).await;
}

/// [`deliver_each`], and `on_start(index)` just before each transaction of
/// an item begins (before MAIL FROM, so before any of its data is on the
/// wire; again for each MX host it is tried at): a caller can record that the
/// message is being sent, so that a crash from then on leaves a trace.
pub async fn deliver_each_watched<S, F>(
    route: &Route,
    items: &[Outgoing],
    settings: &SendSettings,
    on_start: &mut S,
    on_done: &mut F,
) where
    S: FnMut(usize),
    F: FnMut(usize, &Delivery),
{
    let mut tally = Tally {
        results: vec![
            Delivery {
                attempts: Vec::new()
            };
            items.len()
        ],
        done: vec![false; items.len()],
        on_start,
        on_done,
    };
    let (target, port) = match route {
        Route::Fixed { host, port } => (host, *port),
        Route::Mx { domain, port } => (domain, *port),
    };
    let mut pending = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match check_input(item, settings) {
            Ok(()) => pending.push(index),
            Err((stage, error)) => {
                tally.record(
                    index,
                    unconnected_failure(target, stage, error, settings),
                    true,
                );
            }
        }
    }
    if !pending.is_empty() {
        match plan_route(route, settings).await {
            Ok((targets, resolver)) => {
                let batch = Batch {
                    items,
                    settings,
                    port,
                    resolver: &resolver,
                };
                batch.deliver(&targets, pending, &mut tally).await;
            }
            Err(error) => {
                let attempt = unconnected_failure(target, Stage::Resolve, error, settings);
                for index in pending {
                    tally.record(index, attempt.clone(), true);
                }
            }
        }
    }
    // Whatever is left (no targets at all) is as final as it gets.
    for index in 0..items.len() {
        tally.finish(index);
    }
}

/// The deliveries so far, and who to tell when one starts and when one is final.
struct Tally<'f, S, F> {
    results: Vec<Delivery>,
    done: Vec<bool>,
    on_start: &'f mut S,
    on_done: &'f mut F,
}

impl<S: FnMut(usize), F: FnMut(usize, &Delivery)> Tally<'_, S, F> {
    /// A transaction of the item is about to begin.
    fn start(&mut self, index: usize) {
        (self.on_start)(index);
    }

    /// Adds an attempt; `may_finish` says whether nothing else would be
    /// tried for this item if the ending warrants it.
    fn record(&mut self, index: usize, attempt: Attempt, may_finish: bool) {
        let final_ending = !attempt.ending.warrants_next_mx();
        self.results[index].attempts.push(attempt);
        if may_finish || final_ending {
            self.finish(index);
        }
    }

    fn finish(&mut self, index: usize) {
        if !self.done[index] {
            self.done[index] = true;
            (self.on_done)(index, &self.results[index]);
        }
    }

    fn is_done(&self, index: usize) -> bool {
        self.done[index]
    }
}

/// The hosts to try, and how to find their addresses.
async fn plan_route(
    route: &Route,
    settings: &SendSettings,
) -> Result<(Vec<Target>, HostResolver), SessionError> {
    let dns = || match settings.resolver {
        Some(server) => mx::resolver_at(server),
        None => mx::system_resolver(),
    };
    match route {
        Route::Fixed { host, port } => {
            let target = Target {
                host: host.clone(),
                note: format!("Fixed route to {host} port {port}"),
            };
            let resolver = match settings.resolver {
                Some(_) => HostResolver::Dns(Box::new(dns()?)),
                None => HostResolver::System,
            };
            Ok((vec![target], resolver))
        }
        Route::Mx { domain, .. } => {
            let resolver = dns()?;
            let plan = mx::lookup(&resolver, domain, settings.timeouts.connect).await?;
            Ok((
                targets_for(domain, plan),
                HostResolver::Dns(Box::new(resolver)),
            ))
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
    /// hickory, for MX hosts, so that MX and address lookups agree, and for
    /// every lookup when a resolver address is configured.
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

/// A batch on its way through the hosts of one route.
struct Batch<'a> {
    items: &'a [Outgoing],
    settings: &'a SendSettings,
    port: u16,
    resolver: &'a HostResolver,
}

impl Batch<'_> {
    /// Tries each target in turn with the items that still warrant it.
    async fn deliver<S: FnMut(usize), F: FnMut(usize, &Delivery)>(
        &self,
        targets: &[Target],
        mut pending: Vec<usize>,
        tally: &mut Tally<'_, S, F>,
    ) {
        for (n, target) in targets.iter().enumerate() {
            pending.retain(|&index| !tally.is_done(index));
            if pending.is_empty() {
                break;
            }
            let last_target = n + 1 == targets.len();
            let mut transcript = self.settings.transcript();
            transcript.info(target.note.clone());
            match self
                .resolver
                .addresses(&target.host, self.port, self.settings.timeouts.connect)
                .await
            {
                Err(error) => {
                    transcript.error(error.to_string());
                    let attempt = Attempt::new(
                        &target.host,
                        None,
                        None,
                        transcript,
                        Ending::Failed {
                            stage: Stage::Resolve,
                            error,
                        },
                    );
                    for &index in &pending {
                        tally.record(index, attempt.clone(), last_target);
                    }
                }
                Ok(addrs) => {
                    self.to_host(
                        &target.host,
                        &addrs,
                        transcript,
                        &pending,
                        last_target,
                        tally,
                    )
                    .await;
                }
            }
        }
    }

    /// Sends the items to one host over one connection (a second one only to retry in the
    /// clear after a failed TLS handshake).
    async fn to_host<S: FnMut(usize), F: FnMut(usize, &Delivery)>(
        &self,
        host: &str,
        addrs: &[SocketAddr],
        transcript: Transcript,
        items: &[usize],
        last_target: bool,
        tally: &mut Tally<'_, S, F>,
    ) {
        let queue: Vec<usize> = items.to_vec();
        let mut next_transcript = Some(transcript);
        let mut offer_starttls = true;
        while let Some(transcript) = next_transcript.take() {
            let jobs: Vec<(usize, &Outgoing)> = queue
                .iter()
                .map(|&index| (index, &self.items[index]))
                .collect();
            let mut sink = |index: usize, event: session::Event| match event {
                session::Event::Starting => tally.start(index),
                session::Event::Ended(attempt) => tally.record(index, *attempt, last_target),
            };
            let outcome = session::run(
                host,
                addrs,
                transcript,
                &jobs,
                self.settings,
                offer_starttls,
                &mut sink,
            )
            .await;
            match outcome {
                session::RunOutcome::Setup {
                    attempt,
                    handshake_failed,
                } => {
                    let retry_in_clear = handshake_failed
                        && offer_starttls
                        && self.settings.tls == TlsPolicy::Opportunistic;
                    for &index in &queue {
                        tally.record(index, (*attempt).clone(), last_target && !retry_in_clear);
                    }
                    if !retry_in_clear {
                        return;
                    }
                    offer_starttls = false;
                    let mut transcript = self.settings.transcript();
                    transcript.info(format!(
                        "Retrying {host} without STARTTLS after the TLS handshake failed"
                    ));
                    next_transcript = Some(transcript);
                }
                session::RunOutcome::Transactions {
                    unreached,
                    lost_after,
                } => {
                    // A 421 or a lost connection: the host is not contacted again in this
                    // run, neither at once nor later, as an MTA backs off from a host that
                    // said "not now" (reconnecting at once is how a sending IP's
                    // reputation gets worse). What was not reached is not tried.
                    if let Some(earlier) = lost_after {
                        let ending = Ending::NotTried {
                            host: host.to_owned(),
                            earlier: Box::new(earlier),
                        };
                        for index in unreached {
                            let mut transcript = Transcript::default();
                            transcript.info(ending.to_string());
                            let attempt =
                                Attempt::new(host, None, None, transcript, ending.clone());
                            tally.record(index, attempt, true);
                        }
                    }
                    return;
                }
            }
        }
    }
}

/// Rejects input that would corrupt the SMTP dialogue before anything is
/// sent: a line break in an address would smuggle in extra commands.
fn check_input(item: &Outgoing, settings: &SendSettings) -> Result<(), (Stage, SessionError)> {
    let envelope = &item.envelope;
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
    if let Some(auth) = &settings.auth
        && auth.username.chars().any(|c| c.is_control())
    {
        // Shown without the value: it sits next to the password.
        return Err((
            Stage::Auth,
            bad("AUTH user name", "", "it contains control characters"),
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
    if let Some(envid) = &item.envid {
        let printable = envid.chars().all(|c| c == ' ' || c.is_ascii_graphic());
        if !printable || envid.is_empty() || envid.len() > dsn::MAX_ENVID_LEN {
            return Err((
                Stage::MailFrom,
                bad(
                    "ENVID",
                    envid,
                    "RFC 3461 wants 1 to 100 printable ASCII characters",
                ),
            ));
        }
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
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                command: Duration::from_secs(2),
                data_end: Duration::from_secs(2),
            },
            ..SendSettings::new("probe.lab.test")
        }
    }

    /// One message through the MX fallback logic, with fixed answers.
    async fn deliver_to_hosts(
        targets: &[Target],
        resolver: &HostResolver,
        message: &[u8],
    ) -> Delivery {
        let items = [Outgoing {
            envelope: envelope(),
            message: message.to_vec(),
            envid: None,
        }];
        let settings = settings();
        let mut calls = Vec::new();
        let mut on_done = |index: usize, delivery: &Delivery| calls.push((index, delivery.clone()));
        let mut tally = Tally {
            results: vec![Delivery {
                attempts: Vec::new(),
            }],
            done: vec![false],
            on_start: &mut |_| {},
            on_done: &mut on_done,
        };
        let batch = Batch {
            items: &items,
            settings: &settings,
            port: SMTP_PORT,
            resolver,
        };
        batch.deliver(targets, vec![0], &mut tally).await;
        tally.finish(0);
        assert_eq!(calls.len(), 1, "on_done called once");
        calls.pop().unwrap().1
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
            &resolver,
            b"Subject: x\n\nhi\n",
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
            &resolver,
            b"hi\n",
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
            &resolver,
            b"hi\n",
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
            port: SMTP_PORT,
        };
        let envelope = envelope();
        let settings = settings();
        // Not awaited: only the type is checked, so no DNS query is made.
        assert_send(deliver(&route, &envelope, b"", &settings));
    }
}
