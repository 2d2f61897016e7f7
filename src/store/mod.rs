//! The store: every run, message, SMTP attempt and observation, in SQLite (the default, a
//! file) or PostgreSQL (one database shared by several probe hosts; see [`Location`]).
//!
//! Each write is its own transaction, made as soon as the thing happened, so a crash or Ctrl-C
//! loses nothing already seen. No secret is ever passed in: transcripts are redacted at capture.
//!
//! Both backends run the same SQL: every query and migration here is written once, in the
//! SQLite dialect with `?N` parameters, and [`sql::to_postgres`] gives PostgreSQL's text (the
//! parameters, 64-bit integers, the identity column). One statement differs and is chosen per
//! backend (the JSON list of a run's not-tested seeds); the schema version lives in SQLite's
//! `user_version` and in PostgreSQL's `probe_schema` table. One list of migrations, then,
//! cannot drift between the two.

mod location;
mod pg;
pub(crate) mod sql;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use serde::Serialize;

pub use location::{Location, PgTls, PgUrl, redact};
use sql::{Row, Val, vals};

use crate::config::Transport;
use crate::poll::FolderRole;
use crate::send::Stage;
use crate::verdict::{Decision, Placed, Verdict};

/// Each entry takes the store from version `i` to `i + 1`; a store made by an older probe is
/// brought forward on open, never rewritten otherwise.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    // 2: relay mode and source addresses.
    "ALTER TABLE runs ADD COLUMN source_ip TEXT;
     ALTER TABLE runs ADD COLUMN maillog_offset INTEGER;
     ALTER TABLE messages ADD COLUMN queue_id TEXT;
     ALTER TABLE messages ADD COLUMN downstream_json TEXT;",
    // 3: incremental polling (each folder's UIDNEXT before sending) and Gmail tabs.
    "CREATE TABLE positions (
         run_id      TEXT NOT NULL REFERENCES runs(id),
         seed        TEXT NOT NULL,
         folder      TEXT NOT NULL,            -- wire name (modified UTF-7)
         role        TEXT NOT NULL,            -- inbox | junk
         uidvalidity INTEGER NOT NULL,
         uidnext     INTEGER NOT NULL,         -- messages sent later have a UID >= this
         taken_at    INTEGER NOT NULL,
         PRIMARY KEY (run_id, seed, folder)
     );
     ALTER TABLE messages ADD COLUMN tab TEXT;",
    // 4: a run's label (`--label`).
    "ALTER TABLE runs ADD COLUMN label TEXT;",
    // 5: what became of the sending itself: a message's send state (see `SendState`; every
    // message of an older store was sent), and why a run stopped when probe could not do its
    // job (the relay refused probe's login).
    "ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT 'sent';
     ALTER TABLE runs ADD COLUMN failure TEXT;",
    // 6: the checks made before sending, as JSON (written by `run`'s checks).
    "ALTER TABLE runs ADD COLUMN checks_json TEXT;",
    // 7: the probe host that made the run, for a database several hosts write into.
    "ALTER TABLE runs ADD COLUMN host TEXT;
     CREATE INDEX runs_host ON runs(host, started_at);",
    // 8: `probe rescue`: each message moved (or tried) from the spam folder to INBOX. Plain
    // SQL that SQLite and PostgreSQL both take; no row id, as none is needed.
    "CREATE TABLE rescues (
         run_id      TEXT NOT NULL,
         seed        TEXT NOT NULL,
         token       TEXT NOT NULL,
         at          BIGINT NOT NULL,          -- Unix ms
         from_folder TEXT NOT NULL,            -- wire name (modified UTF-7)
         method      TEXT NOT NULL,            -- move | copy
         outcome     TEXT NOT NULL,            -- moved | copied | failed
         detail      TEXT                      -- the server's words, or why a copy stays
     );
     CREATE INDEX rescues_run ON rescues(run_id);",
];
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A `--store` string that is neither a path nor a supported URL.
    #[error("--store {given}: {reason}")]
    BadLocation {
        /// The string, with any password replaced by `***`.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file or its directory cannot be created or opened, or the database server cannot
    /// be reached or refused probe.
    #[error("store {store}: {reason}")]
    Open {
        /// The file, or the URL without its password.
        store: String,
        /// Why, in the database's words.
        reason: String,
    },
    /// The store was written by a newer seedprobe.
    #[error(
        "store {store} has schema version {found}; this probe knows up to {SCHEMA_VERSION}: upgrade probe"
    )]
    TooNew {
        /// The file, or the URL without its password.
        store: String,
        /// Its version.
        found: i64,
    },
    /// A query failed.
    #[error("store {store}: {reason}")]
    Sql {
        /// The file, or the URL without its password.
        store: String,
        /// The database's error.
        reason: String,
    },
    /// A run id that is not in the store.
    #[error("no run {0} in the store; give a run id that `probe send` printed")]
    NoSuchRun(String),
    /// No run to default to.
    #[error("the store has no {0} run")]
    NoRun(&'static str),
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where a message is in sending. Its row is written before anything is sent (`queued`) and
/// marked before its transaction begins (`sending`), each committed at once, so a probe killed
/// at any moment leaves every seed of the run in the store, and `probe poll` can tell a
/// message that may have reached a server from one that never left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Planned; nothing of it has been sent yet.
    Queued,
    /// Its SMTP transaction began and has not ended as far as the store knows: in flight, or
    /// probe was stopped during it (its data may have reached the server). Polled for like an
    /// accepted message.
    Sending,
    /// Its SMTP transaction ended (accepted or not): the outcome is stored.
    Sent,
    /// Never handed to any server: probe was stopped before its turn, could not send it (the
    /// relay refused probe's own login or TLS), or did not try it after a 421.
    NotSent,
    /// Probe was stopped during its transaction and polling did not find it by the timeout:
    /// whether the server took it is unknown, so it has no verdict.
    Interrupted,
}

impl SendState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SendState::Queued => "queued",
            SendState::Sending => "sending",
            SendState::Sent => "sent",
            SendState::NotSent => "not_sent",
            SendState::Interrupted => "interrupted",
        }
    }

    /// A stored name; an unknown one reads as `sent`, what every older row is.
    fn from_stored(name: &str) -> SendState {
        [
            SendState::Queued,
            SendState::Sending,
            SendState::NotSent,
            SendState::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .unwrap_or(SendState::Sent)
    }
}

