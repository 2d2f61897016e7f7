//! Precedence between pieces of evidence (issue 8): a failure report that arrives first makes
//! the message `rejected` at once, but finding the message in a folder later still wins.

use crate::support::{Probe, Seed, Seeds, message_for};

#[test]
fn a_sighting_after_a_failure_report_wins() {
    let dir = tempfile::tempdir().unwrap();
    // The relay's "log" is ours: a `status=bounced` line for the message is written before
    // polling starts, so the failure report is the first evidence polling meets, although the
    // relay delivers the message to the inbox.
    let log = dir.path().join("relay.log");
    std::fs::write(&log, "").unwrap();
    let seeds = Seeds::lab("10s")
        .lab_sender()
        .via_lab_relay()
        .sender("maillog", &log.display().to_string())
        .seed(Seed::new("inbox", "inbox@inbox.lab.test").lab_imap("inbox"));

    let sent = Probe::in_dir(dir.path())
        .lab()
        .args(["send", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let run_id = sent.json()["run_id"].as_str().unwrap().to_owned();
    let store = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
    let queue_id: String = store
        .query_row("SELECT queue_id FROM messages", [], |r| r.get(0))
        .unwrap();
    std::fs::write(
        &log,
        format!(
            "Nov 29 16:00:00 relay postfix/smtp[4242]: {queue_id}: to=<inbox@inbox.lab.test>, \
             relay=mx.inbox.lab.test[127.0.0.1]:25, delay=0.1, dsn=5.7.1, \
             status=bounced (host mx.inbox.lab.test said: 550 5.7.1 made up for this test)\n"
        ),
    )
    .unwrap();

    let out = Probe::in_dir(dir.path())
        .lab()
        .args(["poll", "--run", &run_id, "--json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    // The test is only about this order: the report first, then the sighting.
    let kinds: Vec<String> = store
        .prepare("SELECT kind FROM observations WHERE kind IN ('downstream', 'found') ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["downstream", "found"], "{}", out.show());
    let stderr = out.stderr();
    let rejected = stderr.find("inbox: rejected");
    let inbox = stderr.find("inbox: inbox");
    assert!(
        rejected.is_some() && inbox.is_some() && rejected < inbox,
        "the failure report decides at once, the sighting re-decides: {}",
        out.show()
    );
    let json = out.json();
    let m = message_for(&json, "inbox");
    assert_eq!(m["verdict"], "inbox", "{m:#}");
    assert_eq!(m["folder"], "INBOX", "{m:#}");
    assert_eq!(json["finished"], true, "{json:#}");
}
