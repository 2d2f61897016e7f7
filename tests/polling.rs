//! Polling without the lab: Gmail's tabs, read from a fake Gmail-like IMAP server (the lab
//! has no Gmail). `lab::polling` has IDLE, restarts and big mailboxes against the real lab.

use std::time::Duration;

use crate::support::imap::{FakeImap, Reply};
use crate::support::smtp::Holder;
use crate::support::{Password, Probe, Seed, Seeds};

/// A Gmail-like IMAP server: Gmail's capabilities and folders, one message (UID 42) in INBOX
/// carrying whatever token probe searches for, in the Promotions tab. STATUS is not scripted
/// (answered BAD), so probe has no position and searches by date.
fn fake_gmail() -> FakeImap {
    FakeImap::new("* OK Gimap ready for requests from 127.0.0.1")
        .reply(
            "CAPABILITY",
            "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS\r\n{tag} OK Success\r\n",
        )
        .reply("LOGIN", "{tag} OK user@gmail.test authenticated (Success)\r\n")
        .reply(
            "LIST",
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n\
             * LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n\
             * LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n{tag} OK Success\r\n",
        )
        .on("EXAMINE", |session, cmd| {
            let folder = cmd.text[8..].trim_matches('"').to_owned();
            let exists = if folder == "INBOX" { 42 } else { 0 };
            let reply = format!(
                "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n* {exists} EXISTS\r\n\
                 * OK [UIDVALIDITY 3] UIDs valid.\r\n* OK [UIDNEXT 43] Predicted next UID.\r\n\
                 {tag} OK [READ-ONLY] {folder} selected. (Success)\r\n",
                tag = cmd.tag
            );
            session.state.insert("folder", folder);
            Reply::Send(reply)
        })
        .on("UID SEARCH", |session, cmd| {
            let upper = cmd.upper();
            let hit = if upper.contains("X-GM-RAW") {
                if upper.contains("CATEGORY:PROMOTIONS") {
                    " 42"
                } else {
                    ""
                }
            } else {
                if let Some((_, rest)) = cmd.text.split_once("SUBJECT \"") {
                    let token = rest.split('"').next().unwrap_or_default().to_owned();
                    session.state.insert("token", token);
                }
                if session.get("folder") == "INBOX" {
                    " 42"
                } else {
                    ""
                }
            };
            Reply::Send(format!("* SEARCH{hit}\r\n{} OK Success\r\n", cmd.tag))
        })
        .on("UID FETCH 42", |session, cmd| {
            let token = session.get("token");
            let header = format!(
                "Subject: Deliverability check {token}\r\nX-Probe-Id: {token}\r\nFrom: probe@sender.lab.test\r\n\r\n"
            );
            Reply::Send(format!(
                "* 1 FETCH (UID 42 BODY[HEADER] {{{}}}\r\n{header})\r\n{} OK Success\r\n",
                header.len(),
                cmd.tag
            ))
        })
        .reply("NOOP", "{tag} OK Success\r\n")
}

#[test]
fn gmail_tabs_are_reported() {
    let holder = Holder::start();
    let gmail = fake_gmail().start();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("gmail.pass");
    std::fs::write(&password, "app-password\n").unwrap();
    let seeds = Seeds::new()
        .from("probe@sender.lab.test")
        .timing("poll_interval", "1s")
        .timing("timeout", "10s")
        .timing("imap_timeout", "5s")
        .seed(
            Seed::new("gmail", "user@gmail.test")
                .mx(&holder.mx())
                .imap_server("127.0.0.1", gmail.port)
                .tls("none")
                .password(Password::File(password)),
        );
    let out = Probe::in_dir(dir.path())
        .args(["run", "--all", "--json"])
        .config(&seeds)
        .expect_exit(0)
        .spawn()
        .finish(Duration::from_secs(30));
    let m = out.message("gmail");
    assert_eq!(m["verdict"], "inbox", "{}", out.show());
    assert_eq!(m["tab"], "promotions", "{}", out.show());
    let seen = gmail.lines();
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
