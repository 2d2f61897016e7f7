//! `probe rescue` against the lab's Dovecot (MOVE, UIDPLUS, keywords): the junk seed's message
//! goes back to INBOX with `$NotJunk`, and nothing else in the mailbox changes. Before/after
//! snapshots are taken over IMAP (UIDs and flags of every message in both folders), from a
//! connection of the test's own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use crate::support::{Probe, Ran, Seeds, message_for};

/// The rescue tests share the junk seed's mailbox: one at a time, so one test's move is not
/// another's "changed neighbour".
static MAILBOX: Mutex<()> = Mutex::new(());

const USER: &str = "junk@junk.lab.test";
const SPAM: &str = "Filtered";

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// The test's own IMAP connection to a lab server.
struct Imap {
    r: BufReader<Box<dyn Stream>>,
    n: u32,
}

impl Imap {
    /// The junk seed on the lab's Dovecot (127.0.0.1:1143, clear text on loopback).
    fn login() -> Imap {
        let tcp = TcpStream::connect("127.0.0.1:1143").unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Imap::start(Box::new(tcp), USER, &crate::support::lab::password("junk"))
    }

    /// Cyrus's `seed` over implicit TLS (127.0.0.1:3993), trusting the lab CA.
    fn cyrus() -> Imap {
        let tcp = TcpStream::connect("127.0.0.1:3993").unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let trust = seedprobe::tls::Trust::load(Some(&crate::support::lab::lab_ca())).unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(trust.verifying(), name).unwrap();
        let tls = rustls::StreamOwned::new(conn, tcp);
        Imap::start(
            Box::new(tls),
            "seed",
            &crate::support::lab::password("cyrus-seed"),
        )
    }

    fn start(stream: Box<dyn Stream>, user: &str, password: &str) -> Imap {
        let mut imap = Imap {
            r: BufReader::new(stream),
            n: 0,
        };
        let mut greeting = String::new();
        imap.r.read_line(&mut greeting).unwrap();
        imap.cmd(&format!("LOGIN \"{user}\" \"{password}\""));
        imap
    }

    /// Sends a command, returns its untagged lines and the tagged one (literals skipped);
    /// panics unless it ends OK.
    fn cmd(&mut self, text: &str) -> Vec<String> {
        self.n += 1;
        let tag = format!("t{}", self.n);
        write!(self.r.get_mut(), "{tag} {text}\r\n").unwrap();
        self.r.get_mut().flush().unwrap();
        self.read(&tag)
    }

