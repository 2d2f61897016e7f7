//! SMTP authentication (RFC 4954): credentials, mechanisms and their
//! initial responses.
//!
//! The session decides when AUTH may be sent; this module only builds what
//! goes on the wire. Everything built here is secret and must reach the
//! transcript only as `<redacted>`.

use std::fmt;

use crate::secrets::{BearerMechanism, Credential, SecretString, sasl};

/// A SASL mechanism we can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMechanism {
    /// RFC 4616: authorization id, user and password in one response.
    Plain,
    /// The de-facto "LOGIN" mechanism (draft-murchison-sasl-login): user and
    /// password each in answer to a 334 prompt.
    Login,
    /// Google's and Microsoft's OAuth 2.0 bearer token mechanism
    /// (developers.google.com/gmail/imap/xoauth2-protocol); the password is
    /// the access token.
    Xoauth2,
}

impl AuthMechanism {
    /// Used when the caller states no preference: the most widely offered
    /// first, the token-based one last.
    pub const DEFAULT_ORDER: [AuthMechanism; 3] = [
        AuthMechanism::Plain,
        AuthMechanism::Login,
        AuthMechanism::Xoauth2,
    ];

    /// The SASL name, as in the EHLO AUTH line.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::Xoauth2 => "XOAUTH2",
        }
    }

    /// Parses a SASL name, case-insensitively.
    pub fn from_name(name: &str) -> Option<AuthMechanism> {
        AuthMechanism::DEFAULT_ORDER
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials for a relay or submission server.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The user name (authentication identity).
    pub username: String,
    /// The password, or the OAuth access token for XOAUTH2.
    pub password: SecretString,
    /// Mechanisms in order of preference; the first one the server offers
    /// is used. Empty: the first of [`AuthMechanism::DEFAULT_ORDER`] offered.
    pub mechanisms: Vec<AuthMechanism>,
    /// Allow sending the credentials where a third party could read them:
    /// without TLS, or over TLS whose certificate did not verify. Callers
    /// set it for loopback servers or on the user's explicit consent.
    pub allow_plaintext: bool,
}

/// A credential SMTP AUTH cannot present: only XOAUTH2 carries a bearer token here.
#[derive(Debug, thiserror::Error)]
#[error("an OAUTHBEARER token cannot be used for SMTP AUTH; use mechanism: xoauth2")]
pub struct UnsupportedCredential;

impl Auth {
    /// Credentials from a resolved [`Credential`]: a password keeps the mechanisms asked for
    /// (XOAUTH2 among them takes it as a token the user fetched); an OAuth 2.0 access token
    /// can only go in XOAUTH2, so that is the one mechanism offered.
    pub fn from_credential(
        username: String,
        credential: Credential,
        mechanisms: Vec<AuthMechanism>,
        allow_plaintext: bool,
    ) -> Result<Auth, UnsupportedCredential> {
        let (password, mechanisms) = match credential {
            Credential::Password(password) => (password, mechanisms),
            Credential::Bearer {
                token,
                mechanism: BearerMechanism::Xoauth2,
            } => (token, vec![AuthMechanism::Xoauth2]),
            Credential::Bearer {
                mechanism: BearerMechanism::Oauthbearer,
                ..
            } => return Err(UnsupportedCredential),
        };
        Ok(Auth {
            username,
            password,
            mechanisms,
            allow_plaintext,
        })
    }

    /// The mechanism to use given what the server offers (upper-case SASL
    /// names from EHLO), or `None` when there is no match.
    pub fn choose(&self, offered: &[String]) -> Option<AuthMechanism> {
        let wanted: &[AuthMechanism] = if self.mechanisms.is_empty() {
            &AuthMechanism::DEFAULT_ORDER
        } else {
            &self.mechanisms
        };
        wanted
            .iter()
            .copied()
            .find(|m| offered.iter().any(|o| o.eq_ignore_ascii_case(m.as_str())))
    }

