//! `probe smtp` against the real lab (provider on 2525, relay on 2587 and 2465, dnsmasq on
//! 5353), and against scripted fake servers for the exit codes the lab cannot provoke.

use std::process::Output;

use crate::lab::{ensure_lab, lab_dir, password, probe, show};
use crate::smtp_faults::{Step, fake_server, server_logs};

/// `probe smtp ARGS` in a fresh directory (no seeds file there: none is needed).
fn smtp(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = probe(dir.path());
    cmd.arg("smtp").args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("run probe smtp")
}

/// The same, for tests that run a fake server on this runtime meanwhile.
async fn smtp_async(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = probe(dir.path());
    cmd.arg("smtp").args(args);
    tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run probe smtp")
}

fn ca() -> String {
    lab_dir().join("tls/ca.pem").display().to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", show(out));
}

fn assert_lines(out: &Output, wanted: &[&str]) {
    let text = stdout(out);
    for want in wanted {
        assert!(
            text.lines().any(|l| l == *want),
            "no line {want:?} in\n{}",
            show(out)
        );
    }
}

const FROM: &str = "probe@sender.lab.test";

/// The relay's submission port with STARTTLS, verified, and AUTH.
fn relay_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--server",
        "127.0.0.1:2587",
        "--tls",
        "--from",
        FROM,
        "--to",
        "inbox@inbox.lab.test",
        "--auth",
        "--auth-user",
        FROM,
        "--auth-password-env",
        "LAB_RELAY_PW",
        "--timeout",
        "10s",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn starttls_to_the_provider_shows_the_dialogue_and_the_body() {
    ensure_lab();
    let ca = ca();
    let base = [
        "--server",
        "127.0.0.1:2525",
        "--ca-file",
        ca.as_str(),
        "--to",
        "inbox@inbox.lab.test",
        "--from",
        "probe@example.org",
        "--header",
        "X-Probe-Test: smtp-cli",
        "--body",
        "first line\n.starts with a dot",
    ];
    let out = smtp(&base, &[]);
    assert_exit(&out, 0);
    assert_lines(
        &out,
        &[
            "=== TLS certificate: trusted",
            "~> MAIL FROM:<probe@example.org>",
            "~> RCPT TO:<inbox@inbox.lab.test>",
            "~> X-Probe-Test: smtp-cli",
            "~> first line",
            "~> ..starts with a dot",
            "~> .",
            "~> QUIT",
        ],
    );
    assert!(stdout(&out).contains("<~ 250 2.0.0 Ok: queued as "));

    let mut suppressed = base.to_vec();
    suppressed.push("--suppress-data");
    let out = smtp(&suppressed, &[]);
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("first line"), "{}", show(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("=== ") && l.ends_with(" bytes of message data")),
        "{}",
        show(&out)
    );
}

#[test]
fn relay_submission_with_auth_never_shows_the_password() {
    ensure_lab();
    let pw = password("probe");
    let ca = ca();
    let out = smtp(
        &relay_args(&["--ca-file", &ca, "-vv"]),
        &[("LAB_RELAY_PW", pw.as_str()), ("PROBE_LOG", "trace")],
    );
    assert_exit(&out, 0);
    assert_lines(
        &out,
        &[
            "~> AUTH PLAIN <redacted>",
            "<~ 235 2.7.0 Authentication successful",
        ],
    );
    for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&pw), "password in {what}");
    }

    // A wrong password: refused at AUTH (28), and it does not show either.
    let wrong = "wrong-pw-Kq7zT4";
    let out = smtp(&relay_args(&["--ca-file", &ca]), &[("LAB_RELAY_PW", wrong)]);
    assert_exit(&out, 28);
    assert!(stdout(&out).contains("<~ 535 5.7.8"), "{}", show(&out));
    assert!(!stdout(&out).contains(wrong) && !String::from_utf8_lossy(&out.stderr).contains(wrong));
}

