//! Polling: log into a seed mailbox, find each message by its token, note where it is.
//!
//! One connection and one login per account for the whole poll (re-established when it drops),
//! and at most [`PollSettings::max_connections`] across accounts. Before sending,
//! [`mark_positions`] notes each folder's UIDNEXT, so a search covers only `UID n:*`: what
//! arrived since, however big the mailbox. Each round EXAMINEs (read-only) the spam folder
//! (once STATUS shows mail arrived there) and the inbox, searches the subject for the pending
//! tokens, and confirms a hit by its `X-Probe-Id` from a `BODY.PEEK[HEADER]` fetch; between
//! rounds the connection waits in IDLE on the inbox where the server has it. Nothing is ever flagged, moved or deleted, except by
//! [`rescue`] (`probe rescue`, opt-in), which moves probe's own messages out of the spam
//! folder. This module reports sightings; [`crate::verdict`] decides what they mean.

mod account;
mod folders;
mod limit;
mod positions;
mod reply;
pub mod rescue;
mod stream;
pub mod utf7;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use tokio::time::Instant;

pub use account::{Backoff, poll_account};
pub use folders::{JunkFolder, JunkSource, ListedMailbox, find_junk};
pub use limit::ConnectionLimit;
pub use positions::{Position, SearchScope, StartAt, mark_positions};
pub use stream::ImapStream;

use crate::config::Imap;
use crate::downstream::Downstream;
use crate::message::Token;
use crate::secrets::Credential;

type Session = async_imap::Session<ImapStream>;

pub use crate::evidence::{FolderRole, HeaderEvidence};

/// One message found in a seed mailbox.
#[derive(Debug, Clone)]
pub struct Sighting {
    /// Which message.
    pub token: Token,
    /// The folder's wire name.
    pub folder: String,
    /// Inbox or spam folder.
    pub role: FolderRole,
    /// Its UID there.
    pub uid: u32,
    /// Header fields that explain the verdict.
    pub evidence: HeaderEvidence,
    /// Gmail's inbox tab (`primary`, `promotions`, `social`, `updates`, `forums`) where the
    /// server has Gmail's extensions; None elsewhere.
    pub tab: Option<String>,
    /// When probe saw it.
    pub seen_at: SystemTime,
}

/// A polling failure, naming the server. Never carries a password; what the server said is
/// shown in its own words (see `reply.rs`), never as Rust debug output.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// TCP connect failed.
    #[error("{server}: cannot connect: {source}")]
    Connect {
        /// host:port
        server: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS could not be set up or the certificate was refused.
    #[error("{server}: TLS failed: {reason}")]
    Tls {
        /// host:port
        server: String,
        /// Why.
        reason: String,
    },
    /// A step took longer than `timing.imap_timeout`.
    #[error("{server}: no answer to {step} within the IMAP timeout{}", if *after_login { " (after login)" } else { "" })]
    Timeout {
        /// host:port
        server: String,
        /// The command or step.
        step: &'static str,
        /// The login had succeeded: the mailbox is readable, the server stalled later.
        after_login: bool,
    },
    /// The server refused the login.
    #[error("{server}: login as {username} refused: {reply}")]
    Login {
        /// host:port
        server: String,
        /// The login name.
        username: String,
        /// The server's answer.
        reply: String,
    },
    /// The server advertises LOGINDISABLED on a connection without TLS (RFC 3501 §6.2.3):
    /// a LOGIN would be refused, and would send the password in clear, so none is tried.
    #[error(
        "{server}: the server refuses LOGIN without TLS (it advertises LOGINDISABLED); no login was tried"
    )]
    LoginDisabled {
        /// host:port
        server: String,
    },
    /// The connection ended (the server said BYE, or closed it) during a step.
    #[error("{server}: connection closed during {step}")]
    Closed {
        /// host:port
        server: String,
        /// The command or step.
        step: &'static str,
    },
    /// The connection broke (reset, closed, BYE) at a step: worth another try.
    #[error("{server}: {reason} at {step}")]
    Lost {
        /// host:port
        server: String,
        /// The command or step.
        step: &'static str,
        /// What happened to the connection, or the server's BYE.
        reason: String,
    },
    /// The server answered a command with NO/BAD or something unparsable.
    #[error("{server}: {step} failed: {reply}")]
    Command {
        /// host:port
        server: String,
        /// The command.
        step: &'static str,
        /// The server's answer or the parse error.
        reply: String,
    },
}