    /// The names we would accept, for error messages.
    pub(crate) fn wanted_names(&self) -> String {
        let wanted: &[AuthMechanism] = if self.mechanisms.is_empty() {
            &AuthMechanism::DEFAULT_ORDER
        } else {
            &self.mechanisms
        };
        wanted
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The base64 PLAIN response (RFC 4616 §2): empty authorization identity,
/// then user and password, NUL-separated.
pub(crate) fn plain_response(auth: &Auth) -> String {
    let mut raw = Vec::with_capacity(auth.username.len() + auth.password.expose().len() + 2);
    raw.push(0);
    raw.extend_from_slice(auth.username.as_bytes());
    raw.push(0);
    raw.extend_from_slice(auth.password.expose().as_bytes());
    base64(&raw)
}

/// The base64 XOAUTH2 response: `user=U ^A auth=Bearer T ^A ^A` ([`sasl::xoauth2`], the
/// encoder IMAP uses too).
pub(crate) fn xoauth2_response(auth: &Auth) -> String {
    base64(sasl::xoauth2(&auth.username, &auth.password).as_bytes())
}

/// Standard base64 with padding (RFC 4648 §4), as RFC 4954 §4 requires.
///
/// A dozen lines here instead of a dependency: only encoding is needed, and
/// only for short credentials.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mechanisms: Vec<AuthMechanism>) -> Auth {
        Auth {
            username: "probe@lab.test".into(),
            password: SecretString::new("s3cret".into()),
            mechanisms,
            allow_plaintext: false,
        }
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn responses() {
        let a = auth(Vec::new());
        // base64("\0probe@lab.test\0s3cret")
        assert_eq!(plain_response(&a), "AHByb2JlQGxhYi50ZXN0AHMzY3JldA==");
        // base64("user=probe@lab.test\x01auth=Bearer s3cret\x01\x01")
        assert_eq!(
            xoauth2_response(&a),
            "dXNlcj1wcm9iZUBsYWIudGVzdAFhdXRoPUJlYXJlciBzM2NyZXQBAQ=="
        );
    }

    #[test]
    fn mechanism_choice() {
        let offered = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let any = auth(Vec::new());
        assert_eq!(
            any.choose(&offered(&["LOGIN", "PLAIN"])),
            Some(AuthMechanism::Plain)
        );
        assert_eq!(
            any.choose(&offered(&["XOAUTH2", "LOGIN"])),
            Some(AuthMechanism::Login)
        );
        assert_eq!(any.choose(&offered(&["CRAM-MD5"])), None);
        let login_first = auth(vec![AuthMechanism::Login, AuthMechanism::Plain]);
        assert_eq!(
            login_first.choose(&offered(&["PLAIN", "LOGIN"])),
            Some(AuthMechanism::Login)
        );
        let token = auth(vec![AuthMechanism::Xoauth2]);
        assert_eq!(token.choose(&offered(&["PLAIN", "LOGIN"])), None);
        assert_eq!(
            AuthMechanism::from_name("xoauth2"),
            Some(AuthMechanism::Xoauth2)
        );
        assert_eq!(AuthMechanism::from_name("cram-md5"), None);
    }

    #[test]
    fn credentials_become_auth() {
        let token = SecretString::new("tok".into());
        let bearer = Credential::Bearer {
            token: token.clone(),
            mechanism: BearerMechanism::Xoauth2,
        };
        let a =
            Auth::from_credential("u".into(), bearer, vec![AuthMechanism::Plain], false).unwrap();
        assert_eq!(a.mechanisms, [AuthMechanism::Xoauth2]);
        let password = Credential::Password(token.clone());
        let a =
            Auth::from_credential("u".into(), password, vec![AuthMechanism::Login], true).unwrap();
        assert_eq!(a.mechanisms, [AuthMechanism::Login]);
        let oauthbearer = Credential::Bearer {
            token,
            mechanism: BearerMechanism::Oauthbearer,
        };
        assert!(Auth::from_credential("u".into(), oauthbearer, Vec::new(), false).is_err());
    }

    #[test]
    fn debug_does_not_show_the_password() {
        assert!(!format!("{:?}", auth(Vec::new())).contains("s3cret"));
    }
}
