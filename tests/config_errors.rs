//! A bad config is refused with file, line, column and field, exit code 2, and no connection.

use std::time::Duration;

use crate::support::net::{Sentinel, wait_for};
use crate::support::{Probe, Seed, Seeds};

/// A valid config whose SMTP and IMAP servers are a sentinel port; each row edits its text
/// (the positions below count its lines: the builder's layout, nothing else).
fn base(sentinel: &Sentinel) -> Seeds {
    Seeds::new().from("\"Probe <probe@example.org>\"").seed(
        Seed::new("one", "one@example.org")
            .mx(&sentinel.addr())
            .imap_server("127.0.0.1", sentinel.port())
            .tls("none"),
    )
}

/// The base config's text.
fn base_yaml(sentinel: &Sentinel) -> String {
    base(sentinel).yaml()
}

struct Row {
    what: &'static str,
    edit: fn(String) -> String,
    /// Fragments the error must contain (the position is `seeds.yaml:LINE:COL`).
    expect: &'static [&'static str],
}

const ROWS: &[Row] = &[
    Row {
        what: "bad YAML",
        edit: |c| c.replace("  - name: one\n", "  - name: [one\n"),
        expect: &["seeds.yaml:4:"],
    },
    Row {
        what: "unknown field",
        edit: |c| c.replace("      password:", "      pasword:"),
        expect: &["seeds.yaml:11:7", "unknown field `pasword`"],
    },
    Row {
        what: "missing password source",
        edit: |c| c.replace("      password: { env: SEEDPROBE_TEST_PW }\n", ""),
        expect: &[
            "seeds.yaml:8:",
            "seeds[0].imap.password",
            "missing password source",
        ],
    },
    Row {
        what: "bad address",
        edit: |c| c.replace("one@example.org", "not an address"),
        expect: &[
            "seeds.yaml:5:14",
            "seeds[0].address",
            "not an email address",
        ],
    },
    Row {
        what: "bad sender",
        edit: |c| c.replace("\"Probe <probe@example.org>\"", "\"Probe <probe>\""),
        expect: &["seeds.yaml:2:9", "sender.from", "not a mailbox"],
    },
    Row {
        what: "duplicate seed name",
        edit: |c| {
            let seed = c.split_once("seeds:\n").unwrap().1.to_owned();
            format!("{c}{}", seed.replace("one@", "two@"))
        },
        expect: &[
            "seeds.yaml:12:11",
            "seeds[1].name",
            "duplicate seed name \"one\" (first used on line 4)",
        ],
    },
    Row {
        what: "unset password variable",
        edit: |c| c.replace("SEEDPROBE_TEST_PW", "SEEDPROBE_TEST_UNSET_VARIABLE"),
        expect: &[
            "seeds.yaml:11:",
            "seeds[0].imap.password",
            "SEEDPROBE_TEST_UNSET_VARIABLE is not set",
        ],
    },
    Row {
        what: "plaintext password to a remote host",
        edit: |c| c.replace("      host: 127.0.0.1\n", "      host: imap.lab.test\n"),
        expect: &["seeds.yaml:8:", "seeds[0].imap.tls", "allow_plaintext"],
    },
    Row {
        what: "bad duration",
        edit: |c| format!("{c}timing:\n  timeout: soon\n"),
        expect: &["seeds.yaml:13:12", "timing.timeout", "not a duration"],
    },
    Row {
        what: "subject without token",
        edit: |c| format!("{c}message:\n  subject: hello\n"),
        expect: &["seeds.yaml:13:12", "message.subject", "{token}"],
    },
    // Issue 9: every number and duration has a range; secrets, duplicate keys, snippets.
    // (One block, so that it moves as one.)
    Row {
        what: "imap_connections = u64::MAX (panicked, exit 101)",
        edit: |c| format!("{c}timing:\n  imap_connections: 18446744073709551615\n"),
        expect: &[
            "seeds.yaml:13:21",
            "timing.imap_connections",
            "18446744073709551615 is out of range",
            "from 1 to 100",
        ],
    },
    Row {
        what: "imap_connections not a number",
        edit: |c| format!("{c}timing:\n  imap_connections: 1.5\n"),
        expect: &[
            "seeds.yaml:13:21",
            "timing.imap_connections",
            "\"1.5\" is not a whole number from 1 to 100",
        ],
    },
    Row {
        what: "poll_interval 1ns (a busy loop)",
        edit: |c| format!("{c}timing:\n  poll_interval: 1ns\n"),
        expect: &[
            "seeds.yaml:13:18",
            "timing.poll_interval",
            "1ns is too short: write a duration from 1s to 1h",
        ],
    },
    Row {
        what: "timeout of 300 million years (wrapped to 0 s)",
        edit: |c| format!("{c}timing:\n  timeout: 300000000y\n"),
        expect: &[
            "seeds.yaml:13:12",
            "timing.timeout",
            "300000000y is too long: write a duration from 1s to 7d",
        ],
    },
    Row {
        what: "smtp_port 0 (became 25)",
        edit: |c| c.replace("  from: \"Probe", "  smtp_port: 0\n  from: \"Probe"),
        expect: &[
            "seeds.yaml:2:14",
            "sender.smtp_port",
            "0 is out of range: write a whole number from 1 to 65535",
        ],
    },
    Row {
        what: "imap.port 0 (accepted; mail sent, then refused connects)",
        edit: |c| c.replace("      port: ", "      port: 0\n      # was: "),
        expect: &[
            "seeds.yaml:9:13",
            "seeds[0].imap.port",
            "0 is out of range: write a whole number from 1 to 65535",
        ],
    },
    Row {
        what: "IPv6 mx with a port, without brackets (read as port 25)",
        edit: |c| {
            c.replace(
                "    mx: \"127.0.0.1:",
                "    mx: \"::1:3525\"\n    # was: \"",
            )
        },
        expect: &[
            "seeds.yaml:6:9",
            "seeds[0].mx",
            "\"::1:3525\" is not host[:port]: an IPv6 address with a port needs brackets: write [::1]:3525",
        ],
    },
    Row {
        what: "password written in clear (was echoed: unknown variant `...`)",
        edit: |c| c.replace("{ env: SEEDPROBE_TEST_PW }", "hunter2"),
        expect: &[
            "seeds.yaml:11:17: a password is never written in the config",
            "password: { env: NAME }, { file: PATH }, { command: \"...\" } or { oauth2: { ... } }",
        ],
    },
    Row {
        what: "duplicate key (was: set DuplicateKeyPolicy in Options)",
        edit: |c| {
            c.replace(
                "    address: one@example.org\n",
                "    address: one@example.org\n    address: two@example.org\n",
            )
        },
        expect: &["seeds.yaml:6:5: duplicate key address: it is already set above"],
    },
];

