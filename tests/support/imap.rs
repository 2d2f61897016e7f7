//! The fake IMAP server builder, for servers the lab cannot be (Gmail's extensions, a server
//! that only speaks XOAUTH2 with one exact payload):
//!
//! ```ignore
//! let imap = FakeImap::new("* OK ready")
//!     .reply("CAPABILITY", "* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n")
//!     .on("EXAMINE", |session, cmd| Reply::Send(...))
//!     .start();
//! ```
//!
//! Rules are tried in order on each command (after its tag, ASCII case-insensitively);
//! `LOGOUT` says BYE and closes unless a rule takes it; anything else is answered `BAD` (or
//! `OK`, after [`FakeImap::otherwise_ok`]).
//! Every line received is logged, for assertions on what probe asked.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One command: its tag and the rest of the line.
pub struct Cmd<'a> {
    pub tag: &'a str,
    pub text: &'a str,
}

impl Cmd<'_> {
    pub fn upper(&self) -> String {
        self.text.to_ascii_uppercase()
    }
}

/// What a session remembers between commands (the selected folder, a searched token).
#[derive(Default)]
pub struct Session {
    pub state: HashMap<&'static str, String>,
}

impl Session {
    pub fn get(&self, key: &str) -> &str {
        self.state.get(key).map_or("", String::as_str)
    }
}

pub type Rule = Arc<dyn Fn(&mut Session, &Cmd) -> Reply + Send + Sync>;

pub enum Reply {
    /// Write this and read the next command.
    Send(String),
    /// Write this (a `+` continuation) and give the next line, whole, to this rule.
    Continue(String, Rule),
    /// Write this and close the connection.
    Close(String),
}

#[must_use = "a FakeImap serves nothing until .start()"]
pub struct FakeImap {
    greeting: String,
    rules: Vec<(String, Rule)>,
    /// What no rule takes is answered OK instead of BAD.
    otherwise_ok: bool,
}

/// A started fake: its port and the lines it received, all connections together.
pub struct RunningImap {
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RunningImap {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl FakeImap {
    /// `greeting` is the untagged line sent on connect, without CRLF.
    pub fn new(greeting: &str) -> FakeImap {
        FakeImap {
            greeting: format!("{greeting}\r\n"),
            rules: Vec::new(),
            otherwise_ok: false,
        }
    }

    /// Answers commands starting with `prefix` with `reply`, `{tag}` replaced by their tag.
    pub fn reply(self, prefix: &str, reply: &'static str) -> FakeImap {
        self.on(prefix, move |_, cmd| {
            Reply::Send(reply.replace("{tag}", cmd.tag))
        })
    }

    /// Answers commands starting with `prefix` with whatever `rule` says.
    pub fn on(
        mut self,
        prefix: &str,
        rule: impl Fn(&mut Session, &Cmd) -> Reply + Send + Sync + 'static,
    ) -> FakeImap {
        self.rules
            .push((prefix.to_ascii_uppercase(), Arc::new(rule)));
        self
    }

    /// Answers `{tag} OK done` to every command no rule takes (LOGOUT still says BYE): a
    /// server that goes along with whatever the test does not script (LOGIN, EXAMINE, ...).
    pub fn otherwise_ok(mut self) -> FakeImap {
        self.otherwise_ok = true;
        self
    }

    /// Listens on a free loopback port, one thread per connection.
    pub fn start(self) -> RunningImap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = lines.clone();
        let fake = Arc::new(self);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (fake, log) = (fake.clone(), log.clone());
                std::thread::spawn(move || fake.session(conn, &log));
            }
        });
        RunningImap { port, lines }
    }

    fn session(&self, conn: TcpStream, log: &Mutex<Vec<String>>) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut w = conn;
        let mut session = Session::default();
        let mut pending: Option<Rule> = None;
        if w.write_all(self.greeting.as_bytes()).is_err() {
            return;
        }
        let mut raw = String::new();
        loop {
            raw.clear();
            if reader.read_line(&mut raw).unwrap_or(0) == 0 {
                return;
            }
            let line = raw.trim_end();
            log.lock().unwrap().push(line.to_owned());
            let reply = if let Some(rule) = pending.take() {
                rule(
                    &mut session,
                    &Cmd {
                        tag: "",
                        text: line,
                    },
                )
            } else {
                let (tag, text) = line.split_once(' ').unwrap_or((line, ""));
                let cmd = Cmd { tag, text };
                let upper = cmd.upper();
                match self.rules.iter().find(|(p, _)| upper.starts_with(p)) {
                    Some((_, rule)) => rule(&mut session, &cmd),
                    None if upper.starts_with("LOGOUT") => {
                        Reply::Close(format!("* BYE logging out\r\n{tag} OK done\r\n"))
                    }
                    None if self.otherwise_ok => Reply::Send(format!("{tag} OK done\r\n")),
                    None => Reply::Send(format!("{tag} BAD unexpected\r\n")),
                }
            };
            let (text, close) = match reply {
                Reply::Send(text) => (text, false),
                Reply::Continue(text, rule) => {
                    pending = Some(rule);
                    (text, false)
                }
                Reply::Close(text) => (text, true),
            };
            if w.write_all(text.as_bytes()).is_err() || close {
                return;
            }
        }
    }
}
