//! `probe maillog` on small logs written here in the lab's line shapes: the JSON shape, `.gz`
//! and standard input, `--since`, `--fail-over` and the exit codes. No lab (tests/lab/maillog.rs
//! checks the counts against pflogsumm on a real log).

use std::io::Write as _;
use std::path::Path;

use crate::support::probe::Probe;

/// A deferral then delivery at Gmail, a bounce at a Microsoft-hosted domain, a delivery to a
/// small domain, a NOQUEUE reject, and an expiry.
const LOG: &str = "\
Nov 29 16:00:00 mx postfix/smtp[1]: AAA: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[1.2.3.4]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[1.2.3.4] said: 421-4.7.28 Our system has detected an unusual rate of unsolicited mail (in reply to end of DATA command))
Nov 29 16:10:00 mx postfix/smtp[1]: AAA: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[1.2.3.4]:25, delay=600, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 29 16:10:00 mx postfix/qmgr[2]: AAA: removed
Nov 29 16:11:00 mx postfix/smtp[1]: BBB: to=<b@customer.example>, relay=customer-example.mail.protection.outlook.com[5.6.7.8]:25, delay=1, delays=0/0/0/1, dsn=5.7.1, status=bounced (host said: 550 5.7.1 Client host blocked using Spamhaus)
Nov 29 16:11:00 mx postfix/smtp[1]: CCC: to=<c@small.example>, relay=mx.small.example[9.9.9.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)
Nov 29 16:11:01 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from x[1.1.1.1]: 554 5.7.1 Relay access denied; from=<a@b> to=<c@d> proto=ESMTP helo=<x>
Nov 29 16:13:00 mx postfix/qmgr[2]: DDD: from=<s@ours.test>, status=expired, returned to sender
";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "mail.log", LOG.as_bytes());
    let ran = Probe::new()
        .args(["maillog", "--json"])
        .arg(&log)
        .expect_exit(0)
        .run();
    let json: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    assert_eq!(
        json["totals"],
        serde_json::json!({"delivered": 2, "deferred": 1, "bounced": 1, "rejected": 1, "expired": 1})
    );
    let providers = json["providers"].as_array().unwrap();
    let names: Vec<&str> = providers
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gmail", "outlook", "small.example"]);
    // serde_json's map is sorted: the set of keys is what is checked.
    let keys: Vec<&str> = providers[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "bounced",
            "deferred",
            "delivered",
            "domains",
            "provider",
            "reasons"
        ]
    );
    assert_eq!(
        providers[1]["domains"],
        serde_json::json!(["customer.example"])
    );
    let reason = &providers[0]["reasons"][0];
    assert_eq!(reason["reason"], "ratelimited");
    assert_eq!(reason["count"], 1);
    assert!(
        reason["example"]
            .as_str()
            .unwrap()
            .contains("421-4.7.28 Our system"),
        "{reason}"
    );
}

#[test]
fn gz_files_and_standard_input_count_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = LOG.split_at(LOG.find("Nov 29 16:11:00").unwrap());
    let gz = write(dir.path(), "mail.log.1.gz", &gzip(first.as_bytes()));
    let plain = write(dir.path(), "mail.log", second.as_bytes());
    Probe::new()
        .arg("maillog")
        .arg(&gz)
        .arg(&plain)
        .expect_exit(0)
        .stdout_line("delivered 2  deferred 1  bounced 1  rejected 1  expired 1")
        .stdout_has("ratelimited")
        .run();

    let ran = Probe::new()
        .args(["maillog", "-"])
        .stdin(LOG)
        .expect_exit(0)
        .run();
    assert!(
        ran.stdout()
            .starts_with("delivered 2  deferred 1  bounced 1  rejected 1  expired 1\n"),
        "{}",
        ran.show()
    );
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "mail.log", LOG.as_bytes());
    let missing = dir.path().join("gone.log");
    // (extra arguments, exit code, text on stderr)
    let rows: &[(&[&str], i32, &str)] = &[
        // outlook bounced 1 of 1: 100% > 50
        (
            &["--fail-over", "50"],
            1,
            "outlook: 0.0% deferred, 100.0% bounced (over 50%)",
        ),
        (&["--fail-over", "100"], 0, ""),
        (&["--since", "2026-11-29T16:12"], 0, ""),
        (
            &["--since", "last tuesday"],
            2,
            "--since \"last tuesday\": expected a date",
        ),
        (
            &["--fail-over", "150"],
            2,
            "not a percentage between 0 and 100",
        ),
    ];
    for (extra, code, stderr) in rows {
        Probe::new()
            .arg("maillog")
            .args(extra.iter())
            .arg(&log)
            .expect_exit(*code)
            .stderr_has(*stderr)
            .run();
    }
    // An unreadable file is named, and nothing is printed: a partial summary would pass for
    // a whole one.
    Probe::new()
        .arg("maillog")
        .arg(&log)
        .arg(&missing)
        .expect_exit(2)
        .stderr_has(format!("probe: error: {}: ", missing.display()))
        .stdout_is_empty()
        .run();
    let broken = write(dir.path(), "broken.gz", &gzip(LOG.as_bytes())[..40]);
    Probe::new()
        .arg("maillog")
        .arg(&broken)
        .expect_exit(2)
        .stderr_has(format!("probe: error: {}: ", broken.display()))
        .run();
}

#[test]
fn garbage_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    bytes.push(b'\n');
    bytes.extend_from_slice(LOG.as_bytes());
    let log = write(dir.path(), "mixed.log", &bytes);
    Probe::new()
        .arg("maillog")
        .arg(&log)
        .expect_exit(0)
        .stdout_line("delivered 2  deferred 1  bounced 1  rejected 1  expired 1")
        .run();
}
