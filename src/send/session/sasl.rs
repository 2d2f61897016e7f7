//! The AUTH exchange (RFC 4954): SASL PLAIN, LOGIN or XOAUTH2, with the
//! credentials kept out of the transcript. The settings it works from, and
//! the SASL responses, are in [`crate::send::auth`].

use super::{Session, failed};
use crate::send::auth::{self, Auth, AuthMechanism};
use crate::send::outcome::{Ending, SessionError, Stage};
use crate::send::reply::Severity;
use crate::tls::CertVerdict;

/// RFC 5321 §4.5.3.1.4's command line limit, CRLF included. RFC 4954 §4
/// sends a longer AUTH initial response (a big OAuth token) after a 334
/// instead of on the command line.
const MAX_COMMAND_LINE: usize = 512;

impl Session<'_> {
    /// AUTH (RFC 4954) with the first acceptable mechanism the server
    /// offers. Credentials go only where no third party can read them,
    /// unless the caller allowed it.
    pub(super) async fn authenticate(&mut self, auth: &Auth) -> Result<(), Ending> {
        let refuse = |reason: String| SessionError::PlaintextAuthRefused {
            server: self.server.clone(),
            reason,
        };
        if !auth.allow_plaintext {
            match &self.tls {
                None => {
                    return Err(failed(
                        Stage::Auth,
                        refuse("the connection is not encrypted".into()),
                    ));
                }
                Some(info) if info.certificate != CertVerdict::Trusted => {
                    return Err(failed(
                        Stage::Auth,
                        refuse(format!("its TLS certificate is {}", info.certificate)),
                    ));
                }
                Some(_) => {}
            }
        }
        let unavailable = |reason: String| {
            failed(
                Stage::Auth,
                SessionError::AuthUnavailable {
                    server: self.server.clone(),
                    reason,
                },
            )
        };
        let Some(offered) = self.extensions.params("AUTH") else {
            return Err(unavailable("it does not offer AUTH".into()));
        };
        let Some(mechanism) = auth.choose(&offered) else {
            return Err(unavailable(format!(
                "it offers {} and we allow {}",
                if offered.is_empty() {
                    "no mechanism".to_owned()
                } else {
                    offered.join(" ")
                },
                auth.wanted_names()
            )));
        };
        match mechanism {
            // RFC 4954 §4: "*" cancels an exchange the server wants to go on with.
            AuthMechanism::Plain => {
                self.sasl_initial(mechanism, auth::plain_response(auth), "*")
                    .await
            }
            // Google's XOAUTH2: a 334 carries the error details and waits for
            // an empty line before the final 5xx.
            AuthMechanism::Xoauth2 => {
                self.sasl_initial(mechanism, auth::xoauth2_response(auth), "")
                    .await
            }
            AuthMechanism::Login => self.sasl_login(auth).await,
        }
    }

    /// A mechanism with an initial response (RFC 4954 §4).
    async fn sasl_initial(
        &mut self,
        mechanism: AuthMechanism,
        response: String,
        answer_to_more: &str,
    ) -> Result<(), Ending> {
        let name = mechanism.as_str();
        let line = format!("AUTH {name} {response}");
        let reply = if line.len() + 2 <= MAX_COMMAND_LINE {
            self.command_redacted(&line, &format!("AUTH {name} <redacted>"))
                .await?
        } else {
            let reply = self.command(&format!("AUTH {name}"), Stage::Auth).await?;
            self.expect(reply, Stage::Auth, Severity::PositiveIntermediate)?;
            self.command_redacted(&response, "<redacted>").await?
        };
        let reply = if reply.code == 334 {
            self.command(answer_to_more, Stage::Auth).await?
        } else {
            reply
        };
        self.expect(reply, Stage::Auth, Severity::PositiveCompletion)
            .map(drop)
    }

    /// LOGIN: user name and password, each in answer to a 334.
    async fn sasl_login(&mut self, auth: &Auth) -> Result<(), Ending> {
        let reply = self.command("AUTH LOGIN", Stage::Auth).await?;
        self.expect(reply, Stage::Auth, Severity::PositiveIntermediate)?;
        let reply = self
            .command_redacted(&auth::base64(auth.username.as_bytes()), "<redacted>")
            .await?;
        self.expect(reply, Stage::Auth, Severity::PositiveIntermediate)?;
        let reply = self
            .command_redacted(
                &auth::base64(auth.password.expose().as_bytes()),
                "<redacted>",
            )
            .await?;
        self.expect(reply, Stage::Auth, Severity::PositiveCompletion)
            .map(drop)
    }
}

/// What must never be echoed into a transcript during AUTH. Very short
/// values are left out: cutting them out would shred ordinary reply text.
pub(super) fn secrets_of(auth: &Auth) -> Vec<String> {
    let password = auth.password.expose();
    [
        password.to_owned(),
        auth::base64(password.as_bytes()),
        auth::plain_response(auth),
        auth::xoauth2_response(auth),
    ]
    .into_iter()
    .filter(|s| s.len() >= 4)
    .collect()
}
