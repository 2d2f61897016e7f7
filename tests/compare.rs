//! Before/after: `probe compare` over two lab runs from different source addresses, and the
//! Prometheus metrics file of `--metrics-file`.

use crate::lab::{
    ALL_SEEDS, config_yaml, ensure_lab, json_of, lab_run, message_for, probe, run, seed_entry, show,
};

/// Sender settings that send through the lab's DNS to port 2525 of each MX.
const VIA_LAB_DNS: &str = "  resolver: \"127.0.0.1:5353\"\n  smtp_port: 2525\n";

#[test]
fn compare_two_runs_from_different_source_addresses() {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let seeds = [seed_entry("iprep", "iprep@iprep.lab.test", "iprep", None)];
    std::fs::write(
        dir.path().join("seeds.yaml"),
        config_yaml(VIA_LAB_DNS, "10s", &seeds),
    )
    .unwrap();
    // Both runs in the same store (the directory's).
    let run_from = |ip: &str| {
        let out = run(probe(dir.path()).args([
            "run",
            "--all",
            "--json",
            "--source-ip",
            ip,
            "--config",
            "seeds.yaml",
        ]));
        let json = json_of(&out);
        (out, json)
    };
    let (good, good_json) = run_from("127.0.0.2");
    assert_eq!(good.status.code(), Some(0), "{}", show(&good));
    let (bad, bad_json) = run_from("127.0.0.3");
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    assert_eq!(message_for(&bad_json, "iprep")["verdict"], "deferred");
    let a = good_json["run_id"].as_str().unwrap().to_owned();
    let b = bad_json["run_id"].as_str().unwrap().to_owned();
    let compare = |args: &[&str]| run(probe(dir.path()).arg("compare").args(args));

    // Worse: exit 1, the change and the AFTER side's 450 reply on the seed's line.
    let out = compare(&[&a, &b]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("iprep: "))
        .unwrap_or_else(|| panic!("no iprep line: {}", show(&out)));
    assert!(line.starts_with("iprep: inbox -> deferred 450 "), "{line}");
    let reply = format!(
        "450 {} {}",
        message_for(&bad_json, "iprep")["smtp"]["enhanced"]
            .as_str()
            .unwrap(),
        message_for(&bad_json, "iprep")["smtp"]["text"]
            .as_str()
            .unwrap()
    );
    assert!(line.ends_with(&reply), "{line} vs {reply}");
    assert!(
        text.contains("-: 100% (1/1) -> 0% (0/1), 1 worse"),
        "{text}"
    );

    // Better the other way round: exit 0.
    let out = compare(&[&b, &a]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("iprep: deferred -> inbox (better)"),
        "{}",
        show(&out)
    );

    // The JSON shape, pinned.
    let out = compare(&["--json", &a, &b]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&json),
        ["after_run", "before_run", "providers", "seeds", "worse"]
    );
    assert_eq!(json["before_run"], a.as_str());
    assert_eq!(json["after_run"], b.as_str());
    assert_eq!(json["worse"], true);
    let seed = &json["seeds"][0];
    assert_eq!(
        keys(seed),
        ["after", "before", "change", "detail", "provider", "seed"]
    );
    assert_eq!(seed["seed"], "iprep");
    assert_eq!(seed["provider"], "-");
    assert_eq!(seed["before"], "inbox");
    assert_eq!(seed["after"], "deferred");
    assert_eq!(seed["change"], "worse");
    assert_eq!(seed["detail"], reply.as_str());
    let provider = &json["providers"][0];
    assert_eq!(
        keys(provider),
        ["after", "before", "better", "provider", "worse"]
    );
    assert_eq!(
        keys(&provider["before"]),
        ["inbox", "inbox_share", "messages"]
    );
    assert_eq!(provider["before"]["inbox_share"], 1.0);
    assert_eq!(provider["after"]["inbox_share"], 0.0);
    assert_eq!(provider["worse"], 1);

    // An unknown run id is a usage error.
    let out = compare(&[&a, "no-such-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

/// A sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses a `name{labels} value` sample line of the exposition format; `None` when malformed.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let name_ok = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !name_ok {
        return None;
    }
    let mut chars = line[name_end..].chars().peekable();
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let mut label = String::new();
            loop {
                match chars.next()? {
                    '=' => break,
                    c if c.is_ascii_alphanumeric() || c == '_' => label.push(c),
                    _ => return None,
                }
            }
            if label.is_empty() || chars.next()? != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '\\' => match chars.next()? {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        _ => return None,
                    },
                    '"' => break,
                    '\n' => return None,
                    c => value.push(c),
                }
            }
            labels.push((label, value));
            match chars.next()? {
                ',' => {}
                '}' => break,
                _ => return None,
            }
        }
    }
    if chars.next()? != ' ' {
        return None;
    }
    let value: f64 = chars.collect::<String>().parse().ok()?;
    Some((name.to_owned(), labels, value))
}

