//! The seeds file `probe init` writes: a commented, valid config that names for each seed the
//! provider it was taken for and why, and where its password is to come from.
//!
//! The text is a template rather than serialised data because the comments are the point: a
//! new user learns the file's shape from it, and `probe seeds check` is the next step.

use std::fmt::Write as _;

use super::provider::Provider;

/// How a seed's provider was found, said in the seed's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// The mail domain is the provider's own (`gmail.com`).
    Domain,
    /// A custom domain whose MX host is the provider's (Google Workspace, Microsoft 365).
    Mx(String),
    /// Not found: the MX host, if any, is not a known provider's.
    Unknown(Option<String>),
}

/// One seed to write.
#[derive(Debug, Clone)]
pub struct NewSeed {
    /// The seed mailbox's address.
    pub address: String,
    /// Its provider, when known.
    pub provider: Option<Provider>,
    /// How that was found.
    pub detected: Detected,
}

impl NewSeed {
    fn local_part(&self) -> &str {
        self.address.split('@').next().unwrap_or("")
    }

    fn domain(&self) -> &str {
        self.address.rsplit('@').next().unwrap_or("")
    }

    /// The seed's name: the provider's (or the domain's first label) and the local part, in
    /// lower case letters, digits and dashes, so that it is also a usable variable name.
    fn name(&self) -> String {
        let head = match self.provider {
            Some(p) => p.profile().name.to_owned(),
            None => self.domain().split('.').next().unwrap_or("seed").to_owned(),
        };
        let raw = format!("{head}-{}", self.local_part()).to_ascii_lowercase();
        let mut name = String::new();
        for c in raw.chars() {
            let c = if c.is_ascii_alphanumeric() { c } else { '-' };
            if !(c == '-' && name.ends_with('-')) {
                name.push(c);
            }
        }
        name.trim_matches('-').to_owned()
    }
}

