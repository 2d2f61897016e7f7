//! The seeds-file builder: every test's config comes from here, in one block-style layout, so
//! the YAML shape is written once (and `config_errors` can count its lines).
//!
//! Values are YAML as written (`"\"Unerwünscht\""`, `"{ env: PW }"`): the builder owns the
//! layout, the test owns what it puts in it.

use std::path::{Path, PathBuf};

use super::lab::{lab_ca, password_file};

/// A whole seeds file.
#[derive(Clone)]
#[must_use]
pub struct Seeds {
    from: String,
    ehlo: Option<String>,
    /// `sender:` keys after `from` and `ehlo`, values as YAML.
    sender: Vec<(String, String)>,
    /// `timing:` keys; no section when empty.
    timing: Vec<(String, String)>,
    /// `message:` keys; no section when empty.
    message: Vec<(String, String)>,
    /// `checks.lists` entries, flow-style YAML; no section when empty.
    check_lists: Vec<String>,
    seeds: Vec<Seed>,
}

impl Seeds {
    /// `sender.from` only: no timing section, no seeds yet.
    pub fn new() -> Seeds {
        Seeds {
            from: "probe@example.org".into(),
            ehlo: None,
            sender: Vec::new(),
            timing: Vec::new(),
            message: Vec::new(),
            check_lists: Vec::new(),
            seeds: Vec::new(),
        }
    }

    /// What the lab tests use: a named sender, an EHLO name, polling every 300 ms, 10 s step
    /// timeouts and this overall timeout.
    pub fn lab(timeout: &str) -> Seeds {
        Seeds::new()
            .from("\"Probe Test <probe@example.org>\"")
            .ehlo("probe.example.org")
            .timing("poll_interval", "1s")
            .timing("timeout", timeout)
            .timing("smtp_timeout", "10s")
            .timing("imap_timeout", "10s")
    }

    /// The lab's six simulated providers, one seed each ([`Seed::lab_six`]).
    pub fn lab_six(timeout: &str) -> Seeds {
        Seed::lab_six()
            .into_iter()
            .fold(Seeds::lab(timeout), Seeds::seed)
    }

    /// From the lab's own sending domain (its relay account, its SPF and DKIM).
    pub fn lab_sender(self) -> Seeds {
        self.from("\"Probe Test <probe@sender.lab.test>\"")
    }

    /// Direct delivery through the lab's DNS (dnsmasq on 5353) to port 2525 of each MX.
    pub fn via_lab_dns(self) -> Seeds {
        self.sender("resolver", "\"127.0.0.1:5353\"")
            .sender("smtp_port", "2525")
    }

    /// Submission through the lab's relay (STARTTLS on 2587, verified, the probe account).
    pub fn via_lab_relay(self) -> Seeds {
        self.sender("transport", "relay").sender(
            "relay",
            &format!(
                "{{ host: 127.0.0.1, port: 2587, tls: starttls, username: probe@sender.lab.test, \
                 password: {{ file: {} }}, ca_file: {} }}",
                password_file("probe").display(),
                lab_ca().display()
            ),
        )
    }

    /// DSNs read from the lab's bounces mailbox (the probe account).
    pub fn lab_bounces(self) -> Seeds {
        self.sender(
            "bounces",
            &format!("{{ imap: {} }}", lab_imap_flow("probe")),
        )
    }

    /// The lab relay's Postfix log followed for queue ids.
    pub fn lab_maillog(self) -> Seeds {
        let log = super::lab::lab_dir().join("log/relay.log");
        self.sender("maillog", &log.display().to_string())
    }

    pub fn from(mut self, from: &str) -> Seeds {
        self.from = from.into();
        self
    }

    pub fn ehlo(mut self, ehlo: &str) -> Seeds {
        self.ehlo = Some(ehlo.into());
        self
    }

    /// A `sender:` key (`transport`, `relay`, `resolver`, ...), value as YAML.
    pub fn sender(mut self, key: &str, value: &str) -> Seeds {
        self.sender.push((key.into(), value.into()));
        self
    }