/// `probe run --all` on a config given as text.
fn write_and_run(probe: Probe, text: &str) -> crate::support::Ran {
    probe
        .env("SEEDPROBE_TEST_PW", "pw-not-used")
        .env_remove("SEEDPROBE_TEST_UNSET_VARIABLE")
        .args(["run", "--all"])
        .config_text(text)
        .run()
}

#[test]
fn bad_configs_are_refused_before_any_connection() {
    let mut failures = Vec::new();
    for row in ROWS {
        let sentinel = Sentinel::new();
        let probe = Probe::new();
        let text = (row.edit)(base_yaml(&sentinel));
        // Checked below row by row, so that every failing row is reported at once.
        let out = write_and_run(probe, &text);
        let stderr = out.stderr();
        let missing: Vec<_> = row.expect.iter().filter(|e| !stderr.contains(*e)).collect();
        if out.code() != Some(2) || !missing.is_empty() || sentinel.was_contacted() {
            failures.push(format!(
                "row {:?}: missing {missing:?}\n{text}\n{}",
                row.what,
                out.show()
            ));
        }
        assert!(
            out.out.stdout.is_empty(),
            "row {:?} printed a report: {}",
            row.what,
            out.show()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_base_config_is_valid() {
    // Guards the table above: each row must fail because of its edit, not the base. A valid
    // config goes on to connect to the sentinel, which never answers; stop it once it has.
    let sentinel = Sentinel::new();
    let mut probe = Probe::new()
        .env("SEEDPROBE_TEST_PW", "pw")
        .args(["send", "--all"])
        .config(&base(&sentinel))
        .spawn();
    let contacted = wait_for(
        "connection to the sentinel",
        Duration::from_secs(30),
        || {
            if sentinel.was_contacted() {
                Some(true)
            } else {
                probe.has_ended().then(|| sentinel.was_contacted())
            }
        },
    );
    let out = probe.kill();
    assert!(contacted, "a valid config sends: {}", out.show());
}

#[test]
fn command_line_errors_exit_2() {
    let sentinel = Sentinel::new();
    let dir = tempfile::tempdir().unwrap();
    base(&sentinel).write(dir.path());
    let rows: &[(&[&str], &str)] = &[
        (&["run"], "--all"),
        (&["run", "--all", "--seed", "one"], "cannot be used with"),
        (
            &["run", "--seed", "nope"],
            "no seed named \"nope\" (seeds: one)",
        ),
        (
            &["send", "--all", "--config", "missing.yaml"],
            "missing.yaml: cannot read config",
        ),
        (
            &["poll", "--run", "01ARZ3NDEKTSV4RRFFQ69G5FAV"],
            "no run 01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ),
    ];
    for (args, expect) in rows {
        Probe::in_dir(dir.path())
            .env("SEEDPROBE_TEST_PW", "pw")
            .args(*args)
            .expect_exit(2)
            .stderr_has(*expect)
            .run();
    }
    assert!(!sentinel.was_contacted());
}

#[test]
fn shipped_configs_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = seedprobe::config::Config::load(&root.join("seeds.example.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = example.seeds.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["gmail-1", "gmx-1", "outlook-1"]);
    // The profile fills what the seed leaves out.
    assert_eq!(example.seeds[1].imap.host, "imap.gmx.net");
    assert_eq!(example.seeds[1].imap.port, 993);
    assert_eq!(example.seeds[1].imap.username, "someone@gmx.de");
    let lab = seedprobe::config::Config::load(&root.join("docker/lab/seeds.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lab.seeds.len(), 6);
}
