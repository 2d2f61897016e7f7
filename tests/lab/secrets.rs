//! The password never appears in any output, log, transcript or the store.

use crate::support::lab::password;
use crate::support::{Imap, Password, Probe, Seed, Seeds};

/// The lab's six seeds, as `locals`.
const LOCALS: [&str; 6] = ["inbox", "junk", "tagged", "defer", "reject", "discard"];

fn env_name(local: &str) -> String {
    format!("LAB_PW_{}", local.to_uppercase())
}

/// Every file the store consists of (the database, its WAL and shared memory).
fn store_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("store.sqlite")
                .then(|| (name, std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn passwords_never_leak() {
    let dir = tempfile::tempdir().unwrap();
    // Every seed's password comes from the environment, so the config file has none.
    let seeds = Seeds::lab("3s").seeds(
        Seed::lab_six()
            .into_iter()
            .zip(LOCALS)
            .map(|(seed, local)| seed.password(Password::Env(env_name(local)))),
    );
    let passwords: Vec<String> = LOCALS.iter().map(|l| password(l)).collect();
    let with_passwords = || {
        LOCALS
            .iter()
            .zip(&passwords)
            .fold(Probe::in_dir(dir.path()).lab(), |p, (l, pw)| {
                p.env(env_name(l), pw)
            })
            .config(&seeds)
    };
    let mut passwords = passwords.clone();

    // The most verbose logging there is, including anything a dependency would trace.
    let json = with_passwords()
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--all", "--json"])
        .expect_exit(1)
        .run();
    let mut outputs = vec![("run --json".to_owned(), json.out.stdout, json.out.stderr)];

    let table = with_passwords()
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--seed", "inbox"])
        .run();
    outputs.push(("run table".into(), table.out.stdout, table.out.stderr));

    // A refused login: the error must name the server and user, never the password tried.
    let wrong = "wrong-pw-Zq8vX2";
    let bad = Probe::in_dir(dir.path())
        .env("LAB_PW_INBOX", wrong)
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--seed", "inbox"])
        .config(&seeds)
        .expect_exit(3)
        .stderr_has("127.0.0.1:1993")
        .stderr_has("inbox@inbox.lab.test")
        .run();
    passwords.push(wrong.to_owned());
    outputs.push(("bad login".into(), bad.out.stdout, bad.out.stderr));

    // The trace really was on, so a leak would have had its chance.
    assert!(
        outputs.iter().any(|(_, _, err)| contains(err, "DEBUG")
            || contains(err, "TRACE")
            || contains(err, "INFO")),
        "logging was not enabled"
    );
    let files = store_bytes(dir.path());
    assert!(!files.is_empty());
    for pw in &passwords {
        for (what, out, err) in &outputs {
            assert!(!contains(out, pw), "password in stdout of {what}");
            assert!(!contains(err, pw), "password in stderr of {what}");
        }
        for (name, bytes) in &files {
            assert!(!contains(bytes, pw), "password in {name}");
        }
    }
}

#[test]
fn a_password_file_is_read_but_not_copied() {
    let out = Probe::new()
        .lab()
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--all", "--json"])
        .config(&Seeds::lab("5s").seed(Seed::lab("tagged").imap(Imap::Plain)))
        .expect_exit(1)
        .run();
    let pw = password("tagged");
    assert!(!contains(&out.out.stdout, &pw) && !contains(&out.out.stderr, &pw));
    for (name, bytes) in store_bytes(out.dir()) {
        assert!(!contains(&bytes, &pw), "password in {name}");
    }
}
