//! The SASL bearer-token initial responses, unencoded: the one encoder for IMAP AUTHENTICATE
//! and SMTP AUTH alike (each base64-encodes it as its protocol wants).

use super::SecretString;

/// The SASL XOAUTH2 initial response (Google's and Microsoft's format).
pub fn xoauth2(user: &str, token: &SecretString) -> String {
    format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose())
}

/// The SASL OAUTHBEARER initial response (RFC 7628 §3.1); the user name is escaped as the
/// GS2 header requires.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &SecretString) -> String {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let tok = SecretString::new("tok".into());
        assert_eq!(
            xoauth2("a@b.c", &tok),
            "user=a@b.c\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            oauthbearer("a,=b@c", "imap.x", 993, &tok),
            "n,a=a=2C=3Db@c,\x01host=imap.x\x01port=993\x01auth=Bearer tok\x01\x01"
        );
    }
}
