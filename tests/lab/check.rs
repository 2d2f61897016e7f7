//! `probe check` against the lab's DNS (docker/lab/dns/dnsmasq.conf, "probe check" block):
//! hosts 192.0.2.2 (PTR and A agree), 192.0.2.3 (PTR name without address), 192.0.2.9 (no
//! PTR, listed); the sender domains sender.lab.test (SPF for 127.0.0.1 and .2, DMARC reject,
//! DKIM keys, MTA-STS) and badsender.lab.test (null MX, broken DMARC, listed); lab list zones
//! replacing the built-in set, which is never asked. Only the lab's dnsmasq (and, for the
//! timeout, a silent loopback socket) is ever queried.

use std::net::UdpSocket;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Probe, Ran, Seed, Seeds};

/// The lab's list zones, in `probe check --lists` format. `bl.unserved.test` lies outside
/// lab.test: dnsmasq answers REFUSED for it.
const LAB_LISTS: &str = "\
# the lab's DNS lists (docker/lab/dns/dnsmasq.conf)
list\tLab ZEN\tzen.lab.test\tip\tblock\tspamhaus-zen
list\tLab refusing list\trefused.lab.test\tip\tblock\tspamhaus-zen
list\tLab DBL\tdbl.lab.test\tdomain\tblock\tspamhaus-dbl
list\tLab WL\twl.lab.test\tip\tallow\tdnswl
list\tUnserved\tbl.unserved.test\tip\tblock\t-
";

/// The lab sender through the lab's DNS, EHLO mta.sender.lab.test.
fn lab_seeds() -> Seeds {
    Seeds::lab("5s")
        .lab_sender()
        .via_lab_dns()
        .ehlo("mta.sender.lab.test")
        .seed(Seed::lab("inbox"))
}

struct Lists {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn lab_lists() -> Lists {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab-lists.tsv");
    std::fs::write(&path, LAB_LISTS).unwrap();
    Lists { _dir: dir, path }
}

/// `probe check --json --source-ip IP --lists <lab lists> ARGS`.
fn check(seeds: &Seeds, ip: &str, args: &[&str]) -> Ran {
    let lists = lab_lists();
    let out = Probe::new()
        .lab()
        .args(["check", "--json", "--source-ip", ip, "--lists"])
        .arg(&lists.path)
        .args(args)
        .config(seeds)
        .run();
    assert!(matches!(out.code(), Some(0 | 1)), "{}", out.show());
    out
}

/// The one result of `kind` (and `list`, for list checks).
#[track_caller]
fn result<'a>(json: &'a Value, kind: &str, list: Option<&str>) -> &'a Value {
    let found: Vec<&Value> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["check"] == kind && list.is_none_or(|l| r["list"] == l))
        .collect();
    assert_eq!(found.len(), 1, "{kind} {list:?} in {json:#}");
    found[0]
}

#[track_caller]
fn expect(json: &Value, kind: &str, list: Option<&str>, status: &str, detail: &str) {
    let r = result(json, kind, list);
    assert_eq!(r["status"], status, "{kind} {list:?}: {r:#}");
    let text = r["detail"].as_str().unwrap();
    assert!(text.contains(detail), "{kind}: {text:?} lacks {detail:?}");
}

