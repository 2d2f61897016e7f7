//! The PostgreSQL store (`--store postgres://...`) against the lab's PostgreSQL 15
//! (127.0.0.1:5433, see `docker/lab/lab.sh`): the CLI flow as on SQLite, two probe hosts
//! writing at once, a database restart in the middle of polling, bad store strings, and the
//! password never shown. Each test has its own database, so they run in parallel.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::lab::{disrupt, ensure_lab, lab_dir};
use crate::support::net::wait_for;
use crate::support::{Probe, Seed, Seeds};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The restart test restarts the lab's one PostgreSQL server under every other test here: it
/// holds this lock for writing, the others for reading, so none of them meets the restart.
static SERVER: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The server, shared with the other tests (not with the restart).
fn server_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SERVER.read().unwrap_or_else(|e| e.into_inner())
}

fn lab_password() -> String {
    let path = lab_dir().join("secrets/postgres.pass");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// `psql -tA` as the lab's superuser on `db`: the output, trimmed.
fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5433", "-U", "probe", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .env("PGPASSWORD", lab_password())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A test's own database, dropped with it.
struct Db(String);

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                "5433",
                "-U",
                "probe",
                "-d",
                "postgres",
                "-qc",
            ])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .env("PGPASSWORD", lab_password())
            .output();
    }
}