/// A run being started.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub id: String,
    /// Start time.
    pub started_at: SystemTime,
    /// The config file used.
    pub config_path: String,
    /// How its messages left (stored as `direct` or `relay`).
    pub transport: Transport,
    /// The From mailbox.
    pub sender_from: String,
    /// The EHLO name.
    pub ehlo: String,
    /// The missing-after timeout.
    pub timeout: Duration,
    /// The local address sending bound to, if chosen.
    pub source_ip: Option<String>,
    /// The relay's log size before sending, where following it starts.
    pub maillog_offset: Option<u64>,
    /// A name for the run (`--label`), e.g. `before-migration`.
    pub label: Option<String>,
}

/// One SMTP attempt, flattened for storage.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Host name tried.
    pub host: String,
    /// Address connected to, if any.
    pub addr: Option<String>,
    /// How it ended, one line.
    pub ending: String,
    /// TLS details as JSON.
    pub tls_json: Option<String>,
    /// The transcript as JSON.
    pub transcript_json: String,
}

/// A message's send outcome, flattened for storage.
#[derive(Debug, Clone)]
pub struct SendRecord {
    /// Its run.
    pub run_id: String,
    /// Its token.
    pub token: String,
    /// Seed name.
    pub seed: String,
    /// Provider label.
    pub provider: String,
    /// Recipient.
    pub address: String,
    /// Subject sent.
    pub subject: String,
    /// Message-ID sent.
    pub message_id: String,
    /// When the transaction ended.
    pub sent_at: SystemTime,
    /// Last host tried.
    pub smtp_host: Option<String>,
    /// Final stage.
    pub smtp_stage: Option<Stage>,
    /// Final reply code.
    pub smtp_code: Option<u16>,
    /// Final enhanced code.
    pub smtp_enhanced: Option<String>,
    /// Final reply text.
    pub smtp_text: Option<String>,
    /// Error when no reply ended it.
    pub smtp_error: Option<String>,
    /// Error kind.
    pub smtp_error_kind: Option<String>,
    /// TLS of the last attempt, JSON.
    pub tls_json: Option<String>,
    /// The relay's queue id from `250 ... queued as ID`.
    pub queue_id: Option<String>,
    /// Verdict decided at send time (deferred/rejected), if any.
    pub decision: Option<Decision>,
    /// Where it is in sending.
    pub state: SendState,
    /// Why it has no verdict, for a message not sent without one (the relay's words).
    pub note: Option<String>,
    /// Every host tried.
    pub attempts: Vec<AttemptRecord>,
}

impl SendRecord {
    /// A message's row before anything of it is sent: who, what and when, and state `queued`.
    pub fn queued(
        run_id: &str,
        token: &str,
        seed: &str,
        provider: &str,
        address: &str,
        subject: &str,
        message_id: &str,
    ) -> SendRecord {
        SendRecord {
            run_id: run_id.to_owned(),
            token: token.to_owned(),
            seed: seed.to_owned(),
            provider: provider.to_owned(),
            address: address.to_owned(),
            subject: subject.to_owned(),
            message_id: message_id.to_owned(),
            sent_at: SystemTime::now(),
            smtp_host: None,
            smtp_stage: None,
            smtp_code: None,
            smtp_enhanced: None,
            smtp_text: None,
            smtp_error: None,
            smtp_error_kind: None,
            tls_json: None,
            queue_id: None,
            decision: None,
            state: SendState::Queued,
            note: None,
            attempts: Vec::new(),
        }
    }
}

/// A folder's UIDVALIDITY and UIDNEXT for one seed, taken before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRecord {
    /// Seed name.
    pub seed: String,
    /// The folder's wire name.
    pub folder: String,
    /// Inbox or spam folder (stored as `inbox` or `junk`).
    pub role: FolderRole,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
}

/// Where and when polling saw a message, for [`Store::record_decision`].
#[derive(Debug, Clone, Copy)]
pub struct Sighted<'a> {
    /// Folder, as the user sees it.
    pub folder: &'a str,
    /// Inbox or spam folder.
    pub role: FolderRole,
    /// When probe saw it.
    pub seen_at: SystemTime,
    /// Header evidence, JSON.
    pub headers: &'a str,
    /// Gmail's inbox tab, where known.
    pub tab: Option<&'a str>,
}

/// A run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Its id.
    pub id: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms, when every message has a verdict.
    pub finished_at: Option<i64>,
    /// The config file used.
    pub config_path: String,
    /// How its messages left (stored as `direct` or `relay`).
    pub transport: Transport,
    /// The From mailbox.
    pub sender_from: String,
    /// Missing-after timeout, ms.
    pub timeout_ms: i64,
    /// The local address sending bound to, if chosen.
    pub source_ip: Option<String>,
    /// Where following the relay's log starts.
    pub maillog_offset: Option<i64>,
    /// The run's label, if given.
    pub label: Option<String>,
    /// Why probe could not do its job in this run (the relay refused its login), if so.
    pub failure: Option<String>,
    /// The probe host that made the run (none for runs stored before hosts were recorded).
    pub host: Option<String>,
    /// Seeds left out because their mailbox could not be read before sending.
    pub not_tested: Vec<NotTested>,
    /// The checks made with the run (`probe check`'s object); `None` when they were off
    /// (`--no-check`) or the run predates them.
    pub checks: Option<crate::check::Report>,
}

/// A seed that was not sent to: its mailbox could not be read before sending, so no verdict
/// could have been given. Stored as a `not_tested` observation of the run (no message row: a
/// message that was never sent has nothing to poll or decide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NotTested {
    /// Seed name.
    pub seed: String,
    /// Provider label.
    pub provider: String,
    /// Recipient address.
    pub address: String,
    /// What the mailbox check met, in the server's words.
    pub problem: String,
    /// What usually helps.
    pub hint: Option<String>,
}

/// A message as stored: what reports show.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    /// Its token.
    pub token: String,
    /// Seed name.
    pub seed: String,
    /// Provider label.
    pub provider: String,
    /// Recipient.
    pub address: String,
    /// When the SMTP transaction ended, Unix ms.
    pub sent_at: i64,
    /// Where it is in sending.
    pub state: SendState,
    /// How the SMTP transaction ended.
    pub smtp: SmtpOutcome,
    /// TLS details, JSON.
    pub tls_json: Option<String>,
    /// The verdict, once decided.
    pub verdict: Option<Verdict>,
    /// Why.
    pub verdict_reason: Option<String>,
    /// Folder found in.
    pub folder: Option<String>,
    /// Gmail's inbox tab, where known.
    pub tab: Option<String>,
    /// When probe saw it, Unix ms.
    pub seen_at: Option<i64>,
    /// Header evidence, JSON.
    pub headers_json: Option<String>,
    /// Last polling problem for its seed.
    pub poll_error: Option<String>,
    /// The relay's queue id.
    pub queue_id: Option<String>,
    /// The first downstream report that decided or may decide the verdict, JSON.
    pub downstream_json: Option<String>,
}

