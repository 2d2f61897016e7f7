//! The PostgreSQL backend: one connection, owned by a thread of its own.
//!
//! The store's API is synchronous and is called from async code (a run's polling) as well as
//! from plain code (`probe runs`). tokio-postgres is async. Rather than `block_on` inside the
//! caller's runtime (which panics: "cannot start a runtime from within a runtime") or making
//! every caller async, the connection lives on a dedicated thread with its own single-threaded
//! runtime; callers send it a job and wait for the answer on a channel. The thread never needs
//! the caller's runtime, so nothing can deadlock; a caller waits as long as a SQLite write
//! would make it wait, bounded by [`JOB_TIMEOUT`] and [`RECONNECT_FOR`].
//!
//! A dropped connection (a database restart, a network blip) is reopened and the job retried,
//! for up to [`RECONNECT_FOR`]: every job is safe to repeat (a transaction that failed was
//! rolled back; the store's writes replace or ignore what is there).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::location::{PgTls, PgUrl};
use super::sql::{Row, Val, to_postgres};

/// How long a lost connection is retried before the job fails.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);
/// How long one job may take once connected.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(60);
/// Serialises migrations of one database across every probe host (any constant will do; this
/// one is "seedprobe" in hex-ish).
const MIGRATION_LOCK: i64 = 0x5eed_9b0e;

/// What the connection thread is asked to do.
pub(super) enum Work {
    /// One statement; its rows.
    Query(String, Vec<Val>),
    /// Statements in one transaction; each one's row count.
    Atomic(Vec<(String, Vec<Val>)>),
    /// Brings the schema to `steps.len()` under a database-wide lock; the version found.
    Migrate(Vec<String>),
}

/// What it answers.
pub(super) enum Answer {
    Rows(Vec<Row>),
    Counts(Vec<u64>),
    Version(i64),
}

struct Job {
    work: Work,
    reply: mpsc::Sender<Result<Answer, String>>,
}

/// A connection to PostgreSQL, on its own thread.
pub(super) struct Pg {
    jobs: mpsc::Sender<Job>,
}

impl Pg {
    /// Connects (once, failing at once if the server cannot be reached: a typo should not
    /// wait a minute), then serves jobs until dropped.
    pub(super) fn connect(url: &PgUrl) -> Result<Pg, String> {
        let target = Target::new(url)?;
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("probe-store".into())
            .spawn(move || serve(target, inbox, ready_tx))
            .map_err(|e| format!("cannot start the store's thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the store's thread stopped while connecting".to_owned())??;
        Ok(Pg { jobs })
    }

    pub(super) fn call(&self, work: Work) -> Result<Answer, String> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(Job { work, reply })
            .map_err(|_| "the store's connection thread has stopped".to_owned())?;
        answer
            .recv()
            .map_err(|_| "the store's connection thread has stopped".to_owned())?
    }
}

/// Everything needed to (re)connect.
struct Target {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    fn new(url: &PgUrl) -> Result<Target, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .user(&url.user)
            .host(&url.host)
            .port(url.port)
            .dbname(&url.dbname)
            .application_name("seedprobe")
            .connect_timeout(Duration::from_secs(url.connect_timeout))
            .keepalives_idle(Duration::from_secs(30));
        if let Some(password) = password_for(url) {
            config.password(password);
        }
        let tls = match url.tls {
            PgTls::Off => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            PgTls::Verified => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let extra = match &url.root_cert {
                    Some(path) => crate::tls::load_ca_file(path)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?,
                    None => Vec::new(),
                };
                let rustls = crate::tls::verifying_config(&extra).map_err(|e| e.to_string())?;
                Some(tokio_postgres_rustls::MakeRustlsConnect::new(
                    (*rustls).clone(),
                ))
            }
        };
        Ok(Target { config, tls })
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, String> {
        // The connection task runs on this thread's runtime, while a job is being served.
        match &self.tls {
            None => {
                let (client, conn) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| describe(&e))?;
                tokio::spawn(conn);
                Ok(client)
            }
            Some(tls) => {
                let (client, conn) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| describe(&e))?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    }
}

fn serve(target: Target, inbox: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<(), String>>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the store's runtime: {e}")));
            return;
        }
    };
    let mut client = match rt.block_on(target.connect()) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    // Ends when the Store (the only sender) is dropped.
    while let Ok(job) = inbox.recv() {
        let answer = rt.block_on(serve_job(&target, &mut client, &job.work));
        let _ = job.reply.send(answer);
    }
}

