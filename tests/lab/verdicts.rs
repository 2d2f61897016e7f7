//! End to end against the lab: one run over all six simulated providers.

use serde_json::Value;

use crate::support::{Probe, Seed, Seeds, message_for};

/// `probe ARGS` on the lab with `seeds`, in a fresh directory.
fn lab_probe(seeds: &Seeds, args: &[&str]) -> Probe {
    Probe::new().lab().args(args).config(seeds)
}

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
    let out = lab_probe(&Seeds::lab_six("4s"), &["run", "--all", "--json"])
        .expect_exit(1)
        .run();
    let json = out.json();
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
    let db = rusqlite::Connection::open(out.dir().join("store.sqlite")).unwrap();
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
    let seeds = Seeds::lab("4s").seeds(["inbox", "reject"].map(Seed::lab));
    let out = lab_probe(&seeds, &["run", "--all"]).expect_exit(1).run();
    let table = out.stdout();
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
    lab_probe(&Seeds::lab_six("10s"), &["run", "--seed", "inbox"])
        .expect_exit(0)
        .run();
}

#[test]
fn send_then_poll_later() {
    let seeds = Seeds::lab_six("4s");
    // Deferred and rejected are known at send time.
    let sent = lab_probe(&seeds, &["send", "--all"]).expect_exit(1).run();
    let run_id = sent.stdout().trim().to_owned();
    assert_eq!(run_id.len(), 26, "{}", sent.show());
    let dir = sent.dir();

    // `poll` without --run picks the latest unfinished run.
    let out = Probe::in_dir(dir)
        .args(["poll", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let json = out.json();
    assert_eq!(json["run_id"], run_id.as_str());
    assert_verdicts(&json);

    // Nothing is left to poll.
    Probe::in_dir(dir)
        .arg("poll")
        .config(&seeds)
        .expect_exit(2)
        .stderr_has("no unfinished run")
        .run();
}
