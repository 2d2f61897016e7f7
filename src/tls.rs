//! TLS client configurations.
//!
//! Two flavours exist because the two kinds of connection have opposite needs:
//! IMAP (and anything else carrying credentials) must refuse a server it cannot
//! verify, while direct-to-MX STARTTLS is opportunistic (RFC 3207, Postfix
//! security level "may"): a bad certificate is evidence worth recording, not a
//! reason to stop, because a real sending MTA would deliver anyway. SMTP
//! submission to a relay wants both: refuse, and say why ([`enforcing_config`]).
//!
//! Both use the aws-lc-rs provider explicitly, so nothing depends on which
//! process-default `CryptoProvider` some other crate may have installed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, ProtocolVersion,
    RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;

/// Why a TLS configuration could not be built.
///
/// Messages are self-contained (they include the underlying cause) because
/// they end up in transcripts and reports that are read without an error chain.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA bundle could not be read or parsed.
    #[error("cannot read CA certificates from {}: {reason}", path.display())]
    CaFile {
        /// The file that was being read.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The CA bundle contained no PEM `CERTIFICATE` sections.
    #[error("no PEM certificates found in CA file {}", path.display())]
    NoCertificates {
        /// The file that was read.
        path: PathBuf,
    },
    /// An extra root certificate is not usable as a trust anchor.
    #[error("CA certificate rejected as a trust anchor: {0}")]
    BadRoot(rustls::Error),
    /// rustls refused the configuration (e.g. no protocol versions left).
    #[error("cannot build the TLS client configuration: {0}")]
    Config(rustls::Error),
    /// The webpki certificate verifier could not be built.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(rustls::client::VerifierBuilderError),
}

/// Reads PEM certificates (a CA bundle) from a file; error names the path.
///
/// Every certificate is also checked for usability as a trust anchor here, so
/// that a bad bundle is reported against its file rather than later, anonymously,
/// when a configuration is built.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let ca_error = |reason: String| TlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    let mut probe = RootCertStore::empty();
    for cert in &certs {
        probe
            .add(cert.clone())
            .map_err(|e| ca_error(e.to_string()))?;
    }
    Ok(certs)
}

/// What certificates are verified against: the webpki roots plus, optionally, one CA file's.
///
/// The one place a CA file becomes TLS configuration: IMAP, the relay, the OAuth 2.0 token
/// endpoint and `probe smtp` all get theirs from here. Cheap to clone (the strict config is
/// shared), so a run builds one per CA file.
#[derive(Debug, Clone)]
pub struct Trust {
    extra_roots: Vec<CertificateDer<'static>>,
    verifying: Arc<ClientConfig>,
}

impl Trust {
    /// Reads the CA file, if any (the path as given: callers resolve it against the config's
    /// directory), and builds the strict config from it.
    pub fn load(ca_file: Option<&Path>) -> Result<Trust, TlsError> {
        let extra_roots = match ca_file {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        let verifying = verifying_config(&extra_roots)?;
        Ok(Trust {
            extra_roots,
            verifying,
        })
    }

    /// The strict config ([`verifying_config`]), for connections that carry credentials.
    pub fn verifying(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.verifying)
    }

    /// The CA file's certificates, for the per-connection recording configs of SMTP
    /// ([`recording_config`], [`enforcing_config`]).
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra_roots
    }
}

/// Strict client config: webpki-roots + extra roots; used for IMAP and anything carrying credentials.
pub fn verifying_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(root_store(extra_roots)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opportunistic config for direct-to-MX STARTTLS: verifies with the same roots but never fails the handshake
/// for certificate reasons; instead records the verdict, which the caller reads after the handshake.
///
/// Use one config per connection: the recorder holds a single verdict, and
/// session resumption is disabled so that every handshake really verifies
/// (a resumed TLS 1.3 session would skip certificate verification and leave
/// nothing to record).
pub fn recording_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<(Arc<ClientConfig>, CertRecorder), TlsError> {
    recorder_config(extra_roots, false)
}

/// Strict like [`verifying_config`], but also records the verdict, so that a
/// refused certificate can be reported as "untrusted" or "hostname mismatch"
/// rather than as a bare handshake error. One config per connection, as for
/// [`recording_config`].
pub fn enforcing_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<(Arc<ClientConfig>, CertRecorder), TlsError> {
    recorder_config(extra_roots, true)
}

fn recorder_config(
    extra_roots: &[CertificateDer<'static>],
    enforce: bool,
) -> Result<(Arc<ClientConfig>, CertRecorder), TlsError> {
    let provider = provider();
    let inner = WebPkiServerVerifier::builder_with_provider(
        Arc::new(root_store(extra_roots)?),
        provider.clone(),
    )
    .build()
    .map_err(TlsError::Verifier)?;
    let recorder = CertRecorder::default();
    let verifier = RecordingVerifier {
        inner,
        recorder: recorder.clone(),
        enforce,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok((Arc::new(config), recorder))
}

/// The shared slot into which the recording verifier puts its verdict.
#[derive(Debug, Clone, Default)]
pub struct CertRecorder(Arc<Mutex<Option<CertVerdict>>>);

impl CertRecorder {
    /// Takes the verdict of the last certificate verification, if one happened.
    pub fn take(&self) -> Option<CertVerdict> {
        // A poisoned lock only means another thread panicked mid-store; the
        // Option inside is still a valid value, so use it rather than panic.
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn record(&self, verdict: CertVerdict) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
    }
}

/// What certificate verification concluded about the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertVerdict {
    /// Chains to a trusted root and is valid for the name we connected to.
    Trusted,
    /// Does not chain to any trusted root (self-signed, private CA, …).
    Untrusted,
    /// Chains to a trusted root but does not name the host we connected to.
    HostnameMismatch,
    /// Past its `notAfter` date.
    Expired,
    /// Any other verification failure.
    Invalid {
        /// The verifier's explanation.
        reason: String,
    },
}

impl CertVerdict {
    /// Classifies a verification error from rustls/webpki.
    pub fn from_error(error: &rustls::Error) -> CertVerdict {
        match error {
            rustls::Error::InvalidCertificate(cert_error) => match cert_error {
                CertificateError::UnknownIssuer => CertVerdict::Untrusted,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => CertVerdict::HostnameMismatch,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    CertVerdict::Expired
                }
                _ => CertVerdict::Invalid {
                    reason: error.to_string(),
                },
            },
            _ => CertVerdict::Invalid {
                reason: error.to_string(),
            },
        }
    }
}

impl fmt::Display for CertVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertVerdict::Trusted => f.write_str("trusted"),
            CertVerdict::Untrusted => f.write_str("untrusted"),
            CertVerdict::HostnameMismatch => f.write_str("hostname mismatch"),
            CertVerdict::Expired => f.write_str("expired"),
            CertVerdict::Invalid { reason } => write!(f, "invalid ({reason})"),
        }
    }
}

