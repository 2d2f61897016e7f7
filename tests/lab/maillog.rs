//! `probe maillog` against pflogsumm on real Postfix logs. Mail goes through the lab's relay
//! (delivered, deferred and retried, bounced, and a sender the relay's own smtpd refuses) and
//! straight to the provider (delivered over LMTP, refused at RCPT with 550 and with 450); then
//! the lines both logs gained meanwhile are read by pflogsumm and by `probe maillog --json`, and
//! the Grand Totals (delivered, deferred, bounced, rejected) must be equal. Other tests may
//! write to the same logs meanwhile: both tools read the same bytes, so the totals still agree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::Probe;
use crate::support::lab::{ensure_lab, lab_ca, lab_dir, password};
use crate::support::net::wait_for;

const FROM: &str = "probe@sender.lab.test";

/// `probe smtp` to the relay (submission, STARTTLS, AUTH as [`FROM`]) or to the provider.
fn send(relay: bool, from: &str, to: &str) -> String {
    let ca = lab_ca().display().to_string();
    let mut args = vec![
        "smtp",
        "--tls",
        "--ca-file",
        &ca,
        "--from",
        from,
        "--to",
        to,
    ];
    args.extend(["--timeout", "10s", "--suppress-data"]);
    if relay {
        args.extend(["--server", "127.0.0.1:2587", "--auth", "--auth-user", FROM]);
        args.extend(["--auth-password-env", "LAB_RELAY_PW"]);
    } else {
        args.extend(["--server", "127.0.0.1:2525"]);
    }
    Probe::new()
        .lab()
        .args(args)
        .env("LAB_RELAY_PW", password("probe"))
        .run()
        .stdout()
}

/// The queue id in a `250 ... queued as ID` reply.
fn queued_as(dialogue: &str) -> String {
    let at = dialogue
        .find("queued as ")
        .unwrap_or_else(|| panic!("not queued:\n{dialogue}"));
    dialogue[at + "queued as ".len()..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// A log's bytes from `from` to its last complete line.
fn since(log: &Path, from: u64) -> Vec<u8> {
    let bytes = std::fs::read(log).unwrap();
    let mut slice = bytes[from as usize..].to_vec();
    let end = slice.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    slice.truncate(end);
    slice
}

/// pflogsumm's Grand Totals: delivered, deferred, bounced, rejected.
fn pflogsumm(log: &Path, syslog_name: &str) -> [u64; 4] {
    let out = Command::new("pflogsumm")
        .arg(format!("--syslog-name={syslog_name}"))
        .arg(log)
        .output()
        .expect("pflogsumm (docker/lab/lab.sh install adds it)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let grand = |key: &str| -> u64 {
        text.lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                let n = words.next()?.parse().ok()?;
                (words.next()? == key).then_some(n)
            })
            .unwrap_or_else(|| panic!("no {key} in pflogsumm's output:\n{text}"))
    };
    ["delivered", "deferred", "bounced", "rejected"].map(grand)
}

/// probe's totals: delivered, deferred, bounced, rejected.
fn probe(log: &Path) -> [u64; 4] {
    let json = Probe::new()
        .args(["maillog", "--json"])
        .arg(log)
        .expect_exit(0)
        .run()
        .json();
    ["delivered", "deferred", "bounced", "rejected"].map(|k| {
        json["totals"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{json}"))
    })
}

#[test]
fn totals_equal_pflogsumms_grand_totals_on_the_labs_logs() {
    ensure_lab();
    let relay_log = lab_dir().join("log/relay.log");
    let provider_log = lab_dir().join("log/postfix.log");
    let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (relay_from, provider_from) = (size(&relay_log), size(&provider_log));

    let delivered = queued_as(&send(true, FROM, "inbox@inbox.lab.test"));
    let deferred = queued_as(&send(true, FROM, "defer@defer.lab.test"));
    let bounced = queued_as(&send(true, FROM, "reject@reject.lab.test"));
    // Not the login's address: the relay's smtpd refuses it (553 at RCPT).
    send(true, "someone-else@sender.lab.test", "inbox@inbox.lab.test");
    send(false, FROM, "inbox@inbox.lab.test");
    send(false, FROM, "reject@reject.lab.test");
    send(false, FROM, "defer@defer.lab.test");

    // Until the relay has logged each message's outcome (the deferred one's first attempt).
    let want = [
        (delivered, "status=sent"),
        (deferred, "status=deferred"),
        (bounced, "status=bounced"),
    ];
    wait_for("the relay's status lines", Duration::from_secs(60), || {
        let text = String::from_utf8_lossy(&since(&relay_log, relay_from)).into_owned();
        want.iter()
            .all(|(id, status)| {
                text.lines()
                    .any(|l| l.contains(&format!(" {id}: to=<")) && l.contains(status))
            })
            .then_some(())
    });

    let dir = tempfile::tempdir().unwrap();
    for (log, from, name, at_least) in [
        (&relay_log, relay_from, "postfix-relay", [1, 1, 1, 1]),
        (&provider_log, provider_from, "postfix", [2, 0, 0, 2]),
    ] {
        let slice = dir.path().join(format!("{name}.log"));
        std::fs::write(&slice, since(log, from)).unwrap();
        let theirs = pflogsumm(&slice, name);
        let ours = probe(&slice);
        assert_eq!(
            ours,
            theirs,
            "{name}: probe [delivered, deferred, bounced, rejected] vs pflogsumm; log:\n{}",
            std::fs::read_to_string(&slice).unwrap()
        );
        assert!(
            ours.iter().zip(at_least).all(|(n, min)| *n >= min),
            "{name}: {ours:?}, want at least {at_least:?}"
        );
    }
}
