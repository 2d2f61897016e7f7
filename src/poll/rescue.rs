//! The not-spam click, over IMAP: probe's own messages moved from the spam folder to INBOX.
//!
//! The one place probe changes a seed mailbox. It acts only on messages found by the poll's
//! own search ([`super::find_tokens`]: the token in the subject, confirmed by `X-Probe-Id`),
//! one UID at a time, and never by sequence number or on the whole folder:
//!
//! - `UID MOVE` (RFC 6851) where the server offers MOVE. This is also what Gmail's "Not spam"
//!   does over IMAP: `[Gmail]/Spam` and `INBOX` are labels, and moving the message between them
//!   takes the Spam label off and puts the Inbox label on.
//! - Else `UID COPY`, `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE` of that one UID
//!   (UIDPLUS, RFC 4315 §2.1).
//! - Without UIDPLUS only a plain EXPUNGE could remove the original, and it would also remove
//!   every message the user had marked `\Deleted`. So the original is left as it was (not
//!   even flagged) and the outcome says so: [`RescueOutcome::Copied`].
//!
//! Before moving, where the folder's PERMANENTFLAGS allow (`\*`, or the keyword itself), the
//! message gets `$NotJunk` and `NonJunk` and loses `$Junk` and `Junk`: RFC 5788 registers
//! `$Junk`/`$NotJunk` for exactly this, and `NonJunk`/`Junk` are what Thunderbird and others
//! write. A move or copy keeps the flags, so the message arrives in INBOX with them.

use std::time::Duration;

use futures::TryStreamExt;

use super::positions::SearchScope;
use super::{AccountPoll, PollError, Session, has_capability, open, server, step};
use crate::message::Token;

/// Where a rescued message goes.
pub const INBOX: &str = "INBOX";

/// The keywords a not-spam click sets (RFC 5788 `$NotJunk`, and the older `NonJunk`).
const NOT_JUNK: [&str; 2] = ["$NotJunk", "NonJunk"];
/// The keywords it clears.
const JUNK: [&str; 2] = ["$Junk", "Junk"];

/// How a message was brought back to the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescueMethod {
    /// `UID MOVE` (RFC 6851).
    Move,
    /// `UID COPY`, then (with UIDPLUS) the original deleted by its UID.
    Copy,
}

