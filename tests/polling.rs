//! Polling: IDLE finds a message long before the poll interval, a Dovecot restart mid-poll is
//! survived, a 100,000-message mailbox is searched from its UIDNEXT only, and Gmail's tabs are
//! read from a scripted Gmail-like server (the lab has no Gmail).
//!
//! To control when a message reaches its mailbox, probe sends to a holding SMTP server here,
//! and the test hands the message to the lab's Postfix when it is time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::lab::{
    self, config_yaml, ensure_lab, json_of, message_for, probe, run_yaml, seed_entry, show,
};

/// A message the holding server accepted, as it came (dot-stuffed, without the final dot).
struct Held {
    rcpt: String,
    data: Vec<u8>,
}

/// An SMTP server on a free loopback port that accepts every message (250) and hands it to
/// the test instead of delivering it. No STARTTLS: probe sends in clear to it.
struct Holder {
    port: u16,
    held: mpsc::Receiver<Held>,
}

impl Holder {
    fn start() -> Holder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, held) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let tx = tx.clone();
                std::thread::spawn(move || hold(conn, tx));
            }
        });
        Holder { port, held }
    }

    fn mx(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The next message probe sent, waiting at most 30 s.
    fn next(&self) -> Held {
        self.held
            .recv_timeout(Duration::from_secs(30))
            .expect("probe sent nothing to the holding server within 30 s")
    }
}

fn hold(conn: TcpStream, tx: mpsc::Sender<Held>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let mut rcpt = String::new();
    let _ = w.write_all(b"220 holder ESMTP\r\n");
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 holder\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
            b"250 2.1.5 Ok\r\n"
        } else if upper.starts_with("DATA") {
            let _ = w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n");
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if reader.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == b".\r\n" {
                    break;
                }
                data.extend_from_slice(&l);
            }
            let _ = tx.send(Held {
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            b"250 2.0.0 Ok: held\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 2.0.0 Bye\r\n");
            return;
        } else {
            b"250 2.0.0 Ok\r\n"
        };
        let _ = w.write_all(reply);
    }
}