/// A new, empty database for one test; its store URL (no password in it), and the guard that
/// drops it.
fn fresh_db(name: &str) -> (String, Db) {
    ensure_lab();
    static N: AtomicUsize = AtomicUsize::new(0);
    let db = format!(
        "probe_{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    psql("postgres", &format!("CREATE DATABASE {db}"));
    (format!("postgres://probe@127.0.0.1:5433/{db}"), Db(db))
}

fn db_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// A probe on the PostgreSQL store `url`, its password from PGPASSWORD, as probe host `host`.
fn on_pg(probe: Probe, url: &str, host: &str) -> Probe {
    probe
        .env("PROBE_STORE", url)
        .env("PGPASSWORD", lab_password())
        .env("PROBE_HOST_NAME", host)
}

/// Each seed's verdict in a run's JSON.
fn verdicts(json: &Value) -> BTreeMap<String, String> {
    json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seed"].as_str().unwrap().to_owned(),
                m["verdict"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_cli_works_on_postgresql_as_on_sqlite() {
    let _server = server_shared();
    let (url, _db) = fresh_db("cli");
    let seeds = Seeds::lab_six("6s");
    // The same run on SQLite, for reference.
    let sqlite = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let want = verdicts(&sqlite.json());
    assert_eq!(want.len(), 6, "{want:?}");

    let first = on_pg(Probe::new().lab(), &url, "host-a")
        .args(["run", "--all", "--json", "--label", "first"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let dir = first.dir();
    let first_json = first.json();
    assert_eq!(verdicts(&first_json), want);
    assert_eq!(first_json["host"], "host-a");
    assert_eq!(first_json["finished"], true);
    let a = first_json["run_id"].as_str().unwrap().to_owned();
    // Nothing went to SQLite.
    assert!(!dir.join("store.sqlite").exists());

    let second = on_pg(Probe::in_dir(dir), &url, "host-a")
        .args(["run", "--all", "--json", "--label", "second"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let b = second.json()["run_id"].as_str().unwrap().to_owned();
    assert_eq!(verdicts(&second.json()), want);

    let pg = |args: &[&str]| on_pg(Probe::in_dir(dir), &url, "host-a").args(args);
    // `probe report --format json` reads back what `run --json` printed.
    let report = pg(&["report", &a, "--format", "json"]).expect_exit(0).run();
    assert_eq!(report.json(), first_json);
    // `probe runs`: newest first, labels and host; `--label` keeps one.
    let runs = pg(&["runs", "--json"]).expect_exit(0).run().json();
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.as_str(), a.as_str()]);
    assert_eq!(runs[0]["host"], "host-a");
    let firsts = pg(&["runs", "--json", "--label", "first"])
        .expect_exit(0)
        .run()
        .json();
    assert_eq!(firsts.as_array().unwrap().len(), 1);
    assert_eq!(firsts[0]["run_id"], a.as_str());
    // `probe compare`: same placement, nothing worse (exit 0), by ids or as the host's last two.
    let by_ids = pg(&["compare", "--json", &a, &b])
        .expect_exit(0)
        .run()
        .json();
    assert_eq!(by_ids["worse"], false);
    let by_host = pg(&["compare", "--json", "--host", "host-a"])
        .expect_exit(0)
        .run()
        .json();
    assert_eq!(by_host, by_ids);
    // `probe poll --run`: a finished run reports the same verdicts again.
    let polled = pg(&["poll", "--run", &a, "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    assert_eq!(verdicts(&polled.json()), want);
    // The schema is the SQLite store's: version and columns.
    assert_eq!(psql(db_of(&url), "SELECT version FROM probe_schema"), "8");
    assert_eq!(
        psql(
            db_of(&url),
            &format!("SELECT host || ' ' || label FROM runs WHERE id = '{a}'")
        ),
        "host-a first"
    );
}

#[test]
fn two_probe_hosts_write_into_one_database_at_once() {
    let _server = server_shared();
    let (url, _db) = fresh_db("two");
    let seeds = Seeds::lab("10s").seeds([Seed::lab("inbox"), Seed::lab("junk")]);
    // Both open the new database at once: one migrates it, the other waits for that.
    let runs: Vec<_> = ["host-a", "host-b"]
        .into_iter()
        .map(|host| {
            on_pg(Probe::new().lab(), &url, host)
                .args(["run", "--all", "--json", "--label", host])
                .config(&seeds)
                .expect_exit(1)
                .spawn()
        })
        .collect();
    let done: Vec<_> = runs
        .into_iter()
        .map(|r| r.finish(Duration::from_secs(60)))
        .collect();
    for (ran, host) in done.iter().zip(["host-a", "host-b"]) {
        let json = ran.json();
        assert_eq!(json["host"], host, "{}", ran.show());
        assert_eq!(
            verdicts(&json),
            BTreeMap::from([
                ("inbox".into(), "inbox".into()),
                ("junk".into(), "spam".into())
            ])
        );
    }
    let dir = done[0].dir();
    let pg = |args: &[&str]| on_pg(Probe::in_dir(dir), &url, "host-c").args(args);
    let all = pg(&["runs", "--json"]).expect_exit(0).run().json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    for host in ["host-a", "host-b"] {
        let own = pg(&["runs", "--json", "--host", host])
            .expect_exit(0)
            .run()
            .json();
        assert_eq!(own.as_array().unwrap().len(), 1, "{host}");
        assert_eq!(own[0]["host"], host);
        let report = pg(&["report", "--host", host, "--format", "json"])
            .expect_exit(0)
            .run()
            .json();
        assert_eq!(report["run_id"], own[0]["run_id"]);
    }
    // No run of a host that never ran: a usage error naming why.
    pg(&["report", "--host", "host-z"])
        .expect_exit(2)
        .stderr_has("no matching run")
        .run();
    // Every message of both runs is there once.
    assert_eq!(psql(db_of(&url), "SELECT COUNT(*) FROM messages"), "4");
}

#[test]
fn a_database_restart_during_polling_loses_nothing() {
    let _server = SERVER.write().unwrap_or_else(|e| e.into_inner());
    let (url, _db) = fresh_db("restart");
    // The discarding provider's message is polled for until the timeout: time to restart.
    let seeds = Seeds::lab("12s").seeds([Seed::lab("inbox"), Seed::lab("discard")]);
    let running = on_pg(Probe::new().lab(), &url, "host-a")
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .spawn();
    let db = db_of(&url).to_owned();
    wait_for(
        "polling with both messages sent",
        Duration::from_secs(30),
        || {
            let sent = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "5433",
                    "-U",
                    "probe",
                    "-d",
                    &db,
                    "-tAc",
                ])
                .arg("SELECT COUNT(*) FROM messages WHERE state = 'sent'")
                .env("PGPASSWORD", lab_password())
                .output()
                .ok()?;
            (String::from_utf8_lossy(&sent.stdout).trim() == "2").then_some(())
        },
    );
    {
        // No other test's probe opens a store while the server is down.
        let _alone = disrupt();
        let data = lab_dir().join("postgres/data");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "restart"])
            .arg("-l")
            .arg(lab_dir().join("postgres/server.log"))
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl restart");
    }
    let ran = running.finish(Duration::from_secs(90));
    let json = ran.json();
    assert_eq!(
        verdicts(&json),
        BTreeMap::from([
            ("discard".into(), "missing".into()),
            ("inbox".into(), "inbox".into())
        ]),
        "{}",
        ran.show()
    );
    assert_eq!(json["finished"], true);
    // It did meet the restart (its last writes came after it), and said so.
    assert!(
        ran.stderr().contains("store connection lost"),
        "{}",
        ran.show()
    );
    // What the run printed is what the database holds.
    let report = on_pg(Probe::in_dir(ran.dir()), &url, "host-a")
        .args(["report", "--format", "json"])
        .expect_exit(0)
        .run()
        .json();
    assert_eq!(report, json);
}

#[test]
fn bad_store_strings_are_errors_naming_them() {
    let _server = server_shared();
    let cases: [(&str, &str); 4] = [
        (
            "mysql://probe:hunter2@127.0.0.1/runs",
            "--store mysql://probe:***@127.0.0.1/runs: mysql:// is not a supported store",
        ),
        ("postgres:runs", "a PostgreSQL URL starts with postgres://"),
        ("postgres://127.0.0.1/runs", "no user"),
        (
            "postgres://probe@127.0.0.1/runs?sslmode=sometimes",
            "sslmode=sometimes is not one of",
        ),
    ];
    for (store, says) in cases {
        let ran = Probe::new()
            .args(["runs"])
            .env("PROBE_STORE", store)
            .expect_exit(2)
            .stderr_has(says)
            .output_lacks("hunter2")
            .run();
        // Nothing made on disk in the scheme's name.
        let made: Vec<_> = std::fs::read_dir(ran.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(made.is_empty(), "{store}: made {made:?}");
    }
}

#[test]
fn the_password_is_never_shown() {
    let _server = server_shared();
    let (url, _db) = fresh_db("secret");
    let password = lab_password();
    let inline = url.replacen("probe@", &format!("probe:{password}@"), 1);
    // Right password inline: works, and is nowhere in the output, even at -vv.
    Probe::new()
        .args(["-vv", "runs", "--json"])
        .env("PROBE_STORE", &inline)
        .env_remove("PGPASSWORD")
        .expect_exit(0)
        .output_lacks(&password)
        .run();
    // Wrong password inline: the server's words and the URL without it.
    Probe::new()
        .args(["runs"])
        .env(
            "PROBE_STORE",
            url.replacen("probe@", "probe:Wrong-Secret-42@", 1),
        )
        .env_remove("PGPASSWORD")
        .expect_exit(3)
        .stderr_has(format!("store {url}: "))
        .stderr_has("password authentication failed for user \"probe\"")
        .output_lacks("Wrong-Secret-42")
        .run();
    // From a password file (0600), as libpq reads it.
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:5433:*:probe:{password}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    Probe::new()
        .args(["runs"])
        .env("PROBE_STORE", &url)
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &pgpass)
        .expect_exit(0)
        .output_lacks(&password)
        .run();
    // A password file others can read is ignored (as libpq): the login fails.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    Probe::new()
        .args(["runs"])
        .env("PROBE_STORE", &url)
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &pgpass)
        .expect_exit(3)
        .output_lacks(&password)
        .run();
}

#[test]
fn tls_is_verified_when_asked_for() {
    let _server = server_shared();
    let (url, _db) = fresh_db("tls");
    let ca = crate::support::lab::lab_ca();
    // The lab's certificate, verified against the lab CA: works.
    let verified = format!("{url}?sslmode=require&sslrootcert={}", ca.display());
    on_pg(Probe::new(), &verified, "host-a")
        .args(["runs", "--json"])
        .expect_exit(0)
        .run();
    // Without that CA the certificate does not verify: refused, nothing sent in plain text.
    on_pg(Probe::new(), &format!("{url}?sslmode=require"), "host-a")
        .args(["runs"])
        .expect_exit(3)
        .stderr_has("certificate")
        .run();
    // A missing CA file is named.
    on_pg(
        Probe::new(),
        &format!("{url}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        "host-a",
    )
    .args(["runs"])
    .expect_exit(3)
    .stderr_has("sslrootcert /nonexistent/ca.pem")
    .run();
}
