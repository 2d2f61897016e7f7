//! Cyrus IMAP 3.6, the lab's second real IMAP server (`lab.sh`: 3143 plain with LOGINDISABLED,
//! 3993 implicit TLS, 3024 LMTP): its `\Junk` folder is `Quarantine`, shown only to
//! `LIST ... RETURN (SPECIAL-USE)` (`specialusealways: no`), beside a decoy `Spam`.

use crate::support::net::Sentinel;
use crate::support::smtp::{Held, Holder, hand_over};
use crate::support::{Password, Probe, Seed, Seeds};

/// The Cyrus user `seed`, on `port` with `tls`, sending to `mx`.
fn cyrus_seed(port: u16, tls: &str, mx: &str) -> Seed {
    Seed::new("cyrus", "seed@cyrus.lab.test")
        .mx(mx)
        .imap_server("127.0.0.1", port)
        .tls(tls)
        .imap_key("username", "seed")
        .password(Password::lab("cyrus-seed"))
        .ca_file(&crate::support::lab::lab_ca())
}

/// The part of `seeds check`'s report about the seed `cyrus`.
fn cyrus_block(text: &str) -> String {
    let start = text.find("cyrus (").unwrap_or_else(|| panic!("{text}"));
    text[start..]
        .lines()
        .take_while(|l| l.starts_with("cyrus") || l.starts_with("  "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hands a held message to Cyrus's lmtpd for `seed+Quarantine`, which files it into
/// Quarantine (the lab lets anyone post there).
pub(super) fn deliver_to_quarantine(held: &Held) {
    hand_over(
        "127.0.0.1:3024",
        "LHLO",
        "probe@example.org",
        "seed+Quarantine",
        held,
    );
}

#[test]
fn cyrus_quarantine_is_the_spam_folder_and_mail_there_is_spam() {
    let holder = Holder::start();
    let seeds = Seeds::lab("30s").seed(cyrus_seed(3993, "implicit", &holder.mx()));

    let checked = Probe::new()
        .lab()
        .args(["seeds", "check"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let block = cyrus_block(&checked.stdout());
    assert!(block.contains("login: ok"), "{block}");
    assert!(
        block.contains("spam folder: Quarantine (marked \\Junk by the server)"),
        "{block}"
    );
    assert!(!block.contains("spam folder: Spam"), "{block}");

    let sent = Probe::new()
        .lab()
        .args(["send", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let held = holder.next();
    assert_eq!(held.rcpt, "seed@cyrus.lab.test");
    deliver_to_quarantine(&held);

    let out = Probe::in_dir(sent.dir())
        .args(["poll", "--json"])
        .config(&seeds)
        // (exit 1: not every message reached the inbox)
        .expect_exit(1)
        .run();
    let m = out.message("cyrus");
    assert_eq!(m["verdict"], "spam", "{m:#}");
    assert_eq!(m["folder"], "Quarantine", "{m:#}");
}

#[test]
fn cyrus_logindisabled_means_no_login_and_a_tls_hint() {
    let sentinel = Sentinel::new();
    let plain = Seeds::lab("10s").seed(cyrus_seed(3143, "none", &sentinel.addr()));
    let out = Probe::new()
        .lab()
        .args(["seeds", "check"])
        .config(&plain)
        .expect_exit(1)
        .stdout_has("LOGINDISABLED")
        .stdout_has("hint: the server takes a password only over TLS: set `tls: starttls`")
        .stdout_lacks("check the username")
        .stdout_lacks("refused")
        .run();
    let password = crate::support::lab::password("cyrus-seed");
    assert!(
        !out.stdout().contains(&password) && !out.stderr().contains(&password),
        "{}",
        out.show()
    );
    // The hint is right: the same port with STARTTLS logs in.
    let starttls = Seeds::lab("10s").seed(cyrus_seed(3143, "starttls", &sentinel.addr()));
    let out = Probe::new()
        .lab()
        .args(["seeds", "check"])
        .config(&starttls)
        .expect_exit(0)
        .run();
    assert!(
        cyrus_block(&out.stdout()).contains("login: ok"),
        "{}",
        out.show()
    );
    assert!(!sentinel.was_contacted(), "seeds check must not send");
}