/// The password variable for a seed name: `gmail-alice` -> `PROBE_GMAIL_ALICE_PASSWORD`.
pub fn password_variable(seed_name: &str) -> String {
    format!(
        "PROBE_{}_PASSWORD",
        seed_name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The seeds (name, password variable) a file holds, in order: what the user must set.
pub fn seed_names(seeds: &[NewSeed]) -> Vec<(String, String)> {
    let mut taken: Vec<String> = Vec::new();
    seeds
        .iter()
        .map(|s| {
            let base = s.name();
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            taken.push(name.clone());
            let var = password_variable(&name);
            (name, var)
        })
        .collect()
}

/// Renders the seeds file. `from` is the sender address, `from_guessed` says it was not given
/// and must be changed.
pub fn seeds_file(from: &str, from_guessed: bool, seeds: &[NewSeed]) -> String {
    let mut out = String::new();
    let names = seed_names(seeds);
    let _ = writeln!(out, "# Seeds file written by `probe init`.");
    let _ = writeln!(
        out,
        "# Next: set the password variables below, then `probe seeds check` (logs into every"
    );
    let _ = writeln!(
        out,
        "# seed and sends nothing), `probe check` (your IP's and domain's DNS and listings) and"
    );
    let _ = writeln!(out, "# `probe run --all`.");
    let _ = writeln!(out, "sender:");
    let change = if from_guessed {
        "   # CHANGE: the address your real mail is sent from"
    } else {
        "   # the address your real mail is sent from"
    };
    let _ = writeln!(out, "  from: {}{change}", yaml_quote(from));
    let _ = writeln!(
        out,
        "  transport: direct   # straight to each seed's MX; `relay` sends through your MTA (sender.relay)"
    );
    let _ = writeln!(
        out,
        "  # dkim: {{ domain: example.org, selector: s2026, private_key: {{ file: /etc/dkim/s2026.key }} }}"
    );
    let _ = writeln!(out, "timing:");
    let _ = writeln!(
        out,
        "  timeout: 15m        # how long a message may take before it counts as missing"
    );
    let _ = writeln!(out, "seeds:");
    for (seed, (name, var)) in seeds.iter().zip(&names) {
        let why = match (&seed.provider, &seed.detected) {
            (Some(p), Detected::Domain) => format!("{} (its own domain)", p.profile().name),
            (Some(p), Detected::Mx(mx)) => {
                format!("{} (the domain's MX is {mx})", p.profile().name)
            }
            (_, Detected::Unknown(Some(mx))) => {
                format!("provider not recognised (MX {mx}): set imap.host")
            }
            (_, _) => "provider not recognised (no MX found): set imap.host".to_owned(),
        };
        let _ = writeln!(out, "  # {}: {why}", seed.address);
        if let Some(p) = seed.provider {
            let _ = writeln!(out, "  # Log in with {}.", p.profile().login_note);
        }
        let _ = writeln!(out, "  - name: {name}");
        let _ = writeln!(out, "    address: {}", yaml_quote(&seed.address));
        if let Some(p) = seed.provider {
            let _ = writeln!(out, "    provider: {}", provider_key(p));
        }
        let _ = writeln!(out, "    imap:");
        if seed.provider.is_none() {
            let _ = writeln!(
                out,
                "      host: {}   # a guess: your provider's IMAP server",
                yaml_quote(&format!("imap.{}", seed.domain()))
            );
        }
        let _ = writeln!(out, "      username: {}", yaml_quote(&seed.address));
        let _ = writeln!(out, "      password: {{ env: {var} }}");
    }
    out
}

/// The config's spelling of a provider (`provider:`), as serde reads it.
fn provider_key(p: Provider) -> &'static str {
    match p {
        Provider::Gmail => "gmail",
        Provider::Outlook => "outlook",
        Provider::Yahoo => "yahoo",
        Provider::Aol => "aol",
        Provider::Gmx => "gmx",
        Provider::Webde => "webde",
        Provider::Tonline => "tonline",
        Provider::Icloud => "icloud",
    }
}

/// A YAML double-quoted scalar: addresses may hold characters YAML gives meaning to.
fn yaml_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(address: &str, provider: Option<Provider>, detected: Detected) -> NewSeed {
        NewSeed {
            address: address.into(),
            provider,
            detected,
        }
    }

    #[test]
    fn names_and_variables() {
        let seeds = [
            seed("Alice.B@gmail.com", Some(Provider::Gmail), Detected::Domain),
            seed(
                "alice.b@googlemail.com",
                Some(Provider::Gmail),
                Detected::Domain,
            ),
            seed("x@mail.example", None, Detected::Unknown(None)),
        ];
        let names = seed_names(&seeds);
        assert_eq!(
            names,
            [
                (
                    "gmail-alice-b".into(),
                    "PROBE_GMAIL_ALICE_B_PASSWORD".into()
                ),
                (
                    "gmail-alice-b-2".into(),
                    "PROBE_GMAIL_ALICE_B_2_PASSWORD".into()
                ),
                ("mail-x".into(), "PROBE_MAIL_X_PASSWORD".into()),
            ]
        );
    }

    #[test]
    fn every_provider_key_is_what_the_config_reads() {
        for p in [
            Provider::Gmail,
            Provider::Outlook,
            Provider::Yahoo,
            Provider::Aol,
            Provider::Gmx,
            Provider::Webde,
            Provider::Tonline,
            Provider::Icloud,
        ] {
            let read: Provider = serde_saphyr::from_str(provider_key(p)).unwrap();
            assert_eq!(read, p);
        }
    }

    #[test]
    fn the_file_is_a_valid_config() {
        let seeds = [
            seed("a@gmail.com", Some(Provider::Gmail), Detected::Domain),
            seed(
                "b@corp.example",
                Some(Provider::Outlook),
                Detected::Mx("corp-example.mail.protection.outlook.com".into()),
            ),
            seed(
                "c+q@odd.example",
                None,
                Detected::Unknown(Some("mx.odd.example".into())),
            ),
        ];
        let text = seeds_file("probe@sender.example", true, &seeds);
        let config = crate::config::Config::parse(std::path::Path::new("seeds.yaml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.seeds.len(), 3);
        assert_eq!(config.seeds[1].imap.host, "outlook.office365.com");
        assert_eq!(config.seeds[2].imap.host, "imap.odd.example");
        assert!(text.contains("# CHANGE"));
        assert!(text.contains("oauth2"), "Outlook's login note");
    }
}
