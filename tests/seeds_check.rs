//! `probe seeds check`: logs into each seed, reports what polling would use, sends nothing.

use crate::lab::{Sentinel, config_yaml, ensure_lab, lab_dir, password_file, probe, run, show};

#[test]
fn check_reports_each_seed_and_sends_nothing() {
    ensure_lab();
    let sentinel = Sentinel::new();
    let mx = format!("127.0.0.1:{}", sentinel.port());
    let ca = lab_dir().join("tls/ca.pem");
    let seed = |name: &str, local: &str, password: &str, extra: &str| {
        format!(
            "  - name: {name}\n    address: {local}@{local}.lab.test\n    mx: \"{mx}\"\n    imap: {{ host: 127.0.0.1, port: 1993, password: {password}, ca_file: {ca}{extra} }}\n",
            ca = ca.display()
        )
    };
    let seeds = [
        seed("good", "junk", &password_file("junk"), ""),
        seed("wrong-password", "inbox", "{ env: WRONG_PW }", ""),
        seed(
            "missing-folder",
            "tagged",
            &password_file("tagged"),
            ", spam_folder: Quarantine",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seeds.yaml"), config_yaml("", "5s", &seeds)).unwrap();
    let out = run(probe(dir.path())
        .env("WRONG_PW", "not-the-password-Xy7")
        .args(["seeds", "check", "--config", "seeds.yaml"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
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
    assert!(!text.contains("not-the-password-Xy7"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not-the-password-Xy7"));
    assert!(!sentinel.was_contacted(), "seeds check must not send");
}
