//! Secrets: where they come from, how they are read, and the credential they become.
//!
//! A leaf of the module graph: it knows nothing of the config, polling or sending (only
//! [`crate::tls`], for the token endpoint). The config schema uses [`SecretSource`] to say where
//! a secret is; [`Credential::resolve`] reads it (trading an OAuth 2.0 refresh token for an
//! access token over HTTPS) into a [`Credential`], which IMAP login and SMTP AUTH both take.
//! Secrets are resolved once, before anything is sent, so a missing variable stops the run
//! before a message leaves; the value then lives only in a [`SecretString`], whose `Debug` is
//! redacted and which has no `Display`.

pub mod oauth2;
pub mod sasl;
mod source;

use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use source::{BearerMechanism, OAuth2Source, SecretError, SecretSource};

/// A secret value. It cannot be printed; [`SecretString::expose`] hands it to the one call that
/// needs it (a LOGIN).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself; call it only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a login presents, resolved: the one type IMAP login and SMTP AUTH take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A password (for IMAP LOGIN, SMTP AUTH PLAIN/LOGIN; or a token the user fetched
    /// themselves, for SMTP XOAUTH2).
    Password(SecretString),
    /// An OAuth 2.0 access token, presented in a SASL exchange.
    Bearer {
        /// The access token.
        token: SecretString,
        /// The SASL mechanism it is presented with.
        mechanism: BearerMechanism,
    },
}

impl Credential {
    /// Reads a source into a credential: a password, or for an OAuth 2.0 grant, an access
    /// token from its token endpoint. `timeout` (the IMAP timeout) bounds that exchange and a
    /// password command, which is stopped when it runs longer. `base` is the
    /// directory relative paths are resolved against (the config's).
    pub async fn resolve(
        source: &SecretSource,
        base: &Path,
        timeout: Duration,
    ) -> Result<Credential, SecretError> {
        match source {
            SecretSource::Oauth2(grant) => {
                let grant = oauth2::grant(grant, base, timeout).await?;
                Ok(Credential::Bearer {
                    token: oauth2::refresh(&grant, timeout).await?,
                    mechanism: grant.mechanism,
                })
            }
            other => Ok(Credential::Password(other.read(base, timeout).await?)),
        }
    }

    /// The secret as it goes on the wire: the password or the access token.
    pub fn secret(&self) -> &SecretString {
        match self {
            Credential::Password(secret) | Credential::Bearer { token: secret, .. } => secret,
        }
    }

    /// For a bearer token, the SASL mechanism name and its initial response (unencoded) for
    /// `user` at `host:port`; `None` for a password, which goes in a LOGIN.
    pub fn bearer_response(
        &self,
        user: &str,
        host: &str,
        port: u16,
    ) -> Option<(&'static str, String)> {
        let Credential::Bearer { token, mechanism } = self else {
            return None;
        };
        Some(match mechanism {
            BearerMechanism::Xoauth2 => ("XOAUTH2", sasl::xoauth2(user, token)),
            BearerMechanism::Oauthbearer => {
                ("OAUTHBEARER", sasl::oauthbearer(user, host, port, token))
            }
        })
    }

    /// How it logs in, for people: `password, LOGIN`, `OAuth 2.0, AUTHENTICATE XOAUTH2`.
    pub fn describe(&self) -> &'static str {
        match self {
            Credential::Password(_) => "password, LOGIN",
            Credential::Bearer {
                mechanism: BearerMechanism::Xoauth2,
                ..
            } => "OAuth 2.0, AUTHENTICATE XOAUTH2",
            Credential::Bearer {
                mechanism: BearerMechanism::Oauthbearer,
                ..
            } => "OAuth 2.0, AUTHENTICATE OAUTHBEARER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        let c = Credential::Bearer {
            token: s,
            mechanism: BearerMechanism::Xoauth2,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bearer_responses() {
        let token = SecretString::new("tok".into());
        let password = Credential::Password(token.clone());
        assert_eq!(password.bearer_response("a@b.c", "imap.x", 993), None);
        let xoauth2 = Credential::Bearer {
            token: token.clone(),
            mechanism: BearerMechanism::Xoauth2,
        };
        assert_eq!(
            xoauth2.bearer_response("a@b.c", "imap.x", 993),
            Some(("XOAUTH2", "user=a@b.c\x01auth=Bearer tok\x01\x01".into()))
        );
        let oauthbearer = Credential::Bearer {
            token,
            mechanism: BearerMechanism::Oauthbearer,
        };
        assert_eq!(
            oauthbearer
                .bearer_response("a@b.c", "imap.x", 993)
                .unwrap()
                .0,
            "OAUTHBEARER"
        );
    }
}
