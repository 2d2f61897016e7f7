//! `probe bounce` on small fixtures (`tests/fixtures/bounces/`, derived from the lab's real
//! DSN samples): every source shape, the JSON keys, skipped non-bounces, unreadable paths and
//! garbage. No lab.

use std::path::{Path, PathBuf};

use crate::support::probe::Probe;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

#[test]
fn one_file_gives_one_line_per_recipient_with_reason_and_provider() {
    Probe::new()
        .arg("bounce")
        .arg(fixture("gmail-authfailure.eml"))
        .expect_exit(0)
        .stdout_has(
            "seed@gmail.com  failed  5.7.26  550  authfailure  gmail-smtp-in.l.google.com  gmail",
        )
        .run();
}

#[test]
fn json_has_the_documented_keys() {
    let ran = Probe::new()
        .args(["bounce", "--json"])
        .arg(fixture("postfix-blocked.eml"))
        .arg(fixture("postfix-delayed.eml"))
        .arg(fixture("dovecot-reject.mdn.eml"))
        .expect_exit(0)
        .run();
    let json = ran.json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json:#}");
    let keys = [
        "file",
        "recipient",
        "action",
        "status",
        "reply_code",
        "reason",
        "remote_mta",
        "diagnostic",
        "provider",
    ];
    for row in rows {
        let mut got: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        got.sort();
        let mut want = keys.to_vec();
        want.sort();
        assert_eq!(got, want);
    }
    assert_eq!(rows[0]["reason"], "blocked");
    assert_eq!(rows[0]["reply_code"], 550);
    assert_eq!(rows[1]["action"], "delayed");
    assert_eq!(rows[1]["status"], "4.7.1");
    assert_eq!(rows[2]["reason"], "filtered");
}

#[test]
fn mbox_maildir_and_directory_are_read() {
    let dir = tempfile::tempdir().unwrap();
    // An mbox of two bounces and a note, the note skipped.
    let mut mbox = Vec::new();
    for name in [
        "postfix-blocked.eml",
        "not-a-bounce.eml",
        "gmail-authfailure.eml",
    ] {
        mbox.extend_from_slice(b"From MAILER-DAEMON Sat Nov 28 08:43:26 2026\n");
        mbox.extend_from_slice(&read(name));
        mbox.extend_from_slice(b"\n");
    }
    let mbox_path = dir.path().join("bounces.mbox");
    std::fs::write(&mbox_path, mbox).unwrap();
    let ran = Probe::new()
        .args(["bounce", "--json"])
        .arg(&mbox_path)
        .expect_exit(0)
        .stderr_has("bounces.mbox#2: not a bounce, skipped")
        .run();
    let json = ran.json();
    let reasons: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["blocked", "authfailure"]);

    // A Maildir: cur/ and new/ read, tmp/ not.
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("cur/1:2,S"), read("postfix-blocked.eml")).unwrap();
    std::fs::write(maildir.join("new/2"), read("postfix-delayed.eml")).unwrap();
    std::fs::write(maildir.join("tmp/3"), read("gmail-authfailure.eml")).unwrap();
    Probe::new()
        .arg("bounce")
        .arg(&maildir)
        .expect_exit(0)
        .stdout_has("reject@reject.lab.test  failed")
        .stdout_has("defer@defer.lab.test  delayed")
        .stdout_lacks("seed@gmail.com")
        .run();

    // A plain directory: the fixtures, the note skipped.
    Probe::new()
        .arg("bounce")
        .arg(fixture(""))
        .expect_exit(0)
        .stdout_has("seed@gmail.com")
        .stdout_has("sievereject@sievereject.lab.test")
        .stderr_has("not-a-bounce.eml: not a bounce, skipped")
        .run();
}

#[test]
fn standard_input_is_read() {
    let ran = Probe::new()
        .args(["bounce", "-"])
        .stdin(read("gmail-authfailure.eml"))
        .expect_exit(0)
        .run();
    assert!(
        ran.stdout()
            .starts_with("-  seed@gmail.com  failed  5.7.26"),
        "{}",
        ran.show()
    );
}

