//! `probe rescue` on servers without MOVE (the lab's Dovecot and Cyrus have it): a fake IMAP
//! server with the test message in its `\Junk` folder, with and without UIDPLUS. The MOVE path
//! and the untouched neighbours are proven against the real lab in `lab::rescue`.

use std::time::Duration;

use crate::support::imap::{FakeImap, Reply, RunningImap};
use crate::support::smtp::Holder;
use crate::support::{Password, Probe, Seed, Seeds};

/// A server without MOVE; `Junk` holds UID 7, carrying whatever token probe searches for;
/// INBOX is empty. `caps` is its capability list.
fn fake(caps: &'static str) -> FakeImap {
    FakeImap::new("* OK fake ready")
        .on("CAPABILITY", move |_, cmd| {
            Reply::Send(format!("* CAPABILITY {caps}\r\n{} OK done\r\n", cmd.tag))
        })
        .reply("LOGIN", "{tag} OK logged in\r\n")
        .reply(
            "LIST",
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n\
             * LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"\r\n{tag} OK done\r\n",
        )
        .on("EXAMINE", |session, cmd| open(session, cmd, "READ-ONLY"))
        .on("SELECT", |session, cmd| open(session, cmd, "READ-WRITE"))
        .on("UID SEARCH", |session, cmd| {
            if let Some((_, rest)) = cmd.text.split_once("SUBJECT \"") {
                let token = rest.split('"').next().unwrap_or_default().to_owned();
                session.state.insert("token", token);
            }
            let hit = if session.get("folder") == "Junk" {
                " 7"
            } else {
                ""
            };
            Reply::Send(format!("* SEARCH{hit}\r\n{} OK done\r\n", cmd.tag))
        })
        .on("UID FETCH 7", |session, cmd| {
            let token = session.get("token");
            let header = format!(
                "Subject: Deliverability check {token}\r\nX-Probe-Id: {token}\r\nFrom: probe@sender.lab.test\r\n\r\n"
            );
            Reply::Send(format!(
                "* 1 FETCH (UID 7 BODY[HEADER] {{{}}}\r\n{header})\r\n{} OK done\r\n",
                header.len(),
                cmd.tag
            ))
        })
        .reply("UID STORE", "{tag} OK stored\r\n")
        .reply("UID COPY", "{tag} OK copied\r\n")
        .reply("UID EXPUNGE", "* 1 EXPUNGE\r\n{tag} OK expunged\r\n")
        .reply("NOOP", "{tag} OK done\r\n")
}

fn open(
    session: &mut crate::support::imap::Session,
    cmd: &crate::support::imap::Cmd,
    mode: &str,
) -> Reply {
    let folder = cmd
        .text
        .split_once(' ')
        .map_or("", |(_, f)| f)
        .trim_matches('"')
        .to_owned();
    let exists = u32::from(folder == "Junk");
    let reply = format!(
        "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n* {exists} EXISTS\r\n\
         * OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] ok\r\n\
         * OK [UIDVALIDITY 3] UIDs valid.\r\n* OK [UIDNEXT 8] next\r\n\
         {tag} OK [{mode}] selected\r\n",
        tag = cmd.tag
    );
    session.state.insert("folder", folder);
    Reply::Send(reply)
}

/// The seeds file: one seed polled on the fake at `port`.
fn seeds(dir: &std::path::Path, mx: &str, port: u16) -> Seeds {
    let password = dir.join("seed.pass");
    std::fs::write(&password, "secret-pw\n").unwrap();
    Seeds::new()
        .from("probe@sender.lab.test")
        .timing("poll_interval", "1s")
        .timing("timeout", "10s")
        .timing("imap_timeout", "5s")
        .seed(
            Seed::new("fake", "user@fake.test")
                .mx(mx)
                .imap_server("127.0.0.1", port)
                .tls("none")
                .password(Password::File(password)),
        )
}

/// A run against `imap` in which the message lands in Junk: its directory and MX.
fn spam_run(imap: &RunningImap) -> (tempfile::TempDir, Holder) {
    let holder = Holder::start();
    let dir = tempfile::tempdir().unwrap();
    let ran = Probe::in_dir(dir.path())
        .args(["run", "--all", "--json"])
        .config(&seeds(dir.path(), &holder.mx(), imap.port))
        .expect_exit(1)
        .spawn()
        .finish(Duration::from_secs(30));
    assert_eq!(ran.message("fake")["verdict"], "spam", "{}", ran.show());
    (dir, holder)
}

/// A run against the fake (the message lands in Junk), then `probe rescue`; what the fake
/// received during the rescue, and the JSON report after it.
fn run_then_rescue(caps: &'static str, expect: &[&str]) -> (Vec<String>, crate::support::Ran) {
    let imap = fake(caps).start();
    let (dir, holder) = spam_run(&imap);
    let seeds = seeds(dir.path(), &holder.mx(), imap.port);
    let before = imap.lines().len();
    let mut probe = Probe::in_dir(dir.path())
        .args(["rescue"])
        .config(&seeds)
        .expect_exit(0)
        .stderr_has("this CHANGES seed mailboxes")
        .output_lacks("secret-pw");
    for e in expect {
        probe = probe.stderr_has(*e);
    }
    probe.run();
    let lines = imap.lines()[before..].to_vec();
    let report = Probe::in_dir(dir.path())
        .args(["report", "--format", "json"])
        .config(&seeds)
        .expect_exit(0)
        .run();
    (lines, report)
}

