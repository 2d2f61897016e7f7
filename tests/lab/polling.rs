//! Polling against the lab: IDLE finds a message long before the poll interval, a Dovecot
//! restart mid-poll is survived, a 100,000-message mailbox is searched from its UIDNEXT only,
//! one IMAP connection is handed over between accounts. (Gmail's tabs: top-level `polling`.)
//!
//! To control when a message reaches its mailbox, probe sends to the kit's holding SMTP
//! server, and the test hands the message to the lab's Postfix when it is time.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::lab::{disrupt, lab_sh, steady};
use crate::support::net::wait_for;
use crate::support::smtp::{Held, Holder, hand_over};
use crate::support::{Probe, Seed, Seeds, show_output};

/// Hands a held message to the lab's Postfix (127.0.0.1:2525), which delivers it to Dovecot.
fn deliver(held: &Held) {
    hand_over(
        "127.0.0.1:2525",
        "EHLO",
        "probe@sender.lab.test",
        &held.rcpt,
        held,
    );
}

/// Rows of one column from the store probe writes (it may still be writing).
fn query(dir: &Path, sql: &str) -> Vec<String> {
    let Ok(db) = rusqlite::Connection::open(dir.join("store.sqlite")) else {
        return Vec::new();
    };
    let _ = db.busy_timeout(Duration::from_secs(5));
    let Ok(mut stmt) = db.prepare(sql) else {
        return Vec::new();
    };
    stmt.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// A lab config with its own poll interval and timeout.
fn config(seeds: impl IntoIterator<Item = Seed>, interval: &str, timeout: &str) -> Seeds {
    Seeds::lab(timeout)
        .lab_sender()
        .timing("poll_interval", interval)
        .seeds(seeds)
}

/// The lab's inbox seed, sending to `mx`.
fn inbox_via(mx: &str) -> Seed {
    Seed::new("inbox", "inbox@inbox.lab.test")
        .lab_imap("inbox")
        .mx(mx)
}

/// The first INBOX search is done when its scope is on record (events are stored after the
/// round that produced them).
fn inbox_searched(dir: &Path) -> Option<()> {
    let found = query(
        dir,
        "SELECT detail FROM observations WHERE kind = 'search' AND detail LIKE '%\"INBOX\"%'",
    );
    (!found.is_empty()).then_some(())
}

#[test]
fn idle_finds_new_mail_long_before_the_poll_interval() {
    let holder = Holder::start();
    // Without IDLE nothing would be searched again before the 25 s deadline.
    let seeds = config([inbox_via(&holder.mx())], "30s", "25s");
    let probe = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0);
    let _steady = steady();
    let started = Instant::now();
    let running = probe.spawn();
    let held = holder.next();
    // The message reaches the mailbox only after the first round searched it in vain.
    wait_for("first INBOX search", Duration::from_secs(20), || {
        inbox_searched(running.dir())
    });
    deliver(&held);
    let out = running.finish(Duration::from_secs(40));
    let took = started.elapsed();
    assert_eq!(out.message("inbox")["verdict"], "inbox");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: {}",
        out.show()
    );
}

#[test]
fn a_dovecot_restart_mid_poll_is_survived() {
    let holder = Holder::start();
    let seeds = config([inbox_via(&holder.mx())], "1s", "60s");
    let sent = Probe::new()
        .lab()
        .args(["send", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let dir = sent.dir();
    let held = holder.next();

    let running = Probe::in_dir(dir)
        .args(["poll", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .spawn();
    wait_for("first INBOX search", Duration::from_secs(20), || {
        inbox_searched(dir)
    });
    {
        let _alone = disrupt();
        let out = lab_sh("restart-dovecot");
        assert!(
            out.status.success(),
            "restart-dovecot: {}",
            show_output(&out)
        );
    }
    // Delivered only now, so only a poll that came back can find it.
    let _steady = steady();
    deliver(&held);
    let out = running.finish(Duration::from_secs(60));
    assert_eq!(out.message("inbox")["verdict"], "inbox");
    let reconnects = query(
        dir,
        "SELECT detail FROM observations WHERE kind = 'reconnect' AND seed = 'inbox'",
    );
    assert!(
        !reconnects.is_empty(),
        "no reconnect recorded: {}",
        out.show()
    );
}

#[test]
fn a_big_mailbox_is_searched_from_its_uidnext_only() {
    crate::support::lab::ensure_lab();
    let fill = lab_sh("fill-big");
    assert!(fill.status.success(), "fill-big: {}", show_output(&fill));
    let out = Probe::new()
        .args(["run", "--all", "--json"])
        .config(&Seeds::lab("20s").lab_sender().seed(Seed::lab("big")))
        .expect_exit(0)
        .run();
    assert_eq!(out.message("big")["verdict"], "inbox");
    let dir = out.dir();

    let uidnext = query(
        dir,
        "SELECT CAST(uidnext AS TEXT) FROM positions WHERE seed = 'big' AND folder = 'INBOX'",
    );
    let uidnext: u32 = uidnext
        .first()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| {
            panic!("no INBOX position stored: {}", out.show());
        });
    assert!(
        uidnext > 100_000,
        "the mailbox is not big: UIDNEXT {uidnext}"
    );
    // Every search of every folder was limited to what arrived after the positions.
    let scopes = query(
        dir,
        "SELECT json_extract(detail, '$.folder') || ' ' || json_extract(detail, '$.scope.mode') \
         || ' ' || ifnull(json_extract(detail, '$.scope.from'), '') \
         FROM observations WHERE kind = 'search' ORDER BY id",
    );
    assert!(
        scopes.contains(&format!("INBOX uid {uidnext}")),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().all(|s| s.split(' ').nth(1) == Some("uid")),
        "{scopes:?}"
    );
}

#[test]
fn one_connection_is_handed_over_between_accounts() {
    // With room for a single IMAP connection, an account idling for a message that never
    // comes (the discarding provider) must hand the connection to the other account instead
    // of holding it until its timeout.
    let seeds = config([Seed::lab("discard"), Seed::lab("inbox")], "30s", "12s")
        .timing("imap_connections", "1");
    let out = Probe::new()
        .lab()
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let json = out.json();
    assert_eq!(
        crate::support::message_for(&json, "discard")["verdict"],
        "missing"
    );
    let inbox = crate::support::message_for(&json, "inbox");
    assert_eq!(inbox["verdict"], "inbox", "{inbox:#}");
    let latency = inbox["latency_ms"].as_u64().unwrap();
    assert!(
        latency < 8_000,
        "inbox waited for the other account: {latency} ms"
    );
}