#[test]
fn an_unreadable_path_is_named_and_exits_2() {
    Probe::new()
        .args(["bounce", "/nonexistent/bounces.mbox"])
        .arg(fixture("postfix-blocked.eml"))
        .expect_exit(2)
        .stderr_has("cannot read /nonexistent/bounces.mbox")
        .stdout_has("reject@reject.lab.test")
        .run();
}

#[test]
fn garbage_is_skipped_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Bytes of every value, and a broken multipart/report that claims to be a DSN.
    let mut garbage: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    garbage.extend_from_slice(
        b"\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"\"\r\n\r\n--\r\n--\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.\r\n",
    );
    std::fs::write(dir.path().join("garbage"), &garbage).unwrap();
    let mut truncated = read("postfix-blocked.eml");
    truncated.truncate(truncated.len() / 2);
    std::fs::write(dir.path().join("truncated.eml"), truncated).unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    Probe::new()
        .args(["bounce", "--json"])
        .arg(dir.path())
        .expect_exit(0)
        .stderr_lacks("panicked")
        .run();
}

/// Plain-text bounces of many MTAs (invented addresses, each MTA's real shape), abuse
/// reports and DSNs without `Action`: (fixture, recipient, action, status, reason), one row
/// per recipient in the order `probe bounce` prints them.
#[test]
fn every_format_gives_recipient_status_and_reason() {
    let table: &[(&str, &str, &str, &str, &str)] = &[
        (
            "exim-userunknown.eml",
            "ghost@example.org",
            "failed",
            "5.1.1",
            "userunknown",
        ),
        (
            "qmail-mailboxfull.eml",
            "full@example.net",
            "failed",
            "5.2.2",
            "mailboxfull",
        ),
        (
            "qmail-mailboxfull.eml",
            "nobody@example.net",
            "failed",
            "5.1.1",
            "userunknown",
        ),
        (
            "sendmail-transcript.eml",
            "lost@nowhere.example",
            "failed",
            "5.0.912",
            "hostunknown",
        ),
        (
            "gmail-expired.eml",
            "slow@example.com",
            "failed",
            "5.0.947",
            "expired",
        ),
        (
            "exchange-userunknown.eml",
            "left@corp.example.net",
            "failed",
            "5.0.911",
            "userunknown",
        ),
        (
            "dsn-no-action.eml",
            "gone@example.org",
            "failed",
            "5.1.1",
            "userunknown",
        ),
        (
            "feedback-abuse-report.eml",
            "annoyed@example.com",
            "feedback",
            "",
            "feedback",
        ),
        // Amazon SES notifications by email: JSON, bare or in SNS's envelope.
        (
            "ses-bounce-notification.eml",
            "nobody@example.net",
            "failed",
            "5.1.1",
            "userunknown",
        ),
        (
            "ses-complaint-in-sns-envelope.eml",
            "grumpy@example.org",
            "feedback",
            "",
            "feedback",
        ),
        // Reasons the report states in its own words, before the address (au, Notes).
        (
            "au-account-disabled.eml",
            "sleeping-phone@ezweb.ne.jp",
            "failed",
            "5.0.921",
            "suspend",
        ),
        (
            "notes-failure-reasons.eml",
            "departed@notes.example.com",
            "failed",
            "5.0.911",
            "userunknown",
        ),
        // Exim gave up retrying: a temporary failure that ran out (class 4).
        (
            "exim-retry-timeout.eml",
            "slowpoke@example.com",
            "failed",
            "4.0.947",
            "expired",
        ),
        // OpenSMTPD's "only a temporary failure report": Sisimai counts it failed, by its text.
        (
            "opensmtpd-temporary-report.eml",
            "patient@example.org",
            "failed",
            "5.0.944",
            "networkerror",
        ),
        // Recipient blocks with no blank line between them (AOL, Sun Messaging Server).
        (
            "dsn-blocks-without-blank-lines.eml",
            "full@example.jp",
            "failed",
            "5.2.2",
            "mailboxfull",
        ),
        (
            "dsn-blocks-without-blank-lines.eml",
            "gone@example.jp",
            "failed",
            "5.1.1",
            "userunknown",
        ),
        // A bounce forwarded as a quotation: read as it was, the returned headers not in it.
        (
            "forwarded-quoted-bounce.eml",
            "unknown@example.com",
            "failed",
            "5.1.1",
            "userunknown",
        ),
        // A Sendmail transcript of two sessions: each recipient has its own reply.
        (
            "sendmail-two-sessions.eml",
            "first@example.org",
            "failed",
            "5.7.1",
            // Refused at MAIL FROM for the sender's own listing: the sender, not the host.
            "rejected",
        ),
        (
            "sendmail-two-sessions.eml",
            "second@example.net",
            "failed",
            "5.1.1",
            "userunknown",
        ),
    ];
    let mut probe = Probe::new().args(["bounce", "--json"]);
    let mut files: Vec<&str> = table.iter().map(|row| row.0).collect();
    files.dedup();
    for file in &files {
        probe = probe.arg(fixture(file));
    }
    let ran = probe.expect_exit(0).run();
    let json = ran.json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), table.len(), "{json:#}");
    for (row, (file, recipient, action, status, reason)) in rows.iter().zip(table) {
        assert!(row["file"].as_str().unwrap().ends_with(file), "{row}");
        assert_eq!(row["recipient"], *recipient, "{file}: {row}");
        assert_eq!(row["action"], *action, "{file}: {row}");
        assert_eq!(
            row["status"].as_str().unwrap_or(""),
            *status,
            "{file}: {row}"
        );
        assert_eq!(row["reason"], *reason, "{file}: {row}");
    }
}

