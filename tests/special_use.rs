//! `\Junk` from a server that reports special-use attributes only when asked (RFC 6154 §5.1,
//! Cyrus with `specialusealways: no`), and Gmail, which must not be asked. A fake IMAP server
//! plays each; `probe seeds check` shows the spam folder polling would use.

use crate::support::imap::{FakeImap, Reply, RunningImap};
use crate::support::{Probe, Seed, Seeds};

/// A server with these capabilities (besides IMAP4rev1) and three folders, none marked in a
/// plain LIST (RFC 6154 allows leaving the attributes out unless asked). With `extended_list`
/// it answers `LIST ... RETURN (SPECIAL-USE)` with `Quarantine` marked `\Junk`; without, BAD,
/// as Gmail does. Whatever else probe sends is answered OK.
fn server(capabilities: &'static str, extended_list: bool) -> RunningImap {
    FakeImap::new("* OK scripted IMAP ready")
        .on("CAPABILITY", move |_, cmd| {
            Reply::Send(format!(
                "* CAPABILITY IMAP4rev1 {capabilities}\r\n{} OK done\r\n",
                cmd.tag
            ))
        })
        .on("LIST", move |_, cmd| {
            let tag = cmd.tag;
            Reply::Send(match (cmd.upper().contains("RETURN"), extended_list) {
                (true, true) => format!(
                    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
                     * LIST (\\HasNoChildren \\Junk) \"/\" Quarantine\r\n\
                     * LIST (\\HasNoChildren) \"/\" Spam\r\n{tag} OK done\r\n"
                ),
                (true, false) => format!("{tag} BAD Could not parse command\r\n"),
                (false, _) => format!(
                    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
                     * LIST (\\HasNoChildren) \"/\" Quarantine\r\n\
                     * LIST (\\HasNoChildren) \"/\" Spam\r\n{tag} OK done\r\n"
                ),
            })
        })
        .otherwise_ok()
        .start()
}

/// `probe seeds check` of one seed on `imap`: it exits 0 and says this spam folder line.
fn seeds_check(imap: &RunningImap, spam_folder: &str) {
    let seeds = Seeds::new().seed(
        Seed::new("seed", "seed@example.net")
            .imap_server("127.0.0.1", imap.port)
            .tls("none")
            .imap_key("username", "seed"),
    );
    Probe::new()
        .args(["seeds", "check"])
        .config(&seeds)
        .env("SEEDPROBE_TEST_PW", "secret")
        .expect_exit(0)
        .stdout_line(format!("  spam folder: {spam_folder}"))
        .run();
}

#[test]
fn junk_is_asked_for_when_the_server_offers_special_use() {
    let imap = server("SPECIAL-USE LIST-EXTENDED", true);
    seeds_check(&imap, "Quarantine (marked \\Junk by the server)");
    let commands = imap.lines();
    assert!(
        commands
            .iter()
            .any(|c| c.ends_with("LIST \"\" \"*\" RETURN (SPECIAL-USE)")),
        "{commands:?}"
    );
}

#[test]
fn gmail_and_servers_without_the_extension_get_a_plain_list() {
    for capabilities in ["X-GM-EXT-1 LIST-EXTENDED IDLE", "IDLE"] {
        let imap = server(capabilities, false);
        seeds_check(&imap, "Spam (by its name)");
        let commands = imap.lines();
        assert!(
            !commands.iter().any(|c| c.contains("RETURN")),
            "{capabilities}: {commands:?}"
        );
    }
}

#[test]
fn a_refused_special_use_list_keeps_the_plain_one() {
    let imap = server("SPECIAL-USE", false);
    seeds_check(&imap, "Spam (by its name)");
}
