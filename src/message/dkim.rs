//! DKIM signing (RFC 6376; Ed25519, RFC 8463) of a composed message, with Stalwart's
//! `mail-auth`.
//!
//! The signature is made over the bytes exactly as composed, before the SMTP client
//! dot-stuffs them: the receiver undoes the stuffing before it verifies, so both see the same
//! message. Canonicalization is relaxed/relaxed, what MTAs (OpenDKIM, rspamd, Postfix setups)
//! sign real mail with, so a probe is judged as the user's real mail is.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, Done};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

use crate::config::DkimAlgorithm;
use crate::secrets::{SecretError, SecretSource, SecretString};

/// The headers signed: the ones a reader sees and a filter judges (From, To, Subject, Date),
/// the ones that say how to read the body (the MIME headers), and the two that carry the
/// token. A header absent from a message is still named, which signs its absence: adding it
/// later breaks the signature, as RFC 6376 §5.4 intends.
pub const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "X-Probe-Id",
];

/// Why a DKIM private key cannot be used. The texts never contain the key.
#[derive(Debug, thiserror::Error)]
pub enum DkimKeyError {
    /// The source could not be read (file, variable, command).
    #[error("{0}")]
    Read(String),
    /// A command source gives only its first line, and that was a PEM armour line.
    #[error(
        "the command printed a PEM key, of which a command source keeps only the first line; \
         print the key as one line of base64 DER instead \
         (e.g. `openssl pkey -in key.pem -outform DER | base64 -w0`), or use {{ file: PATH }}"
    )]
    FirstLineOnly,
    /// The key is encrypted with a passphrase.
    #[error(
        "the key is encrypted; give it decrypted (`openssl pkey -in key.pem -out plain.pem`), \
         kept safe by the file's permissions"
    )]
    Encrypted,
    /// Neither PEM nor one line of base64 DER.
    #[error(
        "not a PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----), \
         nor one line of base64 DER"
    )]
    NotAKey,
    /// A private key, but not one DKIM signs with (EC, DSA), or a malformed or too short one.
    #[error("not a usable RSA or Ed25519 private key ({0})")]
    Unusable(String),
    /// The key's algorithm is not the configured one.
    #[error(
        "the key is {key_kind} but the algorithm is {configured}; set algorithm: {key} \
         (or leave it out: the key's own is used), or give {wanted_kind} key",
        key_kind = kind(*key),
        configured = configured.as_str(),
        key = key.as_str(),
        wanted_kind = kind(*configured)
    )]
    Mismatch {
        /// What the key signs with.
        key: DkimAlgorithm,
        /// What was asked for.
        configured: DkimAlgorithm,
    },
}

fn kind(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::RsaSha256 => "an RSA key",
        DkimAlgorithm::Ed25519Sha256 => "an Ed25519 key",
    }
}

/// Signing failed (the key refused to sign; does not happen with a key that loaded).
#[derive(Debug, thiserror::Error)]
#[error("DKIM signing failed: {0}")]
pub struct DkimSignError(String);

