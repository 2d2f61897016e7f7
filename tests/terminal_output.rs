//! What reaches a terminal: text from users and servers never acts on it (no raw control
//! characters in tables), and logs carry no colour codes when nobody is looking at a terminal.
//! Neither needs the lab.

use std::path::Path;
use std::time::{Duration, SystemTime};

use seedprobe::store::{NewRun, SendRecord, SendState, Store};
use seedprobe::verdict::{Decision, Verdict};

use crate::support::Probe;
use crate::support::smtp::Holder;

/// A label with a line break (forging a row), a carriage return and an escape sequence that
/// would clear the screen, and a right-to-left override.
const HOSTILE_LABEL: &str = "before\n01FORGED  2026  evil\r\x1b[2J\u{202e}x";

/// What `probe --store STORE ARGS` wrote, after it exited 0; it must be UTF-8. Run as a user
/// runs it, colours not switched off (`NO_COLOR` unset), so that a table coloured for a pipe
/// would show here as escape codes.
#[track_caller]
fn stdout(store: &Path, args: &[&str]) -> String {
    let ran = Probe::new()
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("NO_COLOR")
        .expect_exit(0)
        .run();
    String::from_utf8(ran.out.stdout).expect("stdout is UTF-8")
}

/// No control character but the line ends, and no bidirectional override.
fn assert_inert(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?} in\n{text}");
}

#[test]
fn labels_with_control_characters_are_escaped_in_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.sqlite");
    let store = Store::open(&path).unwrap();
    store
        .create_run(&NewRun {
            id: "01JTERMINALTERMINALTERMINA".into(),
            started_at: SystemTime::now(),
            config_path: "seeds.yaml".into(),
            transport: seedprobe::config::Transport::Direct,
            sender_from: "probe@example.org".into(),
            ehlo: "probe.example.org".into(),
            timeout: Duration::from_secs(60),
            source_ip: None,
            maillog_offset: None,
            label: Some(HOSTILE_LABEL.into()),
        })
        .unwrap();
    // A server's reply text is the other way such bytes arrive: `report -v` prints it.
    store
        .record_send(&SendRecord {
            run_id: "01JTERMINALTERMINALTERMINA".into(),
            token: "01JTERMINALTOKENTERMINALTO".into(),
            seed: "hostile".into(),
            provider: "gmail".into(),
            address: "hostile@example.net".into(),
            subject: "s".into(),
            message_id: "<m@example.org>".into(),
            sent_at: SystemTime::now(),
            smtp_host: Some("mx.example.net".into()),
            smtp_stage: None,
            smtp_code: Some(550),
            smtp_enhanced: None,
            smtp_text: Some(HOSTILE_LABEL.into()),
            smtp_error: None,
            smtp_error_kind: None,
            tls_json: None,
            queue_id: None,
            decision: Some(Decision {
                verdict: Verdict::Rejected,
                reason: HOSTILE_LABEL.into(),
            }),
            state: SendState::Sent,
            note: None,
            attempts: Vec::new(),
        })
        .unwrap();
    drop(store);

    let runs = stdout(&path, &["runs"]);
    assert_inert("probe runs", &runs);
    assert_eq!(runs.lines().count(), 2, "a header and one row:\n{runs}");
    assert!(
        runs.contains(r"before\n01FORGED  2026  evil\r\u{1b}[2J\u{202e}x"),
        "{runs}"
    );

    for args in [&["report"][..], &["-v", "report"][..]] {
        let report = Probe::new()
            .arg("--store")
            .arg(&path)
            .args(args)
            .env_remove("NO_COLOR")
            .expect_exit(0)
            .run()
            .stdout();
        assert_inert("probe report", &report);
        assert!(report.contains(r"(before\n01FORGED"), "{report}");
    }

    // JSON has its own escaping, and keeps the label as it was given.
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&path, &["runs", "--json"])).unwrap();
    assert_eq!(json[0]["label"], HOSTILE_LABEL);
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let server = Holder::start();
    Probe::new()
        .args(["-vv", "smtp", "--to", "seed@example.net"])
        .args(["--from", "probe@example.org", "--ehlo", "probe.example.org"])
        .args(["--server", &server.mx(), "--quit-after", "ehlo"])
        .args(["--timeout", "10s"])
        .env_remove("NO_COLOR")
        // A log line to judge.
        .stderr_has("DEBUG")
        // No colour codes in a redirected log.
        .stderr_lacks("\x1b")
        .run();
}