    /// Sets (or replaces) a `timing:` key.
    pub fn timing(mut self, key: &str, value: &str) -> Seeds {
        match self.timing.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.into(),
            None => self.timing.push((key.into(), value.into())),
        }
        self
    }

    /// A `message:` key (`subject`, `body`), value as YAML.
    pub fn message(mut self, key: &str, value: &str) -> Seeds {
        self.message.push((key.into(), value.into()));
        self
    }

    /// A `checks.lists` entry, as flow-style YAML (`{ zone: zen.lab.test, kind: ip }`).
    pub fn check_list(mut self, entry: &str) -> Seeds {
        self.check_lists.push(entry.into());
        self
    }

    pub fn seed(mut self, seed: Seed) -> Seeds {
        self.seeds.push(seed);
        self
    }

    pub fn seeds(self, seeds: impl IntoIterator<Item = Seed>) -> Seeds {
        seeds.into_iter().fold(self, Seeds::seed)
    }

    pub fn yaml(&self) -> String {
        let mut y = format!("sender:\n  from: {}\n", self.from);
        if let Some(ehlo) = &self.ehlo {
            y.push_str(&format!("  ehlo: {ehlo}\n"));
        }
        for (k, v) in &self.sender {
            y.push_str(&format!("  {k}: {v}\n"));
        }
        if !self.timing.is_empty() {
            y.push_str("timing:\n");
            for (k, v) in &self.timing {
                y.push_str(&format!("  {k}: {v}\n"));
            }
        }
        if !self.message.is_empty() {
            y.push_str("message:\n");
            for (k, v) in &self.message {
                y.push_str(&format!("  {k}: {v}\n"));
            }
        }
        if !self.check_lists.is_empty() {
            y.push_str("checks:\n  lists:\n");
            for l in &self.check_lists {
                y.push_str(&format!("    - {l}\n"));
            }
        }
        y.push_str("seeds:\n");
        for s in &self.seeds {
            y.push_str(&s.yaml());
        }
        y
    }

    /// Writes `seeds.yaml` into `dir`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("seeds.yaml");
        std::fs::write(&path, self.yaml()).unwrap();
        path
    }
}

/// How a lab seed reaches Dovecot.
#[derive(Clone, Copy)]
pub enum Imap {
    /// 127.0.0.1:1993, TLS from the first byte.
    Implicit,
    /// localhost:1143 with STARTTLS.
    Starttls,
    /// 127.0.0.1:1143 in clear (allowed on loopback).
    Plain,
}

/// One seed.
#[derive(Clone)]
#[must_use]
pub struct Seed {
    name: String,
    address: String,
    provider: Option<String>,
    mx: Option<String>,
    host: String,
    /// As YAML: a number, or what a test puts there instead ([`Seed::imap_port`]).
    port: String,
    tls: Option<String>,
    password: Password,
    ca_file: Option<String>,
    /// `imap:` keys after the standard ones (`spam_folder`, ...), values as YAML.
    imap_extra: Vec<(String, String)>,
}

/// Where a seed's password comes from.
#[derive(Clone)]
pub enum Password {
    /// `{ env: NAME }`
    Env(String),
    /// `{ file: PATH }`
    File(PathBuf),
    /// An OAuth 2.0 refresh-token block: `oauth2:` keys, values as YAML.
    OAuth2(Vec<(String, String)>),
}

impl Password {
    /// A lab seed's password file, as the lab generated it.
    pub fn lab(local: &str) -> Password {
        Password::File(password_file(local))
    }
}

impl Seed {
    /// A seed polled on 127.0.0.1:993 (implicit TLS, the default), no password source yet
    /// (`{ env: SEEDPROBE_TEST_PW }`), no MX override.
    pub fn new(name: &str, address: &str) -> Seed {
        Seed {
            name: name.into(),
            address: address.into(),
            provider: None,
            mx: None,
            host: "127.0.0.1".into(),
            port: "993".into(),
            tls: None,
            password: Password::Env("SEEDPROBE_TEST_PW".into()),
            ca_file: None,
            imap_extra: Vec::new(),
        }
    }