/// A loaded DKIM key with its domain and selector: signs messages. Cheap to clone; its
/// `Debug` shows no key.
#[derive(Clone)]
pub struct DkimSigner {
    domain: String,
    selector: String,
    algorithm: DkimAlgorithm,
    signer: Arc<mail_auth::dkim::DkimSigner<DkimKey, Done>>,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A key that could not be read, in words about a key (the secrets module words its errors
/// for passwords).
fn read_error(e: SecretError) -> DkimKeyError {
    DkimKeyError::Read(match e {
        SecretError::File { path, source } => {
            format!("cannot read key file {}: {source}", path.display())
        }
        SecretError::FileEmpty(path) => format!("key file {} is empty", path.display()),
        other => other.to_string(),
    })
}

impl DkimSigner {
    /// Reads the key from its source, relative paths against `base` (a command is stopped
    /// after `timeout`, or when this future is dropped on Ctrl-C), and loads it.
    pub async fn from_source(
        domain: &str,
        selector: &str,
        algorithm: Option<DkimAlgorithm>,
        source: &SecretSource,
        base: &Path,
        timeout: std::time::Duration,
    ) -> Result<DkimSigner, DkimKeyError> {
        let key = source.read(base, timeout).await.map_err(read_error)?;
        if matches!(source, SecretSource::Command(_))
            && key.expose().trim_start().starts_with("-----BEGIN")
        {
            return Err(DkimKeyError::FirstLineOnly);
        }
        DkimSigner::new(domain, selector, algorithm, &key)
    }

    /// Reads the key from a file and loads it (`probe smtp --dkim-key FILE`).
    pub fn from_file(
        domain: &str,
        selector: &str,
        algorithm: Option<DkimAlgorithm>,
        path: &Path,
    ) -> Result<DkimSigner, DkimKeyError> {
        let key = SecretSource::File(path.to_owned())
            .resolve(Path::new("."))
            .map_err(read_error)?;
        DkimSigner::new(domain, selector, algorithm, &key)
    }

    /// Loads a private key: PEM (PKCS#8 `PRIVATE KEY` for RSA or Ed25519, PKCS#1 `RSA PRIVATE
    /// KEY`), or the same DER as one line of base64 (what an environment variable or a
    /// command can hold). `algorithm`, when given, must be the key's.
    pub fn new(
        domain: &str,
        selector: &str,
        algorithm: Option<DkimAlgorithm>,
        key: &SecretString,
    ) -> Result<DkimSigner, DkimKeyError> {
        let (key, own) = load_key(key.expose())?;
        if let Some(configured) = algorithm
            && configured != own
        {
            return Err(DkimKeyError::Mismatch {
                key: own,
                configured,
            });
        }
        let signer = mail_auth::dkim::DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        Ok(DkimSigner {
            domain: domain.to_owned(),
            selector: selector.to_owned(),
            algorithm: own,
            signer: Arc::new(signer),
        })
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The message with a `DKIM-Signature:` header on top. `message` is RFC 5322 with CRLF
    /// line ends, before dot-stuffing.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimSignError> {
        let signature = self
            .signer
            .sign(message)
            .map_err(|e| DkimSignError(e.to_string()))?;
        let header = signature.to_header();
        let mut signed = Vec::with_capacity(header.len() + message.len());
        signed.extend_from_slice(header.as_bytes());
        signed.extend_from_slice(message);
        Ok(signed)
    }
}

/// The key and the algorithm it signs with.
fn load_key(text: &str) -> Result<(DkimKey, DkimAlgorithm), DkimKeyError> {
    // Variables set through systemd or container tooling often carry `\n` escapes.
    let text = if text.contains("\\n") && !text.contains('\n') {
        text.replace("\\n", "\n")
    } else {
        text.to_owned()
    };
    let text = text.trim();
    if text.contains("-----BEGIN") {
        if text.contains("ENCRYPTED") {
            return Err(DkimKeyError::Encrypted);
        }
        let der = PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => DkimKeyError::NotAKey,
            other => DkimKeyError::Unusable(other.to_string()),
        })?;
        return from_der(der);
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = match mail_parser::decoders::base64::base64_decode(&compact) {
        Some(der) if !compact.is_empty() && der.first() == Some(&0x30) => der,
        _ => return Err(DkimKeyError::NotAKey),
    };
    // PKCS#8 is what `openssl pkey -outform DER` writes; PKCS#1 what older tools did.
    from_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.clone())))
        .or_else(|_| from_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))))
}

