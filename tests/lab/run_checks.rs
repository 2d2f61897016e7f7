//! The checks `probe run` and `probe send` make beside sending (src/run/checks.rs), against
//! the lab's DNS: a listed, a refusing and a silent list zone in one run's stored checks, a
//! run that goes on whatever its checks say, and `--no-check`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Probe, Seed, Seeds};

/// From the lab's sending domain through the lab's DNS, with the lab's list zones:
/// zen.lab.test lists 127.0.0.3, refused.lab.test refuses every query, timeout.lab.test never
/// answers.
fn seeds() -> Seeds {
    Seeds::lab("10s")
        .lab_sender()
        .via_lab_dns()
        .check_list("{ zone: zen.lab.test, kind: ip, name: Lab ZEN, codes: spamhaus-zen }")
        .check_list("{ zone: refused.lab.test, kind: ip, codes: spamhaus-zen }")
        .check_list("{ zone: timeout.lab.test, kind: ip, name: Lab silent list }")
        .seed(Seed::lab("inbox"))
}

/// The one check of `kind` on `list` in a run's JSON.
#[track_caller]
fn listed<'a>(json: &'a Value, list: &str) -> &'a Value {
    let found: Vec<&Value> = json["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {json:#}"))
        .iter()
        .filter(|r| r["check"] == "dnsbl" && r["list"] == list)
        .collect();
    assert_eq!(found.len(), 1, "{list} in {json:#}");
    found[0]
}

#[test]
fn a_run_stores_a_listed_a_refused_and_a_timed_out_zone_and_still_measures() {
    let started = Instant::now();
    let out = Probe::new()
        .lab()
        .ip_checks()
        .args(["run", "--all", "--json", "--source-ip", "127.0.0.3"])
        .config(&seeds())
        .run();
    let elapsed = started.elapsed();
    assert!(matches!(out.code(), Some(0 | 1)), "{}", out.show());
    let json = out.json();
    // The listing does not stop the run: the message was sent and judged.
    let message = &json["messages"][0];
    assert_eq!(message["state"], "sent", "{json:#}");
    assert!(message["verdict"].is_string(), "{json:#}");

    let cases = [
        ("zen.lab.test", "fail", "127.0.0.3 is listed on Lab ZEN"),
        ("refused.lab.test", "error", "refused the query"),
        (
            "timeout.lab.test",
            "error",
            "no answer from 127.0.0.1:5353 within 5s",
        ),
    ];
    for (list, status, detail) in cases {
        let r = listed(&json, list);
        assert_eq!(r["status"], status, "{r:#}");
        assert_eq!(r["subject"], "127.0.0.3", "{r:#}");
        let text = r["detail"].as_str().unwrap();
        assert!(text.contains(detail), "{list}: {text:?} lacks {detail:?}");
    }
    // The silent zone costs at most the checks' budget (16 s) on top of the run.
    assert!(elapsed < Duration::from_secs(40), "{elapsed:?}");

    // `probe send` makes the same checks and says what is not right on stderr.
    Probe::new()
        .lab()
        .ip_checks()
        .args(["send", "--all", "--source-ip", "127.0.0.3"])
        .config(&seeds())
        .stderr_has("checks of 127.0.0.3 and sender.lab.test: ")
        .stderr_has("  fail dnsbl zen.lab.test: 127.0.0.3 is listed on Lab ZEN")
        .stderr_has("  error dnsbl timeout.lab.test: ")
        .run();
}

#[test]
fn no_check_makes_and_stores_none() {
    let out = Probe::new()
        .lab()
        .ip_checks()
        .args([
            "run",
            "--all",
            "--json",
            "--no-check",
            "--source-ip",
            "127.0.0.3",
        ])
        .config(&seeds())
        .run();
    let json = out.json();
    assert!(json["messages"][0]["verdict"].is_string(), "{json:#}");
    assert!(json.get("checks").is_none(), "{json:#}");
    let run = json["run_id"].as_str().unwrap();
    Probe::in_dir(out.dir())
        .args(["report", run])
        .stdout_lacks("checks of")
        .run();
    Probe::in_dir(out.dir())
        .args(["report", run, "--format", "html"])
        .stdout_lacks("Checks of")
        .run();
}