async fn serve_job(
    target: &Target,
    client: &mut tokio_postgres::Client,
    work: &Work,
) -> Result<Answer, String> {
    let give_up = Instant::now() + RECONNECT_FOR;
    let mut wait = Duration::from_millis(100);
    loop {
        let error = match tokio::time::timeout(JOB_TIMEOUT, perform(client, work)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) if connection_lost(client, &e) => describe(&e),
            Ok(Err(e)) => return Err(describe(&e)),
            Err(_) => {
                return Err(format!("no answer within {} s", JOB_TIMEOUT.as_secs()));
            }
        };
        tracing::warn!("store connection lost ({error}); reconnecting");
        loop {
            if Instant::now() >= give_up {
                return Err(format!(
                    "connection lost ({error}) and not back within {} s",
                    RECONNECT_FOR.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            match target.connect().await {
                Ok(c) => {
                    *client = c;
                    tracing::info!("store connection back");
                    break;
                }
                Err(e) => tracing::debug!("store reconnect failed: {e}"),
            }
        }
    }
}

/// Whether the error means the connection is gone (so the job may be retried on a new one),
/// rather than that the statement was wrong.
fn connection_lost(client: &tokio_postgres::Client, e: &tokio_postgres::Error) -> bool {
    if client.is_closed() || e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        // No server error: an I/O failure on the socket.
        None => e.as_db_error().is_none(),
    }
}

fn params(values: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn row_of(row: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    (0..row.len())
        .map(|i| row.try_get::<_, Val>(i))
        .collect::<Result<_, _>>()
        .map(Row)
}

async fn perform(
    client: &mut tokio_postgres::Client,
    work: &Work,
) -> Result<Answer, tokio_postgres::Error> {
    match work {
        Work::Query(sql, values) => {
            let rows = client.query(&to_postgres(sql), &params(values)).await?;
            Ok(Answer::Rows(
                rows.iter().map(row_of).collect::<Result<_, _>>()?,
            ))
        }
        Work::Atomic(steps) => {
            let tx = client.transaction().await?;
            let mut counts = Vec::with_capacity(steps.len());
            for (sql, values) in steps {
                counts.push(tx.execute(&to_postgres(sql), &params(values)).await?);
            }
            tx.commit().await?;
            Ok(Answer::Counts(counts))
        }
        Work::Migrate(steps) => {
            // DDL is transactional in PostgreSQL: the version is read and every step applied
            // in one transaction, under a lock every probe host takes, so two hosts opening a
            // new database at once do not both migrate it.
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS probe_schema (version BIGINT NOT NULL)")
                .await?;
            let found: i64 = match tx
                .query_opt("SELECT version FROM probe_schema", &[])
                .await?
            {
                Some(row) => row.try_get(0)?,
                None => {
                    tx.execute("INSERT INTO probe_schema (version) VALUES (0)", &[])
                        .await?;
                    0
                }
            };
            if found > steps.len() as i64 {
                tx.rollback().await?;
                return Ok(Answer::Version(found));
            }
            for (i, step) in steps.iter().enumerate().skip(found.max(0) as usize) {
                tx.batch_execute(&to_postgres(step)).await?;
                tx.execute("UPDATE probe_schema SET version = $1", &[&(i as i64 + 1)])
                    .await?;
            }
            tx.commit().await?;
            Ok(Answer::Version(found))
        }
    }
}

/// A tokio-postgres error in the server's words (its message and detail), else the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The password, as libpq finds it: in the URL, else `PGPASSWORD`, else the password file
/// (`PGPASSFILE`, default `~/.pgpass`).
fn password_for(url: &PgUrl) -> Option<String> {
    if let Some(p) = &url.password {
        return Some(p.clone());
    }
    if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
        return Some(p);
    }
    let file = match std::env::var_os("PGPASSFILE") {
        Some(f) => PathBuf::from(f),
        None => directories::BaseDirs::new()?.home_dir().join(".pgpass"),
    };
    let text = std::fs::read_to_string(&file).ok()?;
    // As libpq: a password file others can read is ignored, with a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; permissions should be u=rw (0600) \
                 or less: ignored",
                file.display()
            );
            return None;
        }
    }
    pgpass_lookup(&text, &url.host, url.port, &url.dbname, &url.user)
}

/// The first line of a password file (`host:port:database:user:password`, `*` matching
/// anything, `\` escaping `:` and `\`) that matches.
fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |field: &String, value: &str| field == "*" || field == value;
            (matches(h, host) && matches(p, &port) && matches(d, db) && matches(u, user))
                .then(|| password.clone())
        })
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // As libpq: every unescaped colon ends a field, so a line with more than five
            // fields matches nothing.
            ':' => fields.push(String::new()),
            c => {
                let c = if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                };
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let file = "# comment\n\
                    db.example.org:5432:runs:probe:first\n\
                    127.0.0.1:5433:*:probe:lab\\:pass\n\
                    *:*:*:*:fallback\n";
        for ((host, port, db, user), want) in [
            (("db.example.org", 5432, "runs", "probe"), "first"),
            (("127.0.0.1", 5433, "anything", "probe"), "lab:pass"),
            (("127.0.0.1", 5434, "runs", "probe"), "fallback"),
            (("db.example.org", 5432, "runs", "other"), "fallback"),
        ] {
            assert_eq!(
                pgpass_lookup(file, host, port, db, user).as_deref(),
                Some(want),
                "{host}:{port}:{db}:{user}"
            );
        }
        assert_eq!(pgpass_lookup("h:1:d:u:p\n", "h", 2, "d", "u"), None);
        assert_eq!(pgpass_lookup("broken line\n", "h", 2, "d", "u"), None);
    }
}