#[test]
fn ptr_fcrdns_and_ehlo_pass_warn_and_fail() {
    let seeds = lab_seeds();
    let good = check(&seeds, "192.0.2.2", &[]).json();
    assert_eq!(good["source_ip"], "192.0.2.2");
    assert_eq!(good["domain"], "sender.lab.test");
    expect(
        &good,
        "ptr",
        None,
        "pass",
        "192.0.2.2 -> mta.sender.lab.test",
    );
    expect(
        &good,
        "fcrdns",
        None,
        "pass",
        "mta.sender.lab.test resolves back to 192.0.2.2",
    );
    expect(
        &good,
        "ehlo",
        None,
        "pass",
        "mta.sender.lab.test resolves to 192.0.2.2",
    );

    let stale = check(&seeds, "192.0.2.3", &[]).json();
    expect(&stale, "ptr", None, "pass", "stale.sender.lab.test");
    expect(
        &stale,
        "fcrdns",
        None,
        "fail",
        "stale.sender.lab.test has no address record",
    );
    expect(
        &stale,
        "ehlo",
        None,
        "warn",
        "resolves to 192.0.2.2, not 192.0.2.3",
    );

    let none = check(
        &seeds.clone().ehlo("nothere.sender.lab.test"),
        "192.0.2.9",
        &[],
    )
    .json();
    expect(&none, "ptr", None, "fail", "192.0.2.9 has no PTR record");
    expect(&none, "fcrdns", None, "fail", "no PTR name");
    expect(
        &none,
        "ehlo",
        None,
        "fail",
        "nothere.sender.lab.test does not resolve",
    );
}

#[test]
fn spf_is_evaluated_for_the_ip() {
    let seeds = lab_seeds();
    let pass = check(&seeds, "127.0.0.2", &[]).json();
    expect(
        &pass,
        "spf",
        None,
        "pass",
        "127.0.0.2 may send for sender.lab.test",
    );
    let fail = check(&seeds, "127.0.0.3", &[]).json();
    let spf = result(&fail, "spf", None);
    assert_eq!(spf["status"], "fail", "{spf:#}");
    assert_eq!(spf["subject"], "sender.lab.test");
    assert!(
        spf["detail"]
            .as_str()
            .unwrap()
            .contains("(v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all)"),
        "{spf:#}"
    );
}