/// One message's rescue (`probe rescue`), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RescueRecord {
    /// The run the message belongs to.
    pub run_id: String,
    /// Seed name.
    pub seed: String,
    /// The message's token.
    pub token: String,
    /// When, Unix ms.
    pub at: i64,
    /// The spam folder it was taken from (wire name).
    pub from_folder: String,
    /// `move` or `copy`.
    pub method: String,
    /// `moved`, `copied` (the original stays in the spam folder) or `failed`.
    pub outcome: String,
    /// The server's words for a failure, or why a copy's original stays.
    pub detail: Option<String>,
}

impl RescueRecord {
    /// True when the message reached INBOX (moved, or copied).
    pub fn succeeded(&self) -> bool {
        self.outcome != "failed"
    }
}

/// How a message's SMTP transaction ended, as stored: the final reply, or the error when no
/// reply ended it. Its `Display` is the one way every report writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmtpOutcome {
    /// Last host tried.
    pub host: Option<String>,
    /// The stage where the transaction ended.
    pub stage: Option<Stage>,
    /// Final reply code.
    pub code: Option<u16>,
    /// Final enhanced status code, e.g. `4.7.1`.
    pub enhanced: Option<String>,
    /// Final reply text.
    pub text: Option<String>,
    /// Error when no reply ended it.
    pub error: Option<String>,
}

impl SmtpOutcome {
    /// The final reply as one line, `code enhanced text`, when a reply ended the transaction.
    pub fn reply(&self) -> Option<String> {
        let code = self.code?;
        let mut line = code.to_string();
        for part in [&self.enhanced, &self.text].into_iter().flatten() {
            line.push(' ');
            line.push_str(part);
        }
        Some(line)
    }

    /// The final reply when it refused the message (4xx or 5xx).
    pub fn refusal(&self) -> Option<String> {
        self.code.filter(|c| *c >= 400).and(self.reply())
    }
}

impl fmt::Display for SmtpOutcome {
    /// The reply, else the error, else `-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.reply(), &self.error) {
            (Some(reply), _) => f.write_str(&reply),
            (None, Some(error)) => f.write_str(error),
            (None, None) => f.write_str("-"),
        }
    }
}

/// The stage a stored name stands for (`Stage::as_str`); `None` for a name this probe does not
/// know, which shows as no stage rather than failing the whole read.
fn stage_of(name: &str) -> Option<Stage> {
    const STAGES: [Stage; 10] = [
        Stage::Resolve,
        Stage::Connect,
        Stage::Banner,
        Stage::Ehlo,
        Stage::StartTls,
        Stage::Auth,
        Stage::MailFrom,
        Stage::RcptTo,
        Stage::Data,
        Stage::DataEnd,
    ];
    STAGES.into_iter().find(|s| s.as_str() == name)
}

impl MessageRecord {
    /// A message handed over at `sent_at` (Unix ms) with nothing else known yet: no reply
    /// kept, no verdict, not seen. Reports, comparisons and their tests start from it.
    pub fn sent(
        token: impl Into<String>,
        seed: impl Into<String>,
        provider: impl Into<String>,
        address: impl Into<String>,
        sent_at: i64,
    ) -> Self {
        MessageRecord {
            token: token.into(),
            seed: seed.into(),
            provider: provider.into(),
            address: address.into(),
            sent_at,
            state: SendState::Sent,
            smtp: SmtpOutcome::default(),
            tls_json: None,
            verdict: None,
            verdict_reason: None,
            folder: None,
            tab: None,
            seen_at: None,
            headers_json: None,
            poll_error: None,
            queue_id: None,
            downstream_json: None,
        }
    }

    /// Where it stands for [`crate::verdict::Placement`]: its verdict, or why it has none.
    pub fn placed(&self) -> Placed {
        match (self.verdict, self.state) {
            (Some(v), _) => Placed::Verdict(v),
            (None, SendState::NotSent) => Placed::NotSent,
            (None, SendState::Interrupted) => Placed::Interrupted,
            (None, _) => Placed::Pending,
        }
    }

    /// Whether polling may still give it a verdict: sent (or maybe sent: interrupted in its
    /// transaction), and none yet.
    pub fn awaits_verdict(&self) -> bool {
        self.verdict.is_none() && matches!(self.state, SendState::Sent | SendState::Sending)
    }

    /// From sending to probe's sighting.
    pub fn latency(&self) -> Option<Duration> {
        let seen = self.seen_at?;
        Some(Duration::from_millis((seen - self.sent_at).max(0) as u64))
    }
}

/// The columns of a [`RunRecord`]; `{not_tested}` is the backend's JSON list of the run's
/// `not_tested` observations (see [`Backend::not_tested_list`]).
const RUN_COLUMNS: &str = "id, started_at, finished_at, config_path, transport, sender_from, \
     timeout_ms, source_ip, maillog_offset, label, failure, host, {not_tested}, checks_json";

