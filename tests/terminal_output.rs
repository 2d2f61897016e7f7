//! What reaches a terminal: text from users and servers never acts on it (no raw control
//! characters in tables), and logs carry no colour codes when nobody is looking at a terminal.
//! Neither needs the lab.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use seedprobe::store::{NewRun, Store};

/// A label with a line break (forging a row), a carriage return and an escape sequence that
/// would clear the screen, and a right-to-left override.
const HOSTILE_LABEL: &str = "before\n01FORGED  2026  evil\r\x1b[2J\u{202e}x";

fn probe(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("PROBE_LOG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
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
            transport: "direct".into(),
            sender_from: "probe@example.org".into(),
            ehlo: "probe.example.org".into(),
            timeout: Duration::from_secs(60),
            source_ip: None,
            maillog_offset: None,
            label: Some(HOSTILE_LABEL.into()),
        })
        .unwrap();
    drop(store);

    let runs = stdout(&probe(&path, &["runs"]));
    assert_inert("probe runs", &runs);
    assert_eq!(runs.lines().count(), 2, "a header and one row:\n{runs}");
    assert!(
        runs.contains(r"before\n01FORGED  2026  evil\r\u{1b}[2J\u{202e}x"),
        "{runs}"
    );

    for args in [&["report"][..], &["-v", "report"][..]] {
        let report = stdout(&probe(&path, args));
        assert_inert("probe report", &report);
        assert!(report.contains(r"(before\n01FORGED"), "{report}");
    }

    // JSON has its own escaping, and keeps the label as it was given.
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&probe(&path, &["runs", "--json"]))).unwrap();
    assert_eq!(json[0]["label"], HOSTILE_LABEL);
}

/// A one-connection SMTP server that greets, answers EHLO and says goodbye.
fn greeting_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut write = socket.try_clone().unwrap();
        let mut read = BufReader::new(socket);
        write.write_all(b"220 fake.example ESMTP\r\n").unwrap();
        let mut line = String::new();
        while read.read_line(&mut line).unwrap_or(0) > 0 {
            let answer: &[u8] = if line.to_ascii_uppercase().starts_with("QUIT") {
                b"221 bye\r\n"
            } else {
                b"250 fake.example\r\n"
            };
            if write.write_all(answer).is_err() || answer.starts_with(b"221") {
                break;
            }
            line.clear();
        }
    });
    port
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let port = greeting_server();
    let server = format!("127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args([
            "-vv",
            "smtp",
            "--to",
            "seed@example.net",
            "--from",
            "probe@example.org",
        ])
        .args(["--ehlo", "probe.example.org", "--server", &server])
        .args(["--quit-after", "ehlo", "--timeout", "10s"])
        .env_remove("NO_COLOR")
        .env_remove("PROBE_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "no log line to judge:\n{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a redirected log:\n{stderr:?}"
    );
}