/// Hands a held message to the lab's Postfix (127.0.0.1:2525), which delivers it to Dovecot.
fn deliver(held: &Held) {
    let conn = TcpStream::connect("127.0.0.1:2525").unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let mut expect = |send: Option<&[u8]>, code: &str| {
        if let Some(bytes) = send {
            w.write_all(bytes).unwrap();
        }
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert!(
                line.starts_with(code),
                "Postfix said {line:?}, expected {code}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect(None, "220");
    expect(Some(b"EHLO holder.lab.test\r\n"), "250");
    expect(Some(b"MAIL FROM:<probe@sender.lab.test>\r\n"), "250");
    expect(
        Some(format!("RCPT TO:<{}>\r\n", held.rcpt).as_bytes()),
        "250",
    );
    expect(Some(b"DATA\r\n"), "354");
    let mut body = held.data.clone();
    body.extend_from_slice(b".\r\n");
    expect(Some(&body), "250");
    expect(Some(b"QUIT\r\n"), "221");
}

/// Waits (bounded) until `f` has an answer, re-checking every 50 ms.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// Waits for a spawned probe (bounded), killing it if it overruns.
fn finish(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("probe still running after {limit:?}:\n{}", show(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    probe(dir)
        .args(args)
        .args(["--config", "seeds.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A config like the harness's, with its own poll interval and timeout.
fn config(seeds: &[String], interval: &str, timeout: &str) -> String {
    config_yaml("", timeout, seeds)
        .replace("poll_interval: 1s", &format!("poll_interval: {interval}"))
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
    ensure_lab();
    let _steady = lab::steady();
    let holder = Holder::start();
    let dir = tempfile::tempdir().unwrap();
    let seeds = [seed_entry(
        "inbox",
        "inbox@inbox.lab.test",
        "inbox",
        Some(&holder.mx()),
    )];
    // Without IDLE nothing would be searched again before the 25 s deadline.
    std::fs::write(dir.path().join("seeds.yaml"), config(&seeds, "30s", "25s")).unwrap();
    let started = Instant::now();
    let child = spawn(dir.path(), &["run", "--all", "--json"]);
    let held = holder.next();
    // The message reaches the mailbox only after the first round searched it in vain.
    wait_for("first INBOX search", Duration::from_secs(20), || {
        inbox_searched(dir.path())
    });
    deliver(&held);
    let out = finish(child, Duration::from_secs(40));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(message_for(&json_of(&out), "inbox")["verdict"], "inbox");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: {}",
        show(&out)
    );
}

#[test]
fn a_dovecot_restart_mid_poll_is_survived() {
    ensure_lab();
    let holder = Holder::start();
    let seeds = [seed_entry(
        "inbox",
        "inbox@inbox.lab.test",
        "inbox",
        Some(&holder.mx()),
    )];
    let (dir, sent) = run_yaml(&config(&seeds, "1s", "60s"), &["send", "--all", "--json"]);
    assert_eq!(sent.status.code(), Some(0), "{}", show(&sent));
    let held = holder.next();

    let child = spawn(dir.path(), &["poll", "--json"]);
    wait_for("first INBOX search", Duration::from_secs(20), || {
        inbox_searched(dir.path())
    });
    {
        let _alone = lab::disrupt();
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/lab.sh"))
            .arg("restart-dovecot")
            .output()
            .unwrap();
        assert!(out.status.success(), "restart-dovecot: {}", show(&out));
    }
    // Delivered only now, so only a poll that came back can find it.
    let _steady = lab::steady();
    deliver(&held);
    let out = finish(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(message_for(&json_of(&out), "inbox")["verdict"], "inbox");
    let reconnects = query(
        dir.path(),
        "SELECT detail FROM observations WHERE kind = 'reconnect' AND seed = 'inbox'",
    );
    assert!(
        !reconnects.is_empty(),
        "no reconnect recorded: {}",
        show(&out)
    );
}

#[test]
fn a_big_mailbox_is_searched_from_its_uidnext_only() {
    ensure_lab();
    let fill = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/lab.sh"))
        .arg("fill-big")
        .output()
        .unwrap();
    assert!(fill.status.success(), "fill-big: {}", show(&fill));
    let seeds = [seed_entry(
        "big",
        "big@big.lab.test",
        "big",
        Some("127.0.0.1:2525"),
    )];
    let (dir, out) = run_yaml(&config_yaml("", "20s", &seeds), &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(message_for(&json_of(&out), "big")["verdict"], "inbox");

    let uidnext = query(
        dir.path(),
        "SELECT CAST(uidnext AS TEXT) FROM positions WHERE seed = 'big' AND folder = 'INBOX'",
    );
    let uidnext: u32 = uidnext
        .first()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| {
            panic!("no INBOX position stored: {}", show(&out));
        });
    assert!(
        uidnext > 100_000,
        "the mailbox is not big: UIDNEXT {uidnext}"
    );
    // Every search of every folder was limited to what arrived after the positions.
    let scopes = query(
        dir.path(),
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

/// What the scripted Gmail saw.
type Commands = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A scripted Gmail-like IMAP server: Gmail's capabilities and folders, one message (UID 42)
/// in INBOX carrying whatever token probe searches for, in the Promotions tab. STATUS is not
/// scripted (answered BAD), so probe has no position and searches by date.
fn fake_gmail() -> (u16, Commands) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Commands = Default::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || gmail_session(conn, log));
        }
    });
    (port, seen)
}

fn gmail_session(conn: TcpStream, log: Commands) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let mut token = String::new();
    let mut folder = String::new();
    let _ = w.write_all(b"* OK Gimap ready for requests from 127.0.0.1\r\n");
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_owned();
        log.lock().unwrap().push(line.clone());
        let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
        let upper = command.to_ascii_uppercase();
        let ok = format!("{tag} OK Success\r\n");
        let reply = if upper.starts_with("CAPABILITY") {
            format!(
                "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS\r\n{ok}"
            )
        } else if upper.starts_with("LOGIN") {
            format!("{tag} OK user@gmail.test authenticated (Success)\r\n")
        } else if upper.starts_with("LIST") {
            format!(
                "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n\
                 * LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n\
                 * LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n{ok}"
            )
        } else if upper.starts_with("EXAMINE") {
            folder = command[8..].trim_matches('"').to_owned();
            let exists = if folder == "INBOX" { 42 } else { 0 };
            format!(
                "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n* {exists} EXISTS\r\n\
                 * OK [UIDVALIDITY 3] UIDs valid.\r\n* OK [UIDNEXT 43] Predicted next UID.\r\n\
                 {tag} OK [READ-ONLY] {folder} selected. (Success)\r\n"
            )
        } else if upper.starts_with("UID SEARCH") && upper.contains("X-GM-RAW") {
            let hit = if upper.contains("CATEGORY:PROMOTIONS") {
                " 42"
            } else {
                ""
            };
            format!("* SEARCH{hit}\r\n{ok}")
        } else if upper.starts_with("UID SEARCH") {
            if let Some((_, rest)) = command.split_once("SUBJECT \"") {
                token = rest.split('"').next().unwrap_or_default().to_owned();
            }
            let hit = if folder == "INBOX" { " 42" } else { "" };
            format!("* SEARCH{hit}\r\n{ok}")
        } else if upper.starts_with("UID FETCH 42") {
            let header = format!(
                "Subject: Deliverability check {token}\r\nX-Probe-Id: {token}\r\nFrom: probe@sender.lab.test\r\n\r\n"
            );
            format!(
                "* 1 FETCH (UID 42 BODY[HEADER] {{{}}}\r\n{header})\r\n{ok}",
                header.len()
            )
        } else if upper.starts_with("NOOP") {
            ok
        } else if upper.starts_with("LOGOUT") {
            let _ = w.write_all(format!("* BYE LOGOUT Requested\r\n{ok}").as_bytes());
            return;
        } else {
            format!("{tag} BAD Unknown command\r\n")
        };
        if w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn gmail_tabs_are_reported() {
    let holder = Holder::start();
    let (port, seen) = fake_gmail();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("gmail.pass");
    std::fs::write(&password, "app-password\n").unwrap();
    let yaml = format!(
        "sender:\n  from: probe@sender.lab.test\ntiming:\n  poll_interval: 1s\n  timeout: 10s\n  imap_timeout: 5s\n\
         seeds:\n  - name: gmail\n    address: user@gmail.test\n    mx: \"{mx}\"\n\
         \x20   imap: {{ host: 127.0.0.1, port: {port}, tls: none, password: {{ file: {pw} }} }}\n",
        mx = holder.mx(),
        pw = password.display()
    );
    std::fs::write(dir.path().join("seeds.yaml"), yaml).unwrap();
    let out = finish(
        spawn(dir.path(), &["run", "--all", "--json"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let json = json_of(&out);
    let m = message_for(&json, "gmail");
    assert_eq!(m["verdict"], "inbox", "{}", show(&out));
    assert_eq!(m["tab"], "promotions", "{}", show(&out));
    let seen = seen.lock().unwrap().clone();
    // The category was asked for the found message only.
    assert!(
        seen.iter()
            .any(|c| c.ends_with("UID SEARCH UID 42 X-GM-RAW \"category:promotions\"")),
        "{seen:#?}"
    );
    // No position (STATUS refused before sending): searched by date, not the whole folder.
    let search = seen
        .iter()
        .find(|c| c.contains("UID SEARCH SINCE") && c.contains("SUBJECT"));
    assert!(search.is_some(), "{seen:#?}");
    // Read-only throughout.
    assert!(
        !seen.iter().any(|c| {
            let c = c.to_ascii_uppercase();
            c.contains(" SELECT ") || c.contains("STORE") || c.contains("EXPUNGE")
        }),
        "{seen:#?}"
    );
}

#[test]
fn one_connection_is_handed_over_between_accounts() {
    // With room for a single IMAP connection, an account idling for a message that never
    // comes (the discarding provider) must hand the connection to the other account instead
    // of holding it until its timeout.
    let seeds = [
        seed_entry(
            "discard",
            "discard@discard.lab.test",
            "discard",
            Some("127.0.0.1:2525"),
        ),
        seed_entry(
            "inbox",
            "inbox@inbox.lab.test",
            "inbox",
            Some("127.0.0.1:2525"),
        ),
    ];
    let yaml = config(&seeds, "30s", "12s").replace(
        "  imap_timeout: 10s\n",
        "  imap_timeout: 10s\n  imap_connections: 1\n",
    );
    let (_dir, out) = run_yaml(&yaml, &["run", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json = json_of(&out);
    assert_eq!(message_for(&json, "discard")["verdict"], "missing");
    let inbox = message_for(&json, "inbox");
    assert_eq!(inbox["verdict"], "inbox", "{inbox:#}");
    let latency = inbox["latency_ms"].as_u64().unwrap();
    assert!(
        latency < 8_000,
        "inbox waited for the other account: {latency} ms"
    );
}
