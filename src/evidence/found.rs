//! What a found message shows: the role of the folder it was in, and the header fields kept
//! as evidence. Polling produces these; the verdict and the evidence readers consume them, so
//! they live here, below both (no module cycle).

use serde::{Deserialize, Serialize};

use crate::message::X_PROBE_ID;

/// The role of the folder a message was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderRole {
    /// The inbox.
    Inbox,
    /// The spam folder.
    Junk,
}

impl FolderRole {
    /// Stable name, for the store.
    pub fn as_str(self) -> &'static str {
        match self {
            FolderRole::Inbox => "inbox",
            FolderRole::Junk => "junk",
        }
    }

    /// The role of a stored name.
    pub fn from_label(label: &str) -> Option<FolderRole> {
        match label {
            "inbox" => Some(FolderRole::Inbox),
            "junk" => Some(FolderRole::Junk),
            _ => None,
        }
    }
}

impl std::fmt::Display for FolderRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields worth keeping as evidence: a verdict is explained by these.
const EVIDENCE_HEADERS: &[&str] = &[
    "Subject",
    "X-Spam-Flag",
    "X-Spam-Status",
    "X-Spam-Score",
    "X-Spam-Level",
    "X-Spam",
    "X-Spamd-Result",
    "Authentication-Results",
    "Received",
    "X-MS-Exchange-Organization-SCL",
    "X-Forefront-Antispam-Report",
    "X-Microsoft-Antispam",
    "X-UI-Filterresults",
];

/// Header fields of a found message, in message order, unfolded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderEvidence {
    /// The decoded subject.
    pub subject: Option<String>,
    /// Selected raw fields as (name, value).
    pub fields: Vec<(String, String)>,
}

impl HeaderEvidence {
    /// Extracts the evidence from a raw header block.
    pub fn from_header_block(raw: &[u8]) -> Option<(Option<String>, HeaderEvidence)> {
        let message = mail_parser::MessageParser::new().parse_headers(raw)?;
        let probe_id = message.header_raw(X_PROBE_ID).map(|v| v.trim().to_owned());
        let fields = message
            .headers_raw()
            .filter(|(name, _)| {
                EVIDENCE_HEADERS
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name))
            })
            .map(|(name, value)| (name.to_owned(), unfold(value)))
            .collect();
        let evidence = HeaderEvidence {
            subject: message.subject().map(str::to_owned),
            fields,
        };
        Some((probe_id, evidence))
    }

    /// The values of a field, case-insensitively.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}