impl RescueMethod {
    /// `move` or `copy`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RescueMethod::Move => "move",
            RescueMethod::Copy => "copy",
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RescueOutcome {
    /// Now in INBOX and gone from the spam folder.
    Moved {
        /// How.
        method: RescueMethod,
        /// Whether the not-junk keywords were set.
        keywords: bool,
    },
    /// A copy is in INBOX; the original stays in the spam folder, untouched.
    Copied {
        /// Whether the not-junk keywords were set.
        keywords: bool,
        /// Why the original stays, for people.
        why: String,
    },
    /// Not in the spam folder (any more): nothing done.
    NotFound,
    /// The mailbox or the folder failed before this message was reached: nothing was done.
    NotTried {
        /// The error, naming the server and its words.
        error: String,
    },
    /// The server refused a step: in its words.
    Failed {
        /// How it was tried.
        method: RescueMethod,
        /// The error, naming the server, the step and the server's answer.
        error: String,
    },
}

/// One message's rescue.
#[derive(Debug, Clone)]
pub struct Rescued {
    /// Which message.
    pub token: Token,
    /// What happened.
    pub outcome: RescueOutcome,
}

/// One account's rescue: what was done, and the failure that stopped it early, if any.
#[derive(Debug, Default)]
pub struct AccountRescue {
    /// Per message, in the order acted on; messages not reached are missing.
    pub done: Vec<Rescued>,
    /// The connection or the folder failed: the messages not in `done` were not touched.
    pub stopped: Option<PollError>,
}

/// What the selected spam folder and the server allow.
struct Abilities {
    mv: bool,
    uidplus: bool,
    /// Keywords that may be stored permanently: all (`\*`) or those listed.
    keywords: Vec<&'static str>,
}

/// Logs into `job`'s mailbox, SELECTs `folder` (read-write: the only SELECT in probe), finds
/// `tokens` there and moves each to INBOX. Every other message stays as it was.
pub async fn rescue(
    job: &AccountPoll,
    folder: &str,
    tokens: &[Token],
    timeout: Duration,
) -> AccountRescue {
    let mut result = AccountRescue::default();
    let (mut session, _folders) = match open(job, timeout).await {
        Ok(opened) => opened,
        Err(e) => {
            result.stopped = Some(e);
            return result;
        }
    };
    if let Err(e) = rescue_in(&mut session, job, folder, tokens, timeout, &mut result.done).await {
        result.stopped = Some(e);
    }
    let _ = tokio::time::timeout(timeout, session.logout()).await;
    result
}

async fn rescue_in(
    session: &mut Session,
    job: &AccountPoll,
    folder: &str,
    tokens: &[Token],
    timeout: Duration,
    done: &mut Vec<Rescued>,
) -> Result<(), PollError> {
    let imap = &job.imap;
    let caps = step(imap, "CAPABILITY", timeout, session.capabilities()).await?;
    let mailbox = step(imap, "SELECT", timeout, session.select(folder)).await?;
    let any_keyword = mailbox
        .permanent_flags
        .iter()
        .any(|f| matches!(f, async_imap::types::Flag::MayCreate));
    let listed = |k: &str| {
        mailbox
            .permanent_flags
            .iter()
            .any(|f| matches!(f, async_imap::types::Flag::Custom(c) if c.eq_ignore_ascii_case(k)))
    };
    let abilities = Abilities {
        mv: has_capability(&caps, "MOVE"),
        uidplus: has_capability(&caps, "UIDPLUS"),
        keywords: NOT_JUNK
            .into_iter()
            .chain(JUNK)
            .filter(|k| any_keyword || listed(k))
            .collect(),
    };
    let hits = super::find_tokens(session, imap, &SearchScope::All, tokens, timeout).await?;
    for token in tokens {
        let Some(hit) = hits.iter().find(|h| h.token == *token) else {
            done.push(Rescued {
                token: *token,
                outcome: RescueOutcome::NotFound,
            });
            continue;
        };
        let outcome = one(session, job, hit.uid, &abilities, timeout).await?;
        done.push(Rescued {
            token: *token,
            outcome,
        });
        // Expunges and flag changes reported along the way concern nothing probe keeps.
        while session.unsolicited_responses.try_recv().is_ok() {}
    }
    Ok(())
}

/// Moves one UID. A refusal (NO/BAD) is that message's outcome; a broken connection ends the
/// account's rescue.
async fn one(
    session: &mut Session,
    job: &AccountPoll,
    uid: u32,
    can: &Abilities,
    timeout: Duration,
) -> Result<RescueOutcome, PollError> {
    let imap = &job.imap;
    let set = uid.to_string();
    let method = if can.mv {
        RescueMethod::Move
    } else {
        RescueMethod::Copy
    };
    let refused = |e: PollError| match e {
        PollError::Command { .. } => Ok(RescueOutcome::Failed {
            method,
            error: e.to_string(),
        }),
        other => Err(other),
    };
    let keywords = match set_keywords(session, job, &set, can, timeout).await {
        Ok(set) => set,
        // The move matters more than the keywords: a refused STORE is noted, not fatal.
        Err(PollError::Command { reply, .. }) => {
            tracing::warn!(server = %server(imap), %uid, %reply, "keywords refused");
            false
        }
        Err(e) => return Err(e),
    };
    if can.mv {
        if let Err(e) = step(imap, "UID MOVE", timeout, session.uid_mv(&set, INBOX)).await {
            return refused(e);
        }
        return Ok(RescueOutcome::Moved { method, keywords });
    }
    if let Err(e) = step(imap, "UID COPY", timeout, session.uid_copy(&set, INBOX)).await {
        return refused(e);
    }
    if !can.uidplus {
        return Ok(RescueOutcome::Copied {
            keywords,
            why: format!(
                "{} offers neither MOVE nor UIDPLUS: only a plain EXPUNGE could remove the \
                 original, and it would also remove what the user marked deleted",
                server(imap)
            ),
        });
    }
    let deleted = step(imap, "UID STORE", timeout, async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await;
    let expunged = match deleted {
        Ok(_) => {
            step(imap, "UID EXPUNGE", timeout, async {
                session
                    .uid_expunge(&set)
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await
        }
        Err(e) => Err(e),
    };
    match expunged {
        Ok(_) => Ok(RescueOutcome::Moved { method, keywords }),
        Err(PollError::Command { reply, step, .. }) => Ok(RescueOutcome::Copied {
            keywords,
            why: format!("{}: {step} of the original failed: {reply}", server(imap)),
        }),
        Err(e) => Err(e),
    }
}

/// Sets the not-junk keywords and clears the junk ones that the folder can store; true when
/// the not-junk ones were set.
async fn set_keywords(
    session: &mut Session,
    job: &AccountPoll,
    set: &str,
    can: &Abilities,
    timeout: Duration,
) -> Result<bool, PollError> {
    let add: Vec<&str> = NOT_JUNK
        .into_iter()
        .filter(|k| can.keywords.contains(k))
        .collect();
    let remove: Vec<&str> = JUNK
        .into_iter()
        .filter(|k| can.keywords.contains(k))
        .collect();
    for (sign, list) in [("+", &add), ("-", &remove)] {
        if list.is_empty() {
            continue;
        }
        let query = format!("{sign}FLAGS.SILENT ({})", list.join(" "));
        step(&job.imap, "UID STORE", timeout, async {
            session
                .uid_store(set, &query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    }
    Ok(!add.is_empty())
}