/// The steps of a connection before the login has succeeded; every other step happens on a
/// logged-in connection.
const BEFORE_LOGIN: &[&str] = &[
    "connect",
    "greeting",
    "STARTTLS",
    "TLS handshake",
    "CAPABILITY before login",
    "LOGIN",
    "AUTHENTICATE",
];

impl PollError {
    /// True when retrying cannot help (wrong password, certificate refused, LOGIN disabled):
    /// polling that account stops.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            PollError::Login { .. } | PollError::Tls { .. } | PollError::LoginDisabled { .. }
        )
    }

    /// True when the failure came after a successful login: the mailbox can be read, the
    /// server failed later (a stall at LIST is not a refused login).
    pub fn after_login(&self) -> bool {
        match self {
            PollError::Timeout { after_login, .. } => *after_login,
            PollError::Closed { step, .. }
            | PollError::Lost { step, .. }
            | PollError::Command { step, .. } => !BEFORE_LOGIN.contains(step),
            PollError::Connect { .. }
            | PollError::Tls { .. }
            | PollError::Login { .. }
            | PollError::LoginDisabled { .. } => false,
        }
    }

    /// What usually causes this failure at `provider` (a provider profile's name, or any
    /// other label), for people.
    pub fn hint(&self, provider: &str) -> Option<&'static str> {
        match self {
            PollError::LoginDisabled { .. } => Some(
                "the server takes a password only over TLS: set `tls: starttls` (port 143) or `tls: implicit` (port 993)",
            ),
            PollError::Tls { .. } => Some(
                "check imap.tls and the port; for a server with a private CA, set imap.ca_file",
            ),
            PollError::Connect { .. } => {
                Some("check imap.host and imap.port, and that IMAP is reachable from here")
            }
            PollError::Login { .. } => Some(match provider {
                "gmail" => "Gmail takes only an app password (with 2-step verification) or OAuth2",
                "outlook" => {
                    "Outlook.com and Office 365 no longer accept passwords over IMAP; OAuth2 is needed"
                }
                "gmx" | "webde" => {
                    "IMAP must first be switched on in the web settings (POP3 & IMAP)"
                }
                "tonline" => "T-Online needs its separate E-Mail-Passwort, not the login password",
                "yahoo" | "aol" => "use an app password",
                _ => "check the username and the password source",
            }),
            PollError::Timeout { .. }
            | PollError::Closed { .. }
            | PollError::Lost { .. }
            | PollError::Command { .. } => None,
        }
    }
}

/// What one account's poll tells the run as it goes.
#[derive(Debug)]
pub enum PollEvent {
    /// Sent once per account, after its first login: the spam folder in use (None: only the
    /// inbox can be searched).
    JunkFolder {
        /// The seeds polled through this account.
        seeds: Vec<String>,
        /// The folder, if any.
        folder: Option<JunkFolder>,
    },
    /// A message was found.
    Found(Sighting),
    /// A folder is searched with a new scope: at the first search, or after UIDVALIDITY
    /// changed.
    Searching {
        /// The seeds polled through this account.
        seeds: Vec<String>,
        /// The folder's wire name.
        folder: String,
        /// How much of it is searched.
        scope: SearchScope,
    },
    /// The connection was re-established after it failed.
    Reconnected {
        /// The seeds polled through this account.
        seeds: Vec<String>,
        /// Reconnects of this account so far.
        reconnects: u32,
    },
    /// A report on what the relay's next hop did with a message (a DSN, or the relay's log).
    Downstream {
        /// Which message.
        token: Token,
        /// The report.
        report: Downstream,
        /// Where it was read: a folder and UID, or the log file.
        origin: String,
    },
    /// Something failed; `fatal` means this account is given up.
    Error {
        /// The seeds polled through this account.
        seeds: Vec<String>,
        /// What failed.
        error: PollError,
        /// Whether polling this account stopped.
        fatal: bool,
    },
}

/// One account to poll and the messages to look for in it.
#[derive(Debug, Clone)]
pub struct AccountPoll {
    /// The seeds sharing this account (usually one).
    pub seeds: Vec<String>,
    /// How to reach it.
    pub imap: Imap,
    /// What it logs in with.
    pub credential: Credential,
    /// Its TLS configuration (None for `tls: none`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The messages to find.
    pub tokens: Vec<Token>,
    /// When to give up on what is still unseen.
    pub deadline: Instant,
    /// What to look for.
    pub lookup: Lookup,
}

