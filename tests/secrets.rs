//! The password never appears in any output, log, transcript or the store.

use crate::lab::{self, ALL_SEEDS, LabSeed, ensure_lab, probe, run, show};

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
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    // Every seed's password comes from the environment, so the config file has none.
    let config = lab::write_config(dir.path(), "3s", &ALL_SEEDS, |local| {
        format!("{{ env: LAB_PW_{} }}", local.to_uppercase())
    });
    let mut cmd = probe(dir.path());
    let mut passwords = Vec::new();
    for s in &ALL_SEEDS {
        let pw = lab::password(s.local);
        cmd.env(format!("LAB_PW_{}", s.local.to_uppercase()), &pw);
        passwords.push(pw);
    }
    // The most verbose logging there is, including anything a dependency would trace.
    cmd.env("PROBE_LOG", "trace").arg("-vv");

    let json = run(cmd
        .args(["run", "--all", "--json", "--config"])
        .arg(&config));
    assert_eq!(json.status.code(), Some(1), "{}", show(&json));
    let mut outputs = vec![("run --json".to_owned(), json.stdout, json.stderr)];

    let mut table_cmd = probe(dir.path());
    for s in &ALL_SEEDS {
        table_cmd.env(
            format!("LAB_PW_{}", s.local.to_uppercase()),
            lab::password(s.local),
        );
    }
    let table = run(table_cmd
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--seed", "inbox", "--config"])
        .arg(&config));
    outputs.push(("run table".into(), table.stdout, table.stderr));

    // A refused login: the error must name the server and user, never the password tried.
    let wrong = "wrong-pw-Zq8vX2";
    let bad = run(probe(dir.path())
        .env("LAB_PW_INBOX", wrong)
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--seed", "inbox", "--config"])
        .arg(&config));
    assert_eq!(bad.status.code(), Some(3), "{}", show(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("127.0.0.1:1993") && stderr.contains("inbox@inbox.lab.test"),
        "{}",
        show(&bad)
    );
    passwords.push(wrong.to_owned());
    outputs.push(("bad login".into(), bad.stdout, bad.stderr));

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
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let seeds = [LabSeed {
        local: "tagged",
        imap: lab::Imap::Plain,
    }];
    let config = lab::write_config(dir.path(), "5s", &seeds, lab::password_file);
    let out = run(probe(dir.path())
        .env("PROBE_LOG", "trace")
        .args(["-vv", "run", "--all", "--json", "--config"])
        .arg(&config));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let pw = lab::password("tagged");
    assert!(!contains(&out.stdout, &pw) && !contains(&out.stderr, &pw));
    for (name, bytes) in store_bytes(dir.path()) {
        assert!(!contains(&bytes, &pw), "password in {name}");
    }
}
