//! Seed mailboxes are never changed: after a run the messages are still there, unread, unmoved.

use std::process::Command;

use crate::support::lab::lab_dir;
use crate::support::{Probe, Seeds, message_for};

/// `doveadm fetch` of one message's flags, straight from Dovecot, by its X-Probe-Id.
fn flags(user: &str, folder: &str, token: &str) -> Vec<String> {
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(lab_dir().join("dovecot/dovecot.conf"))
        .args(["fetch", "-u", user, "flags", "mailbox", folder])
        .args(["header", "X-Probe-Id", token])
        .output()
        .expect("doveadm");
    assert!(out.status.success(), "doveadm: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("flags:"))
        .map(|f| f.trim().to_owned())
        .collect()
}

#[test]
fn found_messages_stay_unread_where_they_landed() {
    let out = Probe::new()
        .lab()
        .args(["run", "--seed", "inbox", "--seed", "junk", "--json"])
        .config(&Seeds::lab_six("10s"))
        .expect_exit(1)
        .run();
    let json = out.json();
    for (seed, folder) in [("inbox", "INBOX"), ("junk", "Filtered")] {
        let token = message_for(&json, seed)["token"].as_str().unwrap();
        let user = format!("{seed}@{seed}.lab.test");
        let found = flags(&user, folder, token);
        assert_eq!(
            found.len(),
            1,
            "{seed}: exactly one copy in {folder}: {found:?}"
        );
        for flag in ["\\Seen", "\\Deleted", "\\Flagged", "\\Answered"] {
            assert!(!found[0].contains(flag), "{seed}: {flag} set: {found:?}");
        }
    }
}
