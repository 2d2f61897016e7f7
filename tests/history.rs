//! History: `--label`, `probe runs`, `probe report` formats, `--fail-under`, pruning.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::lab::{ALL_SEEDS, Imap, LabSeed, json_of, lab_run, message_for, probe, run, show};

fn seed(local: &'static str) -> LabSeed {
    LabSeed {
        local,
        imap: Imap::Implicit,
    }
}

/// `probe ARGS` in a lab test's directory (its store).
fn probe_in(dir: &Path, args: &[&str]) -> Output {
    run(probe(dir).args(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
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
    let (dir, out) = lab_run(
        "4s",
        &ALL_SEEDS,
        &["run", "--all", "--json", "--label", "before"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    assert_eq!(json["label"], "before");
    let run_id = json["run_id"].as_str().unwrap();

    // probe runs --json: the run, its label and counts.
    let out = probe_in(dir.path(), &["runs", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let runs = json_of(&out);
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
    let out = probe_in(dir.path(), &["runs"]);
    let table = stdout(&out);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(run_id) && row.contains(" before ") && row.contains("1 inbox"),
        "{table}"
    );

    // probe report --format json is the run's --json document (default: the latest run).
    let out = probe_in(dir.path(), &["report", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let reported = json_of(&out);
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
    let out = probe_in(dir.path(), &["report", run_id, "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
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
    let out = probe_in(dir.path(), &["report"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let table = stdout(&out);
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
    let out = probe_in(dir.path(), &["report", "-v"]);
    let verbose = stdout(&out);
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
    let (_dir, out) = lab_run(
        "4s",
        &[seed("inbox")],
        &["run", "--all", "--fail-under", "100"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let seeds = [seed("inbox"), seed("junk")];
    let (dir, out) = lab_run("4s", &seeds, &["run", "--all", "--fail-under", "60"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("inbox share 50.0%"),
        "{}",
        show(&out)
    );
    // The same placement passes a lower bar.
    let out = probe_in(
        dir.path(),
        &[
            "run",
            "--all",
            "--fail-under",
            "50",
            "--config",
            "seeds.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn prune_deletes_only_runs_older_than_asked() {
    let (dir, out) = lab_run("4s", &[seed("inbox")], &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let old = json_of(&out)["run_id"].as_str().unwrap().to_owned();
    let out = probe_in(
        dir.path(),
        &["run", "--all", "--json", "--config", "seeds.yaml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let new = json_of(&out)["run_id"].as_str().unwrap().to_owned();

    let db = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
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
    let out = probe_in(dir.path(), &["runs", "--json"]);
    assert_eq!(json_of(&out).as_array().unwrap().len(), 2, "{}", show(&out));

    let out = probe_in(dir.path(), &["runs", "--prune-older-than", "90d"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("deleted 1 run(s)"), "{}", show(&out));
    assert_eq!(records(&old), [0, 0, 0, 0]);
    assert!(
        records(&new)[..2].iter().all(|&n| n > 0),
        "{:?}",
        records(&new)
    );

    let out = probe_in(dir.path(), &["runs", "--json"]);
    let listed = json_of(&out);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [new.as_str()]);
    let out = probe_in(dir.path(), &["report", &old]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}
