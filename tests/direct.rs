//! Direct delivery as the receiving provider sees it: MX lookup through the lab's DNS, MX
//! fallback, implicit and null MX, the source address, one connection per MX.

use crate::lab::{config_yaml, json_of, message_for, run_yaml, seed_entry, show};

/// Sender settings that send through the lab's DNS to port 2525 of each MX.
const VIA_LAB_DNS: &str = "  resolver: \"127.0.0.1:5353\"\n  smtp_port: 2525\n";

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
    let seeds: Vec<String> = rows
        .iter()
        .map(|(name, addr, pw, _, _)| seed_entry(name, addr, pw, None))
        .collect();
    let (dir, out) = run_yaml(
        &config_yaml(VIA_LAB_DNS, "10s", &seeds),
        &["run", "--all", "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    let db = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
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
    let seeds = [seed_entry("iprep", "iprep@iprep.lab.test", "iprep", None)];
    let yaml = config_yaml(VIA_LAB_DNS, "10s", &seeds);
    let (_d, good) = run_yaml(
        &yaml,
        &["run", "--all", "--json", "--source-ip", "127.0.0.2"],
    );
    assert_eq!(good.status.code(), Some(0), "{}", show(&good));
    let (_d, bad) = run_yaml(
        &yaml,
        &["run", "--all", "--json", "--source-ip", "127.0.0.3"],
    );
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    let m = message_for(&json_of(&bad), "iprep").clone();
    assert_eq!(m["verdict"], "deferred", "{m:#}");
    assert_eq!(m["smtp"]["code"], 450);
    // The config's own source_ip is used when the flag is absent.
    let yaml = config_yaml(
        &format!("{VIA_LAB_DNS}  source_ip: 127.0.0.3\n"),
        "10s",
        &seeds,
    );
    let (_d, out) = run_yaml(&yaml, &["run", "--all", "--json"]);
    assert_eq!(message_for(&json_of(&out), "iprep")["verdict"], "deferred");
}

#[test]
fn seeds_behind_one_mx_share_a_connection() {
    let seeds = [
        seed_entry(
            "inbox",
            "inbox@inbox.lab.test",
            "inbox",
            Some("127.0.0.1:2525"),
        ),
        seed_entry(
            "defer",
            "defer@defer.lab.test",
            "defer",
            Some("127.0.0.1:2525"),
        ),
        seed_entry(
            "tagged",
            "tagged@tagged.lab.test",
            "tagged",
            Some("127.0.0.1:2525"),
        ),
    ];
    let (dir, out) = run_yaml(&config_yaml("", "10s", &seeds), &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    // A refusal in the middle does not stop the next message.
    assert_eq!(message_for(&json, "defer")["verdict"], "deferred");
    assert_eq!(message_for(&json, "tagged")["verdict"], "spam_tagged");
    let db = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("smtp-sink")
            .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "16"])
            .spawn()
            .expect("smtp-sink (from the postfix package)");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed().as_secs() < 10, "smtp-sink did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
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
    crate::lab::ensure_lab();
    let sink = Sink::start();
    let mx = format!("127.0.0.1:{}", sink.1);
    let seeds = [seed_entry("sink", "x@sink.lab.test", "inbox", Some(&mx))];
    // Opportunistic: no STARTTLS on offer, so the message goes in clear and is accepted.
    let (_d, out) = run_yaml(&config_yaml("", "5s", &seeds), &["send", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(message_for(&json_of(&out), "sink")["smtp"]["code"], 250);
    // Required: the same server makes it a deferral, and nothing is sent in clear.
    let (_d, out) = run_yaml(
        &config_yaml("  require_tls: true\n", "5s", &seeds),
        &["send", "--all", "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    let m = message_for(&json, "sink");
    assert_eq!(m["verdict"], "deferred", "{m:#}");
    assert_eq!(m["smtp"]["stage"], "starttls", "{m:#}");
    assert_eq!(m["smtp"]["code"], serde_json::Value::Null, "{m:#}");
}
