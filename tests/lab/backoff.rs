//! A provider that says 421 (or drops the connection) is not reconnected to at once: the
//! seeds not yet sent on that route are `deferred`, not tried, with its words as the reason.

use crate::support::smtp::{Step, fake_server, server_logs};
use crate::support::{Probe, Seed, Seeds, message_for};

#[tokio::test(flavor = "multi_thread")]
async fn a_421_defers_the_rest_of_the_route_without_reconnecting() {
    let script = vec![
        Step::Send("220 mx.example ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-mx.example\r\n250 8BITMIME\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect("RCPT TO:"),
        Step::Send("421 4.7.0 mx.example rate limited, try again later\r\n"),
        Step::ExpectEof,
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let mx = format!("127.0.0.1:{port}");
    // Three seeds behind the one MX; polled in the lab (they are never found: nothing lands).
    let seeds = Seeds::lab("5s").seeds(["first", "second", "third"].map(|name| {
        Seed::new(name, "inbox@inbox.lab.test")
            .mx(&mx)
            .lab_imap("inbox")
    }));
    let ran = Probe::new()
        .lab()
        .args(["send", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run_async()
        .await;
    let logs = server_logs(server).await;
    assert_eq!(logs.len(), 1, "reconnected:\n{}", ran.show());
    let json = ran.json();
    let first = message_for(&json, "first");
    assert_eq!(first["verdict"], "deferred", "{first:#}");
    assert_eq!(first["reason"], "421 refused at rcpt_to", "{first:#}");
    for seed in ["second", "third"] {
        let m = message_for(&json, seed);
        assert_eq!(m["verdict"], "deferred", "{m:#}");
        assert_eq!(
            m["reason"],
            "not tried: 421 4.7.0 mx.example rate limited, try again later from 127.0.0.1 \
             on an earlier message of this run",
            "{m:#}"
        );
        // The reply is the evidence, as for the message that got it.
        assert_eq!(m["smtp"]["code"], 421, "{m:#}");
    }
}
