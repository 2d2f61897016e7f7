//! A probe killed (kill -9) in the middle of sending loses no seed: every message was stored
//! before anything was sent and marked before its transaction began, so `probe poll` gives a
//! complete, honest picture: sent, interrupted in its transaction, or never sent.

use std::time::Duration;

use crate::support::net::wait_for;
use crate::support::smtp::{Step, fake_server, server_logs};
use crate::support::{Probe, Seed, Seeds, message_for};

fn state_of(db: &std::path::Path, seed: &str) -> Option<String> {
    rusqlite::Connection::open(db)
        .and_then(|c| {
            c.query_row("SELECT state FROM messages WHERE seed = ?1", [seed], |r| {
                r.get(0)
            })
        })
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_killed_mid_transaction_leaves_every_seed_accounted_for() {
    // Takes the first message, then never answers again: the second message's transaction
    // (marked `sending` before its RSET, its first command) hangs until the kill. The stall
    // comes right after the first message so that the kill, whenever it lands once the second
    // is marked, finds the server only reading (it would otherwise race the server's scripted
    // reads and fail it with a reset).
    let script = vec![
        Step::Send("220 slow.example ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-slow.example\r\n250 8BITMIME\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect("RCPT TO:"),
        Step::Send("250 2.1.5 Ok\r\n"),
        Step::Expect("DATA"),
        Step::Send("354 go ahead\r\n"),
        Step::ReadMessage,
        Step::Send("250 2.0.0 Ok: queued as K1\r\n"),
        Step::StallUntilClosed,
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let mx = format!("127.0.0.1:{port}");
    let seeds =
        Seeds::lab("3s")
            .timing("smtp_timeout", "60s")
            .seeds(["first", "second", "third"].map(|name| {
                Seed::new(name, "inbox@inbox.lab.test")
                    .mx(&mx)
                    .lab_imap("inbox")
            }));
    let running = Probe::new()
        .lab()
        .args(["send", "--all"])
        .config(&seeds)
        .spawn();
    let dir = running.dir().to_owned();
    let store = dir.join("store.sqlite");
    let killed = tokio::task::spawn_blocking(move || {
        let mut running = running;
        wait_for(
            "the second message in its transaction",
            Duration::from_secs(30),
            || {
                assert!(!running.has_ended(), "probe ended before the kill");
                (state_of(&store, "second").as_deref() == Some("sending")).then_some(())
            },
        );
        // SIGKILL: nothing of probe's own runs after this.
        running.kill()
    })
    .await
    .unwrap();
    let logs = server_logs(server).await;
    assert_eq!(logs.len(), 1, "{}", killed.show());

    let polled = Probe::in_dir(&dir)
        .args(["poll", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run_async()
        .await;
    let json = polled.json();
    assert_eq!(json["finished"], true, "{json:#}");
    assert_eq!(
        json["messages"].as_array().map(Vec::len),
        Some(3),
        "{json:#}"
    );
    let first = message_for(&json, "first");
    assert_eq!(
        (&first["state"], &first["smtp"]["code"], &first["verdict"]),
        (&"sent".into(), &250.into(), &"missing".into()),
        "{first:#}"
    );
    let second = message_for(&json, "second");
    assert_eq!(second["state"], "interrupted", "{second:#}");
    assert_eq!(second["verdict"], serde_json::Value::Null, "{second:#}");
    assert!(
        second["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped during its SMTP transaction"),
        "{second:#}"
    );
    let third = message_for(&json, "third");
    assert_eq!(third["state"], "not_sent", "{third:#}");
    assert_eq!(third["verdict"], serde_json::Value::Null, "{third:#}");
    assert_eq!(
        third["reason"], "not sent: probe was stopped before sending it",
        "{third:#}"
    );
    assert_eq!(
        json["counts"],
        serde_json::json!({ "missing": 1, "interrupted": 1, "not_sent": 1 }),
        "{json:#}"
    );
    // The stored report says the same.
    let report = Probe::in_dir(&dir)
        .args(["report", "--format", "json"])
        .run_async()
        .await
        .json();
    assert_eq!(report["counts"], json["counts"]);
}
