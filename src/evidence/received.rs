//! Delivery latency from the receiving provider's own `Received` field.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::HeaderEvidence;

/// When the receiving provider stamped the message: the date of the topmost `Received` field
/// (RFC 5321 §4.4: each hop prepends one, so the topmost is the last hop, the provider's store).
pub fn received_at(headers: &HeaderEvidence) -> Option<SystemTime> {
    let topmost = headers.values("Received").next()?;
    let (_, date) = topmost.rsplit_once(';')?;
    let parsed = mail_parser::DateTime::parse_rfc822(date.trim())?;
    let secs = u64::try_from(parsed.to_timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}
