//! A run interrupted while polling keeps what it recorded, and `probe poll --run ID` finishes
//! it with the verdicts an uninterrupted run gives; two processes can use one store at once.

use std::process::Command;
use std::time::Duration;

use crate::support::net::wait_for;
use crate::support::{Probe, Seeds, message_for};

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

#[test]
fn an_interrupted_run_is_finished_by_poll() {
    let seeds = Seeds::lab_six("6s");
    let mut running = Probe::new()
        .lab()
        .args(["run", "--all"])
        .config(&seeds)
        .expect_exit(130)
        .stderr_has("interrupted")
        .spawn();
    let dir = running.dir().to_owned();
    let store = dir.join("store.sqlite");
    // Interrupt once every message is sent and polling has logged in somewhere.
    wait_for(
        "polling after all six sent",
        Duration::from_secs(30),
        || {
            assert!(!running.has_ended(), "run ended before the interrupt");
            (count(
                &store,
                "SELECT COUNT(*) FROM observations WHERE kind = 'junk_folder'",
            ) > 0
                && count(&store, "SELECT COUNT(*) FROM messages WHERE state = 'sent'") >= 6)
                .then_some(())
        },
    );
    let status = Command::new("kill")
        .args(["-INT", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Kept: it owns the directory with the store.
    let _interrupted = running.finish(Duration::from_secs(30));
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

    let json = Probe::in_dir(&dir)
        .args(["poll", "--run", &run_id, "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run()
        .json();
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
    let seeds = Seeds::lab_six("10s");
    let dir = tempfile::tempdir().unwrap();
    let spawn = |seed: &str, code: i32| {
        Probe::in_dir(dir.path())
            .lab()
            .args(["run", "--seed", seed])
            .config(&seeds)
            .expect_exit(code)
            .spawn()
    };
    let a = spawn("inbox", 0);
    let b = spawn("tagged", 1);
    // A reader at the same time, as a scheduled run and a `probe runs` would be.
    Probe::in_dir(dir.path()).arg("runs").expect_exit(0).run();
    a.finish(Duration::from_secs(60));
    b.finish(Duration::from_secs(60));
    let runs = Probe::in_dir(dir.path())
        .args(["runs", "--json"])
        .run()
        .json();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs:#}");
}
