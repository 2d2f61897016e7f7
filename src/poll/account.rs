//! One account's poll: connect, search, wait in IDLE (or for the interval), reconnect when
//! the connection drops.
//!
//! A *full* round searches the spam folder and then the inbox, and is due every poll interval;
//! the spam folder is opened (EXAMINE) only once STATUS shows that something arrived there.
//! In between, where the server offers IDLE (RFC 2177), the connection waits in IDLE on the
//! inbox and an untagged EXISTS or RECENT starts an inbox-only round at once. Each search is
//! limited to `UID n:*` from the position noted before sending (see [`super::positions`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use async_imap::types::UnsolicitedResponse;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

use super::limit::ConnectionLimit;
use super::positions::{SearchScope, StartAt};
use super::{
    AccountPoll, AccountSummary, FolderRole, JunkFolder, Lookup, PollError, PollEvent,
    PollSettings, Session, Sighting, find_junk, open, or_query, server, step, uid_set,
};
use crate::message::Token;
use crate::verdict::{Evidence, Source, Standing, weigh};

/// RFC 2177 §3: a client should re-issue IDLE at least every 29 minutes, or the server may log
/// it out as inactive.
const IDLE_LIMIT: Duration = Duration::from_secs(29 * 60);
/// The first pause before reconnecting; doubled after each failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest pause between reconnect attempts (the poll interval, if that is shorter): a
/// server back after a restart is found within seconds, without hammering one that is not.
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Refused logins in a row after which an account that did log in before is given up.
const MAX_REFUSALS: u32 = 3;
/// Gmail's inbox categories besides Primary, as `X-GM-RAW` names them.
const GMAIL_TABS: [&str; 4] = ["promotions", "social", "updates", "forums"];

/// An open connection and what is known about it.
struct Conn {
    session: Session,
    /// The server offers IDLE.
    idle: bool,
    /// The server offers Gmail's extensions (`X-GM-EXT-1`): `X-GM-RAW` tells tabs apart.
    gmail: bool,
    /// The folder EXAMINEd last, if still selected.
    selected: Option<String>,
    /// The server announced new inbox mail after the inbox's last search began: search again
    /// before waiting, or IDLE would not report it a second time.
    inbox_changed: bool,
    /// This connection's share of the limit, given back when it closes.
    _permit: Option<OwnedSemaphorePermit>,
}

