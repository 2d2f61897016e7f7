//! Provider profiles: what is known about a mailbox provider, as data.
//!
//! A profile fills a seed's IMAP defaults and names the spam folders to look for when the server
//! does not mark one with `\Junk`. Facts come from `provider-facts.md` in the team notes.

use serde::Deserialize;

use super::ImapTls;

/// A known mailbox provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Gmail and Google Workspace.
    Gmail,
    /// Outlook.com, Hotmail, Live and Office 365.
    Outlook,
    /// Yahoo Mail.
    Yahoo,
    /// AOL Mail.
    Aol,
    /// GMX.
    Gmx,
    /// web.de.
    Webde,
    /// T-Online.
    Tonline,
    /// iCloud Mail.
    Icloud,
}

/// Defaults a provider brings to a seed.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Stable lower-case name, as written in the config and shown in reports.
    pub name: &'static str,
    /// IMAP server.
    pub imap_host: &'static str,
    /// IMAP port.
    pub imap_port: u16,
    /// IMAP transport security.
    pub imap_tls: ImapTls,
    /// Spam folder names this provider uses, tried after the `\Junk` attribute.
    pub spam_folders: &'static [&'static str],
    /// How a seed logs in there, for `probe init`'s comments: password-only IMAP login is
    /// gone at several providers, and a seeds file that pretends otherwise fails at the first
    /// run.
    pub login_note: &'static str,
}

/// Spam folder names seen at the big providers; used when a seed has no profile.
pub const KNOWN_SPAM_FOLDERS: &[&str] = &[
    "[Gmail]/Spam",
    "[Google Mail]/Spam",
    "Junk",
    "Junk Email",
    "Junk-E-Mail",
    "Spam",
    "Spamverdacht",
    "Bulk",
    "Bulk Mail",
];

impl Provider {
    /// The provider a `probe init` seed gets: `group` is the receiving provider as
    /// [`crate::reason::provider`] names it (from the mail domain or the MX hosts), refined by
    /// the mail domain where one group has two profiles (AOL is Yahoo's, web.de is GMX's).
    pub fn for_group(group: &str, domain: &str) -> Option<Provider> {
        let domain = domain.to_ascii_lowercase();
        Some(match group {
            "gmail" => Provider::Gmail,
            "outlook" => Provider::Outlook,
            "yahoo" if domain == "aol.com" => Provider::Aol,
            "yahoo" => Provider::Yahoo,
            "gmx" if domain == "web.de" => Provider::Webde,
            "gmx" => Provider::Gmx,
            "t-online" => Provider::Tonline,
            "icloud" => Provider::Icloud,
            _ => return None,
        })
    }

    /// The profile for this provider.
    pub fn profile(self) -> Profile {
        let p = |name, imap_host, spam_folders, login_note| Profile {
            name,
            imap_host,
            imap_port: 993,
            imap_tls: ImapTls::Implicit,
            spam_folders,
            login_note,
        };
        match self {
            Provider::Gmail => p(
                "gmail",
                "imap.gmail.com",
                &["[Gmail]/Spam", "[Google Mail]/Spam"],
                "an app password (needs 2-step verification) or oauth2: password-only login ended in September 2024",
            ),
            Provider::Outlook => p(
                "outlook",
                "outlook.office365.com",
                &["Junk", "Junk Email", "Junk-E-Mail"],
                "oauth2: Microsoft turned basic authentication for IMAP off (Exchange Online 2022, Outlook.com 2024)",
            ),
            Provider::Yahoo => p(
                "yahoo",
                "imap.mail.yahoo.com",
                &["Bulk", "Bulk Mail"],
                "an app password (Account security > Generate app password)",
            ),
            Provider::Aol => p(
                "aol",
                "imap.aol.com",
                &["Bulk", "Bulk Mail"],
                "an app password (Account security > Generate app password)",
            ),
            Provider::Gmx => p(
                "gmx",
                "imap.gmx.net",
                &["Spam", "Spamverdacht"],
                "the account password; enable IMAP first (Settings > POP3 & IMAP)",
            ),
            Provider::Webde => p(
                "webde",
                "imap.web.de",
                &["Spam", "Spamverdacht"],
                "the account password; enable IMAP first (Settings > POP3 & IMAP)",
            ),
            Provider::Tonline => p(
                "tonline",
                "secureimap.t-online.de",
                &["Spam"],
                "the separate e-mail password (Passwort fuer E-Mail-Programme), not the login password",
            ),
            Provider::Icloud => p(
                "icloud",
                "imap.mail.me.com",
                &["Junk"],
                "an app-specific password (appleid.apple.com > Sign-In and Security)",
            ),
        }
    }
}
