//! A DKIM-signed probe as the lab's Postfix delivered it and Dovecot stored it: dkimpy (with the
//! test key's record as its DNS) verifies the stored file, so neither the SMTP dot-stuffing nor
//! the MTA's handling broke the signature. (`dkim` has the same check on the bytes a holding
//! server received, without the lab.)

use crate::dkim::{BODY_YAML, dkimpy_verify, fixture, txt_record};
use crate::support::lab::lab_dir;
use crate::support::{Probe, Seed, Seeds};

#[test]
fn a_signed_probe_verifies_as_dovecot_stored_it() {
    let seeds = Seeds::lab("30s")
        .sender(
            "dkim",
            &format!(
                "{{ domain: example.org, selector: rsa, private_key: {{ file: {} }} }}",
                fixture("rsa.pem").display()
            ),
        )
        .message("body", BODY_YAML)
        .seed(Seed::lab("inbox"));
    let out = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let token = out.message("inbox")["token"].as_str().unwrap().to_owned();
    // Found over IMAP, so Dovecot has written the file by now.
    let maildir = lab_dir().join("mail/inbox.lab.test/inbox");
    let probe_id = format!("X-Probe-Id: {token}\n");
    let stored = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .flatten()
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .find(|bytes| String::from_utf8_lossy(bytes).contains(&probe_id))
        .unwrap_or_else(|| panic!("no file in {} has {probe_id:?}", maildir.display()));
    let text = String::from_utf8_lossy(&stored);
    assert!(
        text.contains("DKIM-Signature: v=1; a=rsa-sha256; s=rsa; d=example.org"),
        "{text}"
    );
    // Maildir keeps bare LF; the message travelled, and was signed, with CRLF.
    let wire = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if let Some(verdict) = dkimpy_verify(wire.as_bytes(), "rsa", &txt_record("rsa.txt")) {
        verdict.unwrap_or_else(|e| panic!("dkimpy refused the stored message: {e}\n{text}"));
    }
}