/// Connects, logs in, lists the folders and asks for the capabilities.
async fn connect(
    job: &AccountPoll,
    timeout: Duration,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<(Conn, Vec<super::ListedMailbox>), PollError> {
    let (mut session, listed) = open(job, timeout).await?;
    let caps = step(&job.imap, "CAPABILITY", timeout, session.capabilities()).await?;
    let has = |name: &str| super::has_capability(&caps, name);
    let conn = Conn {
        idle: has("IDLE"),
        gmail: has("X-GM-EXT-1"),
        session,
        selected: None,
        inbox_changed: false,
        _permit: permit,
    };
    Ok((conn, listed))
}

/// Pauses between reconnect attempts: 0.5 s, doubling, capped.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at 0.5 s; never pauses longer than 8 s or `interval`, whichever is shorter.
    pub fn new(interval: Duration) -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
            max: interval.clamp(BACKOFF_FIRST, BACKOFF_MAX),
        }
    }

    /// The next pause (and doubles the one after).
    pub fn take(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// Back to the first pause, after a success.
    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

/// What an account's rounds remember across rounds and connections.
#[derive(Default)]
struct Memory {
    /// DSNs already read, so a delayed notice is reported once, not every round.
    processed: HashSet<(String, u32)>,
    /// The scope each folder was last searched with, to report it when it changes.
    scopes: HashMap<String, SearchScope>,
}

/// Polls one account until every token is found, the deadline passes, or the account fails for
/// good. Events go to `events` as they happen, so the caller can store them at once. At most
/// one connection is open at a time, and only while `limit` grants it.
pub async fn poll_account(
    job: AccountPoll,
    start: StartAt,
    settings: PollSettings,
    limit: Arc<ConnectionLimit>,
    events: mpsc::UnboundedSender<PollEvent>,
) -> AccountSummary {
    let timeout = settings.command_timeout;
    let mut pending: HashSet<Token> = job.tokens.iter().copied().collect();
    // What this account's own evidence says of each message, as the ledger sees it.
    let mut standings: HashMap<Token, Standing> = HashMap::new();
    let source = match job.lookup {
        Lookup::Placement => Source::Folder,
        Lookup::Dsn => Source::Report,
    };
    let mut summary = AccountSummary::default();
    let mut memory = Memory::default();
    let mut conn: Option<Conn> = None;
    let mut junk: Option<JunkFolder> = None;
    let mut searched_after_deadline = false;
    // True after a failure, until a connection is open again: that reopening is a reconnect.
    let mut lost = false;
    let mut idle_refused = false;
    // Logins (or TLS handshakes) refused in a row.
    let mut refusals = 0;
    let mut backoff = Backoff::new(settings.interval);
    let mut next_full = Instant::now();
    let send = |event: PollEvent| {
        let _ = events.send(event);
    };
    let report = |error: PollError, fatal: bool| {
        send(PollEvent::Error {
            seeds: job.seeds.clone(),
            error,
            fatal,
        });
    };
    // A search that starts at or after the deadline is owed before anything is called missing;
    // if the server keeps failing, give up a little later and decide nothing.
    let give_up = job.deadline + 2 * timeout;
    let pause = |backoff: &mut Backoff| {
        let until = (Instant::now() + backoff.take()).min(give_up);
        tokio::time::sleep_until(until)
    };

    while !pending.is_empty() && Instant::now() < give_up {
        let Some(mut c) = conn.take() else {
            let permit = limit.acquire().await;
            match connect(&job, timeout, permit).await {
                Ok((c, listed)) => {
                    if !summary.logged_in {
                        junk = find_junk(
                            &listed,
                            job.imap.spam_folder.as_deref(),
                            &job.imap.spam_folder_names,
                        );
                        send(PollEvent::JunkFolder {
                            seeds: job.seeds.clone(),
                            folder: junk.clone(),
                        });
                    } else if lost {
                        summary.reconnects += 1;
                        send(PollEvent::Reconnected {
                            seeds: job.seeds.clone(),
                            reconnects: summary.reconnects,
                        });
                    }
                    summary.logged_in = true;
                    lost = false;
                    refusals = 0;
                    // Mail may have reached either folder while no connection was open.
                    next_full = Instant::now();
                    conn = Some(c);
                }
                Err(e) => {
                    // A login that worked before is not given up on at once: a server coming
                    // back from a restart may refuse for a moment. Repeated refusals are.
                    refusals += u32::from(e.is_fatal());
                    let fatal = e.is_fatal() && (!summary.logged_in || refusals >= MAX_REFUSALS);
                    report(e, fatal);
                    if fatal {
                        break;
                    }
                    pause(&mut backoff).await;
                }
            }
            continue;
        };

        let started = Instant::now();
        let full = started >= next_full || started >= job.deadline;
        let folders = if full { junk.as_ref() } else { None };
        match round(
            &mut c,
            &job,
            folders,
            &pending,
            &start,
            &mut memory,
            timeout,
        )
        .await
        {
            Ok(findings) => {
                backoff.reset();
                if full {
                    searched_after_deadline = started >= job.deadline;
                    next_full = started + settings.interval;
                }
                for event in findings {
                    // The verdict module says whether this account can still learn anything
                    // that changes the message's verdict; if not, it stops looking for it.
                    if let Some((token, evidence)) = evidence_of(&event) {
                        let standing = standings.entry(token).or_insert(Standing::NEW);
                        *standing = standing.after(&weigh(*standing, evidence));
                        if !standing.awaits(source) {
                            pending.remove(&token);
                        }
                    }
                    send(event);
                }
            }
            Err(e) => {
                report(e, false);
                lost = true;
                pause(&mut backoff).await;
                continue;
            }
        }
        if pending.is_empty() || searched_after_deadline {
            conn = Some(c);
            break;
        }

        let due = next_full.min(job.deadline);
        if limit.contended() {
            // Another account waits for a connection: hand this one over until the next round.
            // The permit lives in the connection, so it must be gone before the wait.
            let _ = tokio::time::timeout(timeout, c.session.logout()).await;
            drop(c);
            tokio::time::sleep_until(due).await;
            continue;
        }
        if c.inbox_changed {
            conn = Some(c);
            continue;
        }
        if c.idle && !idle_refused && c.selected.as_deref() == Some("INBOX") {
            match idle(c, &job, &limit, due, timeout).await {
                Ok(c) => conn = Some(c),
                Err((e, refused)) => {
                    // A server that refuses IDLE is polled on the interval from now on.
                    idle_refused |= refused;
                    report(e, false);
                    lost = true;
                    pause(&mut backoff).await;
                }
            }
        } else {
            conn = Some(c);
            tokio::time::sleep_until(due).await;
        }
    }
    if let Some(mut c) = conn {
        let _ = tokio::time::timeout(timeout, c.session.logout()).await;
    }
    summary.completed = pending.is_empty() || searched_after_deadline;
    summary.unfound = pending.into_iter().collect();
    summary
}

/// The evidence an event carries about one message, if any.
fn evidence_of(event: &PollEvent) -> Option<(Token, Evidence<'_>)> {
    match event {
        PollEvent::Found(s) => Some((
            s.token,
            Evidence::Found {
                role: s.role,
                folder: &s.folder,
                headers: &s.evidence,
            },
        )),
        PollEvent::Downstream { token, report, .. } => Some((*token, Evidence::Downstream(report))),
        PollEvent::JunkFolder { .. }
        | PollEvent::Searching { .. }
        | PollEvent::Reconnected { .. }
        | PollEvent::Error { .. } => None,
    }
}

/// Waits in IDLE on the selected inbox until new mail is announced, `until`, or another
/// account waits for a connection, then leaves IDLE. On failure the connection is gone; the
/// flag says the server refused IDLE itself.
async fn idle(
    c: Conn,
    job: &AccountPoll,
    limit: &ConnectionLimit,
    until: Instant,
    timeout: Duration,
) -> Result<Conn, (PollError, bool)> {
    let imap = &job.imap;
    let closed = |step: &'static str| PollError::Closed {
        server: server(imap),
        step,
    };
    let Conn {
        session,
        idle,
        gmail,
        selected,
        _permit,
        ..
    } = c;
    let until = until.min(Instant::now() + IDLE_LIMIT);
    let wanted = limit.wanted();
    tokio::pin!(wanted);
    wanted.as_mut().enable();
    if limit.contended() {
        return Ok(Conn {
            session,
            idle,
            gmail,
            selected,
            inbox_changed: false,
            _permit,
        });
    }
    let mut handle = session.idle();
    match tokio::time::timeout(timeout, handle.init()).await {
        Ok(Ok(())) => {}
        Ok(Err(async_imap::error::Error::Io(_))) => return Err((closed("IDLE"), false)),
        Ok(Err(e)) => {
            let e = super::command_error(imap, "IDLE", &e);
            return Err((e, true));
        }
        Err(_) => {
            let e = PollError::Timeout {
                server: server(imap),
                step: "IDLE",
                after_login: true,
            };
            return Err((e, true));
        }
    }
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Dropping the stop source would end the wait at once: keep it for the wait's length.
        let (wait, _stop) = handle.wait_with_timeout(left);
        let waited = tokio::select! {
            waited = tokio::time::timeout(left, wait) => waited,
            // Another account waits for a connection: leave IDLE so this one can be handed over.
            () = &mut wanted => break,
        };
        let response = match waited {
            Err(_) | Ok(Ok(IdleResponse::Timeout)) => break,
            // Nothing here stops the wait by hand: this is the connection ending.
            Ok(Ok(IdleResponse::ManualInterrupt)) => return Err((closed("IDLE"), false)),
            Ok(Err(_)) => return Err((closed("IDLE"), false)),
            Ok(Ok(IdleResponse::NewData(response))) => response,
        };
        match response.parsed() {
            Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_)) => break,
            Response::Data {
                status: Status::Bye,
                ..
            } => return Err((closed("IDLE"), false)),
            // Flag changes, expunges: not what we wait for.
            _ => {}
        }
    }
    let session = match tokio::time::timeout(timeout, handle.done()).await {
        Ok(Ok(session)) => session,
        Ok(Err(_)) => return Err((closed("DONE"), false)),
        Err(_) => {
            let e = PollError::Timeout {
                server: server(imap),
                step: "DONE",
                after_login: true,
            };
            return Err((e, false));
        }
    };
    Ok(Conn {
        session,
        idle,
        gmail,
        selected,
        inbox_changed: false,
        _permit,
    })
}

