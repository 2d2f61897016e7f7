//! `probe smtp` against the real lab (provider on 2525, relay on 2587 and 2465, dnsmasq on
//! 5353). The exit codes only fake servers provoke are in the top-level `smtp_cli`.

use crate::support::Probe;
use crate::support::lab::{lab_ca, password};
use crate::support::net::closed_port;

/// `probe smtp ARGS` in a fresh directory (no seeds file there: none is needed), lab started.
fn smtp<'a>(args: impl IntoIterator<Item = &'a str>) -> Probe {
    Probe::new().lab().arg("smtp").args(args)
}

fn ca() -> String {
    lab_ca().display().to_string()
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
    let lines = [
        "=== TLS certificate: trusted",
        "~> MAIL FROM:<probe@example.org>",
        "~> RCPT TO:<inbox@inbox.lab.test>",
        "~> X-Probe-Test: smtp-cli",
        "~> first line",
        "~> ..starts with a dot",
        "~> .",
        "~> QUIT",
    ];
    lines
        .into_iter()
        .fold(smtp(base).expect_exit(0), Probe::stdout_line)
        .stdout_has("<~ 250 2.0.0 Ok: queued as ")
        .run();

    let out = smtp(base)
        .arg("--suppress-data")
        .expect_exit(0)
        .stdout_lacks("first line")
        .run();
    assert!(
        out.stdout()
            .lines()
            .any(|l| l.starts_with("=== ") && l.ends_with(" bytes of message data")),
        "{}",
        out.show()
    );
}

#[test]
fn relay_submission_with_auth_never_shows_the_password() {
    let pw = password("probe");
    let ca = ca();
    smtp(relay_args(&["--ca-file", &ca, "-vv"]))
        .env("LAB_RELAY_PW", &pw)
        .env("PROBE_LOG", "trace")
        .expect_exit(0)
        .stdout_line("~> AUTH PLAIN <redacted>")
        .stdout_line("<~ 235 2.7.0 Authentication successful")
        .output_lacks(&pw)
        .run();

    // A wrong password: refused at AUTH (28), and it does not show either.
    let wrong = "wrong-pw-Kq7zT4";
    smtp(relay_args(&["--ca-file", &ca]))
        .env("LAB_RELAY_PW", wrong)
        .expect_exit(28)
        .stdout_has("<~ 535 5.7.8")
        .output_lacks(wrong)
        .run();
}

#[test]
fn implicit_tls_relay_with_auth_login() {
    let pw = password("probe");
    let ca = ca();
    let out = smtp([
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
    ])
    .env("LAB_RELAY_PW", &pw)
    .expect_exit(0)
    .stdout_line("~> AUTH LOGIN")
    .stdout_line("~> <redacted>")
    .stdout_lacks(&pw)
    .run();
    let text = out.stdout();
    let first_received = text.lines().find(|l| l.starts_with("<")).unwrap_or("");
    assert!(first_received.starts_with("<~ 220 "), "{}", out.show());
}

#[test]
fn quit_after_each_stage_on_the_relay() {
    let pw = password("probe");
    let ca = ca();
    for stage in ["connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt"] {
        let expect_line = match stage {
            "connect" => "=== Connected to 127.0.0.1:2587.",
            "banner" => "<- 220 smtp.sender.lab.test ESMTP seedprobe lab relay",
            "tls" => "=== TLS certificate: trusted",
            "ehlo" => "~> EHLO ",
            "auth" => "<~ 235 2.7.0 Authentication successful",
            "mail" => "<~ 250 2.1.0 Ok",
            _ => "<~ 250 2.1.5 Ok",
        };
        let out = smtp(relay_args(&["--ca-file", &ca, "--quit-after", stage]))
            .env("LAB_RELAY_PW", &pw)
            .expect_exit(0)
            .stdout_has(format!("=== Stopping after {stage} as asked"))
            .stdout_lacks("DATA")
            .stdout_has(expect_line)
            .run();
        let sent_quit = out.stdout().lines().any(|l| l.ends_with("> QUIT"));
        assert_eq!(sent_quit, stage != "connect", "{stage}: {}", out.show());
    }
}

#[test]
fn count_sends_several_messages_over_one_connection() {
    let pw = password("probe");
    let ca = ca();
    let out = smtp(relay_args(&[
        "--ca-file",
        &ca,
        "--count",
        "3",
        "--suppress-data",
    ]))
    .env("LAB_RELAY_PW", &pw)
    .expect_exit(0)
    .stdout_has("=== Reusing the connection to 127.0.0.1:2587 (message 3 on it)")
    .stdout_line("=== 3 of 3 messages accepted")
    .run();
    let text = out.stdout();
    assert_eq!(
        text.matches("=== Connected to").count(),
        1,
        "{}",
        out.show()
    );
    assert_eq!(text.matches("~> AUTH PLAIN").count(), 1);
    assert_eq!(text.matches("~> RSET").count(), 2);
}

#[test]
fn resolver_follows_the_labs_mx_records() {
    smtp([
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
    ])
    .expect_exit(0)
    .stdout_line("=== MX 10 for multimx.lab.test: dead-mx.lab.test")
    .stdout_line("=== MX 20 for multimx.lab.test: mx.lab.test")
    .stdout_line("=== Connected to mx.lab.test[127.0.0.1]:2525.")
    .run();
    smtp([
        "--to",
        "x@nullmx.lab.test",
        "--resolver",
        "127.0.0.1:5353",
        "--port",
        "2525",
    ])
    .expect_exit(2)
    .stdout_line("*** nullmx.lab.test publishes a null MX (RFC 7505): it accepts no mail")
    .run();
}

#[test]
fn source_ip_decides_the_labs_ip_reputation() {
    let send_from = |ip: &'static str| {
        smtp([
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
        ])
    };
    send_from("127.0.0.2")
        .expect_exit(0)
        .stdout_line("=== Trying 127.0.0.1:2525 from 127.0.0.2...")
        .run();
    send_from("127.0.0.3")
        .expect_exit(24)
        .stdout_has("<~ 450 4.7.1")
        .run();
}

#[test]
fn exit_codes_the_lab_provokes() {
    let to_provider = |to: &'static str| {
        smtp([
            "--server",
            "127.0.0.1:2525",
            "--to",
            to,
            "--from",
            "probe@example.org",
        ])
    };
    // RCPT refused, for now and for good.
    to_provider("defer@defer.lab.test").expect_exit(24).run();
    to_provider("reject@reject.lab.test").expect_exit(24).run();
    // A certificate the lab CA signed, without that CA: untrusted, refused by --tls-verify.
    to_provider("inbox@inbox.lab.test")
        .arg("--tls-verify")
        .expect_exit(29)
        .stdout_has("its certificate is untrusted")
        .run();
    // Nobody listening on a loopback port.
    let port = closed_port().to_string();
    smtp([
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--to",
        "a@lab.test",
    ])
    .expect_exit(2)
    .stdout_has("Connection refused")
    .run();
}
