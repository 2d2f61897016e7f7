//! Direct delivery as the receiving provider sees it: MX lookup through the lab's DNS, MX
//! fallback, implicit and null MX, the source address, one connection per MX.

use std::time::Duration;

use crate::support::net::wait_for;
use crate::support::{Probe, Seed, Seeds, message_for};

/// The lab's sender, sending through the lab's DNS to port 2525 of each MX.
fn via_lab_dns(timeout: &str) -> Seeds {
    Seeds::lab(timeout).lab_sender().via_lab_dns()
}

/// `probe ARGS` with `seeds`, lab started, in a fresh directory.
fn probe_with(seeds: &Seeds, args: &[&str]) -> Probe {
    Probe::new().lab().args(args).config(seeds)
}

#[test]
fn mx_lookup_fallback_implicit_and_null_mx() {
    // (seed, address, password of, verdict, hosts tried)
    let rows: &[(&str, &str, &str, &str, usize)] = &[
        ("inbox", "inbox@inbox.lab.test", "inbox", "inbox", 1),
        ("reject", "reject@reject.lab.test", "reject", "rejected", 1),
        ("multimx", "multi@multimx.lab.test", "multi", "inbox", 2),
        (
            "implicit",
            "implicit@implicit.lab.test",
            "implicit",
            "inbox",
            1,
        ),
        ("nullmx", "nobody@nullmx.lab.test", "inbox", "rejected", 1),
        (
            "nxdomain",
            "nobody@nowhere.lab.test",
            "inbox",
            "rejected",
            1,
        ),
    ];
    // Every seed's mailbox must be readable, or it is not sent to: those with no mailbox of
    // their own (null MX, no such domain) are read through the inbox seed's.
    let seeds = via_lab_dns("10s").seeds(rows.iter().map(|(name, addr, pw, _, _)| {
        let seed = Seed::new(name, addr).lab_imap(pw);
        if addr.starts_with(&format!("{pw}@")) || *pw == "multi" {
            seed
        } else {
            seed.imap_key("username", "inbox@inbox.lab.test")
        }
    }));
    let out = probe_with(&seeds, &["run", "--all", "--json"])
        .expect_exit(1)
        .run();
    let json = out.json();
    let db = rusqlite::Connection::open(out.dir().join("store.sqlite")).unwrap();
    for (seed, _, _, verdict, hosts) in rows {
        let m = message_for(&json, seed);
        assert_eq!(m["verdict"], *verdict, "{seed}: {m:#}");
        let tried: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM smtp_attempts WHERE token = ?1",
                [m["token"].as_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tried as usize, *hosts, "{seed}: attempts recorded");
    }
    assert_eq!(message_for(&json, "nullmx")["smtp"]["stage"], "resolve");
    assert!(
        message_for(&json, "nxdomain")["smtp"]["error"]
            .as_str()
            .unwrap()
            .contains("nowhere.lab.test"),
        "{json:#}"
    );
}

#[test]
fn the_source_address_decides_for_an_ip_reputation_provider() {
    let iprep = Seed::new("iprep", "iprep@iprep.lab.test").lab_imap("iprep");
    let seeds = via_lab_dns("10s").seed(iprep.clone());
    probe_with(
        &seeds,
        &["run", "--all", "--json", "--source-ip", "127.0.0.2"],
    )
    .expect_exit(0)
    .run();
    let bad = probe_with(
        &seeds,
        &["run", "--all", "--json", "--source-ip", "127.0.0.3"],
    )
    .expect_exit(1)
    .run();
    let m = bad.message("iprep");
    assert_eq!(m["verdict"], "deferred", "{m:#}");
    assert_eq!(m["smtp"]["code"], 450);
    // The config's own source_ip is used when the flag is absent.
    let seeds = via_lab_dns("10s")
        .sender("source_ip", "127.0.0.3")
        .seed(iprep);
    let out = probe_with(&seeds, &["run", "--all", "--json"]).run();
    assert_eq!(out.message("iprep")["verdict"], "deferred");
}

#[test]
fn seeds_behind_one_mx_share_a_connection() {
    let seeds = Seeds::lab("10s")
        .lab_sender()
        .seeds(["inbox", "defer", "tagged"].map(Seed::lab));
    let out = probe_with(&seeds, &["run", "--all", "--json"])
        .expect_exit(1)
        .run();
    let json = out.json();
    // A refusal in the middle does not stop the next message.
    assert_eq!(message_for(&json, "defer")["verdict"], "deferred");
    assert_eq!(message_for(&json, "tagged")["verdict"], "spam_tagged");
    let db = rusqlite::Connection::open(out.dir().join("store.sqlite")).unwrap();
    let transcripts: Vec<String> = {
        let mut stmt = db
            .prepare(
                "SELECT a.transcript FROM smtp_attempts a JOIN messages m USING (token)
                 ORDER BY m.sent_at, m.token",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(transcripts.len(), 3);
    let banners = transcripts
        .iter()
        .filter(|t| t.contains("220 mx.lab.test"))
        .count();
    assert_eq!(banners, 1, "one connection, one banner: {transcripts:#?}");
    assert!(transcripts[1].contains("RSET") || transcripts[2].contains("RSET"));
}

/// Postfix's smtp-sink on a free loopback port: a real SMTP server that offers no STARTTLS.
struct Sink(std::process::Child, u16);

impl Sink {
    fn start() -> Sink {
        let port = crate::support::net::closed_port();
        let child = std::process::Command::new("smtp-sink")
            .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "16"])
            .spawn()
            .expect("smtp-sink (from the postfix package)");
        wait_for("smtp-sink listening", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Sink(child, port)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn require_tls_defers_instead_of_sending_in_clear() {
    crate::support::lab::ensure_lab();
    let sink = Sink::start();
    let mx = format!("127.0.0.1:{}", sink.1);
    // Read through the inbox mailbox: a seed whose mailbox cannot be read is not sent to.
    let sink_seed = Seed::new("sink", "x@sink.lab.test")
        .lab_imap("inbox")
        .imap_key("username", "inbox@inbox.lab.test")
        .mx(&mx);
    let seeds = Seeds::lab("5s").lab_sender().seed(sink_seed);
    // Opportunistic: no STARTTLS on offer, so the message goes in clear and is accepted.
    let out = probe_with(&seeds, &["send", "--all", "--json"])
        .expect_exit(0)
        .run();
    assert_eq!(out.message("sink")["smtp"]["code"], 250);
    // Required: the same server makes it a deferral, and nothing is sent in clear.
    let out = probe_with(
        &seeds.sender("require_tls", "true"),
        &["send", "--all", "--json"],
    )
    .expect_exit(1)
    .run();
    let m = out.message("sink");
    assert_eq!(m["verdict"], "deferred", "{m:#}");
    assert_eq!(m["smtp"]["stage"], "starttls", "{m:#}");
    assert_eq!(m["smtp"]["code"], serde_json::Value::Null, "{m:#}");
}
