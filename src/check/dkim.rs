//! The DKIM private key the user signs with, reduced to what its DNS record must publish, so
//! `probe check` can say whether the selector's record matches the key (a rotated key whose
//! record was never updated fails every signature). The key is read through mail-auth's key
//! types (ring/aws-lc-rs underneath); nothing of it is ever printed.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The public half of a private key, as DKIM records carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalKey {
    /// `rsa` or `ed25519`, as in the record's `k=`.
    pub key_type: &'static str,
    /// RSA: the PKCS#1 RSAPublicKey DER; Ed25519: the 32 raw bytes.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LocalKey({}, {} bytes)",
            self.key_type,
            self.public.len()
        )
    }
}

/// Reads a PEM private key (PKCS#8 RSA or Ed25519, or PKCS#1 RSA). The error never quotes
/// the file: it is a secret.
pub fn local_key(pem: &str) -> Result<LocalKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "holds no PEM private key (PKCS#8 or PKCS#1)".to_owned())?;
    if let PrivateKeyDer::Pkcs8(pkcs8) = &der
        && let Ok(key) = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der())
    {
        return Ok(LocalKey {
            key_type: "ed25519",
            public: key.public_key(),
        });
    }
    let rsa = RsaKey::<Sha256>::from_key_der(der)
        .map_err(|_| "holds neither an RSA nor an Ed25519 private key".to_owned())?;
    Ok(LocalKey {
        key_type: "rsa",
        public: rsa.public_key(),
    })
}

/// Whether the record's `k=` and base64 `p=` publish `key`. An RSA `p=` is normally a
/// SubjectPublicKeyInfo, which ends with the PKCS#1 key; a bare PKCS#1 key matches too.
pub fn publishes(key_type: &str, p: &str, key: &LocalKey) -> bool {
    let Some(published) = base64(p) else {
        return false;
    };
    key_type == key.key_type
        && match key.key_type {
            "rsa" => published.ends_with(&key.public),
            _ => published == key.public,
        }
}

/// Standard base64 with padding optional; `None` for anything else.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64("aGVs bG8").unwrap(), b"hello");
        assert_eq!(base64("a-b"), None);
    }

    #[test]
    fn keys_match_their_records_only() {
        let key = LocalKey {
            key_type: "ed25519",
            public: base64("HagxoTPgmF7RFbf32Wbt579rVATfa3ceshJndJQzXH4=").unwrap(),
        };
        assert!(publishes(
            "ed25519",
            "HagxoTPgmF7RFbf32Wbt579rVATfa3ceshJndJQzXH4=",
            &key
        ));
        assert!(!publishes(
            "rsa",
            "HagxoTPgmF7RFbf32Wbt579rVATfa3ceshJndJQzXH4=",
            &key
        ));
        assert!(!publishes("ed25519", "AAAA", &key));
        assert!(
            local_key("not a key")
                .unwrap_err()
                .contains("no PEM private key")
        );
    }
}
