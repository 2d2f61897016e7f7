//! What a run shows on stderr while it goes on: plain lines when stderr is not a terminal, a
//! status line redrawn in place when it is (under `script`, which gives probe a pty).

use std::process::Command;

use crate::support::lab::steady;
use crate::support::{Imap, Probe, Seed, Seeds, show_output};

/// A seed decided at once, one seen in the spam folder, one only decided at the timeout.
fn three_seeds() -> [Seed; 3] {
    [
        Seed::lab("inbox"),
        Seed::lab("junk").imap(Imap::Starttls),
        Seed::lab("discard"),
    ]
}

#[test]
fn piped_stderr_gets_plain_lines_only() {
    let out = Probe::new()
        .lab()
        .args(["run", "--all"])
        .config(&Seeds::lab_six("3s"))
        .expect_exit(1)
        .run();
    let err = out.stderr();
    assert!(
        !out.out.stderr.contains(&b'\r') && !out.out.stderr.contains(&0x1b),
        "control characters on a pipe: {err:?}"
    );
    for line in [
        "sent inbox: ",
        "sent reject: ",
        "polling ",
        "\ninbox: inbox\n",
        "\njunk: spam\n",
        "\ntagged: spam_tagged\n",
        "\ndiscard: missing\n",
    ] {
        assert!(err.contains(line), "missing {line:?} in\n{}", out.show());
    }
    assert!(!err.contains("polling: "), "status line on a pipe: {err}");
}

#[test]
fn a_terminal_gets_a_status_line_without_colour_under_no_color() {
    // `script` (util-linux, in Debian's essential bsdutils) gives probe a terminal.
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "no util-linux `script` to give probe a terminal"
    );
    // Kept until the end: it owns the directory.
    let runner = Probe::new()
        .lab()
        .args(["run", "--all"])
        .config(&Seeds::lab("3s").seeds(three_seeds()));
    let probe = runner.command();
    let line = format!(
        "'{}' run --all --config seeds.yaml",
        probe.get_program().to_string_lossy(),
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &line, "/dev/null"]);
    for (k, v) in probe.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    assert!(
        probe
            .get_envs()
            .any(|(k, v)| k == "NO_COLOR" && v.is_some())
    );
    cmd.current_dir(probe.get_current_dir().unwrap());
    let out = {
        let _steady = steady();
        cmd.output().unwrap()
    };
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    // The pty merges stdout and stderr (and turns "\n" into "\r\n").
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "\r\x1b[Kpolling: ",
        "done (-: ",
        " / 0:03",
        "inbox: inbox",
        "junk: spam",
        "discard: missing",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text:?}");
    }
    assert!(
        !text.contains("\x1b[3"),
        "colour despite NO_COLOR: {text:?}"
    );
    // The last status line is cleared before the report is printed.
    let last = text.rfind("polling: ").unwrap();
    let rest = &text[last..];
    let cleared = rest.find("\r\x1b[K").expect("status line never cleared");
    let table = rest.find("discard").unwrap_or(usize::MAX);
    assert!(cleared < table, "report glued to the status line: {text:?}");
}
