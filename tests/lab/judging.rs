//! A provider that judges (issue 10 part 2): the lab's rspamd checks SPF, DKIM and DMARC of
//! probe's messages against the lab's DNS, on the judging MX 127.0.0.4:2525
//! (`docker/lab/lab.sh`). The sender's domain sender.lab.test publishes SPF for 127.0.0.1 and
//! 127.0.0.2 (not 127.0.0.3) and DMARC `p=reject`; these messages are not signed, so DKIM is
//! `none` and DMARC rests on SPF alone.

use serde_json::Value;

use crate::support::{Probe, Seed, Seeds, message_for};

/// The judging listener of the lab's provider Postfix (rspamd as its milter).
const JUDGE_MX: &str = "127.0.0.4:2525";

/// Runs `probe run --all --json` from `source_ip` to the judged seeds `locals`
/// (`LOCAL@LOCAL.lab.test` through the judging MX) and returns the report.
fn judged_run(source_ip: &str, locals: &[&str]) -> Value {
    run_judged(
        Seeds::lab("10s")
            .lab_sender()
            .sender("source_ip", source_ip),
        locals,
    )
}

/// Runs `probe run --all --json` with `seeds` plus the judged seeds `locals`.
fn run_judged(seeds: Seeds, locals: &[&str]) -> Value {
    let seeds = seeds.seeds(locals.iter().map(|l| {
        Seed::new(l, &format!("{l}@{l}.lab.test"))
            .lab_imap(l)
            .mx(JUDGE_MX)
    }));
    let out = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .run();
    assert!(matches!(out.code(), Some(0 | 1)), "{}", out.show());
    out.json()
}

/// The result of `method` in the message's first Authentication-Results from the lab's MX.
fn auth<'a>(m: &'a Value, method: &str) -> &'a Value {
    let results = m["authentication"]
        .as_array()
        .unwrap_or_else(|| panic!("no authentication in {m:#}"));
    let ours = results
        .iter()
        .find(|r| r["authserv_id"] == "mx.lab.test")
        .unwrap_or_else(|| panic!("no Authentication-Results from mx.lab.test in {m:#}"));
    ours["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == method)
        .unwrap_or_else(|| panic!("no {method} result in {m:#}"))
}

