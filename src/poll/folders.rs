//! Which folder is the spam folder.
//!
//! Pure logic over a `LIST` result, so every naming case is a table row in the tests.

/// One mailbox from `LIST "" "*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMailbox {
    /// The name as on the wire (modified UTF-7, not decoded).
    pub name: String,
    /// The hierarchy delimiter, if any.
    pub delimiter: Option<String>,
    /// True when the server marks it `\Junk` (RFC 6154).
    pub junk: bool,
    /// True when it cannot be selected (`\Noselect`, `\NonExistent`).
    pub noselect: bool,
}

impl ListedMailbox {
    /// One entry of a LIST response.
    pub fn from_name(n: &async_imap::types::Name) -> ListedMailbox {
        use async_imap::types::NameAttribute as A;
        let attrs = n.attributes();
        ListedMailbox {
            name: n.name().to_owned(),
            delimiter: n.delimiter().map(str::to_owned),
            junk: attrs.iter().any(|a| matches!(a, A::Junk)),
            noselect: attrs.iter().any(|a| match a {
                A::NoSelect => true,
                A::Extension(x) => x.eq_ignore_ascii_case("\\NonExistent"),
                _ => false,
            }),
        }
    }
}

/// How the spam folder was chosen; stored as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JunkSource {
    /// The seed's `spam_folder` setting.
    Configured,
    /// The server's `\Junk` attribute.
    Attribute,
    /// A known provider name.
    Name,
}

/// The chosen spam folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunkFolder {
    /// Its wire name, as used in EXAMINE.
    pub name: String,
    /// Why it was chosen.
    pub source: JunkSource,
}

type NameMatch<'a> = dyn Fn(&ListedMailbox, &str) -> bool + 'a;

/// Picks the spam folder: the configured name if the server has it, else the folder marked
/// `\Junk`, else the first known name present (exact, then ignoring case, then below `INBOX`).
pub fn find_junk(
    listed: &[ListedMailbox],
    configured: Option<&str>,
    known_names: &[String],
) -> Option<JunkFolder> {
    let selectable = || listed.iter().filter(|m| !m.noselect);
    // The configured name may be written as the user sees it or as the wire has it.
    if let Some(wanted) = configured
        && let Some(m) =
            selectable().find(|m| m.name == wanted || super::utf7::decode(&m.name) == wanted)
    {
        return Some(JunkFolder {
            name: m.name.clone(),
            source: JunkSource::Configured,
        });
    }
    if let Some(m) = selectable().find(|m| m.junk) {
        return Some(JunkFolder {
            name: m.name.clone(),
            source: JunkSource::Attribute,
        });
    }
    let below_inbox = |m: &ListedMailbox| -> String {
        let d = m.delimiter.as_deref().unwrap_or("/");
        m.name
            .strip_prefix(&format!("INBOX{d}"))
            .unwrap_or(&m.name)
            .to_owned()
    };
    let matchers: [&NameMatch<'_>; 3] = [
        &|m, n| m.name == n,
        &|m, n| m.name.eq_ignore_ascii_case(n),
        &|m, n| below_inbox(m).eq_ignore_ascii_case(n),
    ];
    for matches in matchers {
        for name in known_names {
            if let Some(m) = selectable().find(|m| matches(m, name)) {
                return Some(JunkFolder {
                    name: m.name.clone(),
                    source: JunkSource::Name,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: &str, junk: bool) -> ListedMailbox {
        ListedMailbox {
            name: name.into(),
            delimiter: Some("/".into()),
            junk,
            noselect: false,
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// (what, LIST result, configured spam_folder, expected choice)
    type Row<'a> = (
        &'a str,
        Vec<ListedMailbox>,
        Option<&'a str>,
        Option<(&'a str, JunkSource)>,
    );

    #[test]
    fn discovery_table() {
        let known = names(crate::config::KNOWN_SPAM_FOLDERS);
        let rows: &[Row] = &[
            (
                "attribute beats a known name",
                vec![mb("INBOX", false), mb("Spam", false), mb("Filtered", true)],
                None,
                Some(("Filtered", JunkSource::Attribute)),
            ),
            (
                "gmail-like name with attribute",
                vec![mb("INBOX", false), mb("[Gmail]/Spam", true)],
                None,
                Some(("[Gmail]/Spam", JunkSource::Attribute)),
            ),
            (
                "yahoo-like name, no attribute",
                vec![mb("INBOX", false), mb("Bulk", false)],
                None,
                Some(("Bulk", JunkSource::Name)),
            ),
            (
                "case differs",
                vec![mb("INBOX", false), mb("junk", false)],
                None,
                Some(("junk", JunkSource::Name)),
            ),
            (
                "below INBOX with a dot delimiter",
                vec![ListedMailbox {
                    name: "INBOX.Spamverdacht".into(),
                    delimiter: Some(".".into()),
                    junk: false,
                    noselect: false,
                }],
                None,
                Some(("INBOX.Spamverdacht", JunkSource::Name)),
            ),
            (
                "configured wins",
                vec![mb("Junk", true), mb("Quarantine", false)],
                Some("Quarantine"),
                Some(("Quarantine", JunkSource::Configured)),
            ),
            (
                "configured but absent falls back",
                vec![mb("Junk", true)],
                Some("Nope"),
                Some(("Junk", JunkSource::Attribute)),
            ),
            (
                "noselect is skipped",
                vec![ListedMailbox {
                    noselect: true,
                    ..mb("Spam", true)
                }],
                None,
                None,
            ),
            (
                "nothing",
                vec![mb("INBOX", false), mb("Sent", false)],
                None,
                None,
            ),
        ];
        for (what, listed, configured, want) in rows {
            let got = find_junk(listed, *configured, &known);
            let want = want.map(|(n, s)| JunkFolder {
                name: n.into(),
                source: s,
            });
            assert_eq!(got, want, "row: {what}");
        }
    }
}