#[test]
fn dkim_dmarc_mx_and_mta_sts_of_the_sender_domain() {
    let seeds = lab_seeds();
    let good = check(&seeds, "192.0.2.2", &["--dkim-selector", "lab"]).json();
    expect(
        &good,
        "dkim",
        None,
        "pass",
        "rsa public key published at lab._domainkey.sender.lab.test",
    );
    expect(&good, "dmarc", None, "pass", "p=reject");
    expect(&good, "dmarc", None, "pass", "d=sender.lab.test: aligned");
    expect(&good, "mx", None, "pass", "MX 10 mx.lab.test");
    expect(&good, "mta-sts", None, "pass", "id=20261129T000000");
    let revoked = check(&seeds, "192.0.2.2", &["--dkim-selector", "revoked"]).json();
    expect(&revoked, "dkim", None, "fail", "revoked");
    let missing = check(&seeds, "192.0.2.2", &["--dkim-selector", "gone"]).json();
    expect(
        &missing,
        "dkim",
        None,
        "fail",
        "no key record at gone._domainkey.sender.lab.test",
    );
    // Without a selector there is no DKIM check at all.
    let none = check(&seeds, "192.0.2.2", &[]).json();
    assert!(
        none["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["check"] != "dkim")
    );

    let bad = lab_seeds().from("\"Bad <probe@badsender.lab.test>\"");
    let bad = check(&bad, "192.0.2.2", &[]).json();
    assert_eq!(bad["domain"], "badsender.lab.test");
    expect(&bad, "dmarc", None, "fail", "p=block");
    expect(&bad, "mx", None, "warn", "null MX");
    expect(&bad, "mta-sts", None, "warn", "malformed");
    expect(&bad, "spf", None, "warn", "publishes no SPF record");

    let nowhere = lab_seeds().from("probe@nosuch.lab.test");
    let nowhere = check(&nowhere, "192.0.2.2", &[]).json();
    expect(
        &nowhere,
        "mx",
        None,
        "fail",
        "nosuch.lab.test does not exist",
    );
    expect(&nowhere, "dmarc", None, "warn", "no DMARC record");
}

#[test]
fn lists_listed_not_listed_refused_and_allowed() {
    let seeds = lab_seeds();
    let listed = check(&seeds, "192.0.2.9", &[]);
    assert_eq!(listed.code(), Some(1), "{}", listed.show());
    let json = listed.json();
    let zen = result(&json, "dnsbl", Some("zen.lab.test"));
    assert_eq!(zen["status"], "fail", "{zen:#}");
    assert_eq!(zen["code"], "127.0.0.2");
    assert_eq!(zen["subject"], "192.0.2.9");
    let detail = zen["detail"].as_str().unwrap();
    assert!(
        detail.contains("SBL: manual spam-source listing"),
        "{detail}"
    );
    assert!(
        detail.contains("https://lab.test/lookup?ip=192.0.2.9"),
        "{detail}"
    );
    // A refusal code is an error, never a listing.
    let refused = result(&json, "dnsbl", Some("refused.lab.test"));
    assert_eq!(refused["status"], "error", "{refused:#}");
    assert_eq!(refused["code"], "127.255.255.254");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("public or open resolver")
    );
    // A DNS-level refusal (REFUSED) is one too, naming the server.
    expect(
        &json,
        "dnsbl",
        Some("bl.unserved.test"),
        "error",
        "127.0.0.1:5353 answered",
    );
    expect(&json, "dnsbl", Some("bl.unserved.test"), "error", "Refused");
    expect(&json, "dnsbl", Some("dbl.lab.test"), "pass", "not listed");
    expect(&json, "dnswl", Some("wl.lab.test"), "pass", "not on Lab WL");

    let clean = check(&seeds, "192.0.2.2", &[]).json();
    expect(
        &clean,
        "dnsbl",
        Some("zen.lab.test"),
        "pass",
        "not listed on Lab ZEN",
    );
    let wl = result(&clean, "dnswl", Some("wl.lab.test"));
    assert_eq!(wl["status"], "pass", "{wl:#}");
    assert_eq!(wl["code"], "127.0.15.3");
    assert!(
        wl["detail"].as_str().unwrap().contains("trust high"),
        "{wl:#}"
    );
    let blocked = check(&seeds, "192.0.2.3", &[]).json();
    let wl = result(&blocked, "dnswl", Some("wl.lab.test"));
    assert_eq!(
        (wl["status"].as_str(), wl["code"].as_str()),
        (Some("error"), Some("127.0.0.255"))
    );

    let bad = lab_seeds().from("probe@badsender.lab.test");
    let bad = check(&bad, "192.0.2.2", &[]).json();
    let dbl = result(&bad, "dnsbl", Some("dbl.lab.test"));
    assert_eq!(
        (dbl["status"].as_str(), dbl["code"].as_str()),
        (Some("fail"), Some("127.0.1.2"))
    );
    assert_eq!(dbl["subject"], "badsender.lab.test");
}

