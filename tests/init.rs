//! `probe init`, `probe completions` and `probe man`: onboarding without the lab. Providers
//! found from their own mail domains need no DNS; custom domains are in `lab::init`.

use std::path::Path;

use crate::support::Probe;

/// Runs `probe init` in a fresh directory; the file it wrote is `seeds.yaml` there.
fn init(args: &[&str]) -> crate::support::Ran {
    Probe::new()
        .args(["--config", "seeds.yaml", "init"])
        .args(args.iter().copied())
        .run()
}

fn written(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("seeds.yaml")).unwrap()
}

#[test]
fn init_writes_a_seeds_file_that_loads_and_names_each_provider() {
    // address, provider line, password variable
    let table = [
        (
            "alice@gmail.com",
            "provider: gmail",
            "PROBE_GMAIL_ALICE_PASSWORD",
        ),
        (
            "bob@outlook.com",
            "provider: outlook",
            "PROBE_OUTLOOK_BOB_PASSWORD",
        ),
        (
            "carol@yahoo.com",
            "provider: yahoo",
            "PROBE_YAHOO_CAROL_PASSWORD",
        ),
        ("dan@aol.com", "provider: aol", "PROBE_AOL_DAN_PASSWORD"),
        ("eve@gmx.de", "provider: gmx", "PROBE_GMX_EVE_PASSWORD"),
        ("fay@web.de", "provider: webde", "PROBE_WEBDE_FAY_PASSWORD"),
        (
            "gus@t-online.de",
            "provider: tonline",
            "PROBE_TONLINE_GUS_PASSWORD",
        ),
        (
            "hal@icloud.com",
            "provider: icloud",
            "PROBE_ICLOUD_HAL_PASSWORD",
        ),
    ];
    let addresses: Vec<&str> = table.iter().map(|row| row.0).collect();
    let mut args = vec!["--from", "probe@sender.example"];
    args.extend(&addresses);
    let ran = init(&args);
    assert_eq!(ran.code(), Some(0), "{}", ran.show());
    let text = written(ran.dir());
    for (address, provider, variable) in table {
        assert!(
            text.contains(&format!("address: \"{address}\"")),
            "{address}:\n{text}"
        );
        assert!(text.contains(provider), "{provider}:\n{text}");
        assert!(
            text.contains(&format!("{{ env: {variable} }}")),
            "{variable}:\n{text}"
        );
        assert!(
            ran.stderr().contains(&format!("export {variable}=")),
            "{}",
            ran.show()
        );
    }
    assert!(!text.contains("CHANGE"), "--from was given:\n{text}");
    assert!(ran.stderr().contains("probe seeds check"), "{}", ran.show());
    // The file is a valid config: `probe seeds check` reads it and gets as far as the missing
    // password variables, naming the first seed's field (it reads no password before that).
    Probe::in_dir(ran.dir())
        .args(["--config", "seeds.yaml", "seeds", "check"])
        .env_remove("PROBE_GMAIL_ALICE_PASSWORD")
        .stderr_has("PROBE_GMAIL_ALICE_PASSWORD")
        .stderr_lacks("line ")
        .run();
}

#[test]
fn init_never_overwrites_without_force() {
    let ran = init(&["a@gmail.com"]);
    assert_eq!(ran.code(), Some(0), "{}", ran.show());
    std::fs::write(ran.dir().join("seeds.yaml"), "# mine\n").unwrap();
    Probe::in_dir(ran.dir())
        .args(["--config", "seeds.yaml", "init", "b@gmail.com"])
        .expect_exit(2)
        .stderr_has("exists")
        .stderr_has("--force")
        .run();
    assert_eq!(written(ran.dir()), "# mine\n");
    Probe::in_dir(ran.dir())
        .args(["--config", "seeds.yaml", "init", "--force", "b@gmail.com"])
        .expect_exit(0)
        .run();
    assert!(written(ran.dir()).contains("b@gmail.com"));
}

#[test]
fn init_refuses_what_is_not_an_address_and_writes_nothing() {
    for bad in ["not-an-address", "a@", "@gmail.com"] {
        let ran = init(&["ok@gmail.com", bad]);
        assert_eq!(ran.code(), Some(2), "{bad}: {}", ran.show());
        assert!(
            ran.stderr().contains("not a mail address"),
            "{}",
            ran.show()
        );
        assert!(
            !ran.dir().join("seeds.yaml").exists(),
            "{bad}: a file was written"
        );
    }
}

#[test]
fn init_without_from_marks_the_sender_to_change() {
    let ran = init(&["a@gmail.com"]);
    assert_eq!(ran.code(), Some(0), "{}", ran.show());
    assert!(written(ran.dir()).contains("# CHANGE"));
    assert!(ran.stderr().contains("set sender.from"), "{}", ran.show());
}

#[test]
fn completions_are_valid_scripts_that_know_every_subcommand() {
    let bash = Probe::new()
        .args(["completions", "bash"])
        .expect_exit(0)
        .run();
    for sub in ["run", "init", "bounce", "compare", "completions"] {
        assert!(bash.stdout().contains(sub), "bash completions lack {sub}");
    }
    let script = bash.dir().join("probe.bash");
    std::fs::write(&script, bash.stdout()).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish"] {
        Probe::new()
            .args(["completions", shell])
            .expect_exit(0)
            .stdout_has("init")
            .run();
    }
    Probe::new()
        .args(["completions", "tcsh"])
        .expect_exit(2)
        .stderr_has("tcsh")
        .run();
}

#[test]
fn the_man_page_renders_and_lists_the_subcommands() {
    let man = Probe::new()
        .arg("man")
        .expect_exit(0)
        .stdout_has(".TH probe 1")
        .run();
    let page = man.dir().join("probe.1");
    std::fs::write(&page, man.stdout()).unwrap();
    // groff is how man renders it; where it is missing the roff text is still checked above.
    let Ok(out) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou"])
        .arg(&page)
        .output()
    else {
        eprintln!("groff missing: the rendering is not checked");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in ["NAME", "SYNOPSIS", "SUBCOMMANDS"] {
        assert!(text.contains(section), "no {section} in:\n{text}");
    }
    for sub in ["probe-run", "probe-init", "probe-bounce"] {
        assert!(text.contains(sub), "no {sub} in:\n{text}");
    }
    // The pages it refers to exist with --dir.
    let dir = man.dir().join("man1");
    std::fs::create_dir(&dir).unwrap();
    Probe::in_dir(man.dir())
        .args(["man", "--dir"])
        .arg(&dir)
        .expect_exit(0)
        .run();
    for page in [
        "probe.1",
        "probe-run.1",
        "probe-init.1",
        "probe-seeds-check.1",
    ] {
        assert!(dir.join(page).exists(), "no {page}");
    }
}
