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
    /// The profile for this provider.
    pub fn profile(self) -> Profile {
        let p = |name, imap_host, spam_folders| Profile {
            name,
            imap_host,
            imap_port: 993,
            imap_tls: ImapTls::Implicit,
            spam_folders,
        };
        match self {
            Provider::Gmail => p(
                "gmail",
                "imap.gmail.com",
                &["[Gmail]/Spam", "[Google Mail]/Spam"],
            ),
            Provider::Outlook => p(
                "outlook",
                "outlook.office365.com",
                &["Junk", "Junk Email", "Junk-E-Mail"],
            ),
            Provider::Yahoo => p("yahoo", "imap.mail.yahoo.com", &["Bulk", "Bulk Mail"]),
            Provider::Aol => p("aol", "imap.aol.com", &["Bulk", "Bulk Mail"]),
            Provider::Gmx => p("gmx", "imap.gmx.net", &["Spam", "Spamverdacht"]),
            Provider::Webde => p("webde", "imap.web.de", &["Spam", "Spamverdacht"]),
            Provider::Tonline => p("tonline", "secureimap.t-online.de", &["Spam"]),
            Provider::Icloud => p("icloud", "imap.mail.me.com", &["Junk"]),
        }
    }
}