/// What an account is searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A seed mailbox: the test messages themselves, by subject token and `X-Probe-Id`.
    Placement,
    /// The bounces mailbox: DSNs about the test messages, by the token anywhere in them.
    Dsn,
}

/// Timing and limits shared by all accounts.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// Time between full rounds (the spam folder and the inbox); the inbox is searched sooner
    /// when IDLE reports new mail.
    pub interval: Duration,
    /// Limit for each IMAP step.
    pub command_timeout: Duration,
    /// IMAP connections open at once, across all accounts.
    pub max_connections: usize,
}

/// How an account's poll went, returned when it ends.
#[derive(Debug, Clone, Default)]
pub struct AccountSummary {
    /// Whether a login ever succeeded.
    pub logged_in: bool,
    /// Connections re-established after a failure.
    pub reconnects: u32,
    /// True when polling went on until every token was found or the deadline passed, with a
    /// search after the deadline; false when the account was given up.
    pub completed: bool,
    /// Tokens not found.
    pub unfound: Vec<Token>,
}

fn server(imap: &Imap) -> String {
    format!("{}:{}", imap.host, imap.port)
}

async fn step<T>(
    imap: &Imap,
    what: &'static str,
    timeout: Duration,
    fut: impl Future<Output = async_imap::error::Result<T>>,
) -> Result<T, PollError> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(PollError::Timeout {
            server: server(imap),
            step: what,
            after_login: !BEFORE_LOGIN.contains(&what),
        }),
        Ok(Err(e)) => Err(command_error(imap, what, &e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// An async-imap error at `what`, in the server's words: a broken connection is
/// [`PollError::Lost`] (worth another try), anything else [`PollError::Command`].
fn command_error(imap: &Imap, what: &'static str, e: &async_imap::error::Error) -> PollError {
    match reply::failure(e) {
        reply::Failure::Connection(reason) => PollError::Lost {
            server: server(imap),
            step: what,
            reason,
        },
        other => PollError::Command {
            server: server(imap),
            step: what,
            reply: other.text().to_owned(),
        },
    }
}

/// Answers the server's first `+` with the bearer payload and any later one (an error
/// challenge, RFC 7628 §3.2.3) with an empty response, so the server ends with NO.
struct Bearer(Option<String>);

impl async_imap::Authenticator for Bearer {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}

/// What logging into a mailbox shows: for `probe seeds check`.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The server's capabilities after login.
    pub capabilities: Vec<String>,
    /// Every folder from `LIST "" "*"`.
    pub folders: Vec<ListedMailbox>,
    /// The spam folder polling would use.
    pub junk: Option<JunkFolder>,
}

/// Logs in, lists folders and capabilities, picks the spam folder, logs out. Changes nothing.
pub async fn inspect(job: &AccountPoll, timeout: Duration) -> Result<Inspection, PollError> {
    let (mut session, folders) = open(job, timeout).await?;
    let capabilities = step(&job.imap, "CAPABILITY", timeout, session.capabilities()).await?;
    let mut capabilities: Vec<String> = capabilities
        .iter()
        .map(|c| match c {
            async_imap::types::Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
            async_imap::types::Capability::Auth(a) => format!("AUTH={a}"),
            async_imap::types::Capability::Atom(a) => a.to_string(),
        })
        .collect();
    capabilities.sort();
    let junk = find_junk(
        &folders,
        job.imap.spam_folder.as_deref(),
        &job.imap.spam_folder_names,
    );
    let _ = tokio::time::timeout(timeout, session.logout()).await;
    Ok(Inspection {
        capabilities,
        folders,
        junk,
    })
}

/// Connects, logs in and lists the folders.
async fn open(
    job: &AccountPoll,
    timeout: Duration,
) -> Result<(Session, Vec<ListedMailbox>), PollError> {
    open_noting(job, timeout, None).await
}

/// [`open`], setting `logged_in` as soon as the login succeeded.
async fn open_noting(
    job: &AccountPoll,
    timeout: Duration,
    logged_in: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(Session, Vec<ListedMailbox>), PollError> {
    let imap = &job.imap;
    let stream = stream::connect(imap, job.tls.clone(), timeout).await?;
    let starttls_done = imap.tls == crate::config::ImapTls::Starttls;
    let mut client = async_imap::Client::new(stream);
    // Capabilities seen before login: from the greeting's `[CAPABILITY ...]`, else asked for.
    let mut early_caps: Option<Vec<String>> = None;
    if !starttls_done {
        let greeting = match tokio::time::timeout(timeout, client.read_response()).await {
            Err(_) => {
                return Err(PollError::Timeout {
                    server: server(imap),
                    step: "greeting",
                    after_login: false,
                });
            }
            Ok(Err(io)) => return Err(greeting_error(imap, reply::io_failure(&io))),
            Ok(Ok(None)) => {
                return Err(PollError::Lost {
                    server: server(imap),
                    step: "greeting",
                    reason: "connection closed by the server".into(),
                });
            }
            Ok(Ok(Some(greeting))) => greeting,
        };
        use async_imap::imap_proto::{Response, ResponseCode, Status};
        match greeting.parsed() {
            Response::Data {
                status: Status::Ok,
                outcome,
            } => {
                if let Some(ResponseCode::Capabilities(caps)) = &outcome.code {
                    early_caps = Some(caps.iter().map(capability_name).collect());
                }
            }
            Response::Data { status, outcome } => {
                let status = match status {
                    Status::Bye => "BYE",
                    Status::No => "NO",
                    Status::Bad => "BAD",
                    Status::PreAuth => "PREAUTH",
                    Status::Ok => "OK",
                };
                let text = outcome.information.as_deref().unwrap_or("");
                return Err(PollError::Command {
                    server: server(imap),
                    step: "greeting",
                    reply: format!("{status} {}", reply::printable(text.as_bytes()))
                        .trim()
                        .to_owned(),
                });
            }
            _ => {
                return Err(PollError::Command {
                    server: server(imap),
                    step: "greeting",
                    reply: "the server's first line is not an IMAP greeting".into(),
                });
            }
        }
    }
    // A password goes in a LOGIN, an OAuth 2.0 access token in a SASL exchange.
    let bearer = job
        .credential
        .bearer_response(&imap.username, &imap.host, imap.port);
    // RFC 3501 §6.2.3: a server that says LOGINDISABLED refuses LOGIN on this connection.
    // Only a connection without TLS can say it meaningfully, so only there is it asked.
    if bearer.is_none() && imap.tls == crate::config::ImapTls::None {
        let caps = match early_caps {
            Some(caps) => caps,
            None => pre_login_capabilities(&mut client, imap, timeout).await?,
        };
        if caps.iter().any(|c| c.eq_ignore_ascii_case("LOGINDISABLED")) {
            return Err(PollError::LoginDisabled {
                server: server(imap),
            });
        }
    }
    let (what, login) = match bearer {
        None => {
            let password = job.credential.secret().expose();
            let login = client.login(&imap.username, password);
            ("LOGIN", tokio::time::timeout(timeout, login).await)
        }
        Some((name, payload)) => {
            let auth = client.authenticate(name, Bearer(Some(payload)));
            ("AUTHENTICATE", tokio::time::timeout(timeout, auth).await)
        }
    };
    let login = login.map_err(|_| PollError::Timeout {
        server: server(imap),
        step: what,
        after_login: false,
    })?;
    // Only a NO or BAD is a refused login; a connection that broke meanwhile is not.
    let mut session = login.map_err(|(e, _)| match reply::failure(&e) {
        reply::Failure::Refused(reply) => PollError::Login {
            server: server(imap),
            username: imap.username.clone(),
            reply,
        },
        other => match command_error(imap, what, &e) {
            PollError::Command { .. } => PollError::Command {
                server: server(imap),
                step: what,
                reply: other.text().to_owned(),
            },
            lost => lost,
        },
    })?;
    if let Some(flag) = logged_in {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let listed: Vec<ListedMailbox> = step(imap, "LIST", timeout, async {
        let names: Vec<_> = session
            .list(Some(""), Some("*"))
            .await?
            .try_collect()
            .await?;
        Ok::<_, async_imap::error::Error>(names.iter().map(ListedMailbox::from_name).collect())
    })
    .await?;
    let listed = match special_use_list(&mut session, imap, &listed, timeout).await? {
        Some(special) => special,
        None => listed,
    };
    Ok((session, listed))
}

/// A capability as the server wrote it.
fn capability_name(c: &async_imap::imap_proto::Capability<'_>) -> String {
    use async_imap::imap_proto::Capability as C;
    match c {
        C::Imap4rev1 => "IMAP4rev1".to_owned(),
        C::Auth(a) => format!("AUTH={a}"),
        C::Atom(a) => a.to_string(),
    }
}

/// `CAPABILITY` before login. async-imap offers it only on a logged-in session (a client's
/// untagged answers are dropped), so the command is written to the stream directly and the
/// answers read back through the client, which has nothing buffered at this point.
async fn pre_login_capabilities(
    client: &mut async_imap::Client<ImapStream>,
    imap: &Imap,
    timeout: Duration,
) -> Result<Vec<String>, PollError> {
    use async_imap::imap_proto::{Response, Status};
    use tokio::io::AsyncWriteExt;
    const WHAT: &str = "CAPABILITY before login";
    let lost = |io: std::io::Error| match reply::io_failure(&io) {
        reply::Failure::Connection(reason) => PollError::Lost {
            server: server(imap),
            step: WHAT,
            reason,
        },
        other => PollError::Command {
            server: server(imap),
            step: WHAT,
            reply: other.text().to_owned(),
        },
    };
    let exchange = async {
        let stream = client.get_mut();
        stream.write_all(b"p0 CAPABILITY\r\n").await.map_err(lost)?;
        stream.flush().await.map_err(lost)?;
        let mut caps = Vec::new();
        loop {
            let Some(response) = client.read_response().await.map_err(lost)? else {
                return Err(lost(std::io::ErrorKind::UnexpectedEof.into()));
            };
            match response.parsed() {
                Response::Capabilities(list) => caps.extend(list.iter().map(capability_name)),
                Response::Done { tag, status, .. } if tag.0 == "p0" => {
                    // A server that refuses CAPABILITY says nothing against LOGIN.
                    if *status != Status::Ok {
                        caps.clear();
                    }
                    return Ok(caps);
                }
                _ => {}
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(PollError::Timeout {
            server: server(imap),
            step: WHAT,
            after_login: false,
        }),
    }
}

/// A greeting that could not be read.
fn greeting_error(imap: &Imap, failure: reply::Failure) -> PollError {
    match failure {
        reply::Failure::Connection(reason) => PollError::Lost {
            server: server(imap),
            step: "greeting",
            reason,
        },
        other => PollError::Command {
            server: server(imap),
            step: "greeting",
            reply: other.text().to_owned(),
        },
    }
}

/// Whether the server announced capability `name` (case-insensitively, as RFC 3501 §7.2.1
/// names are): one reading for every capability probe acts on.
fn has_capability(caps: &async_imap::types::Capabilities, name: &str) -> bool {
    caps.iter().any(
        |c| matches!(c, async_imap::types::Capability::Atom(a) if a.eq_ignore_ascii_case(name)),
    )
}

/// The folders again with `LIST "" "*" RETURN (SPECIAL-USE)` (RFC 6154 §5.1), when the plain
/// LIST marked none `\Junk` and the server offers SPECIAL-USE or LIST-EXTENDED; `None` when
/// not asked, refused or no better (the plain result stands).
///
/// RFC 6154 lets a server leave special-use attributes out of a plain LIST unless asked (Cyrus
/// with `specialusealways: no`): without asking, a decoy `Spam` would win over the real
/// `\Junk` folder. Gmail marks `\Junk` in a plain LIST and fails on the extended form, so
/// it is never asked (its `X-GM-EXT-1` says it is Gmail).
async fn special_use_list(
    session: &mut Session,
    imap: &Imap,
    listed: &[ListedMailbox],
    timeout: Duration,
) -> Result<Option<Vec<ListedMailbox>>, PollError> {
    if listed.iter().any(|m| m.junk) {
        return Ok(None);
    }
    let caps = step(imap, "CAPABILITY", timeout, session.capabilities()).await?;
    let has = |name: &str| has_capability(&caps, name);
    if has("X-GM-EXT-1") || !(has("SPECIAL-USE") || has("LIST-EXTENDED")) {
        return Ok(None);
    }
    // async-imap's list() puts the pattern into the command as given, so the RETURN option
    // rides along with it.
    let special = tokio::time::timeout(timeout, async {
        let names: Vec<_> = session
            .list(Some(""), Some("\"*\" RETURN (SPECIAL-USE)"))
            .await?
            .try_collect()
            .await?;
        Ok::<_, async_imap::error::Error>(
            names
                .iter()
                .map(ListedMailbox::from_name)
                .collect::<Vec<_>>(),
        )
    })
    .await;
    match special {
        Err(_) => Err(PollError::Timeout {
            server: server(imap),
            step: "LIST RETURN (SPECIAL-USE)",
            after_login: true,
        }),
        // A server that advertises the extension but refuses the form: the plain list stands.
        Ok(Err(e)) => {
            tracing::debug!(server = %server(imap), error = %e, "LIST RETURN (SPECIAL-USE) refused");
            Ok(None)
        }
        // async-imap ends the stream at the tagged reply whatever its status, so a BAD shows
        // as an empty list: only a list that found the junk folder replaces the plain one.
        Ok(Ok(special)) => Ok(special.iter().any(|m| m.junk).then_some(special)),
    }
}

/// A test message found in the selected folder.
struct Hit {
    uid: u32,
    token: Token,
    evidence: HeaderEvidence,
}

/// The one search for test messages, shared by polling and rescue: the pending tokens in the
/// subject (within `scope`), each hit confirmed by its `X-Probe-Id` from a
/// `BODY.PEEK[HEADER]` fetch, so a message that only quotes a token is never taken for it.
/// At most one hit per token, the lowest UID first.
async fn find_tokens(
    session: &mut Session,
    imap: &Imap,
    scope: &SearchScope,
    tokens: &[Token],
    timeout: Duration,
) -> Result<Vec<Hit>, PollError> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let query = scope.limit(&or_query("SUBJECT", tokens));
    let uids = step(imap, "UID SEARCH", timeout, session.uid_search(query)).await?;
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let mut uids: Vec<u32> = uids.into_iter().collect();
    uids.sort_unstable();
    let fetched = fetch_uids(session, imap, &uids, "(UID BODY.PEEK[HEADER])", timeout).await?;
    let mut found: Vec<Hit> = Vec::new();
    for fetch in &fetched {
        let (Some(uid), Some(header)) = (fetch.uid, fetch.header()) else {
            continue;
        };
        let Some((Some(probe_id), evidence)) = HeaderEvidence::from_header_block(header) else {
            continue;
        };
        let Some(token) = tokens.iter().find(|t| t.to_string() == probe_id) else {
            continue;
        };
        if found.iter().any(|h| h.token == *token) {
            continue;
        }
        found.push(Hit {
            uid,
            token: *token,
            evidence,
        });
    }
    Ok(found)
}

/// `UID FETCH` of the given UIDs; `items` must only PEEK, so no `\Seen` is ever set.
async fn fetch_uids(
    session: &mut Session,
    imap: &Imap,
    uids: &[u32],
    items: &str,
    timeout: Duration,
) -> Result<Vec<async_imap::types::Fetch>, PollError> {
    let set = uid_set(uids);
    step(imap, "UID FETCH", timeout, async {
        session
            .uid_fetch(&set, items)
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `OR SUBJECT a OR SUBJECT b SUBJECT c`: one SEARCH for every pending token.
fn or_query(key: &str, tokens: &[Token]) -> String {
    let mut query = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i + 1 < tokens.len() {
            query.push_str("OR ");
        }
        query.push_str(&format!("{key} \"{token}\" "));
    }
    query.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_query_nests_or() {
        let a: Token = "01JAAAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
        let b: Token = "01JBBBBBBBBBBBBBBBBBBBBBBB".parse().unwrap();
        assert_eq!(or_query("SUBJECT", &[a]), format!("SUBJECT \"{a}\""));
        assert_eq!(
            or_query("SUBJECT", &[a, b]),
            format!("OR SUBJECT \"{a}\" SUBJECT \"{b}\"")
        );
    }

    #[test]
    fn evidence_keeps_probe_id_and_spam_fields() {
        let raw = b"Received: from a\r\n by b; Sat, 28 Nov 2026 08:00:00 +0000\r\nSubject: [SPAM] Deliverability check X\r\nX-Probe-Id: 01JAAAAAAAAAAAAAAAAAAAAAAA\r\nX-Spam-Flag: YES\r\nFrom: a@b\r\n\r\n";
        let (id, ev) = HeaderEvidence::from_header_block(raw).unwrap();
        assert_eq!(id.as_deref(), Some("01JAAAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(ev.subject.as_deref(), Some("[SPAM] Deliverability check X"));
        assert_eq!(ev.values("x-spam-flag").collect::<Vec<_>>(), ["YES"]);
        assert_eq!(
            ev.values("Received").next(),
            Some("from a by b; Sat, 28 Nov 2026 08:00:00 +0000")
        );
        assert!(ev.values("From").next().is_none());
    }
}
