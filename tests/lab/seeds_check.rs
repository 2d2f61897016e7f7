//! `probe seeds check`: logs into each seed, reports what polling would use, sends nothing.

use crate::support::net::Sentinel;
use crate::support::{Password, Probe, Seed, Seeds};

#[test]
fn check_reports_each_seed_and_sends_nothing() {
    let sentinel = Sentinel::new();
    let mx = sentinel.addr();
    let seed = |name: &str, local: &str| {
        Seed::new(name, &format!("{local}@{local}.lab.test"))
            .mx(&mx)
            .lab_imap(local)
    };
    let seeds = Seeds::lab("5s").lab_sender().seeds([
        seed("good", "junk"),
        seed("wrong-password", "inbox").password(Password::Env("WRONG_PW".into())),
        seed("missing-folder", "tagged").imap_key("spam_folder", "Quarantine"),
    ]);
    let out = Probe::new()
        .lab()
        .env("WRONG_PW", "not-the-password-Xy7")
        .args(["seeds", "check"])
        .config(&seeds)
        .expect_exit(1)
        .output_lacks("not-the-password-Xy7")
        .run();
    let text = out.stdout();
    let block = |name: &str| -> String {
        let start = text
            .find(&format!("{name} ("))
            .unwrap_or_else(|| panic!("{text}"));
        text[start..]
            .lines()
            .take_while(|l| l.starts_with(name) || l.starts_with("  "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let good = block("good");
    assert!(good.contains("login: ok (password, LOGIN)"), "{good}");
    assert!(
        good.contains("spam folder: Filtered (marked \\Junk by the server)"),
        "{good}"
    );
    assert!(good.contains("IDLE"), "{good}");
    assert!(!good.contains("problem"), "{good}");
    let wrong = block("wrong-password");
    assert!(
        wrong.contains("login as inbox@inbox.lab.test refused"),
        "{wrong}"
    );
    assert!(wrong.contains("hint: check the username"), "{wrong}");
    let missing = block("missing-folder");
    assert!(
        missing.contains("the configured spam_folder \"Quarantine\" is not on the server"),
        "{missing}"
    );
    assert!(!sentinel.was_contacted(), "seeds check must not send");
}