/// One round: the spam folder when given, then the inbox, so the inbox stays selected for
/// IDLE.
async fn round(
    c: &mut Conn,
    job: &AccountPoll,
    junk: Option<&JunkFolder>,
    pending: &HashSet<Token>,
    start: &StartAt,
    memory: &mut Memory,
    timeout: Duration,
) -> Result<Vec<PollEvent>, PollError> {
    let mut findings = Vec::new();
    let mut folders = Vec::new();
    if let Some(j) = junk {
        folders.push((j.name.as_str(), FolderRole::Junk));
    }
    folders.push(("INBOX", FolderRole::Inbox));
    for (folder, role) in folders {
        let still: Vec<Token> = pending
            .iter()
            .filter(|t| {
                !findings
                    .iter()
                    .any(|f| matches!(f, PollEvent::Found(s) if s.token == **t))
            })
            .copied()
            .collect();
        if still.is_empty() {
            break;
        }
        // The spam folder is not kept selected; opening it again each round would cost what
        // the folder holds on some servers (and make the inbox be opened again for IDLE).
        if role == FolderRole::Junk
            && c.selected.as_deref() != Some(folder)
            && unchanged_since_sending(c, job, folder, start, timeout).await
        {
            continue;
        }
        let scope = select(c, job, folder, start, memory, &mut findings, timeout).await?;
        match job.lookup {
            Lookup::Placement => findings.extend(
                search_folder(c, job, folder, role, &scope, &still, timeout)
                    .await?
                    .into_iter()
                    .map(PollEvent::Found),
            ),
            Lookup::Dsn => findings.extend(
                search_dsns(
                    c,
                    job,
                    folder,
                    &scope,
                    &still,
                    &mut memory.processed,
                    timeout,
                )
                .await?,
            ),
        }
        if role == FolderRole::Inbox {
            c.inbox_changed = new_mail_announced(&mut c.session);
        }
    }
    Ok(findings)
}

