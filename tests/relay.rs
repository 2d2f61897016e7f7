//! Relay mode: through the lab's own MTA (submission with STARTTLS and AUTH), with what became
//! of each message downstream read from DSNs in the bounces mailbox or from the relay's log.

use crate::lab::{
    config_yaml, json_of, lab_dir, message_for, password, password_file, run_yaml, seed_entry, show,
};

const SEEDS: [(&str, &str); 6] = [
    ("inbox", "inbox"),
    ("junk", "spam"),
    ("tagged", "spam_tagged"),
    ("defer", "deferred"),
    ("reject", "rejected"),
    ("discard", "missing"),
];

fn relay_sender(bounces: bool, maillog: bool) -> String {
    let ca = lab_dir().join("tls/ca.pem");
    let mut s = format!(
        "  transport: relay\n  relay:\n    host: 127.0.0.1\n    port: 2587\n    tls: starttls\n\
         \x20   username: probe@sender.lab.test\n    password: {pw}\n    ca_file: {ca}\n",
        pw = password_file("probe"),
        ca = ca.display()
    );
    if bounces {
        s.push_str(&format!(
            "  bounces:\n    imap: {{ host: 127.0.0.1, port: 1993, tls: implicit, password: {pw}, ca_file: {ca} }}\n",
            pw = password_file("probe"),
            ca = ca.display()
        ));
    }
    if maillog {
        s.push_str(&format!(
            "  maillog: {}\n",
            lab_dir().join("log/relay.log").display()
        ));
    }
    s
}

fn run_relay(
    bounces: bool,
    maillog: bool,
    timeout: &str,
) -> (tempfile::TempDir, serde_json::Value) {
    // A provider whose own delivery agent refuses the message after accepting it (Sieve
    // `reject`): only the notice Dovecot sends back tells; the relay's log says `sent`.
    let sieve_reject = if bounces { "rejected" } else { "missing" };
    let expected: Vec<(&str, &str)> = SEEDS
        .iter()
        .copied()
        .chain([("sievereject", sieve_reject)])
        .collect();
    let seeds: Vec<String> = expected
        .iter()
        .map(|(l, _)| seed_entry(l, &format!("{l}@{l}.lab.test"), l, None))
        .collect();
    let yaml = config_yaml(&relay_sender(bounces, maillog), timeout, &seeds);
    let (dir, out) = run_yaml(&yaml, &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let pw = password("probe");
    let leaked = |b: &[u8]| b.windows(pw.len()).any(|w| w == pw.as_bytes());
    assert!(
        !leaked(&out.stdout) && !leaked(&out.stderr),
        "relay password in output"
    );
    let json = json_of(&out);
    for (seed, verdict) in expected {
        let m = message_for(&json, seed);
        assert_eq!(m["verdict"], verdict, "{seed}: {m:#}");
        // The relay took every message; what happened next is downstream evidence.
        assert_eq!(m["smtp"]["code"], 250, "{seed}: {m:#}");
        assert_eq!(m["smtp"]["host"], "127.0.0.1", "{seed}: {m:#}");
    }
    for file in std::fs::read_dir(dir.path()).unwrap() {
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
    (dir, json)
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
}

#[test]
fn relay_with_the_relays_log() {
    let (_dir, json) = run_relay(false, true, "8s");
    for seed in ["reject", "defer"] {
        let m = message_for(&json, seed);
        assert!(m["reason"].as_str().unwrap().contains("relay log"), "{m:#}");
    }
}

#[test]
fn relay_with_both_dsns_and_the_log() {
    // Whichever speaks first decides; the verdicts are the same either way.
    run_relay(true, true, "8s");
}
