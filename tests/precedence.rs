//! Precedence between pieces of evidence (issue 8): a failure report that arrives first makes
//! the message `rejected` at once, but finding the message in a folder later still wins.

use crate::lab::{config_yaml, ensure_lab, json_of, lab_dir, message_for, password_file, probe};
use crate::lab::{run, show};

#[test]
fn a_sighting_after_a_failure_report_wins() {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    // The relay's "log" is ours: a `status=bounced` line for the message is written before
    // polling starts, so the failure report is the first evidence polling meets, although the
    // relay delivers the message to the inbox.
    let log = dir.path().join("relay.log");
    std::fs::write(&log, "").unwrap();
    let ca = lab_dir().join("tls/ca.pem");
    let sender = format!(
        "  transport: relay\n  relay:\n    host: 127.0.0.1\n    port: 2587\n    tls: starttls\n\
         \x20   username: probe@sender.lab.test\n    password: {pw}\n    ca_file: {ca}\n\
         \x20 maillog: {log}\n",
        pw = password_file("probe"),
        ca = ca.display(),
        log = log.display(),
    );
    let seed = format!(
        "  - name: inbox\n    address: inbox@inbox.lab.test\n    imap: {{ host: 127.0.0.1, port: 1993, tls: implicit, password: {pw}, ca_file: {ca} }}\n",
        pw = password_file("inbox"),
        ca = ca.display(),
    );
    std::fs::write(
        dir.path().join("seeds.yaml"),
        config_yaml(&sender, "10s", &[seed]),
    )
    .unwrap();

    let out = run(probe(dir.path()).args(["send", "--all", "--json", "--config", "seeds.yaml"]));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let run_id = json_of(&out)["run_id"].as_str().unwrap().to_owned();
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

    let out =
        run(probe(dir.path()).args(["poll", "--run", &run_id, "--json", "--config", "seeds.yaml"]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The test is only about this order: the report first, then the sighting.
    let kinds: Vec<String> = store
        .prepare("SELECT kind FROM observations WHERE kind IN ('downstream', 'found') ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["downstream", "found"], "{}", show(&out));
    let rejected = stderr.find("inbox: rejected");
    let inbox = stderr.find("inbox: inbox");
    assert!(
        rejected.is_some() && inbox.is_some() && rejected < inbox,
        "the failure report decides at once, the sighting re-decides: {}",
        show(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let json = json_of(&out);
    let m = message_for(&json, "inbox");
    assert_eq!(m["verdict"], "inbox", "{m:#}");
    assert_eq!(m["folder"], "INBOX", "{m:#}");
    assert_eq!(json["finished"], true, "{json:#}");
}
