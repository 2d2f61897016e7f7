//! `\Junk` from a server that reports special-use attributes only when asked (RFC 6154 §5.1,
//! Cyrus with `specialusealways: no`), and Gmail, which must not be asked. A scripted IMAP
//! server plays each; `probe seeds check` shows the spam folder polling would use.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// How the scripted server behaves.
struct Server {
    /// Capabilities after login, besides IMAP4rev1.
    capabilities: &'static str,
    /// Whether it understands `LIST ... RETURN (SPECIAL-USE)`; Gmail answers BAD.
    extended_list: bool,
}

/// Serves connections until the test ends; returns the port and every command received.
fn start(server: Server) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = commands.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let mut write = socket.try_clone().unwrap();
            let mut read = BufReader::new(socket);
            let _ = write.write_all(b"* OK scripted IMAP ready\r\n");
            let mut line = String::new();
            while read.read_line(&mut line).unwrap_or(0) > 0 {
                let command = line.trim_end().to_owned();
                log.lock().unwrap().push(command.clone());
                let (tag, rest) = command.split_once(' ').unwrap_or((&command, ""));
                let upper = rest.to_ascii_uppercase();
                let reply = if upper.starts_with("CAPABILITY") {
                    format!(
                        "* CAPABILITY IMAP4rev1 {}\r\n{tag} OK done\r\n",
                        server.capabilities
                    )
                } else if upper.starts_with("LIST") && upper.contains("RETURN") {
                    if server.extended_list {
                        format!(
                            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
                             * LIST (\\HasNoChildren \\Junk) \"/\" Quarantine\r\n\
                             * LIST (\\HasNoChildren) \"/\" Spam\r\n{tag} OK done\r\n"
                        )
                    } else {
                        format!("{tag} BAD Could not parse command\r\n")
                    }
                } else if upper.starts_with("LIST") {
                    // Special-use attributes left out, as RFC 6154 allows unless asked.
                    format!(
                        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
                         * LIST (\\HasNoChildren) \"/\" Quarantine\r\n\
                         * LIST (\\HasNoChildren) \"/\" Spam\r\n{tag} OK done\r\n"
                    )
                } else if upper.starts_with("LOGOUT") {
                    format!("* BYE bye\r\n{tag} OK done\r\n")
                } else {
                    format!("{tag} OK done\r\n")
                };
                if write.write_all(reply.as_bytes()).is_err() || upper.starts_with("LOGOUT") {
                    break;
                }
                line.clear();
            }
        }
    });
    (port, commands)
}

fn seeds_check(port: u16) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seeds.yaml");
    std::fs::write(
        &config,
        format!(
            "sender:\n  from: probe@example.org\nseeds:\n  - name: seed\n    address: seed@example.net\n    \
             imap: {{ host: 127.0.0.1, port: {port}, tls: none, username: seed, password: {{ env: SEED_PW }} }}\n"
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .arg("--config")
        .arg(&config)
        .args(["seeds", "check"])
        .env("SEED_PW", "secret")
        .output()
        .unwrap()
}

fn spam_folder_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("spam folder:"));
    line.unwrap_or_else(|| {
        panic!(
            "no spam folder line:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .trim()
    .to_owned()
}

#[test]
fn junk_is_asked_for_when_the_server_offers_special_use() {
    let (port, commands) = start(Server {
        capabilities: "SPECIAL-USE LIST-EXTENDED",
        extended_list: true,
    });
    let out = seeds_check(port);
    assert_eq!(
        spam_folder_line(&out),
        "spam folder: Quarantine (marked \\Junk by the server)",
        "{:?}",
        commands.lock().unwrap()
    );
    let commands = commands.lock().unwrap();
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
        let (port, commands) = start(Server {
            capabilities,
            extended_list: false,
        });
        let out = seeds_check(port);
        assert_eq!(
            spam_folder_line(&out),
            "spam folder: Spam (by its name)",
            "{capabilities}"
        );
        let commands = commands.lock().unwrap();
        assert!(
            !commands.iter().any(|c| c.contains("RETURN")),
            "{capabilities}: {commands:?}"
        );
    }
}

#[test]
fn a_refused_special_use_list_keeps_the_plain_one() {
    let (port, _) = start(Server {
        capabilities: "SPECIAL-USE",
        extended_list: false,
    });
    let out = seeds_check(port);
    assert_eq!(spam_folder_line(&out), "spam folder: Spam (by its name)");
}
