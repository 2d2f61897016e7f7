//! Relay mode: through the lab's own MTA (submission with STARTTLS and AUTH), with what became
//! of each message downstream read from DSNs in the bounces mailbox or from the relay's log.

use crate::support::lab::password;
use crate::support::{Probe, Seed, Seeds, message_for};

const SEEDS: [(&str, &str); 6] = [
    ("inbox", "inbox"),
    ("junk", "spam"),
    ("tagged", "spam_tagged"),
    ("defer", "deferred"),
    ("reject", "rejected"),
    ("discard", "missing"),
];

fn run_relay(
    bounces: bool,
    maillog: bool,
    timeout: &str,
) -> (crate::support::Ran, serde_json::Value) {
    // A provider whose own delivery agent refuses the message after accepting it (Sieve
    // `reject`): only the notice Dovecot sends back tells; the relay's log says `sent`.
    let sieve_reject = if bounces { "rejected" } else { "missing" };
    let expected: Vec<(&str, &str)> = SEEDS
        .iter()
        .copied()
        .chain([("sievereject", sieve_reject)])
        .collect();
    let mut seeds = Seeds::lab(timeout).lab_sender().via_lab_relay();
    if bounces {
        seeds = seeds.lab_bounces();
    }
    if maillog {
        seeds = seeds.lab_maillog();
    }
    // The relay decides where each message goes: no MX of their own.
    let seeds = seeds.seeds(
        expected
            .iter()
            .map(|(l, _)| Seed::new(l, &format!("{l}@{l}.lab.test")).lab_imap(l)),
    );
    let out = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let pw = password("probe");
    let leaked = |b: &[u8]| b.windows(pw.len()).any(|w| w == pw.as_bytes());
    assert!(
        !leaked(&out.out.stdout) && !leaked(&out.out.stderr),
        "relay password in output"
    );
    let json = out.json();
    for (seed, verdict) in expected {
        let m = message_for(&json, seed);
        assert_eq!(m["verdict"], verdict, "{seed}: {m:#}");
        // The relay took every message; what happened next is downstream evidence.
        assert_eq!(m["smtp"]["code"], 250, "{seed}: {m:#}");
        assert_eq!(m["smtp"]["host"], "127.0.0.1", "{seed}: {m:#}");
    }
    for file in std::fs::read_dir(out.dir()).unwrap() {
        let file = file.unwrap();
        if file
            .file_name()
            .to_string_lossy()
            .starts_with("store.sqlite")
        {
            assert!(
                !leaked(&std::fs::read(file.path()).unwrap()),
                "relay password in the store"
            );
        }
    }
    (out, json)
}

#[test]
fn relay_with_dsns_from_the_bounces_mailbox() {
    let (_dir, json) = run_relay(true, false, "12s");
    let reject = message_for(&json, "reject");
    let reason = reject["reason"].as_str().unwrap();
    assert!(
        reason.contains("DSN") && reason.contains("550 5.7.1"),
        "{reject:#}"
    );
    let defer = message_for(&json, "defer");
    let reason = defer["reason"].as_str().unwrap();
    assert!(
        reason.contains("DSN") && reason.contains("450 4.7.1"),
        "{defer:#}"
    );
    // Each cause is read from the report that decided: the DSN, or the receiver's notice.
    for (seed, source, reason) in [
        ("reject", "dsn", "blocked"),
        ("defer", "dsn", "ratelimited"),
        ("sievereject", "mdn", "filtered"),
    ] {
        let cause = &message_for(&json, seed)["cause"];
        assert_eq!(
            (cause["source"].as_str(), cause["reason"].as_str()),
            (Some(source), Some(reason)),
            "{seed}: {cause:#}"
        );
    }
}

#[test]
fn relay_with_the_relays_log() {
    let (_dir, json) = run_relay(false, true, "8s");
    for seed in ["reject", "defer"] {
        let m = message_for(&json, seed);
        assert!(m["reason"].as_str().unwrap().contains("relay log"), "{m:#}");
        assert_eq!(m["cause"]["source"], "maillog", "{m:#}");
    }
}

#[test]
fn relay_with_both_dsns_and_the_log() {
    // Whichever speaks first decides; the verdicts are the same either way.
    run_relay(true, true, "8s");
}

/// The lab relay (submission, STARTTLS, AUTH) with the password from `PROBE_TEST_RELAY_PW`
/// and this trust anchor, and two seeds behind it.
fn relay_seeds(ca_file: &std::path::Path) -> Seeds {
    Seeds::lab("5s")
        .lab_sender()
        .sender("transport", "relay")
        .sender(
            "relay",
            &format!(
                "{{ host: 127.0.0.1, port: 2587, tls: starttls, username: probe@sender.lab.test, \
                 password: {{ env: PROBE_TEST_RELAY_PW }}, ca_file: {} }}",
                ca_file.display()
            ),
        )
        .seeds(["inbox", "reject"].map(|l| Seed::new(l, &format!("{l}@{l}.lab.test")).lab_imap(l)))
}

#[test]
fn a_relay_whose_certificate_does_not_verify_is_a_probe_failure_not_a_verdict() {
    // A trust anchor that did not sign the relay's certificate.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = crate::support::tls::write_test_ca(dir.path());
    let ran = Probe::new()
        .lab()
        .args(["send", "--all"])
        .config(&relay_seeds(&other_ca))
        .env("PROBE_TEST_RELAY_PW", password("probe"))
        .expect_exit(3)
        .stderr_has("the relay refused probe")
        .output_lacks(&password("probe"))
        .run();
    let report = Probe::in_dir(ran.dir())
        .args(["report", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        report["counts"],
        serde_json::json!({ "not_sent": 2 }),
        "{report:#}"
    );
    assert!(
        report["failure"]
            .as_str()
            .is_some_and(|f| f.contains("starttls")),
        "{report:#}"
    );
}

#[test]
fn a_relay_that_refuses_probes_login_is_a_probe_failure_not_a_verdict() {
    // The lab relay's submission port with a wrong password: 535 at AUTH.
    let wrong = "not-the-relay-password-7e1";
    let seeds = relay_seeds(&crate::support::lab::lab_ca());
    let ran = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .env("PROBE_TEST_RELAY_PW", wrong)
        .expect_exit(3)
        .stderr_has("the relay refused probe")
        .stderr_has("535")
        .output_lacks(wrong)
        .run();
    // Stored as a failed run whose messages were not sent: no provider verdict at all.
    let report = Probe::in_dir(ran.dir())
        .args(["report", "--format", "json"])
        .expect_exit(0)
        .output_lacks(wrong)
        .run()
        .json();
    assert!(
        report["failure"]
            .as_str()
            .is_some_and(|f| f.contains("535")),
        "{report:#}"
    );
    assert_eq!(
        report["counts"],
        serde_json::json!({ "not_sent": 2 }),
        "{report:#}"
    );
    for seed in ["inbox", "reject"] {
        let m = message_for(&report, seed);
        assert_eq!(m["state"], "not_sent", "{m:#}");
        assert_eq!(m["verdict"], serde_json::Value::Null, "{m:#}");
        let reason = m["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("relay refused probe") && reason.contains("535"),
            "{m:#}"
        );
    }
}