    fn read(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                self.r.read_line(&mut line).unwrap() > 0,
                "closed: {lines:?}"
            );
            let line = line.trim_end().to_owned();
            // A literal `{n}` at the end: its bytes follow.
            if let Some(n) = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                let mut skip = vec![0; n];
                self.r.read_exact(&mut skip).unwrap();
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{line}: {lines:?}");
                lines.push(line);
                return lines;
            }
            lines.push(line);
        }
    }

    /// Appends a message to `folder` with `flags`; its UID (APPENDUID, RFC 4315).
    fn append(&mut self, folder: &str, flags: &str, marker: &str) -> u32 {
        let body = format!(
            "From: user@example.org\r\nSubject: not probe's {marker}\r\nMessage-ID: <{marker}@test>\r\n\r\nhello\r\n"
        );
        self.n += 1;
        let tag = format!("t{}", self.n);
        let w = self.r.get_mut();
        write!(w, "{tag} APPEND {folder} ({flags}) {{{}}}\r\n", body.len()).unwrap();
        w.flush().unwrap();
        let mut cont = String::new();
        self.r.read_line(&mut cont).unwrap();
        assert!(cont.starts_with('+'), "{cont}");
        write!(self.r.get_mut(), "{body}\r\n").unwrap();
        self.r.get_mut().flush().unwrap();
        let done = self.read(&tag);
        let last = done.last().unwrap();
        let uid = last
            .split("APPENDUID ")
            .nth(1)
            .and_then(|r| r.split([' ', ']']).nth(1))
            .and_then(|u| u.parse().ok());
        uid.unwrap_or_else(|| panic!("no APPENDUID: {last}"))
    }

    /// UID to flags of every message in `folder`, `\Recent` left out: it belongs to a session,
    /// not the message, and any SELECT (probe's own) takes it.
    fn snapshot(&mut self, folder: &str) -> BTreeMap<u32, Vec<String>> {
        self.cmd(&format!("EXAMINE {folder}"));
        let mut out = BTreeMap::new();
        for line in self.cmd("UID FETCH 1:* (UID FLAGS)") {
            let Some(uid) = line
                .split("UID ")
                .nth(1)
                .and_then(|r| r.split([' ', ')']).next())
                .and_then(|u| u.parse::<u32>().ok())
            else {
                continue;
            };
            let flags = line
                .split("FLAGS (")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .unwrap_or_default();
            let mut flags: Vec<String> = flags
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_owned)
                .collect();
            flags.sort();
            out.insert(uid, flags);
        }
        out
    }

    /// The UIDs in `folder` whose X-Probe-Id is `token`.
    fn find(&mut self, folder: &str, token: &str) -> Vec<u32> {
        self.cmd(&format!("EXAMINE {folder}"));
        self.cmd(&format!("UID SEARCH HEADER X-Probe-Id {token}"))
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().map(|u| u.parse::<u32>().unwrap()))
            .collect()
    }
}

/// Every message of `before` is in `after` with the same flags, `except` those UIDs.
fn untouched(
    what: &str,
    before: &BTreeMap<u32, Vec<String>>,
    after: &BTreeMap<u32, Vec<String>>,
    except: &[u32],
) {
    for (uid, flags) in before {
        if except.contains(uid) {
            continue;
        }
        assert_eq!(after.get(uid), Some(flags), "{what}: UID {uid} changed");
    }
}

/// A lab run of `seeds` (the junk seed lands in Filtered); its run id and junk's token.
fn run(seeds: &[&str]) -> (Ran, String, String) {
    let mut args = vec!["run", "--json"];
    for s in seeds {
        args.extend(["--seed", s]);
    }
    let out = Probe::new()
        .lab()
        .args(args)
        .config(&Seeds::lab_six("15s"))
        .expect_exit(1)
        .run();
    let json = out.json();
    let junk = message_for(&json, "junk");
    assert_eq!(junk["verdict"], "spam", "{}", out.show());
    assert_eq!(junk["folder"], SPAM, "{}", out.show());
    let token = junk["token"].as_str().unwrap().to_owned();
    let run = json["run_id"].as_str().unwrap().to_owned();
    (out, run, token)
}

fn rescue(dir: &std::path::Path, args: &[&str], exit: i32) -> Ran {
    Probe::in_dir(dir)
        .arg("rescue")
        .args(args.iter().copied())
        .config(&Seeds::lab_six("15s"))
        .expect_exit(exit)
        .run()
}

