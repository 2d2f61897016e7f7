//! Before/after: `probe compare` over two lab runs from different source addresses (their
//! checks too: 127.0.0.3 is listed on the lab's zen.lab.test and outside sender.lab.test's
//! SPF record, 127.0.0.2 is neither), and the Prometheus metrics file of `--metrics-file`.

use crate::metrics_format::parse_sample;
use crate::support::{Probe, Seed, Seeds, message_for};

#[test]
fn compare_two_runs_from_different_source_addresses() {
    let seeds = Seeds::lab("10s")
        .lab_sender()
        .via_lab_dns()
        .check_list("{ zone: zen.lab.test, kind: ip, name: Lab ZEN, codes: spamhaus-zen }")
        .check_list("{ zone: refused.lab.test, kind: ip, codes: spamhaus-zen }")
        .seed(Seed::new("iprep", "iprep@iprep.lab.test").lab_imap("iprep"));
    let first = Probe::new()
        .lab()
        .ip_checks()
        .args(["run", "--all", "--json", "--source-ip", "127.0.0.2"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let good_json = first.json();
    // Both runs in the same store (the first one's directory).
    let dir = first.dir();
    let bad = Probe::in_dir(dir)
        .ip_checks()
        .args(["run", "--all", "--json", "--source-ip", "127.0.0.3"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let bad_json = bad.json();
    assert_eq!(message_for(&bad_json, "iprep")["verdict"], "deferred");
    let a = good_json["run_id"].as_str().unwrap().to_owned();
    let b = bad_json["run_id"].as_str().unwrap().to_owned();

    // Each run's checks, in its JSON: the listing only in the second.
    let zen = |json: &serde_json::Value| check_of(json, "dnsbl", Some("zen.lab.test")).clone();
    let (good_zen, bad_zen) = (zen(&good_json), zen(&bad_json));
    assert_eq!(
        (good_zen["status"].as_str(), good_zen["subject"].as_str()),
        (Some("pass"), Some("127.0.0.2")),
        "{good_zen:#}"
    );
    assert_eq!(
        (
            bad_zen["status"].as_str(),
            bad_zen["subject"].as_str(),
            bad_zen["code"].as_str()
        ),
        (Some("fail"), Some("127.0.0.3"), Some("127.0.0.2")),
        "{bad_zen:#}"
    );
    assert!(
        bad_zen["detail"]
            .as_str()
            .unwrap()
            .contains("https://lab.test/lookup?ip=127.0.0.3"),
        "{bad_zen:#}"
    );
    for json in [&good_json, &bad_json] {
        let refused = check_of(json, "dnsbl", Some("refused.lab.test"));
        assert_eq!(refused["status"], "error", "{refused:#}");
    }
    assert_eq!(check_of(&good_json, "spf", None)["status"], "pass");
    assert_eq!(check_of(&bad_json, "spf", None)["status"], "fail");

    // The table and the HTML report of the second run show the listing.
    let table = Probe::in_dir(dir).args(["report", &b]).run();
    let text = table.stdout();
    let summary = text
        .lines()
        .find(|l| l.starts_with("checks of 127.0.0.3 and sender.lab.test: "))
        .unwrap_or_else(|| panic!("no checks line: {}", table.show()));
    assert!(summary.contains(" fail, "), "{summary}");
    assert!(
        text.contains("  fail dnsbl zen.lab.test: 127.0.0.3 is listed on Lab ZEN"),
        "{text}"
    );
    assert!(text.contains("  error dnsbl refused.lab.test: "), "{text}");
    assert!(!text.contains("  pass "), "passes are only counted: {text}");
    let html = Probe::in_dir(dir)
        .args(["report", &b, "--format", "html"])
        .run();
    let page = html.stdout();
    assert!(
        page.contains("<h2>Checks of 127.0.0.3 and sender.lab.test</h2>"),
        "{page}"
    );
    assert!(
        page.contains(
            "<td>dnsbl</td><td>127.0.0.3</td><td>zen.lab.test</td><td class=\"fail\">fail</td>"
        ),
        "{page}"
    );

    // compare names the checks that got worse, first the listing.
    compare_checks(dir, &a, &b);
    let compare = |args: &[&str]| Probe::in_dir(dir).arg("compare").args(args);

    // Worse: exit 1, the change and the AFTER side's 450 reply on the seed's line.
    let out = compare(&[&a, &b]).expect_exit(1).run();
    let text = out.stdout();
    let line = text
        .lines()
        .find(|l| l.starts_with("iprep: "))
        .unwrap_or_else(|| panic!("no iprep line: {}", out.show()));
    assert!(line.starts_with("iprep: inbox -> deferred 450 "), "{line}");
    let reply = format!(
        "450 {} {}",
        message_for(&bad_json, "iprep")["smtp"]["enhanced"]
            .as_str()
            .unwrap(),
        message_for(&bad_json, "iprep")["smtp"]["text"]
            .as_str()
            .unwrap()
    );
    assert!(line.ends_with(&reply), "{line} vs {reply}");
    assert!(
        text.contains("-: 100% (1/1) -> 0% (0/1), 1 worse"),
        "{text}"
    );

    // Better the other way round: exit 0.
    compare(&[&b, &a])
        .expect_exit(0)
        .stdout_has("iprep: deferred -> inbox (better)")
        .run();

    // The JSON shape, pinned.
    let json = compare(&["--json", &a, &b]).expect_exit(1).run().json();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&json),
        [
            "after_run",
            "before_run",
            "checks",
            "providers",
            "rescued",
            "seeds",
            "worse"
        ]
    );
    assert_eq!(json["before_run"], a.as_str());
    assert_eq!(json["after_run"], b.as_str());
    assert_eq!(json["worse"], true);
    let seed = &json["seeds"][0];
    assert_eq!(
        keys(seed),
        [
            "after",
            "before",
            "change",
            "detail",
            "provider",
            "reason_after",
            "reason_before",
            "reason_changed",
            "seed"
        ]
    );
    assert_eq!(seed["seed"], "iprep");
    assert_eq!(seed["provider"], "-");
    assert_eq!(seed["before"], "inbox");
    assert_eq!(seed["after"], "deferred");
    assert_eq!(seed["change"], "worse");
    assert_eq!(seed["detail"], reply.as_str());
    // The cause's reason on each side: none for inbox, the reply's for the refusal.
    assert_eq!(seed["reason_before"], serde_json::Value::Null);
    assert_eq!(seed["reason_after"], "badreputation");
    assert_eq!(seed["reason_changed"], true);
    let provider = &json["providers"][0];
    assert_eq!(
        keys(provider),
        ["after", "before", "better", "provider", "worse"]
    );
    assert_eq!(
        keys(&provider["before"]),
        ["inbox", "inbox_share", "messages"]
    );
    assert_eq!(provider["before"]["inbox_share"], 1.0);
    assert_eq!(provider["after"]["inbox_share"], 0.0);
    assert_eq!(provider["worse"], 1);

    // An unknown run id is a usage error.
    compare(&[&a, "no-such-run"]).expect_exit(2).run();
}

/// The one stored check of `kind` (and `list`) in a run's JSON.
#[track_caller]
fn check_of<'a>(
    json: &'a serde_json::Value,
    kind: &str,
    list: Option<&str>,
) -> &'a serde_json::Value {
    let found: Vec<&serde_json::Value> = json["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {json:#}"))
        .iter()
        .filter(|r| r["check"] == kind && list.is_none_or(|l| r["list"] == l))
        .collect();
    assert_eq!(found.len(), 1, "{kind} {list:?} in {json:#}");
    found[0]
}

