//! `probe smtp` without the lab: usage errors, and the exit codes only scripted fake servers
//! provoke. `lab::smtp_cli` has the dialogues with the real lab.

use crate::support::Probe;
use crate::support::smtp::{Step, fake_server, server_logs};

/// `probe smtp ARGS` in a fresh directory (no seeds file there: none is needed).
fn smtp<'a>(args: impl IntoIterator<Item = &'a str>) -> Probe {
    Probe::new().arg("smtp").args(args)
}

#[test]
fn usage_errors_exit_2_before_any_connection() {
    let cases: [&[&str]; 5] = [
        &["--to", "a@lab.test", "--quit-after", "lunch"],
        &["--from", "a@lab.test"],
        &["--to", "not an address"],
        &[
            "--to",
            "a@lab.test",
            "--server",
            "127.0.0.1:1",
            "--auth-user",
            "u",
        ],
        &["--to", "a@lab.test", "--header", "no colon here"],
    ];
    for args in cases {
        smtp(args.iter().copied())
            .expect_exit(2)
            .stdout_is_empty()
            .run();
    }
    smtp([
        "--to",
        "a@lab.test",
        "--server",
        "127.0.0.1:1",
        "--auth-user",
        "u",
        "--auth-password-env",
        "PROBE_TEST_UNSET_VAR",
    ])
    .env_remove("PROBE_TEST_UNSET_VAR")
    .expect_exit(2)
    .stderr_has("PROBE_TEST_UNSET_VAR is not set")
    .run();
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_from_fake_servers() {
    // 21: a banner that refuses service.
    let banner = vec![
        Step::Send("554 5.7.1 fake.lab.test: no service for you\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    // 6: the server hangs up after EHLO.
    let dropped = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
    ];
    // 29: --tls, and STARTTLS is not offered.
    let no_tls = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 8BITMIME\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![banner, dropped, no_tls], None).await;
    let server_arg = format!("127.0.0.1:{port}");
    let base = [
        "--server",
        server_arg.as_str(),
        "--to",
        "a@lab.test",
        "--timeout",
        "5s",
    ];

    // The fake server runs on this test's runtime meanwhile: probe is awaited, not waited for.
    smtp(base).expect_exit(21).run_async().await;
    smtp(base)
        .expect_exit(6)
        .stdout_has("closed the connection")
        .run_async()
        .await;
    smtp(base)
        .arg("--tls")
        .expect_exit(29)
        .stdout_has("the server does not offer STARTTLS")
        .run_async()
        .await;
    let logs = server_logs(server).await;
    assert_eq!(logs.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn count_stops_after_a_421_and_says_how_many_were_not_sent() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 8BITMIME\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect("RCPT TO:"),
        Step::Send("250 2.1.5 Ok\r\n"),
        Step::Expect("DATA"),
        Step::Send("354 go ahead\r\n"),
        Step::ReadMessage,
        Step::Send("250 2.0.0 Ok: queued as C1\r\n"),
        Step::ExpectExact("RSET"),
        Step::Send("250 2.0.0 Ok\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("421 4.7.0 fake.lab.test rate limited\r\n"),
        // No QUIT after a 421, and no second connection: the listener stays open meanwhile.
        Step::ExpectEof,
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let server_arg = format!("127.0.0.1:{port}");
    let run = smtp([
        "--server",
        server_arg.as_str(),
        "--to",
        "a@lab.test",
        "--timeout",
        "5s",
        "--count",
        "4",
    ])
    // swaks's code for the first message that failed: MAIL FROM.
    .expect_exit(23)
    .stdout_has("=== 1 of 4 messages accepted")
    .stdout_has("=== 2 of 4 messages not sent: 421 4.7.0 fake.lab.test rate limited from 127.0.0.1")
    .run_async();
    // A reconnect would be accepted here, so the count of connections tells.
    let run = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("probe smtp hung");
    let logs = server_logs(server).await;
    assert_eq!(logs.len(), 1, "{}", run.show());
    assert_eq!(
        run.stdout().matches("Trying 127.0.0.1").count(),
        1,
        "{}",
        run.show()
    );
}
