//! `probe report --trend`: three lab runs with different outcomes (the iprep seed from
//! 127.0.0.2, then 127.0.0.3, which the lab's rspamd defers, then 127.0.0.2 again), and a
//! synthetic store of 1,000 runs made through the store's public API; both pages rendered in
//! headless Chromium.

use std::time::{Duration, SystemTime};

use seedprobe::store::{NewRun, SendRecord, SendState, Store};
use seedprobe::verdict::{Decision, Verdict};

use super::html::render;
use crate::support::{Probe, Seed, Seeds};

#[test]
fn the_trend_of_three_lab_runs() {
    let seeds = Seeds::lab("10s")
        .lab_sender()
        .via_lab_dns()
        .seed(Seed::new("iprep", "iprep@iprep.lab.test").lab_imap("iprep"));
    let first = Probe::new()
        .lab()
        .args(["run", "--all", "--no-check", "--label", "good"])
        .args(["--source-ip", "127.0.0.2"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let dir = first.dir();
    for (ip, label, exit) in [("127.0.0.3", "listed", 1), ("127.0.0.2", "good", 0)] {
        Probe::in_dir(dir)
            .args(["run", "--all", "--no-check", "--label", label])
            .args(["--source-ip", ip])
            .config(&seeds)
            .expect_exit(exit)
            .run();
    }

    let json = Probe::in_dir(dir)
        .args(["report", "--trend", "--since", "1h", "--format", "json"])
        .expect_exit(0)
        .run()
        .json();
    assert_eq!(json["runs"], 3, "{json:#}");
    let points = json["points"].as_array().unwrap();
    let got: Vec<(&str, u64, u64, f64, u64)> = points
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap(),
                p["messages"].as_u64().unwrap(),
                p["inbox"].as_u64().unwrap(),
                p["inbox_share"].as_f64().unwrap(),
                p["deferred"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("good", 1, 1, 1.0, 0),
            ("listed", 1, 0, 0.0, 1),
            ("good", 1, 1, 1.0, 0)
        ],
        "{json:#}"
    );
    assert!(
        points[0]["started_at"].as_str().unwrap() < points[1]["started_at"].as_str().unwrap(),
        "oldest first: {json:#}"
    );

    // --label keeps the matching runs only.
    let listed = Probe::in_dir(dir)
        .args(["report", "--trend", "--label", "listed", "--format", "json"])
        .expect_exit(0)
        .run()
        .json();
    assert_eq!(listed["runs"], 1, "{listed:#}");

    let table = Probe::in_dir(dir)
        .args(["report", "--trend"])
        .expect_exit(0)
        .run()
        .stdout();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "a header and a row per run:\n{table}");
    assert!(lines[0].starts_with("started"), "{table}");
    assert!(
        lines[2].contains(" listed ") && lines[2].contains("   0%"),
        "{table}"
    );
    assert!(
        lines[3].contains(" good ") && lines[3].contains(" 100%"),
        "{table}"
    );

    // csv is no trend format; a RUN and --trend do not go together.
    Probe::in_dir(dir)
        .args(["report", "--trend", "--format", "csv"])
        .expect_exit(2)
        .stderr_has("--trend prints a table, json or html")
        .run();

    let html_path = dir.join("trend.html");
    Probe::in_dir(dir)
        .args(["report", "--trend", "--format", "html", "-o"])
        .arg(&html_path)
        .expect_exit(0)
        .stdout_is_empty()
        .run();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "{html}"
    );
    assert_eq!(html.matches("<circle").count(), 3, "{html}");
    let dom = render(dir, "trend-3", &html_path, "1100,800");
    assert!(dom.contains("<svg"), "{dom}");
    assert_eq!(dom.matches("<polyline").count(), 1, "{dom}");
    assert!(dom.contains("<table class=\"latest\">"), "{dom}");
}

/// 1,000 hourly runs over four providers; gmail's share falls for a week in the middle.
#[test]
fn a_thousand_runs_read_as_one_point_per_day() {
    const RUNS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.sqlite");
    let store = Store::open(&path).unwrap();
    let start = SystemTime::now() - Duration::from_secs(3_600 * RUNS);
    let providers = ["gmail", "outlook", "yahoo", "<gmx & co>"];
    for r in 0..RUNS {
        let run = format!("01JTHOUSAND{r:015}");
        let at = start + Duration::from_secs(3_600 * r);
        store
            .create_run(&NewRun {
                id: run.clone(),
                started_at: at,
                config_path: "seeds.yaml".into(),
                transport: seedprobe::config::Transport::Direct,
                sender_from: "probe@example.org".into(),
                ehlo: "probe.example.org".into(),
                timeout: Duration::from_secs(60),
                source_ip: None,
                maillog_offset: None,
                label: Some("hourly".into()),
            })
            .unwrap();
        for (p, provider) in providers.iter().enumerate() {
            let bad_week = (400..568).contains(&r) && p == 0;
            let verdict = match (r + p as u64) % 7 {
                _ if bad_week && r % 3 != 0 => Verdict::Spam,
                0 if p == 2 => Verdict::Deferred,
                _ => Verdict::Inbox,
            };
            store
                .record_send(&SendRecord {
                    run_id: run.clone(),
                    token: format!("{run}{p}"),
                    seed: format!("seed-{p}"),
                    provider: (*provider).into(),
                    address: format!("seed{p}@example.net"),
                    subject: "s".into(),
                    message_id: format!("<{r}.{p}@example.org>"),
                    sent_at: at,
                    smtp_host: None,
                    smtp_stage: None,
                    smtp_code: Some(250),
                    smtp_enhanced: None,
                    smtp_text: None,
                    smtp_error: None,
                    smtp_error_kind: None,
                    tls_json: None,
                    queue_id: None,
                    decision: Some(Decision {
                        verdict,
                        reason: "synthetic".into(),
                    }),
                    state: SendState::Sent,
                    note: None,
                    attempts: Vec::new(),
                })
                .unwrap();
        }
    }
    drop(store);
    let html_path = dir.path().join("trend.html");
    Probe::new()
        .arg("--store")
        .arg(&path)
        .args(["report", "--trend", "--format", "html", "-o"])
        .arg(&html_path)
        .expect_exit(0)
        .run();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("1000 run(s)"), "{html:.2000}");
    assert!(html.contains("one point per provider and UTC day"));
    assert!(html.contains("&lt;gmx &amp; co&gt;") && !html.contains("<gmx"));
    // One line per provider; ~42 days of points, no circles (too many to tell apart).
    assert_eq!(html.matches("<polyline").count(), 4);
    let first_line = html.split("points=\"").nth(1).unwrap();
    let dots = first_line[..first_line.find('"').unwrap()]
        .split(' ')
        .count();
    assert!((42..=43).contains(&dots), "{dots} points a line");
    // The latest 20 runs under the chart.
    assert!(html.contains("<h2>Latest 20 of 1000 run(s)</h2>"));
    let dom = render(dir.path(), "trend-1000", &html_path, "1100,900");
    assert_eq!(dom.matches("<polyline").count(), 4);
}