#[test]
fn rescue_moves_only_probes_message_and_a_second_moves_nothing() {
    let _one = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let (ran, run_id, token) = run(&["inbox", "junk"]);
    let mut imap = Imap::login();
    // The user's own mail in the same spam folder: one plain, one they marked deleted.
    let marker = token.to_lowercase();
    let plain = imap.append(SPAM, "", &format!("plain-{marker}"));
    let deleted = imap.append(SPAM, "\\Deleted", &format!("deleted-{marker}"));
    let spam_before = imap.snapshot(SPAM);
    let inbox_before = imap.snapshot("INBOX");
    let ours = imap.find(SPAM, &token);
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(spam_before[&deleted], ["\\Deleted"]);

    let out = rescue(ran.dir(), &[], 0);
    let err = out.stderr();
    let announce = err
        .find("this CHANGES seed mailboxes")
        .unwrap_or_else(|| panic!("{}", out.show()));
    let moved = err
        .find("junk: moved from Filtered to INBOX (move, marked $NotJunk)")
        .unwrap_or_else(|| panic!("{}", out.show()));
    assert!(announce < moved, "said before acting: {}", out.show());
    assert!(
        err.contains(&format!("junk: {token} from Filtered")),
        "{}",
        out.show()
    );
    assert!(
        !err.contains("inbox:"),
        "only the spam message: {}",
        out.show()
    );

    // Now in INBOX (once, with the not-junk keywords), gone from the spam folder.
    assert!(imap.find(SPAM, &token).is_empty());
    let in_inbox = imap.find("INBOX", &token);
    assert_eq!(in_inbox.len(), 1, "{in_inbox:?}");
    let inbox_after = imap.snapshot("INBOX");
    let flags = &inbox_after[&in_inbox[0]];
    for k in ["$NotJunk", "NonJunk"] {
        assert!(flags.contains(&k.to_owned()), "{flags:?}");
    }
    assert!(
        !flags.iter().any(|f| f == "\\Deleted" || f == "\\Seen"),
        "{flags:?}"
    );
    // Everything else is as it was: same UIDs, same flags, in both folders.
    let spam_after = imap.snapshot(SPAM);
    untouched("spam folder", &spam_before, &spam_after, &ours);
    untouched("INBOX", &inbox_before, &inbox_after, &[]);
    assert_eq!(spam_after[&plain], Vec::<String>::new());
    assert_eq!(spam_after[&deleted], ["\\Deleted"]);

    // A second rescue finds nothing to do, and says so.
    let again = rescue(ran.dir(), &[], 0);
    assert!(
        again
            .stderr()
            .contains("already rescued (moved) from Filtered"),
        "{}",
        again.show()
    );
    assert!(
        again.stderr().contains("nothing to move"),
        "{}",
        again.show()
    );
    assert!(!again.stderr().contains("CHANGES"), "{}", again.show());
    assert_eq!(imap.find("INBOX", &token).len(), 1);

    // Recorded: the report shows it per message, as JSON and in the table.
    let report = Probe::in_dir(ran.dir())
        .args(["report", run_id.as_str(), "--format", "json"])
        .expect_exit(0)
        .run();
    let json = report.json();
    assert_eq!(json["rescued"], 1);
    let junk = message_for(&json, "junk");
    assert_eq!(junk["rescue"]["method"], "move", "{junk:#}");
    assert_eq!(junk["rescue"]["outcome"], "moved", "{junk:#}");
    assert_eq!(junk["rescue"]["from_folder"], SPAM, "{junk:#}");
    assert!(message_for(&json, "inbox")["rescue"].is_null());
    Probe::in_dir(ran.dir())
        .args(["report", run_id.as_str()])
        .expect_exit(0)
        .stdout_has("junk: rescued (move) from Filtered to INBOX")
        .run();

    // The loop: run again, compare. The lab files junk by address, so it stays spam.
    let second = Probe::in_dir(ran.dir())
        .lab()
        .args(["run", "--seed", "junk", "--json"])
        .config(&Seeds::lab_six("15s"))
        .expect_exit(1)
        .run();
    let after = second.json()["run_id"].as_str().unwrap().to_owned();
    Probe::in_dir(ran.dir())
        .args(["compare", run_id.as_str(), after.as_str()])
        .stdout_has(format!("junk: rescued in {run_id}; still spam"))
        .run();
    let cmp = Probe::in_dir(ran.dir())
        .args(["compare", run_id.as_str(), after.as_str(), "--json"])
        .run();
    let rescued = &cmp.json()["rescued"][0];
    assert_eq!(rescued["seed"], "junk", "{}", cmp.show());
    assert_eq!(rescued["rescued_in"], run_id.as_str());
    assert_eq!(rescued["now"], "spam");
    assert_eq!(rescued["changed"], false);
}

