//! History: `--label`, `probe runs`, `probe report` formats, `--fail-under`, pruning.

use serde_json::Value;

use crate::support::{Probe, Seed, Seeds, message_for};

/// `probe ARGS` with a lab config of `seeds`, lab started, in a fresh directory (its store).
fn lab_probe(timeout: &str, seeds: impl IntoIterator<Item = Seed>, args: &[&str]) -> Probe {
    Probe::new()
        .lab()
        .args(args)
        .config(&Seeds::lab(timeout).seeds(seeds))
}

/// A small RFC 4180 reader: records of fields, quotes and doubled quotes undone.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote in\n{text}");
    assert!(
        field.is_empty() && record.is_empty(),
        "no final line end in\n{text}"
    );
    records
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn a_labelled_run_is_listed_and_reported_in_every_format() {
    let first = lab_probe(
        "4s",
        Seed::lab_six(),
        &["run", "--all", "--json", "--label", "before"],
    )
    .expect_exit(1)
    .run();
    let dir = first.dir();
    let json = first.json();
    assert_eq!(json["label"], "before");
    let run_id = json["run_id"].as_str().unwrap();

    // probe runs --json: the run, its label and counts.
    let out = Probe::in_dir(dir)
        .args(["runs", "--json"])
        .expect_exit(0)
        .run();
    let runs = out.json();
    let runs = runs.as_array().expect("a list");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let listed = &runs[0];
    assert_eq!(listed["run_id"], run_id);
    assert_eq!(listed["label"], "before");
    assert_eq!(listed["finished"], true);
    assert_eq!(listed["transport"], "direct");
    assert_eq!(listed["messages"], 6);
    assert_eq!(listed["counts"], json["counts"]);
    for verdict in [
        "inbox",
        "spam",
        "spam_tagged",
        "deferred",
        "rejected",
        "missing",
    ] {
        assert_eq!(listed["counts"][verdict], 1, "{listed:#}");
    }
    // ... and as a table.
    let out = Probe::in_dir(dir).args(["runs"]).run();
    let table = out.stdout();
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(run_id) && row.contains(" before ") && row.contains("1 inbox"),
        "{table}"
    );

    // probe report --format json is the run's --json document (default: the latest run).
    let out = Probe::in_dir(dir)
        .args(["report", "--format", "json"])
        .expect_exit(0)
        .run();
    let reported = out.json();
    assert_eq!(keys(&reported), keys(&json));
    assert_eq!(keys(&reported["messages"][0]), keys(&json["messages"][0]));
    // The stable field names, pinned.
    for field in [
        "run_id",
        "started_at",
        "finished_at",
        "finished",
        "transport",
        "sender",
        "label",
        "counts",
        "messages",
    ] {
        assert!(reported.get(field).is_some(), "no {field} in {reported:#}");
    }
    for field in [
        "seed",
        "provider",
        "address",
        "token",
        "verdict",
        "reason",
        "smtp",
        "folder",
        "tab",
        "latency_ms",
        "delivery_latency_ms",
        "authentication",
        "spam",
        "tls",
        "headers",
        "poll_error",
    ] {
        assert!(
            reported["messages"][0].get(field).is_some(),
            "no {field} in {:#}",
            reported["messages"][0]
        );
    }
    assert_eq!(reported, json);

    // CSV: a header, one row per seed, fields with commas quoted and read back intact.
    let out = Probe::in_dir(dir)
        .args(["report", run_id, "--format", "csv"])
        .expect_exit(0)
        .run();
    let text = out.stdout();
    let records = parse_csv(&text);
    let header = &records[0];
    assert_eq!(header[..3], ["seed", "provider", "verdict"], "{text}");
    assert_eq!(records.len(), 1 + 6, "{text}");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for record in &records[1..] {
        assert_eq!(record.len(), header.len(), "{record:?}");
        let m = message_for(&json, &record[0]);
        assert_eq!(record[column("verdict")], m["verdict"].as_str().unwrap());
        assert_eq!(record[column("token")], m["token"].as_str().unwrap());
    }
    let defer = records.iter().find(|r| r[0] == "defer").unwrap();
    let text_450 = message_for(&json, "defer")["smtp"]["text"]
        .as_str()
        .unwrap();
    assert!(text_450.contains(','), "{text_450}");
    assert!(text.contains(&format!("\"{text_450}\"")), "{text}");
    assert_eq!(defer[column("smtp_text")], text_450);
    assert_eq!(defer[column("smtp_code")], "450");

    // The table groups by provider with a placement summary.
    let out = Probe::in_dir(dir).args(["report"]).expect_exit(0).run();
    let table = out.stdout();
    assert!(
        table.contains(
            "provider -: 6 message(s): inbox 16.7%, spam 16.7%, tagged 16.7%, deferred 1, rejected 1, missing 1"
        ),
        "{table}"
    );
    assert!(table.contains("(before)"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("junk") && l.contains("spam")),
        "{table}"
    );
    // -v adds the details per seed.
    let out = Probe::in_dir(dir).args(["report", "-v"]).run();
    let verbose = out.stdout();
    for detail in [
        "smtp: 450 4.7.1",
        "folder: Filtered",
        "auth: spf=",
        "spam: score",
    ] {
        assert!(verbose.contains(detail), "no {detail:?} in\n{verbose}");
    }
}