/// `probe compare A B` on the runs from 127.0.0.2 (A) and 127.0.0.3 (B): the checks that got
/// worse, in text and JSON; the other way round they got better.
fn compare_checks(dir: &std::path::Path, a: &str, b: &str) {
    let out = Probe::in_dir(dir)
        .args(["compare", a, b])
        .expect_exit(1)
        .run();
    let text = out.stdout();
    let worse: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "checks that got worse:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("  "))
        .collect();
    assert_eq!(
        worse,
        [
            "sender.lab.test: spf pass -> fail",
            "127.0.0.3: listed on zen.lab.test (127.0.0.2)",
        ],
        "{text}"
    );
    assert!(
        text.ends_with("\n1 seed(s) and 2 check(s) got worse\n"),
        "{text}"
    );
    let json = Probe::in_dir(dir)
        .args(["compare", "--json", a, b])
        .expect_exit(1)
        .run()
        .json();
    let listed = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["list"] == "zen.lab.test")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(
        listed["summary"],
        "127.0.0.3: listed on zen.lab.test (127.0.0.2)"
    );
    assert_eq!(
        (
            listed["before"].as_str(),
            listed["after"].as_str(),
            listed["change"].as_str()
        ),
        (Some("pass"), Some("fail"), Some("worse"))
    );
    Probe::in_dir(dir)
        .args(["compare", b, a])
        .expect_exit(0)
        .stdout_has("checks that got better:\nsender.lab.test: spf fail -> pass\n")
        .stdout_has("\n127.0.0.2: dnsbl zen.lab.test fail -> pass\n")
        .run();
}