/// True when STATUS shows that nothing has reached `folder` since its position was taken
/// (same UIDVALIDITY and UIDNEXT): then no test message can be there, not even one moved in
/// later, as a move gives a new UID. Any doubt (no position, STATUS refused) says false.
async fn unchanged_since_sending(
    c: &mut Conn,
    job: &AccountPoll,
    folder: &str,
    start: &StartAt,
    timeout: Duration,
) -> bool {
    let Some(p) = start.positions.get(folder) else {
        return false;
    };
    let status = c.session.status(folder, "(UIDVALIDITY UIDNEXT)");
    matches!(
        step(&job.imap, "STATUS", timeout, status).await,
        Ok(s) if s.uid_validity == Some(p.uid_validity) && s.uid_next == Some(p.uid_next)
    )
}

/// Makes `folder` the selected one and returns how far back to search it. A folder still
/// selected gets a NOOP, which is what makes Gmail report mail that arrived since (harmless
/// elsewhere); another is EXAMINEd: read-only, so not even `\Recent` changes.
async fn select(
    c: &mut Conn,
    job: &AccountPoll,
    folder: &str,
    start: &StartAt,
    memory: &mut Memory,
    findings: &mut Vec<PollEvent>,
    timeout: Duration,
) -> Result<SearchScope, PollError> {
    let imap = &job.imap;
    if c.selected.as_deref() == Some(folder)
        && let Some(scope) = memory.scopes.get(folder)
    {
        step(imap, "NOOP", timeout, c.session.noop()).await?;
        new_mail_announced(&mut c.session);
        return Ok(scope.clone());
    }
    // A failed EXAMINE leaves no folder selected (RFC 3501 §6.3.2).
    c.selected = None;
    let mailbox = step(imap, "EXAMINE", timeout, c.session.examine(folder)).await?;
    c.selected = Some(folder.to_owned());
    new_mail_announced(&mut c.session);
    let scope = SearchScope::choose(
        start.positions.get(folder),
        mailbox.uid_validity,
        start.sent_after,
    );
    if memory.scopes.get(folder) != Some(&scope) {
        memory.scopes.insert(folder.to_owned(), scope.clone());
        findings.push(PollEvent::Searching {
            seeds: job.seeds.clone(),
            folder: folder.to_owned(),
            scope: scope.clone(),
        });
    }
    Ok(scope)
}