fn from_der(der: PrivateKeyDer<'_>) -> Result<(DkimKey, DkimAlgorithm), DkimKeyError> {
    if let PrivateKeyDer::Pkcs8(pkcs8) = &der {
        // OpenSSL writes Ed25519 keys as PKCS#8 v1 (no public key inside), which the checked
        // constructor refuses; the public key is derived from the seed either way.
        if let Ok(key) = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der()) {
            return Ok((key.into(), DkimAlgorithm::Ed25519Sha256));
        }
    }
    if matches!(der, PrivateKeyDer::Sec1(_)) {
        return Err(DkimKeyError::Unusable(
            "an EC key: DKIM signs with RSA or Ed25519".into(),
        ));
    }
    RsaKey::<Sha256>::from_key_der(der)
        .map(|key| (key.into(), DkimAlgorithm::RsaSha256))
        .map_err(|e| DkimKeyError::Unusable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::Arc;
    use std::time::Instant;

    use mail_auth::common::parse::TxtRecordParser as _;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, ResolverCache, Txt};

    use super::*;
    use crate::config::Config;
    use crate::message::{Token, build};

    const RSA_PEM: &str = include_str!("../../tests/fixtures/dkim/rsa.pem");
    const RSA_TXT: &str = include_str!("../../tests/fixtures/dkim/rsa.txt");
    const ED25519_PEM: &str = include_str!("../../tests/fixtures/dkim/ed25519.pem");
    const ED25519_TXT: &str = include_str!("../../tests/fixtures/dkim/ed25519.txt");

    /// A body with what a signature must survive: a line longer than 76 characters, text
    /// that is not ASCII, and lines that are a lone dot or start with one (dot-stuffed on
    /// the wire).
    const BODY: &str = "Grüße aus Köln: ünïcödé, 日本語, emoji 📬.\r\n.\r\n..two dots\r\n.leading dot\r\n\
        a long line: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\r\n\
        {token}\r\n";

    /// The TXT records of the test keys, as DNS would answer them: what mail-auth's verifier
    /// reads instead of asking a server.
    struct Dns(HashMap<Box<str>, Txt>);

    impl Dns {
        fn new(records: &[(&str, &str)]) -> Dns {
            let mut map = HashMap::new();
            for (name, txt) in records {
                let key = Arc::new(DomainKey::parse(txt.trim().as_bytes()).unwrap());
                for name in [name.to_string(), format!("{name}.")] {
                    map.insert(name.into_boxed_str(), Txt::DomainKey(key.clone()));
                }
            }
            Dns(map)
        }
    }

    impl ResolverCache<Box<str>, Txt> for Dns {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.get(name).cloned()
        }

        fn remove<Q>(&self, _: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            None
        }

        fn insert(&self, _: Box<str>, _: Txt, _: Instant) {}
    }

    fn secret(text: &str) -> SecretString {
        SecretString::new(text.to_owned())
    }

    /// A test message as `probe run` composes it, signed by `signer`.
    fn signed_message(signer: &DkimSigner) -> Vec<u8> {
        let yaml = format!(
            "sender:\n  from: \"Probe Test <probe@example.org>\"\nmessage:\n  body: {:?}\nseeds:\n  - name: a\n    address: a@example.com\n    imap: {{ host: imap.example.com, password: {{ env: X }} }}\n",
            BODY
        );
        let config = Config::parse(Path::new("t.yaml"), &yaml).unwrap();
        let to = config.seeds[0].address.clone();
        build(
            &config.sender,
            &config.message,
            &to,
            "a",
            Token::generate(),
            Some(signer),
        )
        .unwrap()
        .bytes
    }

    /// mail-auth's own verdict on `message`, against the test keys' records.
    async fn verify(message: &[u8]) -> Vec<String> {
        let dns = Dns::new(&[
            ("rsa._domainkey.example.org", RSA_TXT),
            ("ed._domainkey.example.org", ED25519_TXT),
        ]);
        let authenticator = MessageAuthenticator::new_cloudflare().unwrap();
        let parsed = AuthenticatedMessage::parse(message).unwrap();
        authenticator
            .verify_dkim(mail_auth::Parameters::new(&parsed).with_txt_cache(&dns))
            .await
            .iter()
            .map(|out| match out.result() {
                DkimResult::Pass => "pass".to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn signatures_verify_with_mail_auth() {
        let cases = [
            ("rsa", RSA_PEM, "rsa-sha256"),
            ("ed", ED25519_PEM, "ed25519-sha256"),
        ];
        for (selector, pem, algorithm) in cases {
            let signer = DkimSigner::new("example.org", selector, None, &secret(pem)).unwrap();
            assert_eq!(signer.algorithm().as_str(), algorithm);
            let message = signed_message(&signer);
            let text = String::from_utf8(message.clone()).unwrap();
            assert!(text.starts_with("DKIM-Signature: v=1; a="), "{text}");
            let header: String = text
                .split("\r\n")
                .take_while(|l| l.starts_with("DKIM") || l.starts_with('\t'))
                .collect();
            assert!(header.contains(&format!("a={algorithm}")), "{header}");
            assert!(header.contains("c=relaxed/relaxed"), "{header}");
            assert!(
                header.contains(&format!("s={selector}; d=example.org")),
                "{header}"
            );
            for name in SIGNED_HEADERS {
                assert!(
                    header
                        .to_ascii_lowercase()
                        .contains(&name.to_ascii_lowercase()),
                    "{name} not in h=: {header}"
                );
            }
            assert!(
                text.lines().all(|l| l.len() <= 998),
                "a line over 998 octets"
            );
            assert_eq!(verify(&message).await, ["pass"], "{selector}");

            // The verifier does check: a changed subject fails.
            let tampered = text.replacen("Subject: ", "Subject: Re: ", 1);
            assert_ne!(verify(tampered.as_bytes()).await, ["pass"], "{selector}");
        }
    }

    #[test]
    fn key_forms_and_refusals() {
        // One line of base64 DER, what a command source gives.
        let der_line: String = RSA_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let signer = DkimSigner::new("example.org", "rsa", None, &secret(&der_line)).unwrap();
        assert_eq!(signer.algorithm(), DkimAlgorithm::RsaSha256);
        // Escaped newlines, as a systemd Environment= line carries them.
        let escaped = ED25519_PEM.trim().replace('\n', "\\n");
        let signer = DkimSigner::new("example.org", "ed", None, &secret(&escaped)).unwrap();
        assert_eq!(signer.algorithm(), DkimAlgorithm::Ed25519Sha256);

        let err = |key: &str, algorithm| {
            DkimSigner::new("example.org", "s", algorithm, &secret(key))
                .unwrap_err()
                .to_string()
        };
        let mismatch = err(ED25519_PEM, Some(DkimAlgorithm::RsaSha256));
        assert!(
            mismatch.contains("the key is an Ed25519 key but the algorithm is rsa-sha256"),
            "{mismatch}"
        );
        assert!(
            mismatch.contains("set algorithm: ed25519-sha256"),
            "{mismatch}"
        );
        assert!(err("hunter2", None).starts_with("not a PEM private key"));
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(err(cert, None).starts_with("not a PEM private key"));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(err(encrypted, None).starts_with("the key is encrypted"));
        // No error text shows the key.
        let broken = RSA_PEM.replace("MII", "XYZ");
        let text = err(&broken, None);
        assert!(
            !text.contains("XYZ") && !text.contains(&der_line[10..40]),
            "{text}"
        );
        assert!(format!("{signer:?}").starts_with("DkimSigner { domain: \"example.org\""));
    }

    #[tokio::test]
    async fn a_command_that_prints_pem_is_told_what_to_do() {
        const SECOND: std::time::Duration = std::time::Duration::from_secs(5);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.pem"), RSA_PEM).unwrap();
        let source = SecretSource::Command("cat k.pem".into());
        let err = DkimSigner::from_source("example.org", "s", None, &source, dir.path(), SECOND)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("one line of base64 DER"), "{err}");
        let file = SecretSource::File("k.pem".into());
        assert!(
            DkimSigner::from_source("example.org", "s", None, &file, dir.path(), SECOND)
                .await
                .is_ok()
        );
        let missing = SecretSource::File("nope.pem".into());
        let err = DkimSigner::from_source("example.org", "s", None, &missing, dir.path(), SECOND)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read key file "), "{err}");
    }
}
