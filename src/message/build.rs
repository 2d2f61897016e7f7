use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};

use super::{DkimSignError, DkimSigner, Token};
use crate::config::{MessageTemplate, Sender};

/// The header that confirms a search hit is ours.
pub const X_PROBE_ID: &str = "X-Probe-Id";

#[derive(Debug, Clone)]
struct XProbeId(String);

impl Header for XProbeId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(X_PROBE_ID)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XProbeId(s.trim().to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A composed message, ready for DATA.
#[derive(Debug, Clone)]
pub struct TestMessage {
    /// Its token.
    pub token: Token,
    /// The subject as sent.
    pub subject: String,
    /// The `Message-ID`, with angle brackets.
    pub message_id: String,
    /// RFC 5322 bytes with CRLF line ends, DKIM-signed when a signer was given.
    pub bytes: Vec<u8>,
}

/// The message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The builder refused it.
    #[error("cannot compose the test message: {0}")]
    Compose(#[from] lettre::error::Error),
    /// The DKIM key refused to sign.
    #[error("cannot sign the test message: {0}")]
    Sign(#[from] DkimSignError),
}

/// Composes the test message for one seed, signed with `dkim` when given.
pub fn build(
    sender: &Sender,
    template: &MessageTemplate,
    to: &lettre::Address,
    seed_name: &str,
    token: Token,
    dkim: Option<&DkimSigner>,
) -> Result<TestMessage, BuildError> {
    let fill = |s: &str| {
        s.replace("{token}", &token.to_string())
            .replace("{seed}", seed_name)
    };
    let subject = fill(&template.subject);
    // The token alone as the local part: a Message-ID that contains the From address (as
    // `<TOKEN.seedprobe@domain>` did for `probe@domain`) costs a point at rspamd
    // (MID_CONTAINS_FROM), which the user's real mail does not pay.
    let message_id = format!("<{token}@{}>", sender.from.email.domain());
    let message = lettre::Message::builder()
        .from(sender.from.clone())
        .to(lettre::message::Mailbox::new(None, to.clone()))
        .subject(subject.clone())
        .message_id(Some(message_id.clone()))
        .header(XProbeId(token.to_string()))
        .user_agent(format!("seedprobe/{}", env!("CARGO_PKG_VERSION")))
        .date_now()
        // Real mail says how to read its body: without these, a non-ASCII body sent as
        // quoted-printable would be read as US-ASCII, and filters score the missing headers.
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(fill(&template.body))?;
    let bytes = message.formatted();
    let bytes = match dkim {
        Some(signer) => signer.sign(&bytes)?,
        None => bytes,
    };
    Ok(TestMessage {
        token,
        subject,
        message_id,
        bytes,
    })
}