#[test]
fn fail_under_compares_the_inbox_share() {
    lab_probe(
        "4s",
        [Seed::lab("inbox")],
        &["run", "--all", "--fail-under", "100"],
    )
    .expect_exit(0)
    .run();

    let seeds = [Seed::lab("inbox"), Seed::lab("junk")];
    let first = lab_probe("4s", seeds, &["run", "--all", "--fail-under", "60"])
        .expect_exit(1)
        .stderr_has("inbox share 50.0%")
        .run();
    // The same placement passes a lower bar.
    Probe::in_dir(first.dir())
        .args([
            "run",
            "--all",
            "--fail-under",
            "50",
            "--config",
            "seeds.yaml",
        ])
        .expect_exit(0)
        .run();
}

#[test]
fn prune_deletes_only_runs_older_than_asked() {
    let first = lab_probe("4s", [Seed::lab("inbox")], &["run", "--all", "--json"])
        .expect_exit(0)
        .run();
    let dir = first.dir();
    let old = first.json()["run_id"].as_str().unwrap().to_owned();
    let out = Probe::in_dir(dir)
        .args(["run", "--all", "--json", "--config", "seeds.yaml"])
        .expect_exit(0)
        .run();
    let new = out.json()["run_id"].as_str().unwrap().to_owned();

    let db = rusqlite::Connection::open(dir.join("store.sqlite")).unwrap();
    let hundred_days_ms: i64 = 100 * 86_400 * 1000;
    db.execute(
        "UPDATE runs SET started_at = started_at - ?2 WHERE id = ?1",
        rusqlite::params![old, hundred_days_ms],
    )
    .unwrap();
    let count = |sql: &str, run: &str| -> i64 { db.query_row(sql, [run], |r| r.get(0)).unwrap() };
    let records = |run: &str| {
        [
            "SELECT COUNT(*) FROM messages WHERE run_id = ?1",
            "SELECT COUNT(*) FROM smtp_attempts WHERE token IN (SELECT token FROM messages WHERE run_id = ?1)",
            "SELECT COUNT(*) FROM observations WHERE run_id = ?1",
            "SELECT COUNT(*) FROM positions WHERE run_id = ?1",
        ]
        .map(|sql| count(sql, run))
    };
    assert!(records(&old).iter().all(|&n| n > 0), "{:?}", records(&old));

    // Listing deletes nothing.
    let out = Probe::in_dir(dir).args(["runs", "--json"]).run();
    assert_eq!(out.json().as_array().unwrap().len(), 2, "{}", out.show());

    Probe::in_dir(dir)
        .args(["runs", "--prune-older-than", "90d"])
        .expect_exit(0)
        .stdout_has("deleted 1 run(s)")
        .run();
    assert_eq!(records(&old), [0, 0, 0, 0]);
    assert!(
        records(&new)[..2].iter().all(|&n| n > 0),
        "{:?}",
        records(&new)
    );

    let out = Probe::in_dir(dir).args(["runs", "--json"]).run();
    let listed = out.json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [new.as_str()]);
    Probe::in_dir(dir)
        .args(["report", &old])
        .expect_exit(2)
        .run();
}