/// Empties the queue of untagged responses the server sent along with other answers; true
/// when one of them announced new mail.
fn new_mail_announced(session: &mut Session) -> bool {
    let mut announced = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        announced |= matches!(
            response,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    announced
}

/// Finds pending messages in the selected folder by subject token, confirmed by `X-Probe-Id`.
async fn search_folder(
    c: &mut Conn,
    job: &AccountPoll,
    folder: &str,
    role: FolderRole,
    scope: &SearchScope,
    tokens: &[Token],
    timeout: Duration,
) -> Result<Vec<Sighting>, PollError> {
    let found = super::find_tokens(&mut c.session, &job.imap, scope, tokens, timeout)
        .await?
        .into_iter()
        .map(|hit| Sighting {
            token: hit.token,
            folder: folder.to_owned(),
            role,
            uid: hit.uid,
            evidence: hit.evidence,
            tab: None,
            seen_at: SystemTime::now(),
        });
    let mut found: Vec<Sighting> = found.collect();
    if role == FolderRole::Inbox && c.gmail && !found.is_empty() {
        gmail_tabs(c, job, &mut found, timeout).await;
    }
    Ok(found)
}

/// Gmail's tabs are labels on messages in INBOX, not folders: asks which category each found
/// message has (`X-GM-RAW`), restricted to their UIDs. Leaves the tab unknown if Gmail does
/// not answer; a broken connection shows at the next command.
async fn gmail_tabs(c: &mut Conn, job: &AccountPoll, found: &mut [Sighting], timeout: Duration) {
    let mut uids: Vec<u32> = found.iter().map(|s| s.uid).collect();
    uids.sort_unstable();
    let set = uid_set(&uids);
    let mut tabs: HashMap<u32, &str> = HashMap::new();
    for tab in GMAIL_TABS {
        let query = format!("UID {set} X-GM-RAW \"category:{tab}\"");
        let Ok(hits) = step(
            &job.imap,
            "UID SEARCH X-GM-RAW",
            timeout,
            c.session.uid_search(query),
        )
        .await
        else {
            return;
        };
        for uid in hits {
            tabs.entry(uid).or_insert(tab);
        }
    }
    for s in found {
        s.tab = Some(tabs.get(&s.uid).copied().unwrap_or("primary").to_owned());
    }
}

/// Finds DSNs mentioning pending tokens (in the envelope id or the returned headers) in the
/// selected folder, each read once.
async fn search_dsns(
    c: &mut Conn,
    job: &AccountPoll,
    folder: &str,
    scope: &SearchScope,
    tokens: &[Token],
    processed: &mut HashSet<(String, u32)>,
    timeout: Duration,
) -> Result<Vec<PollEvent>, PollError> {
    let imap = &job.imap;
    let query = scope.limit(&or_query("TEXT", tokens));
    let uids = step(imap, "UID SEARCH", timeout, c.session.uid_search(query)).await?;
    let mut uids: Vec<u32> = uids
        .into_iter()
        .filter(|uid| !processed.contains(&(folder.to_owned(), *uid)))
        .collect();
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    uids.sort_unstable();
    let fetched =
        super::fetch_uids(&mut c.session, imap, &uids, "(UID BODY.PEEK[])", timeout).await?;
    let mut events = Vec::new();
    for fetch in &fetched {
        let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) else {
            continue;
        };
        processed.insert((folder.to_owned(), uid));
        let Some(dsn) = crate::downstream::dsn::parse(body) else {
            continue;
        };
        let Some(token) = dsn
            .token()
            .and_then(|id| tokens.iter().find(|t| t.to_string() == id))
        else {
            continue;
        };
        for report in dsn.recipients {
            events.push(PollEvent::Downstream {
                token: *token,
                report,
                origin: format!("{folder} UID {uid}"),
            });
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(30));
        let seen: Vec<u64> = (0..7).map(|_| b.take().as_millis() as u64).collect();
        assert_eq!(seen, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        b.reset();
        assert_eq!(b.take(), BACKOFF_FIRST);
        // A short poll interval caps it lower, but never below the first pause.
        let mut b = Backoff::new(Duration::from_millis(300));
        assert_eq!((b.take(), b.take()), (BACKOFF_FIRST, BACKOFF_FIRST));
        let mut b = Backoff::new(Duration::from_secs(2));
        let seen: Vec<u64> = (0..4).map(|_| b.take().as_millis() as u64).collect();
        assert_eq!(seen, [500, 1000, 2000, 2000]);
    }
}
