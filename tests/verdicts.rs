//! End to end against the lab: one run over all six simulated providers.

use serde_json::Value;

use crate::lab::{
    self, ALL_SEEDS, LabSeed, ensure_lab, lab_run, message_for, password_file, probe, run, show,
};

/// (seed, verdict, SMTP code class, folder)
const EXPECTED: &[(&str, &str, u16, Option<&str>)] = &[
    ("inbox", "inbox", 2, Some("INBOX")),
    ("junk", "spam", 2, Some("Filtered")),
    ("tagged", "spam_tagged", 2, Some("INBOX")),
    ("defer", "deferred", 4, None),
    ("reject", "rejected", 5, None),
    ("discard", "missing", 2, None),
];

fn assert_verdicts(json: &Value) {
    for (seed, verdict, class, folder) in EXPECTED {
        let m = message_for(json, seed);
        assert_eq!(m["verdict"], *verdict, "seed {seed}: {m:#}");
        let code = m["smtp"]["code"].as_u64().unwrap_or(0) as u16;
        assert_eq!(code / 100, *class, "seed {seed}: smtp code {code}: {m:#}");
        assert_eq!(m["folder"].as_str(), *folder, "seed {seed}: {m:#}");
        assert_eq!(m["address"], format!("{seed}@{seed}.lab.test"));
    }
}

#[test]
fn run_all_gives_all_six_verdicts() {
    let (dir, out) = lab_run("4s", &ALL_SEEDS, &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_verdicts(&json);
    assert_eq!(json["finished"], true);
    assert!(json["run_id"].as_str().is_some_and(|s| s.len() == 26));
    let defer = message_for(&json, "defer");
    assert_eq!(defer["smtp"]["code"], 450);
    assert_eq!(defer["smtp"]["enhanced"], "4.7.1");
    assert_eq!(defer["smtp"]["stage"], "rcpt_to");
    let reject = message_for(&json, "reject");
    assert_eq!(reject["smtp"]["code"], 550);
    assert_eq!(reject["smtp"]["enhanced"], "5.7.1");
    let tagged = message_for(&json, "tagged");
    assert!(
        tagged["reason"].as_str().unwrap().contains("[SPAM]"),
        "{tagged:#}"
    );
    // The lab offers STARTTLS on port 2525 with a certificate from its own CA, which is not a
    // public root: opportunistic TLS goes ahead and records that.
    let tls = &message_for(&json, "inbox")["tls"];
    assert_eq!(tls["certificate"], "untrusted", "{tls:#}");

    // Every reply is in the store, in a swaks-style transcript per attempt. All six seeds
    // share one MX, so one connection: its opening is in the first message's transcript.
    let db = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
    let transcript = |seed: &str| -> String {
        let stored: String = db
            .query_row(
                "SELECT a.transcript FROM smtp_attempts a JOIN messages m USING (token)
                 WHERE m.seed = ?1 AND m.run_id = ?2",
                [seed, json["run_id"].as_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str::<seedprobe::send::Transcript>(&stored)
            .unwrap()
            .to_string()
    };
    let first = transcript("inbox");
    for line in [
        "<- 220 mx.lab.test",
        "-> STARTTLS",
        "~> MAIL FROM:<probe@example.org>",
    ] {
        assert!(first.contains(line), "missing {line:?} in\n{first}");
    }
    let defer = transcript("defer");
    for line in [
        "~> MAIL FROM:<probe@example.org>",
        "~> RCPT TO:<defer@defer.lab.test>",
        "<~ 450 4.7.1 <defer@defer.lab.test>: Recipient address rejected",
    ] {
        assert!(defer.contains(line), "missing {line:?} in\n{defer}");
    }
    assert!(transcript("discard").contains("~> QUIT"));
}

#[test]
fn table_shows_one_row_per_seed() {
    let seeds = [
        LabSeed {
            local: "inbox",
            imap: lab::Imap::Implicit,
        },
        LabSeed {
            local: "reject",
            imap: lab::Imap::Implicit,
        },
    ];
    let (_dir, out) = lab_run("4s", &seeds, &["run", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let table = String::from_utf8(out.stdout.clone()).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("SEED"), "{table}");
    assert!(
        rows[1].starts_with("inbox")
            && rows[1].contains(" inbox ")
            && rows[1].contains("250 2.0.0"),
        "{table}"
    );
    assert!(
        rows[2].starts_with("reject")
            && rows[2].contains("rejected")
            && rows[2].contains("550 5.7.1"),
        "{table}"
    );
}

#[test]
fn only_inbox_exits_zero() {
    let (_dir, out) = lab_run("10s", &ALL_SEEDS, &["run", "--seed", "inbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn send_then_poll_later() {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let config = lab::write_config(dir.path(), "4s", &ALL_SEEDS, password_file);
    let out = run(probe(dir.path())
        .args(["send", "--all", "--config"])
        .arg(&config));
    // Deferred and rejected are known at send time.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run_id = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(run_id.len(), 26, "{}", show(&out));

    // `poll` without --run picks the latest unfinished run.
    let out = run(probe(dir.path())
        .args(["poll", "--json", "--config"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["run_id"], run_id.as_str());
    assert_verdicts(&json);

    // Nothing is left to poll.
    let out = run(probe(dir.path()).args(["poll", "--config"]).arg(&config));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no unfinished run"),
        "{}",
        show(&out)
    );
}