/// What was negotiated on a TLS connection, as evidence for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsInfo {
    /// Protocol version, e.g. "TLSv1.3".
    pub version: String,
    /// IANA-style cipher suite name as rustls spells it, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
    /// The certificate verification verdict.
    pub certificate: CertVerdict,
}

/// Collects the negotiated parameters of an established connection.
pub fn tls_info(conn: &ClientConnection, cert: CertVerdict) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => other
            .as_str()
            .map_or_else(|| format!("{other:?}"), str::to_owned),
        None => "unknown".to_owned(),
    };
    let cipher = conn.negotiated_cipher_suite().map_or_else(
        || "unknown".to_owned(),
        |suite| {
            let id = suite.suite();
            id.as_str().map_or_else(|| format!("{id:?}"), str::to_owned)
        },
    );
    TlsInfo {
        version,
        cipher,
        certificate: cert,
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn root_store(extra_roots: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_roots {
        roots.add(cert.clone()).map_err(TlsError::BadRoot)?;
    }
    Ok(roots)
}

/// Verifies like webpki and reports the verdict to a recorder; fails the
/// handshake on a bad certificate only when enforcing.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    recorder: CertRecorder,
    enforce: bool,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let verdict = match &result {
            Ok(_) => CertVerdict::Trusted,
            Err(error) => CertVerdict::from_error(error),
        };
        tracing::debug!(%verdict, "server certificate verified");
        self.recorder.record(verdict);
        if self.enforce {
            return result;
        }
        // Accepting here is the point of opportunistic TLS; the handshake
        // signatures below are still checked, so the peer must hold the key
        // of the certificate it presented.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_map_to_verdicts() {
        let cases = [
            (CertificateError::UnknownIssuer, CertVerdict::Untrusted),
            (
                CertificateError::NotValidForName,
                CertVerdict::HostnameMismatch,
            ),
            (CertificateError::Expired, CertVerdict::Expired),
        ];
        for (error, want) in cases {
            assert_eq!(
                CertVerdict::from_error(&rustls::Error::InvalidCertificate(error)),
                want
            );
        }
        assert!(matches!(
            CertVerdict::from_error(&rustls::Error::InvalidCertificate(
                CertificateError::Revoked
            )),
            CertVerdict::Invalid { .. }
        ));
        assert!(matches!(
            CertVerdict::from_error(&rustls::Error::DecryptError),
            CertVerdict::Invalid { .. }
        ));
    }

    #[test]
    fn verdict_serializes_snake_case() {
        assert_eq!(
            serde_json::to_string(&CertVerdict::HostnameMismatch).unwrap(),
            "\"hostname_mismatch\""
        );
        assert_eq!(
            serde_json::to_string(&CertVerdict::Invalid { reason: "x".into() }).unwrap(),
            r#"{"invalid":{"reason":"x"}}"#
        );
    }

    #[test]
    fn configs_build_with_no_extra_roots() {
        verifying_config(&[]).unwrap();
        let (_config, recorder) = recording_config(&[]).unwrap();
        assert_eq!(recorder.take(), None);
        let (_config, recorder) = enforcing_config(&[]).unwrap();
        assert_eq!(recorder.take(), None);
    }

    #[test]
    fn missing_ca_file_error_names_the_path() {
        let path = Path::new("/nonexistent/seedprobe-ca.pem");
        let error = load_ca_file(path).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/seedprobe-ca.pem"),
            "{error}"
        );
    }

    #[test]
    fn ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(matches!(
            load_ca_file(&path),
            Err(TlsError::NoCertificates { .. })
        ));
    }
}
