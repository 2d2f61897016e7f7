//! Amazon SES notifications sent by email (through SNS): a JSON document in the body, with
//! `notificationType` `Bounce` (per recipient: address, action, status, diagnostic) or
//! `Complaint` (the complaining recipients and a feedback type).

use serde::Deserialize;

use super::dsn::{DsnReport, Feedback};
use super::{Downstream, DownstreamAction, DownstreamSource, stated};

/// The notification, as far as it is read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    notification_type: String,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    reporting_mta: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    action: Option<String>,
    status: Option<String>,
    diagnostic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    complaint_feedback_type: Option<String>,
}

/// Reads the JSON notification in `body`; `None` when there is none, or it is about neither
/// a bounce nor a complaint (a delivery notification reports no failure).
pub fn parse(body: &str) -> Option<DsnReport> {
    if !body.contains("notificationType") {
        return None;
    }
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    // Mailers fold the long line: an SNS mail breaks it with `!` and a newline and a space.
    let json: String = body
        .get(start..=end)?
        .replace("!\r\n ", "")
        .replace("!\n ", "")
        .replace(['\r', '\n'], "");
    let value: serde_json::Value = serde_json::from_str(&json).ok()?;
    // Raw SNS delivery wraps the notification as a string in an envelope's `Message`.
    let value = match value.get("Message").and_then(|m| m.as_str()) {
        Some(inner) => serde_json::from_str(inner).ok()?,
        None => value,
    };
    let n: Notification = serde_json::from_value(value).ok()?;
    let strip = |v: &str| v.split_once(';').map_or(v, |(_, r)| r).trim().to_owned();
    match n.notification_type.as_str() {
        "Bounce" => {
            let bounce = n.bounce?;
            let recipients = bounce
                .bounced_recipients
                .into_iter()
                .map(|r| {
                    let action = match r.action.as_deref() {
                        Some("delayed") => DownstreamAction::Delayed,
                        _ => DownstreamAction::Failed,
                    };
                    let diagnostic = r.diagnostic_code.map(|d| {
                        let d = d.trim();
                        d.strip_prefix("smtp;")
                            .map_or_else(|| d.to_owned(), |rest| format!("smtp; {}", rest.trim()))
                    });
                    Downstream {
                        source: DownstreamSource::Dsn,
                        action,
                        recipient: Some(r.email_address),
                        status: r.status,
                        remote_mta: None,
                        command: diagnostic
                            .as_deref()
                            .and_then(stated::command_in)
                            .map(str::to_owned),
                        diagnostic,
                        reason: None,
                    }
                })
                .collect();
            Some(DsnReport {
                envelope_id: None,
                probe_id: None,
                reporting_mta: bounce.reporting_mta.as_deref().map(strip),
                recipients,
                feedback: Vec::new(),
            })
        }
        "Complaint" => {
            let complaint = n.complaint?;
            let feedback_type = complaint
                .complaint_feedback_type
                .unwrap_or_else(|| "abuse".to_owned());
            Some(DsnReport {
                envelope_id: None,
                probe_id: None,
                reporting_mta: None,
                recipients: Vec::new(),
                feedback: complaint
                    .complained_recipients
                    .into_iter()
                    .map(|r| Feedback {
                        recipient: Some(r.email_address),
                        feedback_type: feedback_type.clone(),
                    })
                    .collect(),
            })
        }
        _ => None,
    }
}
