//! Which mailbox provider received the mail: Gmail and Google Workspace, Microsoft
//! (Outlook, Hotmail, Office 365), Yahoo/AOL, GMX/web.de, T-Online, iCloud. The receiving host
//! names it best (a Workspace customer's own domain is Google's), the recipient domain
//! otherwise. Bounces, causes and the mail log all group by this one answer.

/// Known providers by a suffix of their MX hosts or their mail domains, most specific first.
const PROVIDERS: &[(&str, &[&str])] = &[
    ("gmail", &["google.com", "googlemail.com", "gmail.com"]),
    (
        "outlook",
        &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "protection.outlook.com",
        ],
    ),
    (
        "yahoo",
        &["yahoo.com", "yahoodns.net", "aol.com", "yahoo.co.jp"],
    ),
    ("gmx", &["gmx.net", "gmx.de", "gmx.com", "web.de"]),
    ("t-online", &["t-online.de"]),
    ("icloud", &["icloud.com", "me.com", "mac.com"]),
];

/// The provider that refused the mail: the remote host names it best (a Google Workspace
/// customer's domain is Google's), the recipient's domain otherwise.
pub fn provider(remote_mta: Option<&str>, recipient: Option<&str>) -> Option<&'static str> {
    let domain_of = |host: &str| -> String {
        host.trim()
            .trim_end_matches(['.', ']', '>'])
            .rsplit(['@', ' ', '['])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let mut candidates = Vec::new();
    if let Some(host) = remote_mta {
        candidates.push(domain_of(host));
    }
    if let Some(rcpt) = recipient {
        candidates.push(domain_of(rcpt));
    }
    candidates.iter().find_map(|name| {
        PROVIDERS.iter().find_map(|(provider, suffixes)| {
            suffixes
                .iter()
                .any(|s| {
                    name.strip_suffix(s)
                        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
                })
                .then_some(*provider)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_from_host_then_domain() {
        assert_eq!(
            provider(Some("gmail-smtp-in.l.google.com"), None),
            Some("gmail")
        );
        assert_eq!(
            provider(
                Some("example-com.mail.protection.outlook.com"),
                Some("a@example.com")
            ),
            Some("outlook")
        );
        assert_eq!(provider(None, Some("x@web.de")), Some("gmx"));
        assert_eq!(
            provider(Some("mx.example.org"), Some("x@aol.com")),
            Some("yahoo")
        );
        assert_eq!(provider(Some("mx00.t-online.de"), None), Some("t-online"));
        assert_eq!(provider(None, Some("x@notgmail.com")), None);
        assert_eq!(provider(None, None), None);
    }
}
