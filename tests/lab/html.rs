//! `probe report --format html -o FILE`: one self-contained page, rendered in headless Chromium.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::lab::lab_sh;
use crate::support::net::wait_for;
use crate::support::{Probe, Seeds, show_output};

/// Installs Debian's Chromium when missing, as `.ci/run` does, once per test process.
fn ensure_chromium() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let out = lab_sh("install-chromium");
        assert!(
            out.status.success(),
            "lab.sh install-chromium: {}",
            show_output(&out)
        );
    });
}

/// Runs Debian's Chromium headless with `args`, killed after 60 s.
pub(super) fn chromium(profile: &Path, args: &[&str]) -> Output {
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
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("end of chromium", Duration::from_secs(60), || {
            child.try_wait().unwrap()
        })
    }));
    if done.is_err() {
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        panic!(
            "chromium {args:?} did not finish within 60 s\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let first = Probe::new()
        .lab()
        .args(["run", "--all"])
        .config(&Seeds::lab_six("4s"))
        .expect_exit(1)
        .run();
    let dir = first.dir();
    let html_path = dir.join("r.html");
    Probe::in_dir(dir)
        .args(["report", "--format", "html", "-o"])
        .arg(&html_path)
        .expect_exit(0)
        .stdout_is_empty()
        .run();
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
    let out = Probe::in_dir(dir)
        .args(["report", "--format", "html"])
        .expect_exit(0)
        .run();
    assert_eq!(out.stdout(), html);

    let url = format!("file://{}", html_path.display());
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path(), &["--dump-dom", &url]);
    assert!(out.status.success(), "{}", show_output(&out));
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(dom.contains("<table class=\"matrix\">"), "{dom}");
    assert!(dom.contains("<tr><th>-</th><td class=\"n inbox\""), "{dom}");
    assert!(dom.contains("data-verdict=\"inbox\""), "{dom}");
    assert!(dom.contains("class=\"n rejected\""), "{dom}");

    let shot = dir.join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", show_output(&out));
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot ({e})\n{}", show_output(&out)));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 10_000, "screenshot only {} bytes", png.len());
    if let Ok(copy) = std::env::var("SEEDPROBE_SCREENSHOT") {
        std::fs::copy(&shot, copy).unwrap();
    }
}
