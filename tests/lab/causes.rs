//! Each verdict's cause against the lab: the provider-style refusals (`refuse` seeds in
//! `docker/lab/seeds.list`, each with a provider's own reply) give their provider's reason, hint
//! and page; the lab's plain defer, reject, junk, tagged and discard seeds give theirs.

use serde_json::Value;

use crate::support::{Probe, Seed, Seeds, message_for};

/// (seed, its `provider:`, verdict, reason, source, a piece of the hint, url)
type Row = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const EXPECTED: &[Row] = &[
    (
        "gmail-rate",
        Some("gmail"),
        "deferred",
        "ratelimited",
        "smtp",
        Some("Postmaster Tools"),
        Some("https://postmaster.google.com"),
    ),
    (
        "gmail-auth",
        Some("gmail"),
        "rejected",
        "authfailure",
        "smtp",
        Some("SPF or DKIM"),
        Some("https://support.google.com/mail/answer/81126#authentication"),
    ),
    (
        "outlook-s3150",
        Some("outlook"),
        "rejected",
        "blocked",
        "smtp",
        Some("delisting"),
        Some("https://olcsupport.office.com"),
    ),
    (
        "yahoo-tss04",
        Some("yahoo"),
        "deferred",
        "badreputation",
        "smtp",
        Some("about 4 hours"),
        Some("https://senders.yahooinc.com/smtp-error-codes/"),
    ),
    (
        "yahoo-ts03",
        Some("yahoo"),
        "deferred",
        "blocked",
        "smtp",
        Some("retrying will not succeed"),
        Some("https://senders.yahooinc.com/smtp-error-codes/"),
    ),
    (
        "gmx-case",
        Some("gmx"),
        "rejected",
        "blocked",
        "smtp",
        Some("case r0201"),
        // The case page from the reply's last line, as GMX sent it.
        Some(
            "https://postmaster.gmx.net/en/case?c=r0201&i=ip&v=127.0.0.1&r=0MKsEO-1sZyf42Fnt-00LqMT",
        ),
    ),
    (
        "tonline-nowl",
        Some("tonline"),
        "rejected",
        "badreputation",
        "smtp",
        Some("postmaster@rx.t-online.de"),
        Some("https://postmaster.t-online.de"),
    ),
    // The lab's own refusals: no provider, so no hint, but the words still say why.
    ("defer", None, "deferred", "ratelimited", "smtp", None, None),
    ("reject", None, "rejected", "blocked", "smtp", None, None),
    (
        "junk",
        None,
        "spam",
        "spamdetected",
        "folder",
        Some("spam folder"),
        None,
    ),
    (
        "tagged",
        None,
        "spam_tagged",
        "spamdetected",
        "header",
        Some("marked as spam"),
        None,
    ),
    (
        "discard",
        None,
        "missing",
        "filtered",
        "timeout",
        Some("--timeout"),
        None,
    ),
];

/// `probe run --all --json --metrics-file m.prom` on the lab with these seeds.
fn run(seeds: Seeds) -> crate::support::Ran {
    Probe::new()
        .lab()
        .args(["run", "--all", "--json", "--metrics-file", "m.prom"])
        .config(&seeds)
        .expect_exit(1)
        .run()
}

#[test]
fn every_verdict_but_inbox_has_a_cause_with_the_providers_hint() {
    let seed = |name: &str| {
        let (_, provider, ..) = EXPECTED.iter().find(|r| r.0 == name).unwrap();
        match provider {
            Some(p) => Seed::lab(name).provider(p),
            None => Seed::lab(name),
        }
    };
    // A 421 closes the connection, and probe then tries that MX no more in the run (as an MTA
    // backs off): each 421 seed gets a run of its own, the others share one.
    let alone = ["gmail-rate", "yahoo-tss04", "yahoo-ts03"];
    let mut runs: Vec<Seeds> = alone
        .iter()
        .map(|s| Seeds::lab("4s").seed(seed(s)))
        .collect();
    runs.push(
        EXPECTED
            .iter()
            .filter(|r| !alone.contains(&r.0))
            .map(|r| seed(r.0))
            .chain([Seed::lab("inbox")])
            .fold(Seeds::lab("4s"), Seeds::seed),
    );
    let outs: Vec<_> = runs.into_iter().map(run).collect();
    let jsons: Vec<Value> = outs.iter().map(|o| o.json()).collect();
    let find = |seed: &str| {
        jsons
            .iter()
            .find(|j| {
                j["messages"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["seed"] == seed))
            })
            .map(|j| message_for(j, seed))
            .unwrap_or_else(|| panic!("no run has seed {seed}"))
    };
    for (seed, _, verdict, reason, source, hint, url) in EXPECTED {
        let m = find(seed);
        assert_eq!(m["verdict"], *verdict, "seed {seed}: {m:#}");
        let cause = &m["cause"];
        assert_eq!(cause["reason"], *reason, "seed {seed}: {cause:#}");
        assert_eq!(cause["source"], *source, "seed {seed}: {cause:#}");
        match hint {
            Some(piece) => assert!(
                cause["hint"]
                    .as_str()
                    .is_some_and(|h| h.to_lowercase().contains(&piece.to_lowercase())),
                "seed {seed}: hint should mention {piece:?}: {cause:#}"
            ),
            None => assert_eq!(cause["hint"], Value::Null, "seed {seed}: {cause:#}"),
        }
        assert_eq!(cause["url"].as_str(), *url, "seed {seed}: {cause:#}");
    }
    let (out, json) = (outs.last().unwrap(), jsons.last().unwrap());
    assert_eq!(message_for(json, "inbox")["cause"], Value::Null);

    // The GMX reply came in several lines; its case URL was on the last one.
    let gmx = message_for(json, "gmx-case");
    assert!(
        gmx["smtp"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Nemesis") && t.contains("c=r0201")),
        "{gmx:#}"
    );

    // The metrics count messages per provider and reason.
    let metrics = std::fs::read_to_string(out.dir().join("m.prom")).unwrap();
    for line in [
        "seedprobe_messages_by_reason{provider=\"tonline\",reason=\"badreputation\"} 1",
        "seedprobe_messages_by_reason{provider=\"-\",reason=\"filtered\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line} in {metrics}");
    }
    assert!(!metrics.contains("reason=\"\""), "{metrics}");

    // The report's table shows the reason per seed, and with -v the hint and page.
    let run_id = json["run_id"].as_str().unwrap();
    let table = Probe::in_dir(out.dir())
        .args(["-v", "report", run_id])
        .expect_exit(0)
        .run()
        .stdout();
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("SEED") && l.contains(" REASON ")),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("tonline-nowl "))
        .unwrap_or_else(|| panic!("no row for tonline-nowl: {table}"));
    assert!(row.contains("badreputation"), "{row}");
    assert!(
        table.contains("cause: badreputation (from smtp): T-Online does not know this IP"),
        "{table}"
    );
    assert!(
        table.contains("see: https://postmaster.t-online.de"),
        "{table}"
    );

    // The HTML report names the cause and links the provider's page.
    let html = Probe::in_dir(out.dir())
        .args(["report", run_id, "--format", "html"])
        .expect_exit(0)
        .run()
        .stdout();
    assert!(
        html.contains(
            "<tr><th>cause</th><td>badreputation <span class=\"none\">(from smtp)</span>"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<a href=\"https://postmaster.t-online.de\">https://postmaster.t-online.de</a>"
        ),
        "{html}"
    );
}
