//! IMAP servers that misbehave, scripted (the lab's Dovecot does none of this): what probe says
//! must be what happened, in the server's words, and what can be retried is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::imap::{FakeImap, Reply, RunningImap};
use crate::support::net::Sentinel;
use crate::support::smtp::Holder;
use crate::support::{Probe, Seed, Seeds};

/// A seed read from `port` on loopback without TLS, sending to `mx`.
fn seeds(port: u16, mx: &str) -> Seeds {
    Seeds::new()
        .timing("poll_interval", "1s")
        .timing("timeout", "2s")
        .timing("imap_timeout", "1s")
        .seed(
            Seed::new("plain", "user@plain.test")
                .mx(mx)
                .imap_server("127.0.0.1", port)
                .tls("none"),
        )
}

fn logins(imap: &RunningImap) -> usize {
    imap.lines()
        .iter()
        .filter(|l| l.to_ascii_uppercase().contains(" LOGIN "))
        .count()
}

/// Output that is Rust's `Debug`, not anything a server said.
const DEBUG_NOISE: [&str; 5] = [
    "code: None",
    "info: Some",
    "Error {",
    "TakeWhile",
    "Some(\"",
];

fn lacks_debug(mut probe: Probe) -> Probe {
    for noise in DEBUG_NOISE {
        probe = probe.stdout_lacks(noise).stderr_lacks(noise);
    }
    probe
}

#[test]
fn logindisabled_means_no_login_and_a_tls_hint() {
    let sentinel = Sentinel::new();
    // Advertised in the greeting (as Dovecot does), or only when asked.
    let in_greeting = FakeImap::new("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready")
        .reply("LOGIN", "{tag} NO Login only available under a layer\r\n")
        .start();
    let when_asked = FakeImap::new("* OK ready")
        .reply(
            "CAPABILITY",
            "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK done\r\n",
        )
        .reply("LOGIN", "{tag} NO Login only available under a layer\r\n")
        .start();
    for imap in [&in_greeting, &when_asked] {
        lacks_debug(Probe::new())
            .env("SEEDPROBE_TEST_PW", "pw-Kq3")
            .args(["seeds", "check"])
            .config(&seeds(imap.port, &sentinel.addr()))
            .expect_exit(1)
            .stdout_has("LOGINDISABLED")
            .stdout_has("hint: the server takes a password only over TLS: set `tls: starttls`")
            .stdout_lacks("check the username")
            .output_lacks("pw-Kq3")
            .run();
        assert_eq!(logins(imap), 0, "{:#?}", imap.lines());
    }
}

#[test]
fn refusals_and_garbage_read_as_the_server_wrote_them() {
    let sentinel = Sentinel::new();
    let refusing = FakeImap::new("* OK ready")
        .reply(
            "LOGIN",
            "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        )
        .start();
    lacks_debug(Probe::new())
        .env("SEEDPROBE_TEST_PW", "pw")
        .args(["seeds", "check"])
        .config(&seeds(refusing.port, &sentinel.addr()))
        .expect_exit(1)
        .stdout_has("refused: NO [AUTHENTICATIONFAILED] Authentication failed.")
        .run();
    let garbage = FakeImap::new("\u{0}\u{ff}garbage").start();
    lacks_debug(Probe::new())
        .env("SEEDPROBE_TEST_PW", "pw")
        .args(["seeds", "check"])
        .config(&seeds(garbage.port, &sentinel.addr()))
        .expect_exit(1)
        .stdout_has("unreadable response from the server: \\x00")
        .stdout_has("garbage")
        .run();
    assert!(!sentinel.was_contacted());
}

#[test]
fn a_connection_cut_at_the_greeting_or_handshake_is_named_as_such() {
    // Accepts and drops every connection: the handshake ends before it began.
    let dropper = Sentinel::new();
    let stop = Arc::new(AtomicBool::new(false));
    let port = dropper.port();
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            drop(dropper.accept());
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // (imap.tls, where the cut shows)
    for (tls, step) in [("implicit", "TLS handshake"), ("none", "greeting")] {
        let seeds = Seeds::new().timing("imap_timeout", "2s").seed(
            Seed::new("cut", "user@cut.test")
                .mx("127.0.0.1:9")
                .imap_server("127.0.0.1", port)
                .tls(tls),
        );
        lacks_debug(Probe::new())
            .env("SEEDPROBE_TEST_PW", "pw")
            .args(["seeds", "check"])
            .config(&seeds)
            .expect_exit(1)
            .stdout_has(format!("connection closed by the server at {step}"))
            .stdout_lacks("TLS failed")
            .stdout_lacks("refused")
            .run();
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
}

#[test]
fn a_connection_closed_at_login_is_retried_and_named() {
    let holder = Holder::start();
    // The first login (before sending) goes through; every later one is cut off.
    let first = Arc::new(AtomicBool::new(true));
    let imap = FakeImap::new("* OK ready")
        .on("LOGIN", move |_, cmd| {
            if first.swap(false, Ordering::SeqCst) {
                Reply::Send(format!("{} OK logged in\r\n", cmd.tag))
            } else {
                Reply::Close(String::new())
            }
        })
        .reply("LIST", "* LIST () \"/\" INBOX\r\n{tag} OK done\r\n")
        .start();
    let out = lacks_debug(Probe::new())
        .env("SEEDPROBE_TEST_PW", "pw")
        .args(["run", "--all"])
        .config(&seeds(imap.port, &holder.mx()))
        .expect_exit(3)
        .stderr_has("connection closed by the server at LOGIN")
        .stderr_lacks("refused")
        .stderr_lacks("every login failed")
        .spawn()
        .finish(Duration::from_secs(30));
    // Given up only when the timeout ran out, not at the first cut.
    assert!(logins(&imap) >= 3, "{:#?}\n{}", imap.lines(), out.show());
}

#[test]
fn a_stall_after_login_is_named_as_such() {
    let holder = Holder::start();
    let imap = FakeImap::new("* OK ready")
        .reply("LOGIN", "{tag} OK logged in\r\n")
        // Never answered.
        .on("LIST", |_, _| Reply::Send(String::new()))
        .start();
    lacks_debug(Probe::new())
        .env("SEEDPROBE_TEST_PW", "pw")
        .args(["run", "--all"])
        .config(&seeds(imap.port, &holder.mx()))
        .expect_exit(3)
        .stderr_has("no answer to LIST within the IMAP timeout (after login)")
        .stderr_lacks("every login failed")
        .spawn()
        .finish(Duration::from_secs(30));
}
