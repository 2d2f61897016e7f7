//! `probe report --format html -o FILE`: one self-contained page, rendered in headless Chromium.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::lab::lab_sh;
use crate::support::net::wait_for;
use crate::support::{Probe, Seeds, show_output};

/// Installs Debian's Chromium when missing, as `.ci/run` does, once per test process.
pub(crate) fn ensure_chromium() {
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
///
/// Its output goes to files in `profile`, not pipes: a DOM bigger than a pipe's buffer would
/// block Chromium while the test waits for it to end.
pub(crate) fn chromium(profile: &Path, args: &[&str]) -> Output {
    ensure_chromium();
    let (out_path, err_path) = (profile.join("stdout"), profile.join("stderr"));
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
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
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
    let Ok(status) = done else {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!(
            "chromium {args:?} did not finish within 60 s\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
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

/// Loads `html` in Chromium: its DOM after parsing, and a screenshot (a PNG, copied to
/// `$SEEDPROBE_SCREENSHOT_DIR/NAME.png` when set, to look at).
pub(crate) fn render(dir: &Path, name: &str, html_path: &Path, size: &str) -> String {
    if let Ok(copy) = std::env::var("SEEDPROBE_SCREENSHOT_DIR") {
        std::fs::copy(html_path, Path::new(&copy).join(format!("{name}.html"))).unwrap();
    }
    let url = format!("file://{}", html_path.display());
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path(), &["--dump-dom", &url]);
    assert!(out.status.success(), "{}", show_output(&out));
    let dom = String::from_utf8(out.stdout).unwrap();
    let shot = dir.join(format!("{name}.png"));
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            &format!("--window-size={size}"),
            &url,
        ],
    );
    assert!(out.status.success(), "{}", show_output(&out));
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot ({e})\n{}", show_output(&out)));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if let Ok(copy) = std::env::var("SEEDPROBE_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&copy).join(format!("{name}.png"))).unwrap();
    }
    dom
}

/// A stored run of 100 seeds over five providers, every verdict among them, made through the
/// store's public API (no sending): the page a postmaster with many seeds reads.
#[test]
fn a_hundred_seed_report_is_one_compact_row_per_seed() {
    use seedprobe::evidence::{FolderRole, HeaderEvidence};
    use seedprobe::store::{NewRun, SendRecord, SendState, Sighted, Store};
    use seedprobe::verdict::{Decision, Verdict};
    use std::time::SystemTime;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.sqlite");
    let store = Store::open(&path).unwrap();
    let run = "01JHUNDREDSEEDSHUNDREDSEED";
    store
        .create_run(&NewRun {
            id: run.into(),
            started_at: SystemTime::now(),
            config_path: "seeds.yaml".into(),
            transport: seedprobe::config::Transport::Direct,
            sender_from: "probe@example.org".into(),
            ehlo: "probe.example.org".into(),
            timeout: Duration::from_secs(60),
            source_ip: Some("192.0.2.1".into()),
            maillog_offset: None,
            label: Some("hundred".into()),
        })
        .unwrap();
    let providers = ["gmail", "outlook", "yahoo", "gmx", "web.de"];
    for i in 0..100 {
        let verdict = Verdict::ALL[i % 6];
        let token = format!("01JHUNDREDTOKEN{i:011}");
        let refused = matches!(verdict, Verdict::Rejected | Verdict::Deferred);
        store
            .record_send(&SendRecord {
                run_id: run.into(),
                token: token.clone(),
                seed: format!("seed-{i:03}"),
                provider: providers[i % 5].into(),
                address: format!("seed{i}@{}.example", providers[i % 5]),
                subject: "s".into(),
                message_id: format!("<{i}@example.org>"),
                sent_at: SystemTime::now(),
                smtp_host: Some("mx.example.net".into()),
                smtp_stage: None,
                smtp_code: Some(if refused { 550 } else { 250 }),
                smtp_enhanced: None,
                smtp_text: Some(if refused {
                    "5.7.1 <script>alert(1)</script> blocked".into()
                } else {
                    "2.0.0 Ok: queued".into()
                }),
                smtp_error: None,
                smtp_error_kind: None,
                tls_json: None,
                queue_id: None,
                decision: refused.then(|| Decision {
                    verdict,
                    reason: "SMTP 550 at DATA".into(),
                }),
                state: SendState::Sent,
                note: None,
                attempts: Vec::new(),
            })
            .unwrap();
        if refused || verdict == Verdict::Missing {
            if verdict == Verdict::Missing {
                let d = Decision {
                    verdict,
                    reason: "not found by the timeout".into(),
                };
                store.record_decision(&token, &d, None).unwrap();
            }
            continue;
        }
        let headers = serde_json::to_string(&HeaderEvidence {
            subject: Some(format!("probe test {i}")),
            fields: vec![
                ("Subject".into(), format!("probe test {i}")),
                (
                    "Authentication-Results".into(),
                    "mx.example.net; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org".into(),
                ),
            ],
        })
        .unwrap();
        let (folder, role) = match verdict {
            Verdict::Spam => ("Junk", FolderRole::Junk),
            _ => ("INBOX", FolderRole::Inbox),
        };
        let d = Decision {
            verdict,
            reason: format!("found in {folder}"),
        };
        store
            .record_decision(
                &token,
                &d,
                Some(Sighted {
                    folder,
                    role,
                    seen_at: SystemTime::now(),
                    headers: &headers,
                    tab: None,
                }),
            )
            .unwrap();
    }
    drop(store);
    let html_path = dir.path().join("r.html");
    Probe::new()
        .arg("--store")
        .arg(&path)
        .args(["report", "--format", "html", "-o"])
        .arg(&html_path)
        .expect_exit(0)
        .run();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(!html.contains("<script"), "a server's words are escaped");
    // The matrix comes first, then one folded row per seed.
    let matrix = html.find("<table class=\"matrix\">").unwrap();
    let seeds = html.find("<details class=\"seed\"").unwrap();
    assert!(matrix < seeds);
    assert_eq!(html.matches("<details class=\"seed\"").count(), 100);
    // The decoded Subject once per found seed, not the raw field beside it.
    let found = (0..100).filter(|i| [0, 1, 2].contains(&(i % 6))).count();
    assert_eq!(html.matches("<tr><th>Subject</th>").count(), found);
    assert!(!html.contains("Subject (raw)"));

    let dom = render(dir.path(), "report-100", &html_path, "1280,1000");
    assert_eq!(dom.matches("<details class=\"seed\"").count(), 100, "{dom}");
    assert!(!dom.contains("<details class=\"seed\" data-verdict=\"inbox\" open"));
    assert!(dom.contains("<span class=\"verdict rejected\">rejected</span>"));
}
