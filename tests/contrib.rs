//! contrib/: the Grafana dashboard and the Prometheus alert rules use only metrics probe
//! writes, and the rules pass `promtool check rules` where promtool is installed
//! (`docker/lab/lab.sh install-promtool`).

use std::collections::BTreeSet;
use std::path::Path;

use seedprobe::check::{CheckResult, Report, Status};
use seedprobe::config::Transport;
use seedprobe::report::RunReport;
use seedprobe::store::{MessageRecord, RunRecord, SmtpOutcome};
use seedprobe::verdict::Verdict;

const PROMTOOL: &str = "/opt/seedprobe-prometheus/usr/bin/promtool";

fn contrib(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `seedprobe_*` name in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("seedprobe_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        names.insert(name);
    }
    names
}

/// The families probe writes for a run with every kind of data: a verdict with a cause, a
/// latency, a poll error and checks.
fn written_families() -> BTreeSet<String> {
    let message = MessageRecord {
        smtp: SmtpOutcome {
            code: Some(451),
            text: Some("try later".into()),
            ..SmtpOutcome::default()
        },
        verdict: Some(Verdict::Deferred),
        verdict_reason: Some("451".into()),
        poll_error: Some("timeout".into()),
        ..MessageRecord::sent("t", "s", "gmail", "s@example.net", 0)
    };
    let found = MessageRecord {
        token: "u".into(),
        verdict: Some(Verdict::Inbox),
        seen_at: Some(2_000),
        poll_error: None,
        ..message.clone()
    };
    let report = RunReport {
        run: RunRecord {
            id: "r".into(),
            started_at: 0,
            finished_at: Some(1),
            config_path: "seeds.yaml".into(),
            transport: Transport::Direct,
            sender_from: "p@example.org".into(),
            timeout_ms: 1,
            source_ip: Some("127.0.0.2".into()),
            maillog_offset: None,
            label: None,
            failure: None,
            host: None,
            not_tested: Vec::new(),
            checks: Some(Report {
                source_ip: "127.0.0.2".parse().unwrap(),
                domain: "example.org".into(),
                results: vec![CheckResult {
                    check: "dnsbl".into(),
                    subject: "127.0.0.2".into(),
                    list: Some("zen.example".into()),
                    status: Status::Fail,
                    detail: "listed".into(),
                    code: Some("127.0.0.2".into()),
                }],
            }),
        },
        messages: vec![message, found],
    };
    let text = seedprobe::report::metrics::render(&report, true);
    assert!(
        text.contains(
            "seedprobe_check_failed{check=\"dnsbl\",list=\"zen.example\",subject=\"127.0.0.2\"} 1"
        ),
        "{text}"
    );
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn exprs_of_dashboard(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs_of_dashboard(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs_of_dashboard(v, out)),
        _ => {}
    }
}

#[derive(serde::Deserialize)]
struct Rules {
    groups: Vec<Group>,
}

#[derive(serde::Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct Rule {
    alert: String,
    expr: String,
}

#[test]
fn dashboard_and_alert_rules_use_only_metrics_probe_writes() {
    let written = written_families();
    let dashboard: serde_json::Value = serde_json::from_str(&contrib("grafana/seedprobe.json"))
        .unwrap_or_else(|e| panic!("contrib/grafana/seedprobe.json: {e}"));
    let mut dash_exprs = Vec::new();
    exprs_of_dashboard(&dashboard, &mut dash_exprs);
    let rules: Rules = serde_saphyr::from_str(&contrib("prometheus/alerts.yml"))
        .unwrap_or_else(|e| panic!("contrib/prometheus/alerts.yml: {e}"));
    let rule_exprs: Vec<(String, String)> = rules
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|r| (r.alert, r.expr))
        .collect();
    let alerts: BTreeSet<&str> = rule_exprs.iter().map(|(a, _)| a.as_str()).collect();
    for wanted in [
        "SeedprobeInboxShareDropped",
        "SeedprobeProviderStartedDeferring",
        "SeedprobeListingAppeared",
    ] {
        assert!(alerts.contains(wanted), "no alert {wanted}: {alerts:?}");
    }
    assert!(dash_exprs.len() >= 8, "{dash_exprs:?}");
    let all = dash_exprs
        .iter()
        .map(|e| ("dashboard", e.as_str()))
        .chain(rule_exprs.iter().map(|(a, e)| (a.as_str(), e.as_str())));
    for (whose, expr) in all {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{whose}: no seedprobe metric in {expr}");
        for name in names {
            assert!(
                written.contains(&name),
                "{whose}: {name} is not written by probe ({written:?})"
            );
        }
    }
}

#[test]
fn promtool_accepts_the_alert_rules() {
    if !Path::new(PROMTOOL).exists() {
        eprintln!(
            "{PROMTOOL} is missing (docker/lab/lab.sh install-promtool): \
             only the parse checks ran"
        );
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus/alerts.yml");
    let out = std::process::Command::new(PROMTOOL)
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