#[test]
fn the_sample_parser_follows_the_exposition_format() {
    let (n, l, v) = parse_sample(r#"a_b{x="1",y="q\"\\\n"} 2.5"#).unwrap();
    assert_eq!((n.as_str(), v), ("a_b", 2.5));
    assert_eq!(
        l,
        [("x".into(), "1".into()), ("y".into(), "q\"\\\n".into())]
    );
    assert_eq!(parse_sample("up 1").unwrap().2, 1.0);
    for bad in [
        "up",
        "up x",
        r#"a{x=1} 1"#,
        r#"a{x="1} 1"#,
        "9a 1",
        r#"a{x="1"y="2"} 1"#,
    ] {
        assert!(parse_sample(bad).is_none(), "{bad}");
    }
}

#[test]
fn run_writes_a_prometheus_textfile_atomically() {
    let inbox = ALL_SEEDS
        .into_iter()
        .filter(|s| s.local == "inbox")
        .collect::<Vec<_>>();
    let (dir, out) = lab_run(
        "10s",
        &inbox,
        &["run", "--seed", "inbox", "--metrics-file", "m.prom"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = std::fs::read_to_string(dir.path().join("m.prom")).unwrap();
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut words = c.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(_), Some(_)) => {}
                (Some("TYPE"), Some(name), Some("gauge")) => {
                    typed.insert(name.to_owned());
                }
                _ => panic!("bad comment line {line:?}"),
            }
            continue;
        }
        let (name, labels, value) =
            parse_sample(line).unwrap_or_else(|| panic!("not a sample line: {line:?}\n{text}"));
        assert!(typed.contains(&name), "{name} has no TYPE line before it");
        samples.push((name, labels, value));
    }
    let has = |name: &str, labels: &[(&str, &str)], value: f64| {
        samples.iter().any(|(n, l, v)| {
            n == name
                && *v == value
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, val)| l.iter().any(|(lk, lv)| lk == k && lv == val))
        })
    };
    assert!(
        text.lines()
            .any(|l| l == r#"seedprobe_messages{provider="-",verdict="inbox"} 1"#),
        "{text}"
    );
    assert!(has(
        "seedprobe_messages",
        &[("provider", "-"), ("verdict", "spam")],
        0.0
    ));
    assert!(
        has("seedprobe_inbox_ratio", &[("provider", "-")], 1.0),
        "{text}"
    );
    assert!(has("seedprobe_inbox_ratio", &[], 1.0), "{text}");
    assert!(has("seedprobe_up", &[], 1.0), "{text}");
    assert!(has("seedprobe_poll_errors", &[], 0.0), "{text}");
    let latency = samples
        .iter()
        .find(|(n, _, _)| n == "seedprobe_delivery_latency_seconds")
        .unwrap_or_else(|| panic!("no latency: {text}"));
    assert!(latency.1.contains(&("seed".into(), "inbox".into())));
    assert!(latency.2 >= 0.0 && latency.2 < 10.0, "{latency:?}");
    let stamp = samples
        .iter()
        .find(|(n, _, _)| n == "seedprobe_last_run_timestamp_seconds")
        .unwrap()
        .2;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(stamp <= now && now - stamp < 120.0, "{stamp} vs {now}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