/// The commands, without their tags.
fn commands(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split_once(' ').map_or(l.as_str(), |(_, c)| c).to_owned())
        .collect()
}

#[test]
fn without_move_uidplus_copies_then_deletes_only_that_uid() {
    let (lines, report) = run_then_rescue(
        "IMAP4rev1 UIDPLUS",
        &["fake: moved from Junk to INBOX (copy, marked $NotJunk)"],
    );
    let cmds = commands(&lines);
    let at = |c: &str| {
        cmds.iter()
            .position(|l| l == c)
            .unwrap_or_else(|| panic!("{c} missing: {cmds:#?}"))
    };
    let keywords = at("UID STORE 7 +FLAGS.SILENT ($NotJunk NonJunk)");
    let copy = at("UID COPY 7 \"INBOX\"");
    let deleted = at("UID STORE 7 +FLAGS.SILENT (\\Deleted)");
    let expunge = at("UID EXPUNGE 7");
    assert!(
        keywords < copy && copy < deleted && deleted < expunge,
        "{cmds:#?}"
    );
    assert!(
        cmds.contains(&"UID STORE 7 -FLAGS.SILENT ($Junk Junk)".to_owned()),
        "{cmds:#?}"
    );
    assert!(cmds.iter().any(|c| c == "SELECT \"Junk\""), "{cmds:#?}");
    // Never a mailbox-wide EXPUNGE, never a MOVE the server does not offer, never by sequence.
    for c in &cmds {
        assert!(c != "EXPUNGE" && !c.contains("MOVE"), "{cmds:#?}");
        assert!(
            !c.starts_with("STORE") && !c.starts_with("COPY"),
            "{cmds:#?}"
        );
    }
    let m = report.message("fake");
    assert_eq!(m["rescue"]["method"], "copy", "{m:#}");
    assert_eq!(m["rescue"]["outcome"], "moved", "{m:#}");
    assert_eq!(report.json()["rescued"], 1);
}

#[test]
fn without_move_or_uidplus_the_original_stays_and_it_says_so() {
    let (lines, report) = run_then_rescue(
        "IMAP4rev1",
        &[
            "fake: copied to INBOX; the original stays in Junk",
            "neither MOVE nor UIDPLUS",
        ],
    );
    let cmds = commands(&lines);
    assert!(
        cmds.contains(&"UID COPY 7 \"INBOX\"".to_owned()),
        "{cmds:#?}"
    );
    for c in &cmds {
        // No expunge of any kind: a plain EXPUNGE would take the user's deleted mail too.
        assert!(
            !c.contains("EXPUNGE") && !c.contains("\\Deleted"),
            "{cmds:#?}"
        );
    }
    let m = report.message("fake");
    assert_eq!(m["rescue"]["outcome"], "copied", "{m:#}");
    assert!(
        m["rescue"]["detail"]
            .as_str()
            .unwrap()
            .contains("neither MOVE nor UIDPLUS"),
        "{m:#}"
    );
}

#[test]
fn a_refused_move_is_exit_1_in_the_servers_words_and_recorded() {
    let imap = fake("IMAP4rev1 MOVE UIDPLUS")
        .reply("UID MOVE", "{tag} NO [CANNOT] no moving today\r\n")
        .start();
    let (dir, holder) = spam_run(&imap);
    let seeds = seeds(dir.path(), &holder.mx(), imap.port);
    Probe::in_dir(dir.path())
        .args(["rescue"])
        .config(&seeds)
        .expect_exit(1)
        .stderr_has("fake: could not be moved: ")
        .stderr_has("UID MOVE failed")
        .stderr_has("no moving today")
        .run();
    let report = Probe::in_dir(dir.path())
        .args(["report", "--format", "json"])
        .expect_exit(0)
        .run();
    let m = report.message("fake");
    assert_eq!(m["rescue"]["outcome"], "failed", "{m:#}");
    assert_eq!(m["rescue"]["method"], "move", "{m:#}");
    assert_eq!(report.json()["rescued"], 0);
    // A failed rescue is tried again next time.
    Probe::in_dir(dir.path())
        .args(["rescue"])
        .config(&seeds)
        .expect_exit(1)
        .stderr_has("this CHANGES seed mailboxes")
        .run();
}

#[test]
fn no_usable_mailbox_is_exit_3_and_nothing_is_recorded() {
    let imap = fake("IMAP4rev1 MOVE").start();
    let (dir, holder) = spam_run(&imap);
    let closed = crate::support::net::closed_port();
    Probe::in_dir(dir.path())
        .args(["rescue"])
        .config(&seeds(dir.path(), &holder.mx(), closed))
        .expect_exit(3)
        .stderr_has("no seed mailbox could be used for the rescue")
        .stderr_has(format!("127.0.0.1:{closed}: cannot connect"))
        .run();
    let report = Probe::in_dir(dir.path())
        .args(["report", "--format", "json"])
        .expect_exit(0)
        .run();
    assert!(report.message("fake")["rescue"].is_null());
}
