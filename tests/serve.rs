//! `probe serve`'s refusals before it serves anything, no lab needed: each names what is wrong
//! (the field, the address, the option) with the documented exit code, and none echoes a secret.

use crate::support::net::Sentinel;
use crate::support::{Imap, Password, Probe, Seed, Seeds};

/// One seed whose IMAP server is a sentinel: serve must refuse before contacting anything.
fn seeds(sentinel: &Sentinel) -> String {
    Seeds::new()
        .seed(
            Seed::new("a", "a@example.org")
                .imap(Imap::Plain)
                .imap_server("127.0.0.1", sentinel.port())
                .password(Password::Env("PROBE_TEST_SERVE_PASSWORD".into())),
        )
        .yaml()
}

#[test]
fn serve_refuses_bad_options_and_unreadable_secrets_at_start() {
    let sentinel = Sentinel::new();
    let base = seeds(&sentinel);
    for (extra, args, code, says) in [
        (
            "serve:\n  token: { env: PROBE_TEST_SERVE_TOKEN_UNSET }\n",
            vec![],
            2,
            "serve.token: environment variable PROBE_TEST_SERVE_TOKEN_UNSET is not set",
        ),
        (
            "schedule:\n  every: 5m\n  jitter: 10m\n",
            vec![],
            2,
            "schedule.jitter: 10m is not shorter than schedule.every (5m)",
        ),
        (
            "",
            vec!["--every", "0s"],
            2,
            "write a duration from 1s to 7d",
        ),
        ("", vec!["--every", "soon"], 2, "not a duration"),
        (
            "",
            vec!["--listen", "localhost"],
            2,
            "invalid value 'localhost' for '--listen",
        ),
        // Refused where it is written, as a password would be, and never echoed.
        (
            "serve:\n  token: hunter2\n",
            vec![],
            2,
            "seeds.yaml:12:10: a password is never written in the config",
        ),
    ] {
        // Every case fails before binding: the default address is never taken.
        let mut all = vec!["serve"];
        all.extend(args);
        Probe::new()
            .config_text(format!("{base}{extra}"))
            .env("PROBE_TEST_SERVE_PASSWORD", "pw")
            .env_remove("PROBE_TEST_SERVE_TOKEN_UNSET")
            .args(all)
            .expect_exit(code)
            .stderr_has(says)
            .output_lacks("hunter2")
            .run();
    }
    assert!(!sentinel.was_contacted());
}