/// The raw header fields probe kept as evidence, by name.
fn evidence_fields<'a>(m: &'a Value, name: &str) -> Vec<&'a str> {
    m["headers"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter(|f| f[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .filter_map(|f| f[1].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// The value(s) of a header field probe kept as evidence (rspamd writes each once).
fn kept_field(m: &Value, name: &str) -> String {
    evidence_fields(m, name).join("\n")
}

/// rspamd's score from its X-Spamd-Result (`default: False [4.10 / 6.00]; ...`).
fn spamd_score(spamd: &str) -> f64 {
    let start = spamd.find('[').expect("score in X-Spamd-Result") + 1;
    let score = spamd[start..].split(" /").next().unwrap();
    score
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {spamd}"))
}

#[test]
fn judged_inbox_carries_rspamds_authentication_results() {
    let json = judged_run("127.0.0.1", &["judged", "authjunk", "dmarc"]);
    for seed in ["judged", "authjunk", "dmarc"] {
        let m = message_for(&json, seed);
        // SPF passes for 127.0.0.1, DMARC passes on aligned SPF, and nobody files it away.
        assert_eq!(m["verdict"], "inbox", "{seed}: {m:#}");
        assert_eq!(m["folder"], "INBOX", "{seed}: {m:#}");
        assert_eq!(m["smtp"]["code"], 250, "{seed}: {m:#}");
        assert_eq!(auth(m, "spf")["result"], "pass", "{seed}: {m:#}");
        assert_eq!(auth(m, "dkim")["result"], "none", "{seed}: {m:#}");
        assert_eq!(auth(m, "dmarc")["result"], "pass", "{seed}: {m:#}");
        assert_eq!(m["spam"]["flag"], false, "{seed}: {m:#}");
    }
    let m = message_for(&json, "judged");
    let spf = auth(m, "spf");
    assert!(
        spf["properties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[0] == "smtp.mailfrom" && p[1] == "probe@sender.lab.test"),
        "{spf:#}"
    );
    let ar = evidence_fields(m, "Authentication-Results");
    assert!(
        ar.iter().any(|v| v.starts_with("mx.lab.test;")
            && v.contains("designates 127.0.0.1 as permitted sender")),
        "{m:#}"
    );
    // rspamd's score and symbols, below its "add header" threshold (6): no X-Spam.
    let spamd = kept_field(m, "X-Spamd-Result");
    assert!(spamd_score(&spamd) < 6.0, "{spamd}");
    assert!(spamd.contains("R_SPF_ALLOW"), "{spamd}");
    assert!(spamd.contains("DMARC_POLICY_ALLOW"), "{spamd}");
    assert!(spamd.contains("R_DKIM_NA"), "{spamd}");
    let x_spam = kept_field(m, "X-Spam");
    assert!(!x_spam.contains("Yes"), "{x_spam}");
}

#[test]
fn spf_failure_lands_in_junk_and_scores_high() {
    let json = judged_run("127.0.0.3", &["judged", "authjunk"]);

    // The domain that files by rspamd's results: SPF failed, so the junk folder (\Junk).
    let m = message_for(&json, "authjunk");
    assert_eq!(m["verdict"], "spam", "{m:#}");
    assert_eq!(m["folder"], "Filtered", "{m:#}");
    assert_eq!(m["smtp"]["code"], 250, "{m:#}");
    assert_eq!(auth(m, "spf")["result"], "fail", "{m:#}");
    assert_eq!(auth(m, "dkim")["result"], "none", "{m:#}");
    assert_eq!(auth(m, "dmarc")["result"], "fail", "{m:#}");
    // The receiver's own results say SPF and DMARC failed: that, not content, is the cause.
    assert_eq!(m["cause"]["reason"], "authfailure", "{m:#}");
    assert_eq!(m["cause"]["source"], "folder", "{m:#}");

    // The domain that only adds rspamd's fields: INBOX, but rspamd's score passed its "add
    // header" threshold (6), so the milter added "X-Spam: Yes".
    let m = message_for(&json, "judged");
    assert_eq!(m["folder"], "INBOX", "{m:#}");
    assert_eq!(auth(m, "spf")["result"], "fail", "{m:#}");
    assert_eq!(auth(m, "dmarc")["result"], "fail", "{m:#}");
    let spamd = kept_field(m, "X-Spamd-Result");
    assert!(spamd_score(&spamd) >= 6.0, "{spamd}");
    assert!(spamd.contains("R_SPF_FAIL"), "{spamd}");
    assert!(spamd.contains("DMARC_POLICY_REJECT"), "{spamd}");
    assert!(kept_field(m, "X-Spam").contains("Yes"), "{m:#}");
    // In the inbox with rspamd's mark: spam_tagged, the mark named, the score read.
    assert_eq!(m["verdict"], "spam_tagged", "{m:#}");
    assert!(
        m["reason"].as_str().is_some_and(|r| r.contains("X-Spam")),
        "{m:#}"
    );
    assert!(
        m["spam"]["score"].as_f64().is_some_and(|s| s >= 6.0),
        "{m:#}"
    );
    assert_eq!(m["cause"]["reason"], "authfailure", "{m:#}");
    assert_eq!(m["cause"]["source"], "header", "{m:#}");
}

#[test]
fn dmarc_reject_is_refused_at_end_of_data_with_5_7_26() {
    let json = judged_run("127.0.0.3", &["dmarc"]);
    let m = message_for(&json, "dmarc");
    assert_eq!(m["verdict"], "rejected", "{m:#}");
    assert_eq!(m["smtp"]["code"], 550, "{m:#}");
    assert_eq!(m["smtp"]["enhanced"], "5.7.26", "{m:#}");
    assert_eq!(m["smtp"]["stage"], "data_end", "{m:#}");
    assert!(
        m["smtp"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("DMARC policy")),
        "{m:#}"
    );
    assert_eq!(m["folder"], Value::Null, "{m:#}");
    // No provider named: the generic rules read the words.
    assert_eq!(m["cause"]["reason"], "authfailure", "{m:#}");
    assert_eq!(m["cause"]["source"], "smtp", "{m:#}");
}

/// The same three judged seeds from 127.0.0.3 (outside the sender's SPF), signed with the
/// lab's DKIM key (selector `sel`) when given.
fn judged_run_signed(selector: Option<&str>) -> Value {
    let mut seeds = Seeds::lab("10s")
        .lab_sender()
        .sender("source_ip", "127.0.0.3");
    if let Some(sel) = selector {
        let key = crate::support::lab::lab_dir().join(format!("dkim/sender.lab.test/{sel}.key"));
        seeds = seeds.sender(
            "dkim",
            &format!(
                "{{ domain: sender.lab.test, selector: {sel}, private_key: {{ file: {} }} }}",
                key.display()
            ),
        );
    }
    run_judged(seeds, &["judged", "authjunk", "dmarc"])
}

/// Issue 10: what signing changes at a provider that judges. From an address the sender's
/// SPF does not cover, an unsigned message fails DMARC and is refused by the `p=reject`
/// domain; the same message signed by probe with the lab's key (RSA and Ed25519) passes DKIM
/// and, aligned, DMARC, and is accepted. (SPF still fails, so rspamd's score stays high and
/// the domain that files on any SPF failure still files it as junk: signing is not a cure
/// for a sending IP outside SPF.)
#[test]
fn a_signed_message_passes_dkim_and_dmarc_where_an_unsigned_one_fails() {
    let unsigned = judged_run_signed(None);
    let m = message_for(&unsigned, "dmarc");
    assert_eq!(m["verdict"], "rejected", "{m:#}");
    assert_eq!(m["smtp"]["enhanced"], "5.7.26", "{m:#}");
    let m = message_for(&unsigned, "judged");
    assert_eq!(auth(m, "dkim")["result"], "none", "{m:#}");
    assert_eq!(auth(m, "dmarc")["result"], "fail", "{m:#}");

    for selector in ["lab", "ed"] {
        let signed = judged_run_signed(Some(selector));
        for seed in ["judged", "authjunk", "dmarc"] {
            let m = message_for(&signed, seed);
            assert_eq!(auth(m, "spf")["result"], "fail", "{selector} {seed}: {m:#}");
            assert_eq!(
                auth(m, "dkim")["result"],
                "pass",
                "{selector} {seed}: {m:#}"
            );
            assert_eq!(
                auth(m, "dmarc")["result"],
                "pass",
                "{selector} {seed}: {m:#}"
            );
        }
        let m = message_for(&signed, "dmarc");
        assert_eq!(m["smtp"]["code"], 250, "{selector}: {m:#}");
        assert_eq!(m["folder"], "INBOX", "{selector}: {m:#}");
        let spamd = kept_field(message_for(&signed, "judged"), "X-Spamd-Result");
        assert!(spamd.contains("R_DKIM_ALLOW"), "{selector}: {spamd}");
    }
}