#[test]
fn a_silent_resolver_makes_every_check_an_error() {
    // A loopback UDP socket that never answers: every lookup runs into the timeout.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let seeds = Seeds::lab("5s")
        .lab_sender()
        .sender("resolver", &format!("\"127.0.0.1:{port}\""))
        .seed(Seed::lab("inbox"));
    let lists = lab_lists();
    let out = Probe::new()
        .args([
            "check",
            "--json",
            "--source-ip",
            "192.0.2.2",
            "--timeout",
            "300ms",
        ])
        .args(["--dkim-selector", "lab", "--lists"])
        .arg(&lists.path)
        .config(&seeds)
        .expect_exit(0)
        .stderr_has("could not be made")
        .run();
    let json = out.json();
    let results = json["results"].as_array().unwrap();
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    for kind in [
        "ptr", "fcrdns", "ehlo", "spf", "dkim", "dmarc", "mx", "mta-sts", "dnsbl", "dnswl",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {json:#}");
    }
    for r in results {
        assert_eq!(r["status"], "error", "{r:#}");
    }
    let ptr = result(&json, "ptr", None);
    assert!(
        ptr["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("no answer from 127.0.0.1:{port} within 300ms")),
        "{ptr:#}"
    );
}

#[test]
fn the_table_and_bad_input() {
    let lists = lab_lists();
    let seeds = lab_seeds();
    Probe::new()
        .lab()
        .args(["check", "--source-ip", "192.0.2.9", "--lists"])
        .arg(&lists.path)
        .config(&seeds)
        .expect_exit(1)
        .stdout_has("source IP 192.0.2.9, domain sender.lab.test")
        .stdout_has("CHECK")
        .stdout_has("zen.lab.test")
        .stdout_has(" fail, ")
        .run();
    // A lists file with a mistake: exit 2, the file and line named, nothing asked.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tsv");
    std::fs::write(
        &bad,
        "list\tX\tx.lab.test\tip\tblock\tspamhaus-zen\nlist\tY\n",
    )
    .unwrap();
    Probe::new()
        .args(["check", "--source-ip", "192.0.2.2", "--lists"])
        .arg(&bad)
        .config(&seeds)
        .expect_exit(2)
        .stderr_has("bad.tsv, line 2")
        .run();
    Probe::new()
        .args(["check", "--source-ip", "not-an-ip"])
        .config(&seeds)
        .expect_exit(2)
        .run();
}

#[test]
fn the_config_can_replace_the_lists() {
    let seeds = lab_seeds();
    let yaml = format!(
        "{}checks:\n  lists:\n    - zone: zen.lab.test\n      kind: ip\n      name: Lab ZEN\n      codes: spamhaus-zen\n    - zone: wl.lab.test\n      kind: ip\n      role: allow\n      codes: dnswl\n",
        seeds.yaml()
    );
    let out = Probe::new()
        .lab()
        .args(["check", "--json", "--source-ip", "192.0.2.9"])
        .config_text(yaml)
        .expect_exit(1)
        .run();
    let json = out.json();
    let lists: Vec<&str> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["list"].as_str())
        .collect();
    assert_eq!(lists, ["zen.lab.test", "wl.lab.test"], "{json:#}");
    expect(&json, "dnsbl", Some("zen.lab.test"), "fail", "SBL");

    // A zone that is no DNS name, and a code set nobody defines: exit 2, the field named.
    let bad_zone = format!(
        "{}checks:\n  lists:\n    - zone: \"not a zone\"\n      kind: ip\n",
        seeds.yaml()
    );
    Probe::new()
        .args(["check", "--source-ip", "192.0.2.2"])
        .config_text(bad_zone)
        .expect_exit(2)
        .stderr_has("checks.lists[0].zone")
        .run();
    let bad_codes = format!(
        "{}checks:\n  lists:\n    - zone: zen.lab.test\n      kind: ip\n      codes: spamhaus-zne\n",
        seeds.yaml()
    );
    Probe::new()
        .args(["check", "--source-ip", "192.0.2.2"])
        .config_text(bad_codes)
        .expect_exit(2)
        .stderr_has("spamhaus-zne")
        .run();
}

#[test]
fn the_dkim_record_is_compared_with_the_private_key() {
    let keys = crate::support::lab::lab_dir().join("dkim/sender.lab.test");
    let seeds = lab_seeds();
    let key = |selector: &str, file: &str| {
        let path = keys.join(file);
        let args = [
            "--dkim-selector",
            selector,
            "--dkim-key",
            path.to_str().unwrap(),
        ];
        check(&seeds, "192.0.2.2", &args).json()
    };
    expect(
        &key("lab", "lab.key"),
        "dkim",
        None,
        "pass",
        "matches the private key",
    );
    expect(
        &key("ed", "ed.key"),
        "dkim",
        None,
        "pass",
        "matches the private key",
    );
    expect(
        &key("lab", "ed.key"),
        "dkim",
        None,
        "fail",
        "not the public half",
    );
    // A file that is no key: exit 2, and nothing of it is echoed.
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "secret-looking-content-Q9").unwrap();
    Probe::new()
        .args([
            "check",
            "--source-ip",
            "192.0.2.2",
            "--dkim-selector",
            "lab",
            "--dkim-key",
        ])
        .arg(&bogus)
        .config(&seeds)
        .expect_exit(2)
        .stderr_has("holds no PEM private key")
        .output_lacks("secret-looking-content-Q9")
        .run();
}
