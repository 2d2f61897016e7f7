//! A run interrupted while polling keeps what it recorded, and `probe poll --run ID` finishes
//! it with the verdicts an uninterrupted run gives; two processes can use one store at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::lab::{self, ALL_SEEDS, ensure_lab, json_of, message_for, password_file, probe, show};

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

#[test]
fn an_interrupted_run_is_finished_by_poll() {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab::write_config(dir.path(), "6s", &ALL_SEEDS, password_file);
    let store = dir.path().join("store.sqlite");
    let mut child = probe(dir.path())
        .args(["run", "--all", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once every message is sent and polling has logged in somewhere.
    let start = Instant::now();
    while count(
        &store,
        "SELECT COUNT(*) FROM observations WHERE kind = 'junk_folder'",
    ) == 0
        || count(&store, "SELECT COUNT(*) FROM messages") < 6
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "run never got to polling"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before the interrupt"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    // The discarding provider's message cannot have a verdict before its timeout.
    assert!(
        count(
            &store,
            "SELECT COUNT(*) FROM messages WHERE verdict IS NULL"
        ) >= 1
    );
    let run_id: String = rusqlite::Connection::open(&store)
        .unwrap()
        .query_row("SELECT id FROM runs", [], |r| r.get(0))
        .unwrap();

    let out = probe(dir.path())
        .args(["poll", "--run", &run_id, "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    assert_eq!(json["finished"], true);
    for (seed, verdict) in [
        ("inbox", "inbox"),
        ("junk", "spam"),
        ("tagged", "spam_tagged"),
        ("defer", "deferred"),
        ("reject", "rejected"),
        ("discard", "missing"),
    ] {
        assert_eq!(message_for(&json, seed)["verdict"], verdict, "{seed}");
    }
}

#[test]
fn two_processes_share_the_store() {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab::write_config(dir.path(), "10s", &ALL_SEEDS, password_file);
    let spawn = |seed: &str| {
        probe(dir.path())
            .args(["run", "--seed", seed, "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("inbox");
    let b = spawn("tagged");
    // A reader at the same time, as a scheduled run and a `probe runs` would be.
    let reader = probe(dir.path()).args(["runs"]).output().unwrap();
    assert!(reader.status.success(), "{}", show(&reader));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", show(&a));
    assert_eq!(b.status.code(), Some(1), "{}", show(&b));
    let out = probe(dir.path()).args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs:#}");
}