#[test]
fn an_auto_reply_is_no_bounce() {
    Probe::new()
        .args(["bounce", "--json"])
        .arg(fixture("autoreply.eml"))
        .expect_exit(0)
        .stderr_has("autoreply.eml: not a bounce, skipped")
        .run();
}

/// Relay mode reads its bounces mailbox with the same parser: a plain-text bounce names our
/// message by the returned `X-Probe-Id` and fails the recipient.
#[test]
fn relay_mode_understands_a_plain_text_bounce() {
    use seedprobe::downstream::{DownstreamAction, dsn};
    let report = dsn::parse(&read("exim-userunknown.eml")).expect("a bounce");
    assert_eq!(report.token(), Some("01JEXIMEXIMEXIMEXIMEXIMEXI"));
    let r = &report.recipients[0];
    assert_eq!(r.action, DownstreamAction::Failed);
    assert_eq!(r.recipient.as_deref(), Some("ghost@example.org"));
    assert_eq!(r.reply_code(), Some(550));
    assert!(dsn::parse(&read("autoreply.eml")).is_none());
}

/// The SMTP command a refused reply answered, as each report shape says it: (fixture,
/// command per recipient in order).
#[test]
fn the_refused_command_is_read_from_the_report() {
    use seedprobe::downstream::dsn;
    let table: &[(&str, &[Option<&str>])] = &[
        ("exim-userunknown.eml", &[Some("RCPT")]),
        ("postfix-blocked.eml", &[Some("RCPT")]),
        ("sendmail-two-sessions.eml", &[Some("MAIL"), Some("RCPT")]),
        ("ses-bounce-notification.eml", &[None]),
        ("exim-sender-refused.eml", &[Some("MAIL")]),
    ];
    for (file, want) in table {
        let report = dsn::parse(&read(file)).unwrap_or_else(|| panic!("{file}: no bounce"));
        let got: Vec<Option<&str>> = report
            .recipients
            .iter()
            .map(|r| r.command.as_deref())
            .collect();
        assert_eq!(got, *want, "{file}");
    }
}

/// Exim refused at MAIL FROM leaves the reason undecided; Sisimai's status for that is
/// X.0.901, of the reply's class.
#[test]
fn exim_refused_at_mail_from_gives_the_undecided_status() {
    use seedprobe::downstream::dsn;
    let report = dsn::parse(&read("exim-sender-refused.eml")).expect("a bounce");
    let r = &report.recipients[0];
    assert_eq!(r.status.as_deref(), Some("5.0.901"));
    assert_eq!(r.reason, None);
    let temporary = String::from_utf8(read("exim-sender-refused.eml"))
        .unwrap()
        .replace("550 Sender verify failed", "451 Sender verify deferred");
    let report = dsn::parse(temporary.as_bytes()).expect("a bounce");
    assert_eq!(report.recipients[0].status.as_deref(), Some("4.0.901"));
}
