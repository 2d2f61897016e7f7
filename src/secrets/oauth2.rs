//! OAuth 2.0 for seed mailboxes: trade a refresh token for an access token (RFC 6749 §6) at
//! the provider's token endpoint; the token then logs in with SASL XOAUTH2 or OAUTHBEARER
//! (RFC 7628, [`super::sasl`]).
//!
//! Outlook.com and Office 365 accept nothing else over IMAP, and Gmail only this or app
//! passwords. The exchange is a single HTTPS POST, so a small client of our own does it rather
//! than an HTTP stack; it always verifies the endpoint's certificate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BearerMechanism, OAuth2Source, SecretError, SecretString};
use crate::tls::Trust;

/// Why no access token was obtained. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    /// The token URL is not `https://host[:port]/path`.
    #[error("token_url {0:?} must be an https:// URL")]
    Url(String),
    /// Connecting, TLS or reading failed.
    #[error("token endpoint {url}: {reason}")]
    Transport {
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The endpoint refused (RFC 6749 §5.2), e.g. `invalid_grant` for a revoked token.
    #[error("token endpoint {url} refused the refresh token: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The endpoint.
        url: String,
        /// The OAuth error code.
        error: String,
        /// Its explanation.
        description: Option<String>,
    },
    /// A reply that is not a token response.
    #[error("token endpoint {url} answered HTTP {status} without an access token")]
    BadReply {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
    },
}

/// What `refresh` needs, resolved.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token endpoint.
    pub token_url: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret, when the client has one.
    pub client_secret: Option<SecretString>,
    /// The long-lived refresh token.
    pub refresh_token: SecretString,
    /// What the endpoint's certificate is verified against.
    pub trust: Trust,
    /// The SASL mechanism the access token is presented with.
    pub mechanism: BearerMechanism,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads the secrets a grant names (relative to `base`) into a [`Grant`]. Errors name the
/// part of the grant that failed.
pub async fn grant(
    source: &OAuth2Source,
    base: &Path,
    timeout: Duration,
) -> Result<Grant, SecretError> {
    let part = |part: &'static str| {
        move |e: SecretError| SecretError::GrantPart {
            part,
            source: Box::new(e),
        }
    };
    let trust = Trust::load(source.ca_file.as_ref().map(|p| base.join(p)).as_deref())?;
    Ok(Grant {
        token_url: source.token_url.clone(),
        client_id: source.client_id.clone(),
        client_secret: match &source.client_secret {
            Some(s) => Some(s.read(base, timeout).await.map_err(part("client_secret"))?),
            None => None,
        },
        refresh_token: source
            .refresh_token
            .read(base, timeout)
            .await
            .map_err(part("refresh_token"))?,
        trust,
        mechanism: source.mechanism,
    })
}

/// Trades the refresh token for an access token.
pub async fn refresh(grant: &Grant, timeout: Duration) -> Result<SecretString, OAuth2Error> {
    let url = grant.token_url.clone();
    let (host, port, path) = split_url(&url).ok_or_else(|| OAuth2Error::Url(url.clone()))?;
    let transport = |reason: String| OAuth2Error::Transport {
        url: url.clone(),
        reason,
    };
    let mut body = format!(
        "grant_type=refresh_token&client_id={}&refresh_token={}",
        form(&grant.client_id),
        form(grant.refresh_token.expose())
    );
    if let Some(secret) = &grant.client_secret {
        body.push_str(&format!("&client_secret={}", form(secret.expose())));
    }
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| transport(e.to_string()))?;
        let config = grant.trust.verifying();
        let name = ServerName::try_from(host.clone()).map_err(|e| transport(e.to_string()))?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
            .connect(name, tcp)
            .await
            .map_err(|e| transport(format!("TLS: {e}")))?;
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| transport(e.to_string()))?;
        let mut reply = Vec::new();
        // Token replies are small; a cap keeps a hostile endpoint from filling memory.
        (&mut tls)
            .take(1 << 20)
            .read_to_end(&mut reply)
            .await
            .map_err(|e| transport(e.to_string()))?;
        Ok::<_, OAuth2Error>(reply)
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            transport(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        })??;
    let (status, body) = parse_http(&reply).ok_or_else(|| transport("not an HTTP reply".into()))?;
    let parsed: Option<TokenReply> = serde_json::from_slice(&body).ok();
    match parsed {
        Some(TokenReply {
            access_token: Some(token),
            ..
        }) if status == 200 && !token.is_empty() => Ok(SecretString::new(token)),
        Some(TokenReply {
            error: Some(error),
            error_description,
            ..
        }) => Err(OAuth2Error::Refused {
            url,
            error,
            description: error_description,
        }),
        _ => Err(OAuth2Error::BadReply { url, status }),
    }
}

fn split_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("https://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    // `host`, `host:port` or `[v6]:port`; the name is checked by the connection itself.
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            match after {
                "" => (host, 443),
                p => (host, p.strip_prefix(':')?.parse().ok()?),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, 443),
        },
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_owned(), port, path))
}

/// `application/x-www-form-urlencoded` value encoding.
fn form(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Status and body of an HTTP/1.1 reply (Content-Length, chunked, or read to close).
fn parse_http(reply: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&reply[..split]).ok()?;
    let body = &reply[split + 4..];
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&rest[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_form_encoding() {
        assert_eq!(form("a b+c/=&"), "a%20b%2Bc%2F%3D%26");
        assert_eq!(
            split_url("https://127.0.0.1:8443/token"),
            Some(("127.0.0.1".into(), 8443, "/token".into()))
        );
        assert_eq!(
            split_url("https://[::1]/t"),
            Some(("::1".into(), 443, "/t".into()))
        );
        assert_eq!(
            split_url("https://login.example.com"),
            Some(("login.example.com".into(), 443, "/".into()))
        );
        assert_eq!(split_url("http://x/token"), None);
        assert_eq!(split_url("https://x:0/token"), None);
    }

    #[test]
    fn http_replies() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(parse_http(plain), Some((200, b"{\"a\":1}".to_vec())));
        let chunked = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_http(chunked), Some((400, b"{\"a\":1}".to_vec())));
        assert_eq!(parse_http(b"garbage"), None);
    }
}
