//! `probe report --format html -o FILE`: one self-contained page, rendered in headless Chromium.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::lab::{ALL_SEEDS, lab_run, probe, run, show};

/// Installs Debian's Chromium when missing, as `.ci/run` does, once per test process.
fn ensure_chromium() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/lab.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("install-chromium")
            .output()
            .expect("run lab.sh install-chromium");
        assert!(
            out.status.success(),
            "lab.sh install-chromium: {}",
            show(&out)
        );
    });
}

/// Runs Debian's Chromium headless with `args`, killed after 60 s.
fn chromium(profile: &Path, args: &[&str]) -> Output {
    ensure_chromium();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromium ({e}): install Debian's chromium \
                 (apt-get install -y --no-install-recommends chromium, as .ci/run does)"
            )
        });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "chromium {args:?} did not finish within 60 s\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let (dir, out) = lab_run("4s", &ALL_SEEDS, &["run", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let html_path = dir.path().join("r.html");
    let out = run(probe(dir.path())
        .args(["report", "--format", "html", "-o"])
        .arg(&html_path));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "{html}"
    );
    assert!(html.contains("<table class=\"matrix\">"), "{html}");
    // The lab's seeds name no provider: their row is `-`, then the `all` row.
    assert!(
        html.contains("<tr><th>-</th><td class=\"n inbox\""),
        "{html}"
    );
    assert!(html.contains("<tr><th>all</th>"), "{html}");
    assert!(
        html.contains("<td class=\"n inbox\" data-verdict=\"inbox\">"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"n rejected\" data-verdict=\"rejected\">"),
        "{html}"
    );

    // The same page on standard output without -o.
    let out = run(probe(dir.path()).args(["report", "--format", "html"]));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), html);

    let url = format!("file://{}", html_path.display());
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path(), &["--dump-dom", &url]);
    assert!(out.status.success(), "{}", show(&out));
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(dom.contains("<table class=\"matrix\">"), "{dom}");
    assert!(dom.contains("<tr><th>-</th><td class=\"n inbox\""), "{dom}");
    assert!(dom.contains("data-verdict=\"inbox\""), "{dom}");
    assert!(dom.contains("class=\"n rejected\""), "{dom}");

    let shot = dir.path().join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e})\n{}", show(&out)));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 10_000, "screenshot only {} bytes", png.len());
    if let Ok(copy) = std::env::var("SEEDPROBE_SCREENSHOT") {
        std::fs::copy(&shot, copy).unwrap();
    }
}