#[test]
fn seed_limits_the_rescue_and_an_unknown_seed_is_bad_input() {
    let _one = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let (ran, _run_id, token) = run(&["inbox", "junk"]);
    let mut imap = Imap::login();

    // The inbox seed has nothing in a spam folder: nothing moves, the junk message stays.
    let out = rescue(ran.dir(), &["--seed", "inbox"], 0);
    assert!(out.stderr().contains("nothing to move"), "{}", out.show());
    assert_eq!(imap.find(SPAM, &token).len(), 1);

    let out = rescue(ran.dir(), &["--seed", "nosuch"], 2);
    assert!(
        out.stderr().contains("no message for seed `nosuch`"),
        "{}",
        out.show()
    );
    assert_eq!(imap.find(SPAM, &token).len(), 1);

    rescue(ran.dir(), &["--seed", "junk"], 0);
    assert!(imap.find(SPAM, &token).is_empty());
    assert_eq!(imap.find("INBOX", &token).len(), 1);
}

#[test]
fn run_with_rescue_moves_after_the_verdicts() {
    let _one = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let out = Probe::new()
        .lab()
        .args(["run", "--seed", "junk", "--json", "--rescue"])
        .config(&Seeds::lab_six("15s"))
        .expect_exit(1)
        .stderr_has("this CHANGES seed mailboxes")
        .stderr_has("junk: moved from Filtered to INBOX")
        .run();
    let junk = out.message("junk");
    // The verdict is the run's: it was found in the spam folder.
    assert_eq!(junk["verdict"], "spam", "{}", out.show());
    let token = junk["token"].as_str().unwrap();
    let mut imap = Imap::login();
    assert!(imap.find(SPAM, token).is_empty());
    assert_eq!(imap.find("INBOX", token).len(), 1);
}

/// Cyrus IMAP (MOVE, its `\\Junk` folder `Quarantine` shown only to SPECIAL-USE listing): the
/// message is moved to INBOX with `$NotJunk`, the user's own mail in Quarantine stays.
#[test]
fn cyrus_quarantine_message_is_moved_to_inbox() {
    use crate::support::smtp::Holder;
    use crate::support::{Password, Seed};
    let holder = Holder::start();
    let seeds = Seeds::lab("30s").seed(
        Seed::new("cyrus", "seed@cyrus.lab.test")
            .mx(&holder.mx())
            .imap_server("127.0.0.1", 3993)
            .tls("implicit")
            .imap_key("username", "seed")
            .password(Password::lab("cyrus-seed"))
            .ca_file(&crate::support::lab::lab_ca()),
    );
    let sent = Probe::new()
        .lab()
        .args(["send", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    let held = holder.next();
    super::cyrus::deliver_to_quarantine(&held);
    let out = Probe::in_dir(sent.dir())
        .args(["poll", "--json"])
        .config(&seeds)
        .expect_exit(1)
        .run();
    let m = out.message("cyrus");
    assert_eq!(m["verdict"], "spam", "{m:#}");
    let token = m["token"].as_str().unwrap().to_owned();

    let mut imap = Imap::cyrus();
    let neighbour = imap.append("Quarantine", "", &format!("cyrus-{}", token.to_lowercase()));
    let before = imap.snapshot("Quarantine");
    let ours = imap.find("Quarantine", &token);
    assert_eq!(ours.len(), 1);
    Probe::in_dir(sent.dir())
        .args(["rescue"])
        .config(&seeds)
        .expect_exit(0)
        .stderr_has("cyrus: moved from Quarantine to INBOX (move, marked $NotJunk)")
        .run();
    assert!(imap.find("Quarantine", &token).is_empty());
    let moved = imap.find("INBOX", &token);
    assert_eq!(moved.len(), 1);
    assert!(imap.snapshot("INBOX")[&moved[0]].contains(&"$NotJunk".to_owned()));
    let after = imap.snapshot("Quarantine");
    untouched("Quarantine", &before, &after, &ours);
    assert!(after.contains_key(&neighbour));
}