#[test]
fn run_writes_a_prometheus_textfile_atomically() {
    let out = Probe::new()
        .lab()
        .args(["run", "--seed", "inbox", "--metrics-file", "m.prom"])
        .config(&Seeds::lab("10s").seed(Seed::lab("inbox")))
        .expect_exit(0)
        .run();
    let dir = out.dir();
    let text = std::fs::read_to_string(dir.join("m.prom")).unwrap();
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut words = c.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(_), Some(_)) => {}
                (Some("TYPE"), Some(name), Some("gauge")) => {
                    typed.insert(name.to_owned());
                }
                _ => panic!("bad comment line {line:?}"),
            }
            continue;
        }
        let (name, labels, value) =
            parse_sample(line).unwrap_or_else(|| panic!("not a sample line: {line:?}\n{text}"));
        assert!(typed.contains(&name), "{name} has no TYPE line before it");
        samples.push((name, labels, value));
    }
    let has = |name: &str, labels: &[(&str, &str)], value: f64| {
        samples.iter().any(|(n, l, v)| {
            n == name
                && *v == value
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, val)| l.iter().any(|(lk, lv)| lk == k && lv == val))
        })
    };
    assert!(
        text.lines()
            .any(|l| l == r#"seedprobe_messages{provider="-",verdict="inbox"} 1"#),
        "{text}"
    );
    assert!(has(
        "seedprobe_messages",
        &[("provider", "-"), ("verdict", "spam")],
        0.0
    ));
    assert!(
        has("seedprobe_inbox_ratio", &[("provider", "-")], 1.0),
        "{text}"
    );
    assert!(has("seedprobe_inbox_ratio", &[], 1.0), "{text}");
    assert!(has("seedprobe_up", &[], 1.0), "{text}");
    assert!(has("seedprobe_poll_errors", &[], 0.0), "{text}");
    let latency = samples
        .iter()
        .find(|(n, _, _)| n == "seedprobe_delivery_latency_seconds")
        .unwrap_or_else(|| panic!("no latency: {text}"));
    assert!(latency.1.contains(&("seed".into(), "inbox".into())));
    assert!(latency.2 >= 0.0 && latency.2 < 10.0, "{latency:?}");
    let stamp = samples
        .iter()
        .find(|(n, _, _)| n == "seedprobe_last_run_timestamp_seconds")
        .unwrap()
        .2;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(stamp <= now && now - stamp < 120.0, "{stamp} vs {now}");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
