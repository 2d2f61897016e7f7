//! Each send outcome is in the store before the next message is sent: a probe killed while a
//! later server stalls has already recorded the earlier messages.

use std::time::Duration;

use seedprobe::store::{SendState, Store};

use crate::support::net::{Sentinel, wait_for};
use crate::support::{Probe, Seed, Seeds};

#[test]
fn outcomes_are_committed_one_by_one() {
    // The second seed's "MX" accepts the connection and never says a word.
    let staller = Sentinel::new();
    let seeds = Seeds::new().timing("smtp_timeout", "60s").seeds([
        Seed::new("first", "inbox@inbox.lab.test")
            .mx("127.0.0.1:2525")
            .lab_imap("inbox"),
        Seed::new("second", "inbox@inbox.lab.test")
            .mx(&staller.addr())
            .lab_imap("inbox"),
    ]);
    let mut running = Probe::new()
        .lab()
        .args(["send", "--all"])
        .config(&seeds)
        .spawn();

    // Wait (bounded) until the probe is stuck on the second seed.
    let conn = wait_for(
        "connection to the second MX",
        Duration::from_secs(30),
        || {
            if running.has_ended() {
                return Some(None);
            }
            staller.accept().map(Some)
        },
    );
    let out = running.kill();
    assert!(conn.is_some(), "probe exited early: {}", out.show());
    let dir = out.dir();

    let store = Store::open(&dir.join("store.sqlite")).unwrap();
    let run_id = store.latest_unfinished_run().unwrap();
    let messages = store.messages(&run_id).unwrap();
    // Both seeds are there: the first with its outcome, the second still queued (its server
    // never greeted, so no transaction of it began).
    assert_eq!(messages.len(), 2, "{}", out.show());
    let of = |seed: &str| messages.iter().find(|m| m.seed == seed).unwrap();
    assert_eq!(of("first").smtp.code, Some(250));
    assert_eq!(of("first").state, SendState::Sent);
    assert_eq!(of("second").state, SendState::Queued);
}