fn run_record(r: &Row) -> Result<RunRecord, String> {
    Ok(RunRecord {
        id: r.text(0)?,
        started_at: r.int(1)?,
        finished_at: r.opt_int(2)?,
        config_path: r.text(3)?,
        transport: r.typed(4, Transport::from_label)?,
        sender_from: r.text(5)?,
        timeout_ms: r.int(6)?,
        source_ip: r.opt_text(7)?,
        maillog_offset: r.opt_int(8)?,
        label: r.opt_text(9)?,
        failure: r.opt_text(10)?,
        host: r.opt_text(11)?,
        not_tested: r
            .opt_text(12)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        checks: r.opt_text(13)?.and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// Which runs: every one, or those of one probe host and/or one label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only the runs made on this host (its name as `runs.host` records it).
    pub host: Option<String>,
    /// Only the runs with this label.
    pub label: Option<String>,
}

impl RunFilter {
    /// The `WHERE` clause (empty for no filter) and its parameters.
    fn clause(&self) -> (String, Vec<Val>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (column, value) in [("host", &self.host), ("label", &self.label)] {
            if let Some(v) = value {
                values.push(Val::from(v));
                conditions.push(format!("{column} = ?{}", values.len()));
            }
        }
        if conditions.is_empty() {
            (String::new(), values)
        } else {
            (format!("WHERE {}", conditions.join(" AND ")), values)
        }
    }
}

/// The database behind a store.
enum Backend {
    Sqlite(Connection),
    Postgres(pg::Pg),
}

impl Backend {
    /// The run's `not_tested` observations as one JSON list: the one query that differs.
    fn not_tested_list(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => {
                "(SELECT json_group_array(json(o.detail)) FROM observations o \
                  WHERE o.run_id = runs.id AND o.kind = 'not_tested')"
            }
            Backend::Postgres(_) => {
                "(SELECT json_agg(o.detail::json ORDER BY o.id)::text FROM observations o \
                  WHERE o.run_id = runs.id AND o.kind = 'not_tested')"
            }
        }
    }
}

/// This machine's name, recorded with each run it starts: `PROBE_HOST_NAME` when set (a
/// container's name says little), else the system's host name.
fn this_host() -> String {
    std::env::var("PROBE_HOST_NAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// An open store.
pub struct Store {
    backend: Backend,
    /// Where it is, as shown in errors (a URL without its password).
    shown: String,
    /// This probe host's name.
    host: String,
}

impl Store {
    /// The default location: the user's data directory.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "seedprobe", "seedprobe")
            .map(|d| d.data_dir().join("probe.sqlite"))
    }

    /// Puts the database in WAL mode (kept in the file), so readers and one writer of other
    /// processes go on at once. Switching needs the file to itself for a moment, and SQLite
    /// answers "database is locked" at once rather than waiting its busy timeout when another
    /// process holds it (a scheduled run and a `probe runs` opening a new store together):
    /// so the switch is retried for as long as the busy timeout would wait, and skipped when
    /// the file is in WAL mode already.
    fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mode: rusqlite::Result<String> =
                conn.pragma_query_value(None, "journal_mode", |row| row.get(0));
            let result = match mode {
                Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
                Ok(_) => conn.pragma_update(None, "journal_mode", "WAL"),
                Err(e) => Err(e),
            };
            match result {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Opens (creating if needed) and migrates a SQLite store.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_at(&Location::sqlite(path))
    }

    /// Opens (creating if needed) and migrates the store at `location`: a SQLite file, or a
    /// PostgreSQL database (which must exist; its tables are created).
    pub fn open_at(location: &Location) -> Result<Store, StoreError> {
        let shown = location.to_string();
        let open_err = |reason: String| StoreError::Open {
            store: shown.clone(),
            reason,
        };
        let backend = match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
                }
                let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(|e| open_err(e.to_string()))?;
                Store::use_wal(&conn)
                    .map_err(|e| open_err(format!("not a usable SQLite database: {e}")))?;
                Backend::Sqlite(conn)
            }
            Location::Postgres(url) => Backend::Postgres(pg::Pg::connect(url).map_err(open_err)?),
        };
        let store = Store {
            backend,
            shown: shown.clone(),
            host: this_host(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn sql(&self, reason: impl fmt::Display) -> StoreError {
        StoreError::Sql {
            store: self.shown.clone(),
            reason: reason.to_string(),
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = match &self.backend {
            Backend::Sqlite(conn) => {
                // The version is read and the steps applied under one write lock: two probes
                // opening a new store at once (a scheduled run and a report) must not both
                // migrate it.
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| self.sql(e))?;
                let result = Store::migrate_sqlite(conn);
                let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
                conn.execute_batch(end).map_err(|e| self.sql(e))?;
                result.map_err(|e| self.sql(e))?
            }
            Backend::Postgres(pg) => {
                let steps = MIGRATIONS.iter().map(|s| s.to_string()).collect();
                match pg.call(pg::Work::Migrate(steps)).map_err(|e| self.sql(e))? {
                    pg::Answer::Version(v) => v,
                    _ => return Err(self.sql("unexpected answer to a migration")),
                }
            }
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                store: self.shown.clone(),
                found,
            });
        }
        Ok(())
    }

    /// Applies the missing steps; returns the version found (newer ones are left alone).
    fn migrate_sqlite(conn: &Connection) -> rusqlite::Result<i64> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Ok(version);
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            conn.execute_batch(&format!("{step} PRAGMA user_version = {};", i + 1))?;
        }
        Ok(version)
    }

    /// Runs one statement; returns how many rows it changed.
    fn exec(&self, sql: &str, values: Vec<Val>) -> Result<u64, StoreError> {
        Ok(self.atomically(vec![(sql.to_owned(), values)])?[0])
    }

    /// Runs statements in one transaction; returns how many rows each changed.
    fn atomically(&self, steps: Vec<(String, Vec<Val>)>) -> Result<Vec<u64>, StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let run = || -> rusqlite::Result<Vec<u64>> {
                    // Unchecked: the store is used from one thread, and nothing else is in a
                    // transaction.
                    let tx = conn.unchecked_transaction()?;
                    let mut counts = Vec::with_capacity(steps.len());
                    for (sql, values) in &steps {
                        let n = tx.execute(sql, rusqlite::params_from_iter(values))?;
                        counts.push(n as u64);
                    }
                    tx.commit()?;
                    Ok(counts)
                };
                run().map_err(|e| self.sql(e))
            }
            Backend::Postgres(pg) => match pg.call(pg::Work::Atomic(steps)) {
                Ok(pg::Answer::Counts(counts)) => Ok(counts),
                Ok(_) => Err(self.sql("unexpected answer to a write")),
                Err(e) => Err(self.sql(e)),
            },
        }
    }

    /// Runs a query; returns its rows.
    fn query(&self, sql: &str, values: Vec<Val>) -> Result<Vec<Row>, StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let run = || -> rusqlite::Result<Vec<Row>> {
                    let mut stmt = conn.prepare(sql)?;
                    let width = stmt.column_count();
                    let mut rows = stmt.query(rusqlite::params_from_iter(&values))?;
                    let mut out = Vec::new();
                    while let Some(r) = rows.next()? {
                        out.push(Row((0..width)
                            .map(|i| r.get_ref(i).map(Val::from_sqlite))
                            .collect::<rusqlite::Result<_>>()?));
                    }
                    Ok(out)
                };
                run().map_err(|e| self.sql(e))
            }
            Backend::Postgres(pg) => match pg.call(pg::Work::Query(sql.to_owned(), values)) {
                Ok(pg::Answer::Rows(rows)) => Ok(rows),
                Ok(_) => Err(self.sql("unexpected answer to a query")),
                Err(e) => Err(self.sql(e)),
            },
        }
    }

    /// Runs a query and reads each row with `read`; a row that does not read is an error
    /// naming the store and what was wrong.
    fn read<T>(
        &self,
        sql: &str,
        values: Vec<Val>,
        read: impl Fn(&Row) -> Result<T, String>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql, values)?
            .iter()
            .map(|r| read(r).map_err(|e| self.sql(e)))
            .collect()
    }

    fn run_columns(&self) -> String {
        RUN_COLUMNS.replace("{not_tested}", self.backend.not_tested_list())
    }

    /// The name this probe host records with its runs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Records a new run, with this probe host's name. Run ids are ULIDs, never reused: an id
    /// already there is this very insert, retried after a dropped connection lost its answer.
    pub fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO runs (id, started_at, config_path, transport, sender_from, ehlo, timeout_ms,
                               source_ip, maillog_offset, label, host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO NOTHING",
            vals![
                &run.id,
                unix_ms(run.started_at),
                &run.config_path,
                run.transport.as_str(),
                &run.sender_from,
                &run.ehlo,
                run.timeout.as_millis() as i64,
                &run.source_ip,
                run.maillog_offset.map(|o| o as i64),
                &run.label,
                &self.host,
            ],
        )?;
        Ok(())
    }

    /// Records one message's send outcome and all its attempts, in one transaction, in place
    /// of what was recorded of it before (its `queued` row).
    pub fn record_send(&self, r: &SendRecord) -> Result<(), StoreError> {
        let now = unix_ms(SystemTime::now());
        let mut steps = vec![
            (
                "DELETE FROM smtp_attempts WHERE token = ?1".to_owned(),
                vals![&r.token],
            ),
            (
                "DELETE FROM messages WHERE token = ?1".to_owned(),
                vals![&r.token],
            ),
            (
                "INSERT INTO messages (token, run_id, seed, provider, address, subject, message_id,
                     sent_at, smtp_host, smtp_stage, smtp_code, smtp_enhanced, smtp_text, smtp_error,
                     smtp_error_kind, tls_json, verdict, verdict_reason, decided_at, queue_id, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                         ?18, ?19, ?20, ?21)"
                    .to_owned(),
                vals![
                    &r.token,
                    &r.run_id,
                    &r.seed,
                    &r.provider,
                    &r.address,
                    &r.subject,
                    &r.message_id,
                    unix_ms(r.sent_at),
                    &r.smtp_host,
                    r.smtp_stage.map(Stage::as_str),
                    r.smtp_code,
                    &r.smtp_enhanced,
                    &r.smtp_text,
                    &r.smtp_error,
                    &r.smtp_error_kind,
                    &r.tls_json,
                    r.decision.as_ref().map(|d| d.verdict.as_label()),
                    r.decision
                        .as_ref()
                        .map(|d| d.reason.clone())
                        .or_else(|| r.note.clone()),
                    r.decision.as_ref().map(|_| now),
                    &r.queue_id,
                    r.state.as_str(),
                ],
            ),
        ];
        for (i, a) in r.attempts.iter().enumerate() {
            steps.push((
                "INSERT INTO smtp_attempts (token, attempt, host, addr, ending, tls_json, transcript)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    .to_owned(),
                vals![
                    &r.token,
                    i as i64,
                    &a.host,
                    &a.addr,
                    &a.ending,
                    &a.tls_json,
                    &a.transcript_json
                ],
            ));
        }
        self.atomically(steps)?;
        Ok(())
    }

    /// Appends an observation.
    pub fn record_observation(
        &self,
        run_id: &str,
        token: Option<&str>,
        seed: Option<&str>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO observations (run_id, token, seed, at, kind, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vals![
                run_id,
                token,
                seed,
                unix_ms(SystemTime::now()),
                kind,
                detail.to_string()
            ],
        )?;
        Ok(())
    }

    /// Records a seed left out of a run because its mailbox could not be read.
    pub fn record_not_tested(&self, run_id: &str, n: &NotTested) -> Result<(), StoreError> {
        let detail = serde_json::to_value(n).unwrap_or_default();
        self.record_observation(run_id, None, Some(&n.seed), "not_tested", &detail)
    }

    /// Notes a polling problem on every undecided message of these seeds.
    pub fn record_poll_error(
        &self,
        run_id: &str,
        seeds: &[String],
        error: &str,
    ) -> Result<(), StoreError> {
        for seed in seeds {
            self.exec(
                "UPDATE messages SET poll_error = ?3
                 WHERE run_id = ?1 AND seed = ?2 AND verdict IS NULL",
                vals![run_id, seed, error],
            )?;
        }
        Ok(())
    }

    /// Records a verdict reached by polling, with where and when the message was seen,
    /// replacing any earlier one: whether it may is for [`crate::verdict::weigh`] to say.
    pub fn record_decision(
        &self,
        token: &str,
        decision: &Decision,
        found: Option<Sighted<'_>>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE messages SET verdict = ?2, verdict_reason = ?3, decided_at = ?4,
                 folder = ?5, folder_role = ?6, seen_at = ?7, headers_json = ?8, tab = ?9
             WHERE token = ?1",
            vals![
                token,
                decision.verdict.as_label(),
                &decision.reason,
                unix_ms(SystemTime::now()),
                found.map(|f| f.folder),
                found.map(|f| f.role.as_str()),
                found.map(|f| unix_ms(f.seen_at)),
                found.map(|f| f.headers),
                found.and_then(|f| f.tab),
            ],
        )?;
        Ok(())
    }

    /// Records a folder's position for a seed of a run (the first one taken wins).
    pub fn record_position(&self, run_id: &str, p: &PositionRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO positions (run_id, seed, folder, role, uidvalidity, uidnext, taken_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO NOTHING",
            vals![
                run_id,
                &p.seed,
                &p.folder,
                p.role.as_str(),
                p.uid_validity,
                p.uid_next,
                unix_ms(SystemTime::now())
            ],
        )?;
        Ok(())
    }

    /// A run's folder positions.
    pub fn positions(&self, run_id: &str) -> Result<Vec<PositionRecord>, StoreError> {
        self.read(
            "SELECT seed, folder, role, uidvalidity, uidnext FROM positions
             WHERE run_id = ?1 ORDER BY seed, folder",
            vals![run_id],
            |r| {
                Ok(PositionRecord {
                    seed: r.text(0)?,
                    folder: r.text(1)?,
                    role: r.typed(2, FolderRole::from_label)?,
                    uid_validity: r.opt_small(3)?.ok_or("column 3: NULL")?,
                    uid_next: r.opt_small(4)?.ok_or("column 4: NULL")?,
                })
            },
        )
    }

    /// Stores the downstream report that decided a message, or that is kept to decide it at
    /// the deadline (which one is for [`crate::verdict::weigh`] to say).
    pub fn record_downstream(&self, token: &str, report_json: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE messages SET downstream_json = ?2 WHERE token = ?1",
            vals![token, report_json],
        )?;
        Ok(())
    }

    /// Marks a message as being sent, just before its transaction begins: from now on it may
    /// reach the server, whatever happens to probe.
    pub fn mark_sending(&self, token: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE messages SET state = 'sending', sent_at = ?2 WHERE token = ?1",
            vals![token, unix_ms(SystemTime::now())],
        )?;
        Ok(())
    }

    /// Marks a run's messages still `queued` as `not_sent`: the probe that was to send them
    /// stopped first (killed, interrupted). Returns how many there were.
    pub fn settle_unsent(&self, run_id: &str) -> Result<usize, StoreError> {
        let n = self.exec(
            "UPDATE messages SET state = 'not_sent',
                 verdict_reason = 'not sent: probe was stopped before sending it'
             WHERE run_id = ?1 AND state = 'queued'",
            vals![run_id],
        )?;
        Ok(n as usize)
    }

    /// Marks a message whose transaction was interrupted, and that polling did not find by
    /// the timeout, as `interrupted`, with why it has no verdict.
    pub fn mark_interrupted(&self, token: &str, reason: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE messages SET state = 'interrupted', verdict_reason = ?2
             WHERE token = ?1 AND verdict IS NULL",
            vals![token, reason],
        )?;
        Ok(())
    }

    /// Stores the checks made with a run.
    pub fn record_checks(
        &self,
        run_id: &str,
        checks: &crate::check::Report,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(checks).unwrap_or_else(|_| "null".into());
        self.exec(
            "UPDATE runs SET checks_json = ?2 WHERE id = ?1",
            vals![run_id, json],
        )?;
        Ok(())
    }

    /// Records why probe could not do its job in a run (the relay refused its login).
    pub fn record_run_failure(&self, run_id: &str, failure: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE runs SET failure = ?2 WHERE id = ?1",
            vals![run_id, failure],
        )?;
        Ok(())
    }

    /// Marks a run finished when none of its messages awaits a verdict; returns whether it is.
    /// A message not sent, or interrupted and not found, awaits none; one `queued` or `sending`
    /// is in an unknown state, and keeps the run open.
    pub fn finish_run_if_done(&self, run_id: &str) -> Result<bool, StoreError> {
        let pending = self.read(
            "SELECT COUNT(*) FROM messages
             WHERE run_id = ?1 AND verdict IS NULL
               AND state NOT IN ('not_sent', 'interrupted')",
            vals![run_id],
            |r| r.int(0),
        )?;
        let done = pending.first() == Some(&0);
        if done {
            self.exec(
                "UPDATE runs SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL",
                vals![run_id, unix_ms(SystemTime::now())],
            )?;
        }
        Ok(done)
    }

    /// The newest run that still has messages awaiting a verdict.
    pub fn latest_unfinished_run(&self) -> Result<String, StoreError> {
        self.read(
            "SELECT id FROM runs WHERE finished_at IS NULL
             ORDER BY started_at DESC, id DESC LIMIT 1",
            vals![],
            |r| r.text(0),
        )?
        .pop()
        .ok_or(StoreError::NoRun("unfinished"))
    }

    /// A run by id.
    pub fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        self.read(
            &format!("SELECT {} FROM runs WHERE id = ?1", self.run_columns()),
            vals![id],
            run_record,
        )?
        .pop()
        .ok_or_else(|| StoreError::NoSuchRun(id.to_owned()))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_matching(&RunFilter::default())
    }

    /// The runs `filter` keeps, newest first.
    pub fn runs_matching(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let (clause, values) = filter.clause();
        self.read(
            &format!(
                "SELECT {} FROM runs {clause} ORDER BY started_at DESC, id DESC",
                self.run_columns()
            ),
            values,
            run_record,
        )
    }

    /// The newest run, finished or not.
    pub fn latest_run(&self) -> Result<String, StoreError> {
        self.latest_run_matching(&RunFilter::default())
    }

    /// The newest run `filter` keeps, finished or not.
    pub fn latest_run_matching(&self, filter: &RunFilter) -> Result<String, StoreError> {
        let (clause, values) = filter.clause();
        self.read(
            &format!("SELECT id FROM runs {clause} ORDER BY started_at DESC, id DESC LIMIT 1"),
            values,
            |r| r.text(0),
        )?
        .pop()
        .ok_or(if *filter == RunFilter::default() {
            StoreError::NoRun("stored")
        } else {
            StoreError::NoRun("matching")
        })
    }

    /// Deletes every run started before `before` (Unix ms) with everything recorded for it
    /// (messages, SMTP attempts, observations, folder positions), in one transaction. Returns
    /// how many runs were deleted.
    pub fn prune_runs_started_before(&mut self, before: i64) -> Result<usize, StoreError> {
        const OLD: &str = "SELECT id FROM runs WHERE started_at < ?1";
        let steps: Vec<_> = [
            format!(
                "DELETE FROM smtp_attempts WHERE token IN
                     (SELECT token FROM messages WHERE run_id IN ({OLD}))"
            ),
            format!("DELETE FROM observations WHERE run_id IN ({OLD})"),
            format!("DELETE FROM positions WHERE run_id IN ({OLD})"),
            format!("DELETE FROM rescues WHERE run_id IN ({OLD})"),
            format!("DELETE FROM messages WHERE run_id IN ({OLD})"),
            "DELETE FROM runs WHERE started_at < ?1".to_owned(),
        ]
        .into_iter()
        .map(|sql| (sql, vals![before]))
        .collect();
        let counts = self.atomically(steps)?;
        Ok(counts.last().copied().unwrap_or(0) as usize)
    }

    /// Records one message's rescue.
    pub fn record_rescue(&self, r: &RescueRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO rescues (run_id, seed, token, at, from_folder, method, outcome, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            vals![
                &r.run_id,
                &r.seed,
                &r.token,
                r.at,
                &r.from_folder,
                &r.method,
                &r.outcome,
                &r.detail
            ],
        )?;
        Ok(())
    }

    /// A run's rescues, oldest first.
    pub fn rescues(&self, run_id: &str) -> Result<Vec<RescueRecord>, StoreError> {
        self.read(
            "SELECT run_id, seed, token, at, from_folder, method, outcome, detail
             FROM rescues WHERE run_id = ?1 ORDER BY at, token",
            vals![run_id],
            |r| {
                Ok(RescueRecord {
                    run_id: r.text(0)?,
                    seed: r.text(1)?,
                    token: r.text(2)?,
                    at: r.int(3)?,
                    from_folder: r.text(4)?,
                    method: r.text(5)?,
                    outcome: r.text(6)?,
                    detail: r.opt_text(7)?,
                })
            },
        )
    }

    /// A run's messages, in sending order.
    pub fn messages(&self, run_id: &str) -> Result<Vec<MessageRecord>, StoreError> {
        self.read(
            "SELECT token, seed, provider, address, sent_at, smtp_host, smtp_stage, smtp_code,
                    smtp_enhanced, smtp_text, smtp_error, tls_json, verdict, verdict_reason,
                    folder, seen_at, headers_json, poll_error, queue_id, downstream_json, tab,
                    state
             FROM messages WHERE run_id = ?1 ORDER BY sent_at, token",
            vals![run_id],
            |r| {
                Ok(MessageRecord {
                    token: r.text(0)?,
                    seed: r.text(1)?,
                    provider: r.text(2)?,
                    address: r.text(3)?,
                    sent_at: r.int(4)?,
                    state: SendState::from_stored(&r.text(21)?),
                    smtp: SmtpOutcome {
                        host: r.opt_text(5)?,
                        stage: r.opt_text(6)?.as_deref().and_then(stage_of),
                        code: r.opt_small(7)?,
                        enhanced: r.opt_text(8)?,
                        text: r.opt_text(9)?,
                        error: r.opt_text(10)?,
                    },
                    tls_json: r.opt_text(11)?,
                    verdict: r.opt_text(12)?.as_deref().and_then(Verdict::from_label),
                    verdict_reason: r.opt_text(13)?,
                    folder: r.opt_text(14)?,
                    seen_at: r.opt_int(15)?,
                    headers_json: r.opt_text(16)?,
                    poll_error: r.opt_text(17)?,
                    queue_id: r.opt_text(18)?,
                    downstream_json: r.opt_text(19)?,
                    tab: r.opt_text(20)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Store {
        fn sqlite(&self) -> &Connection {
            match &self.backend {
                Backend::Sqlite(conn) => conn,
                Backend::Postgres(_) => panic!("a SQLite store was expected"),
            }
        }
    }

    fn test_run(id: &str) -> NewRun {
        NewRun {
            id: id.into(),
            started_at: SystemTime::now(),
            config_path: "c.yaml".into(),
            transport: Transport::Direct,
            sender_from: "a@b".into(),
            ehlo: "h".into(),
            timeout: Duration::from_secs(1),
            source_ip: None,
            maillog_offset: None,
            label: None,
        }
    }

    /// Several processes opening one new store at once (a scheduled run and a `probe runs`)
    /// all get it: the switch to WAL mode waits for the others instead of failing with
    /// "database is locked".
    #[test]
    fn many_open_one_new_store_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        for round in 0..5 {
            let path = path.with_extension(format!("{round}.sqlite"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Store::open(&path).map(drop).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn a_version_1_store_is_migrated_and_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO runs (id, started_at, config_path, transport, sender_from, ehlo, timeout_ms)
                 VALUES ('OLD', 1, 'c.yaml', 'direct', 'a@b', 'h', 1000);
                 INSERT INTO messages (token, run_id, seed, provider, address, subject, message_id,
                                       sent_at, verdict)
                 VALUES ('T', 'OLD', 'gmail', 'gmail', 'a@b', 's', '<m@b>', 2, 'inbox');",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let run = s.run("OLD").unwrap();
        assert_eq!((run.transport.as_str(), run.source_ip), ("direct", None));
        assert_eq!(run.failure, None);
        // Every message of an older store was sent.
        assert_eq!(s.messages("OLD").unwrap()[0].state, SendState::Sent);
        let version: i64 = s
            .sqlite()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn runs_are_listed_newest_first_with_labels_and_pruned_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let mut old = test_run("OLD");
        old.started_at = UNIX_EPOCH + Duration::from_secs(1_000);
        old.label = Some("before".into());
        s.create_run(&old).unwrap();
        s.create_run(&test_run("NEW")).unwrap();
        let ids = |s: &Store| {
            s.runs()
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&s), ["NEW", "OLD"]);
        assert_eq!(s.run("OLD").unwrap().label.as_deref(), Some("before"));
        assert_eq!(s.latest_run().unwrap(), "NEW");
        assert_eq!(s.prune_runs_started_before(2_000_000).unwrap(), 1);
        assert_eq!(ids(&s), ["NEW"]);
        assert_eq!(s.prune_runs_started_before(2_000_000).unwrap(), 0);
    }

    #[test]
    fn smtp_outcomes_read_back_typed_and_print_one_way() {
        let reply = SmtpOutcome {
            host: Some("mx".into()),
            stage: stage_of("rcpt_to"),
            code: Some(450),
            enhanced: Some("4.7.1".into()),
            text: Some("try later".into()),
            error: None,
        };
        assert_eq!(reply.stage, Some(Stage::RcptTo));
        assert_eq!(reply.to_string(), "450 4.7.1 try later");
        assert_eq!(reply.refusal().as_deref(), Some("450 4.7.1 try later"));
        let accepted = SmtpOutcome {
            code: Some(250),
            text: Some("Ok".into()),
            ..SmtpOutcome::default()
        };
        assert_eq!(
            (accepted.to_string(), accepted.refusal()),
            ("250 Ok".into(), None)
        );
        let failed = SmtpOutcome {
            stage: stage_of("starttls"),
            error: Some("connection closed".into()),
            ..SmtpOutcome::default()
        };
        assert_eq!(failed.stage, Some(Stage::StartTls));
        assert_eq!(failed.to_string(), "connection closed");
        assert_eq!(SmtpOutcome::default().to_string(), "-");
        assert_eq!(stage_of("warp_drive"), None);
    }

    #[test]
    fn a_decision_replaces_the_one_before_it() {
        // The ledger may re-decide (a sighting after a failure report); the store obeys.
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        s.create_run(&test_run("R1")).unwrap();
        s.record_send(&SendRecord {
            run_id: "R1".into(),
            token: "T1".into(),
            seed: "gmail".into(),
            provider: "gmail".into(),
            address: "a@b".into(),
            subject: "s".into(),
            message_id: "<m@b>".into(),
            sent_at: SystemTime::now(),
            smtp_host: None,
            smtp_stage: Some(Stage::DataEnd),
            smtp_code: Some(250),
            smtp_enhanced: None,
            smtp_text: Some("Ok".into()),
            smtp_error: None,
            smtp_error_kind: None,
            tls_json: None,
            queue_id: None,
            decision: None,
            state: SendState::Sent,
            note: None,
            attempts: Vec::new(),
        })
        .unwrap();
        let decide = |verdict, reason: &str| Decision {
            verdict,
            reason: reason.into(),
        };
        s.record_decision("T1", &decide(Verdict::Rejected, "relay gave up"), None)
            .unwrap();
        let sighted = Sighted {
            folder: "INBOX",
            role: FolderRole::Inbox,
            seen_at: SystemTime::now(),
            headers: "{}",
            tab: None,
        };
        s.record_decision("T1", &decide(Verdict::Inbox, "in INBOX"), Some(sighted))
            .unwrap();
        let m = &s.messages("R1").unwrap()[0];
        assert_eq!(m.verdict, Some(Verdict::Inbox));
        assert_eq!(m.folder.as_deref(), Some("INBOX"));
        assert_eq!(m.smtp.stage, Some(Stage::DataEnd));
        assert!(s.finish_run_if_done("R1").unwrap());
    }

    fn queued(run_id: &str, token: &str) -> SendRecord {
        let seed = format!("seed-{token}");
        SendRecord::queued(run_id, token, &seed, "gmail", "a@b", "s", "<m@b>")
    }

    #[test]
    fn a_run_is_not_finished_while_a_message_is_in_an_unknown_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        s.create_run(&test_run("R1")).unwrap();
        for token in ["T1", "T2", "T3"] {
            s.record_send(&queued("R1", token)).unwrap();
        }
        assert!(!s.finish_run_if_done("R1").unwrap(), "queued");
        s.mark_sending("T1").unwrap();
        s.mark_sending("T3").unwrap();
        // T3's outcome replaces its row.
        let mut sent = queued("R1", "T3");
        sent.state = SendState::Sent;
        sent.smtp_code = Some(250);
        s.record_send(&sent).unwrap();
        assert_eq!(s.settle_unsent("R1").unwrap(), 1, "T2 was never sent");
        let state = |s: &Store, token: &str| {
            let m = s.messages("R1").unwrap();
            let m = m.iter().find(|m| m.token == token).unwrap().clone();
            (m.state, m.awaits_verdict())
        };
        assert_eq!(state(&s, "T1"), (SendState::Sending, true));
        assert_eq!(state(&s, "T2"), (SendState::NotSent, false));
        assert_eq!(state(&s, "T3"), (SendState::Sent, true));
        s.record_decision(
            "T3",
            &Decision {
                verdict: Verdict::Missing,
                reason: "x".into(),
            },
            None,
        )
        .unwrap();
        assert!(!s.finish_run_if_done("R1").unwrap(), "T1 is in flight");
        s.mark_interrupted("T1", "stopped").unwrap();
        assert_eq!(state(&s, "T1"), (SendState::Interrupted, false));
        assert!(s.finish_run_if_done("R1").unwrap());
        assert_eq!(s.messages("R1").unwrap().len(), 3);
    }

    #[test]
    fn the_first_position_per_folder_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        s.create_run(&test_run("R1")).unwrap();
        let at = |folder: &str, uid_next: u32| PositionRecord {
            seed: "gmail".into(),
            folder: folder.into(),
            role: FolderRole::Inbox,
            uid_validity: 3,
            uid_next,
        };
        s.record_position("R1", &at("INBOX", 100_001)).unwrap();
        s.record_position("R1", &at("INBOX", 100_007)).unwrap();
        s.record_position("R1", &at("[Gmail]/Spam", 12)).unwrap();
        assert_eq!(
            s.positions("R1").unwrap(),
            [at("INBOX", 100_001), at("[Gmail]/Spam", 12)]
        );
        assert!(s.positions("R2").unwrap().is_empty());
    }

    #[test]
    fn typed_columns_keep_their_names_and_refuse_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let mut run = test_run("R1");
        run.transport = Transport::Relay;
        s.create_run(&run).unwrap();
        let position = PositionRecord {
            seed: "gmail".into(),
            folder: "Junk".into(),
            role: FolderRole::Junk,
            uid_validity: 1,
            uid_next: 2,
        };
        s.record_position("R1", &position).unwrap();
        // The same strings as before the types: old stores read the same.
        let stored: (String, String) = s
            .sqlite()
            .query_row(
                "SELECT r.transport, p.role FROM runs r JOIN positions p ON p.run_id = r.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(stored, ("relay".to_owned(), "junk".to_owned()));
        assert_eq!(s.run("R1").unwrap().transport, Transport::Relay);
        assert_eq!(s.positions("R1").unwrap(), [position]);
        // A name this build does not know is an error, not a panic.
        s.sqlite()
            .execute_batch("UPDATE runs SET transport = 'carrier'; UPDATE positions SET role = 'x'")
            .unwrap();
        assert!(matches!(s.run("R1"), Err(StoreError::Sql { .. })));
        assert!(matches!(s.positions("R1"), Err(StoreError::Sql { .. })));
    }

    #[test]
    fn reopen_keeps_schema_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let s = Store::open(&path).unwrap();
        s.create_run(&test_run("R1")).unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.run("R1").unwrap().transport, Transport::Direct);
        assert!(matches!(s.run("nope"), Err(StoreError::NoSuchRun(_))));
        s.sqlite().pragma_update(None, "user_version", 99).unwrap();
        drop(s);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