#[test]
fn implicit_tls_relay_with_auth_login() {
    ensure_lab();
    let pw = password("probe");
    let ca = ca();
    let out = smtp(
        &[
            "--server",
            "127.0.0.1:2465",
            "--tls-on-connect",
            "--ca-file",
            &ca,
            "--from",
            FROM,
            "--to",
            "inbox@inbox.lab.test",
            "--auth",
            "LOGIN",
            "--auth-user",
            FROM,
            "--auth-password-env",
            "LAB_RELAY_PW",
        ],
        &[("LAB_RELAY_PW", pw.as_str())],
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    let first_received = text.lines().find(|l| l.starts_with("<")).unwrap_or("");
    assert!(first_received.starts_with("<~ 220 "), "{}", show(&out));
    assert_lines(&out, &["~> AUTH LOGIN", "~> <redacted>"]);
    assert!(!text.contains(&pw));
}

#[test]
fn quit_after_each_stage_on_the_relay() {
    ensure_lab();
    let pw = password("probe");
    let ca = ca();
    for stage in ["connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt"] {
        let out = smtp(
            &relay_args(&["--ca-file", &ca, "--quit-after", stage]),
            &[("LAB_RELAY_PW", pw.as_str())],
        );
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(
            text.contains(&format!("=== Stopping after {stage} as asked")),
            "{stage}: {}",
            show(&out)
        );
        assert!(!text.contains("DATA"), "{stage}: {}", show(&out));
        let sent_quit = text.lines().any(|l| l.ends_with("> QUIT"));
        assert_eq!(sent_quit, stage != "connect", "{stage}: {}", show(&out));
        let expect_line = match stage {
            "connect" => "=== Connected to 127.0.0.1:2587.",
            "banner" => "<- 220 smtp.sender.lab.test ESMTP seedprobe lab relay",
            "tls" => "=== TLS certificate: trusted",
            "ehlo" => "~> EHLO ",
            "auth" => "<~ 235 2.7.0 Authentication successful",
            "mail" => "<~ 250 2.1.0 Ok",
            _ => "<~ 250 2.1.5 Ok",
        };
        assert!(text.contains(expect_line), "{stage}: {}", show(&out));
    }
}

#[test]
fn count_sends_several_messages_over_one_connection() {
    ensure_lab();
    let pw = password("probe");
    let ca = ca();
    let out = smtp(
        &relay_args(&["--ca-file", &ca, "--count", "3", "--suppress-data"]),
        &[("LAB_RELAY_PW", pw.as_str())],
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(
        text.matches("=== Connected to").count(),
        1,
        "{}",
        show(&out)
    );
    assert_eq!(text.matches("~> AUTH PLAIN").count(), 1);
    assert_eq!(text.matches("~> RSET").count(), 2);
    assert!(text.contains("=== Reusing the connection to 127.0.0.1:2587 (message 3 on it)"));
    assert_lines(&out, &["=== 3 of 3 messages accepted"]);
}

#[test]
fn resolver_follows_the_labs_mx_records() {
    ensure_lab();
    let out = smtp(
        &[
            "--to",
            "multi@multimx.lab.test",
            "--from",
            "probe@example.org",
            "--resolver",
            "127.0.0.1:5353",
            "--port",
            "2525",
            "--timeout",
            "5s",
        ],
        &[],
    );
    assert_exit(&out, 0);
    assert_lines(
        &out,
        &[
            "=== MX 10 for multimx.lab.test: dead-mx.lab.test",
            "=== MX 20 for multimx.lab.test: mx.lab.test",
            "=== Connected to mx.lab.test[127.0.0.1]:2525.",
        ],
    );
    let out = smtp(
        &[
            "--to",
            "x@nullmx.lab.test",
            "--resolver",
            "127.0.0.1:5353",
            "--port",
            "2525",
        ],
        &[],
    );
    assert_exit(&out, 2);
    assert_lines(
        &out,
        &["*** nullmx.lab.test publishes a null MX (RFC 7505): it accepts no mail"],
    );
}

#[test]
fn source_ip_decides_the_labs_ip_reputation() {
    ensure_lab();
    let send_from = |ip: &str| {
        smtp(
            &[
                "--server",
                "127.0.0.1:2525",
                "--to",
                "iprep@iprep.lab.test",
                "--from",
                "probe@example.org",
                "--source-ip",
                ip,
                "--quit-after",
                "rcpt",
            ],
            &[],
        )
    };
    let good = send_from("127.0.0.2");
    assert_exit(&good, 0);
    assert_lines(&good, &["=== Trying 127.0.0.1:2525 from 127.0.0.2..."]);
    let bad = send_from("127.0.0.3");
    assert_exit(&bad, 24);
    assert!(stdout(&bad).contains("<~ 450 4.7.1"), "{}", show(&bad));
}

#[test]
fn exit_codes_the_lab_provokes() {
    ensure_lab();
    let to_provider = |to: &str, extra: &[&str]| {
        let mut args = vec![
            "--server",
            "127.0.0.1:2525",
            "--to",
            to,
            "--from",
            "probe@example.org",
        ];
        args.extend_from_slice(extra);
        smtp(&args, &[])
    };
    // RCPT refused, for now and for good.
    assert_exit(&to_provider("defer@defer.lab.test", &[]), 24);
    assert_exit(&to_provider("reject@reject.lab.test", &[]), 24);
    // A certificate the lab CA signed, without that CA: untrusted, refused by --tls-verify.
    let out = to_provider("inbox@inbox.lab.test", &["--tls-verify"]);
    assert_exit(&out, 29);
    assert!(
        stdout(&out).contains("its certificate is untrusted"),
        "{}",
        show(&out)
    );
    // Nobody listening on a loopback port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let out = smtp(
        &[
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--to",
            "a@lab.test",
        ],
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        stdout(&out).contains("Connection refused"),
        "{}",
        show(&out)
    );
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
        let out = smtp(args, &[]);
        assert_exit(&out, 2);
        assert!(stdout(&out).is_empty(), "{}", show(&out));
    }
    let out = smtp(
        &[
            "--to",
            "a@lab.test",
            "--server",
            "127.0.0.1:1",
            "--auth-user",
            "u",
            "--auth-password-env",
            "PROBE_TEST_UNSET_VAR",
        ],
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PROBE_TEST_UNSET_VAR is not set"),
        "{}",
        show(&out)
    );
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

    let out = smtp_async(&base).await;
    assert_exit(&out, 21);
    let out = smtp_async(&base).await;
    assert_exit(&out, 6);
    assert!(
        stdout(&out).contains("closed the connection"),
        "{}",
        show(&out)
    );
    let mut tls = base.to_vec();
    tls.push("--tls");
    let out = smtp_async(&tls).await;
    assert_exit(&out, 29);
    assert!(
        stdout(&out).contains("the server does not offer STARTTLS"),
        "{}",
        show(&out)
    );
    let logs = server_logs(server).await;
    assert_eq!(logs.len(), 3);
}
