//! DKIM signing, checked by another implementation on what an SMTP server received: Python's
//! dkimpy (Debian's `python3-dkim`, or `pip install dkimpy`) verifies the bytes a holding
//! server got from `probe send` and `probe smtp`, once the dot-stuffing is undone as a
//! receiving MTA undoes it. Without python3 and dkimpy those checks are skipped, saying so;
//! the config and usage errors run everywhere. (mail-auth's own verifier checks the same
//! signatures in `src/message/dkim.rs`.)

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::imap::{FakeImap, RunningImap};
use crate::support::net::{Sentinel, closed_port};
use crate::support::smtp::Holder;
use crate::support::{Probe, Seed, Seeds};

/// The test-only keys (tests/fixtures/dkim/README.md).
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dkim")
        .join(name)
}

pub(crate) fn txt_record(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .trim()
        .to_owned()
}

/// A body a signature must survive: non-ASCII text, a line over 76 characters, and lines that
/// are a lone dot or start with one (which SMTP dot-stuffs after signing), as YAML.
pub(crate) const BODY_YAML: &str = "\"Grüße aus Köln: ünïcödé, 日本語.\\n.\\n..two dots\\n.leading dot\\n\
    a long line: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\\n\
    {token}\\n\"";

/// What a receiving MTA stores: the content with its dot-stuffing undone (RFC 5321 §4.5.2:
/// a line that starts with a dot loses that dot).
fn unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// dkimpy's verification of `message`, with `record` as the only TXT record DNS has (for
/// `selector._domainkey.example.org`). `None` when no python3 with dkimpy (and PyNaCl, for
/// Ed25519) is installed.
pub(crate) fn dkimpy_verify(
    message: &[u8],
    selector: &str,
    record: &str,
) -> Option<Result<(), String>> {
    const SCRIPT: &str = r#"
import sys, dkim
name, record = sys.argv[1].encode(), sys.argv[2].encode()
def dnsfunc(asked, timeout=5):
    return record if asked.rstrip(b".").lower() == name else None
message = sys.stdin.buffer.read()
ok = dkim.verify(message, dnsfunc=dnsfunc)
print("dkimpy: " + ("pass" if ok else "fail"))
sys.exit(0 if ok else 1)
"#;
    // The system's python3 first: Debian's python3-dkim is installed for it, and a python3
    // earlier on PATH (pyenv) may lack it.
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import dkim, nacl"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(python) = python else {
        eprintln!(
            "SKIPPED: the dkimpy check (no python3 with dkimpy and PyNaCl: \
             apt-get install python3-dkim python3-nacl, or pip install dkimpy pynacl)"
        );
        return None;
    };
    let mut child = Command::new(python)
        .args([
            "-c",
            SCRIPT,
            &format!("{selector}._domainkey.example.org"),
            record,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

/// Checks what the server received: dot-stuffed where the body had dots, lines of at most
/// 998 octets, a signature dkimpy verifies once unstuffed.
fn check_received(data: &[u8], selector: &str, record: &str) {
    let text = String::from_utf8_lossy(data);
    assert!(text.starts_with("DKIM-Signature: v=1;"), "{text}");
    assert!(
        text.contains("\r\n..\r\n"),
        "no lone dot was stuffed: {text}"
    );
    assert!(
        data.split(|&b| b == b'\n').all(|l| l.len() <= 1000),
        "{text}"
    );
    let received = unstuff(data);
    if let Some(verdict) = dkimpy_verify(&received, selector, record) {
        verdict.unwrap_or_else(|e| panic!("dkimpy refused the signature: {e}\n{text}"));
        // And it does check: a changed subject fails.
        let tampered = String::from_utf8_lossy(&received).replacen("Subject: ", "Subject: Re: ", 1);
        assert!(
            dkimpy_verify(tampered.as_bytes(), selector, record)
                .unwrap()
                .is_err(),
            "dkimpy passed a tampered message"
        );
    }
}

/// A seed that sends to `mx`, with its mailbox on `imap_port` (plaintext, on loopback).
fn seed_on(mx: &str, imap_port: u16) -> Seed {
    Seed::new("a", "a@example.com")
        .mx(mx)
        .imap_server("127.0.0.1", imap_port)
        .tls("none")
}

/// A seed that sends to `mx` and whose mailbox is a closed port (for config errors, found
/// before any mailbox is contacted).
fn seed(mx: &str) -> Seed {
    seed_on(mx, closed_port())
}

/// A mailbox that takes the login and says OK to the rest: probe sends only to seeds whose
/// mailbox it can read, and this test is about what is sent.
fn readable_mailbox() -> RunningImap {
    FakeImap::new("* OK ready").otherwise_ok().start()
}

#[test]
fn probe_send_signs_what_dkimpy_verifies_after_the_wire() {
    // RSA from a file, Ed25519 from an environment variable holding the PEM.
    let ed25519_pem = std::fs::read_to_string(fixture("ed25519.pem")).unwrap();
    let cases = [
        (
            "rsa",
            format!("{{ file: {} }}", fixture("rsa.pem").display()),
            "rsa-sha256",
            "rsa.txt",
        ),
        (
            "ed",
            "{ env: SEEDPROBE_TEST_DKIM_KEY }".to_owned(),
            "ed25519-sha256",
            "ed25519.txt",
        ),
    ];
    for (selector, key, algorithm, record) in cases {
        let holder = Holder::start();
        let mailbox = readable_mailbox();
        let seeds = Seeds::new()
            .from("\"Probe Test <probe@example.org>\"")
            .ehlo("probe.example.org")
            .sender(
                "dkim",
                &format!(
                    "{{ domain: example.org, selector: {selector}, private_key: {key}, algorithm: {algorithm} }}"
                ),
            )
            .message("body", BODY_YAML)
            .timing("imap_timeout", "2s")
            .seed(seed_on(&holder.mx(), mailbox.port));
        Probe::new()
            .env("SEEDPROBE_TEST_PW", "pw")
            .env("SEEDPROBE_TEST_DKIM_KEY", &ed25519_pem)
            .args(["send", "--all"])
            .config(&seeds)
            .expect_exit(0)
            .output_lacks("PRIVATE KEY")
            .run();
        let held = holder.next();
        assert_eq!(held.rcpt, "a@example.com");
        let text = String::from_utf8_lossy(&held.data);
        assert!(
            text.contains(&format!(
                "a={algorithm}; s={selector}; d=example.org; c=relaxed/relaxed;"
            )),
            "{text}"
        );
        check_received(&held.data, selector, &txt_record(record));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_smtp_signs_with_the_dkim_flags() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.txt");
    std::fs::write(
        &body,
        // ASCII: `probe smtp` sends a body that is not (a file's bytes) in base64, which has no
        // dots to stuff; `probe send` above covers the non-ASCII text.
        // CRLF: a file's bare LF would be encoded as =0A, leaving no line that starts with a dot.
        ".\r\n..two dots\r\n.leading dot\r\na long line: Lorem ipsum dolor sit amet, \
         consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore.\r\n",
    )
    .unwrap();
    // RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`, what older tools write), Ed25519 as PKCS#8.
    let pkcs1 = dir.path().join("rsa-pkcs1.pem");
    let converted = Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(fixture("rsa.pem"))
        .arg("-out")
        .arg(&pkcs1)
        .status()
        .is_ok_and(|s| s.success());
    let rsa_key = if converted {
        assert!(
            std::fs::read_to_string(&pkcs1)
                .unwrap()
                .contains("BEGIN RSA PRIVATE KEY")
        );
        pkcs1
    } else {
        eprintln!("no openssl: the RSA key is given as PKCS#8");
        fixture("rsa.pem")
    };
    let cases = [
        ("rsa", rsa_key, "rsa-sha256", "rsa.txt"),
        (
            "ed",
            fixture("ed25519.pem"),
            "ed25519-sha256",
            "ed25519.txt",
        ),
    ];
    for (selector, key, algorithm, record) in cases {
        let holder = Holder::start();
        let server = holder.mx();
        let body_arg = format!("@{}", body.display());
        Probe::new()
            .arg("smtp")
            .args([
                "--to",
                "a@example.com",
                "--from",
                "me@example.org",
                "--server",
            ])
            .arg(&server)
            .args([
                "--body",
                &body_arg,
                "--dkim-domain",
                "example.org",
                "--dkim-selector",
            ])
            .arg(selector)
            .arg("--dkim-key")
            .arg(&key)
            .args(["--dkim-algorithm", algorithm])
            .expect_exit(0)
            .stdout_has("DKIM-Signature: v=1;")
            .output_lacks("PRIVATE KEY")
            .run_async()
            .await;
        let held = tokio::task::spawn_blocking(move || holder.next())
            .await
            .unwrap();
        check_received(&held.data, selector, &txt_record(record));
    }
}

#[test]
fn bad_dkim_configs_are_refused_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-key.pem"), "hello\n").unwrap();
    let rsa = fixture("rsa.pem").display().to_string();
    let ed = fixture("ed25519.pem").display().to_string();
    // (what, sender.transport or "", the dkim block, expected fragments)
    let rows: Vec<(&str, &str, String, Vec<&str>)> = vec![
        (
            "relay mode",
            "relay",
            format!("{{ domain: example.org, selector: s, private_key: {{ file: {rsa} }} }}"),
            vec!["sender.dkim:", "leaves DKIM signing to the relay"],
        ),
        (
            "unreadable key",
            "",
            "{ domain: example.org, selector: s, private_key: { file: missing.pem } }".into(),
            vec!["sender.dkim.private_key:", "cannot read key file", "missing.pem"],
        ),
        (
            "not a key",
            "",
            "{ domain: example.org, selector: s, private_key: { file: not-a-key.pem } }".into(),
            vec!["sender.dkim.private_key:", "not a PEM private key"],
        ),
        (
            "algorithm and key differ",
            "",
            format!(
                "{{ domain: example.org, selector: s, private_key: {{ file: {ed} }}, algorithm: rsa-sha256 }}"
            ),
            vec![
                "sender.dkim.private_key:",
                "the key is an Ed25519 key but the algorithm is rsa-sha256",
            ],
        ),
        (
            "unknown algorithm",
            "",
            format!(
                "{{ domain: example.org, selector: s, private_key: {{ file: {rsa} }}, algorithm: rsa-sha1 }}"
            ),
            vec!["rsa-sha1", "rsa-sha256", "ed25519-sha256"],
        ),
        (
            "bad domain",
            "",
            format!("{{ domain: \"exa mple.org\", selector: s, private_key: {{ file: {rsa} }} }}"),
            vec!["sender.dkim.domain:", "not a DNS name"],
        ),
        (
            "oauth2 key",
            "",
            "{ domain: example.org, selector: s, private_key: { oauth2: { token_url: https://x.test/t, client_id: c, refresh_token: { env: X } } } }".into(),
            vec!["sender.dkim.private_key:", "not a key"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, transport, dkim, expect) in rows {
        let sentinel = Sentinel::new();
        let mut seeds = Seeds::new().from("probe@example.org");
        if !transport.is_empty() {
            seeds = seeds.sender("transport", transport).sender(
                "relay",
                &format!(
                    "{{ host: 127.0.0.1, port: {}, tls: none }}",
                    sentinel.port()
                ),
            );
        }
        let seeds = seeds
            .sender("dkim", &dkim)
            .seed(seed(&sentinel.addr()).imap_server("127.0.0.1", sentinel.port()));
        let yaml = seeds.yaml();
        // The error's position: the dkim line, at the block or the field named.
        let line_no = yaml.lines().position(|l| l.starts_with("  dkim:")).unwrap() + 1;
        let line = yaml.lines().nth(line_no - 1).unwrap();
        let column = if expect[0] == "sender.dkim:" {
            line.find('{').unwrap() + 1
        } else if let Some(field) = expect[0].strip_prefix("sender.dkim.") {
            let field = field.trim_end_matches(':');
            line.find(&format!("{field}: ")).unwrap() + field.len() + 3
        } else {
            0
        };
        let out = Probe::in_dir(dir.path())
            .env("SEEDPROBE_TEST_PW", "pw")
            .args(["send", "--all"])
            .config(&seeds)
            .run();
        let stderr = out.stderr();
        let mut missing: Vec<String> = expect
            .iter()
            .filter(|e| !stderr.contains(*e))
            .map(|e| e.to_string())
            .collect();
        if column > 0 && !stderr.contains(&format!("seeds.yaml:{line_no}:{column}: ")) {
            missing.push(format!("seeds.yaml:{line_no}:{column}"));
        }
        if out.code() != Some(2) || !missing.is_empty() || sentinel.was_contacted() {
            failures.push(format!(
                "row {what:?}: missing {missing:?}\n{yaml}\n{}",
                out.show()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn probe_smtp_dkim_usage_errors_exit_2() {
    let sentinel = Sentinel::new();
    let server = sentinel.addr();
    let rsa = fixture("rsa.pem").display().to_string();
    let ed = fixture("ed25519.pem").display().to_string();
    let base = ["smtp", "--to", "a@example.com", "--server", server.as_str()];
    let rows: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--dkim-domain", "example.org"], "--dkim-selector"),
        (
            vec!["--dkim-domain", "example.org", "--dkim-selector", "s"],
            "--dkim-key",
        ),
        (vec!["--dkim-key", rsa.as_str()], "--dkim-domain"),
        (
            vec![
                "--dkim-domain",
                "example.org",
                "--dkim-selector",
                "s",
                "--dkim-key",
                "missing.pem",
            ],
            "--dkim-key missing.pem: cannot read key file",
        ),
        (
            vec![
                "--dkim-domain",
                "example.org",
                "--dkim-selector",
                "s",
                "--dkim-key",
                ed.as_str(),
                "--dkim-algorithm",
                "rsa-sha256",
            ],
            "the key is an Ed25519 key but the algorithm is rsa-sha256",
        ),
        (
            vec![
                "--dkim-domain",
                "example.org",
                "--dkim-selector",
                "s",
                "--dkim-key",
                rsa.as_str(),
                "--dkim-algorithm",
                "rsa-sha1",
            ],
            "rsa-sha256 or ed25519-sha256",
        ),
    ];
    for (extra, expect) in rows {
        Probe::new()
            .args(base)
            .args(extra)
            .expect_exit(2)
            .stdout_is_empty()
            .stderr_has(expect)
            .run();
    }
    assert!(!sentinel.was_contacted());
}
