//! A seed whose mailbox cannot be read is not sent to: the check before sending logs into
//! every seed mailbox of the real Dovecot, and its outcome decides.

use crate::support::net::{Sentinel, closed_port};
use crate::support::{Imap, Password, Probe, Seed, Seeds};

/// Seeds that cannot be read, each in its own way, all sending to `mx`.
fn unreadable(mx: &str) -> [Seed; 3] {
    [
        Seed::new("wrong-pw", "junk@junk.lab.test")
            .mx(mx)
            .lab_imap("junk")
            .password(Password::Env("WRONG_PW".into())),
        // The lab's certificate is signed by the lab CA, which this seed does not name.
        Seed::new("no-ca", "tagged@tagged.lab.test")
            .mx(mx)
            .imap(Imap::Implicit)
            .password(Password::lab("tagged")),
        Seed::new("closed-port", "discard@discard.lab.test")
            .mx(mx)
            .lab_imap("discard")
            .imap_server("127.0.0.1", closed_port()),
    ]
}

#[test]
fn seeds_that_cannot_be_read_are_not_sent_to() {
    let sentinel = Sentinel::new();
    let seeds = Seeds::lab("5s")
        .lab_sender()
        .seed(Seed::lab("inbox"))
        .seeds(unreadable(&sentinel.addr()));
    let out = Probe::new()
        .lab()
        .env("WRONG_PW", "not-the-password-Xy7")
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .output_lacks("not-the-password-Xy7")
        .run();
    assert!(
        !sentinel.was_contacted(),
        "a seed that cannot be read was sent to"
    );
    let json = out.json();
    let messages = json["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{json:#}");
    assert_eq!(out.message("inbox")["verdict"], "inbox");
    let not_tested = json["not_tested"].as_array().expect("not_tested");
    let entry = |seed: &str| -> (String, String) {
        let n = not_tested
            .iter()
            .find(|n| n["seed"] == seed)
            .unwrap_or_else(|| panic!("{seed} not listed: {json:#}"));
        (
            n["problem"].as_str().unwrap().to_owned(),
            n["hint"].as_str().unwrap_or("").to_owned(),
        )
    };
    let (problem, hint) = entry("wrong-pw");
    assert!(
        problem.contains("login as junk@junk.lab.test refused: NO [AUTHENTICATIONFAILED]"),
        "{problem}"
    );
    assert!(hint.contains("password source"), "{hint}");
    let (problem, hint) = entry("no-ca");
    assert!(problem.contains("TLS failed"), "{problem}");
    assert!(hint.contains("ca_file"), "{hint}");
    let (problem, hint) = entry("closed-port");
    assert!(problem.contains("cannot connect"), "{problem}");
    assert!(hint.contains("imap.port"), "{hint}");
    assert_eq!(not_tested.len(), 3, "{json:#}");

    // The table says it too, and the stored run keeps it for `probe report`.
    Probe::in_dir(out.dir())
        .args(["report"])
        .expect_exit(0)
        .stdout_has("wrong-pw: not tested: 127.0.0.1:1993: login as junk@junk.lab.test refused")
        .stdout_has("closed-port: not tested:")
        .run();
}

#[test]
fn nothing_is_sent_when_no_seed_can_be_read() {
    let sentinel = Sentinel::new();
    let seeds = Seeds::lab("5s")
        .lab_sender()
        .seeds(unreadable(&sentinel.addr()));
    let out = Probe::new()
        .lab()
        .env("WRONG_PW", "not-the-password-Xy7")
        .args(["run", "--all"])
        .config(&seeds)
        .expect_exit(3)
        .stderr_has("no seed mailbox can be read, so nothing was sent")
        .stderr_has("wrong-pw: 127.0.0.1:1993: login as junk@junk.lab.test refused")
        .stderr_has("hint: check the username and the password source")
        .stdout_is_empty()
        .output_lacks("not-the-password-Xy7")
        .run();
    assert!(!sentinel.was_contacted(), "something was sent");
    // No run was stored: there is nothing to poll or report.
    Probe::in_dir(out.dir())
        .args(["report"])
        .expect_exit(2)
        .stderr_has("the store has no stored run")
        .run();
}