    /// The lab mailbox `local@local.lab.test` through the lab MX, over implicit TLS.
    pub fn lab(local: &str) -> Seed {
        Seed::new(local, &format!("{local}@{local}.lab.test"))
            .mx("127.0.0.1:2525")
            .lab_imap(local)
    }

    /// The lab's six simulated providers, each IMAP way used at least once.
    pub fn lab_six() -> [Seed; 6] {
        [
            Seed::lab("inbox"),
            Seed::lab("junk").imap(Imap::Starttls),
            Seed::lab("tagged").imap(Imap::Plain),
            Seed::lab("defer"),
            Seed::lab("reject"),
            Seed::lab("discard"),
        ]
    }

    /// Polled as the lab mailbox of `local` (implicit TLS, the lab CA, its password file).
    pub fn lab_imap(self, local: &str) -> Seed {
        self.imap(Imap::Implicit)
            .password(Password::lab(local))
            .ca_file(&lab_ca())
    }

    /// How this seed reaches the lab's Dovecot.
    pub fn imap(self, way: Imap) -> Seed {
        let (host, port, tls) = match way {
            Imap::Implicit => ("127.0.0.1", 1993, "implicit"),
            Imap::Starttls => ("localhost", 1143, "starttls"),
            Imap::Plain => ("127.0.0.1", 1143, "none"),
        };
        self.imap_server(host, port).tls(tls)
    }

    pub fn imap_server(mut self, host: &str, port: u16) -> Seed {
        self.host = host.into();
        self.port = port.to_string();
        self
    }

    /// `imap.port` as YAML, written as given: for a value no port number holds (`65536`,
    /// `-1`, `~`), which only a config test wants.
    pub fn imap_port(mut self, port: &str) -> Seed {
        self.port = port.into();
        self
    }

    /// `imap.tls`: `implicit`, `starttls` or `none`.
    pub fn tls(mut self, tls: &str) -> Seed {
        self.tls = Some(tls.into());
        self
    }

    pub fn mx(mut self, mx: &str) -> Seed {
        self.mx = Some(mx.into());
        self
    }

    pub fn provider(mut self, provider: &str) -> Seed {
        self.provider = Some(provider.into());
        self
    }

    pub fn password(mut self, password: Password) -> Seed {
        self.password = password;
        self
    }

    pub fn ca_file(mut self, path: &Path) -> Seed {
        self.ca_file = Some(path.display().to_string());
        self
    }

    /// Another `imap:` key, value as YAML.
    pub fn imap_key(mut self, key: &str, value: &str) -> Seed {
        self.imap_extra.push((key.into(), value.into()));
        self
    }

    fn yaml(&self) -> String {
        let mut y = format!("  - name: {}\n    address: {}\n", self.name, self.address);
        if let Some(p) = &self.provider {
            y.push_str(&format!("    provider: {p}\n"));
        }
        if let Some(mx) = &self.mx {
            y.push_str(&format!("    mx: \"{mx}\"\n"));
        }
        y.push_str(&format!(
            "    imap:\n      host: {}\n      port: {}\n",
            self.host, self.port
        ));
        if let Some(tls) = &self.tls {
            y.push_str(&format!("      tls: {tls}\n"));
        }
        match &self.password {
            Password::Env(name) => y.push_str(&format!("      password: {{ env: {name} }}\n")),
            Password::File(path) => {
                y.push_str(&format!("      password: {{ file: {} }}\n", path.display()))
            }
            Password::OAuth2(keys) => {
                y.push_str("      password:\n        oauth2:\n");
                for (k, v) in keys {
                    y.push_str(&format!("          {k}: {v}\n"));
                }
            }
        }
        if let Some(ca) = &self.ca_file {
            y.push_str(&format!("      ca_file: {ca}\n"));
        }
        for (k, v) in &self.imap_extra {
            y.push_str(&format!("      {k}: {v}\n"));
        }
        y
    }
}

/// An IMAP account that is not a seed (`sender.bounces`), in flow style for [`Seeds::sender`].
pub fn lab_imap_flow(local: &str) -> String {
    format!(
        "{{ host: 127.0.0.1, port: 1993, tls: implicit, password: {{ file: {} }}, ca_file: {} }}",
        password_file(local).display(),
        lab_ca().display()
    )
}
