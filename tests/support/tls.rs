//! TLS for the fakes: the embedded test PKI (so the no-lab tier needs no lab CA) and server
//! configs for the async (SMTP) and blocking (HTTPS) fakes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A certificate and its key, both PEM.
#[derive(Clone, Copy)]
pub struct Cert {
    pub pem: &'static str,
    pub key: &'static str,
}

/// For 127.0.0.1, signed by [`CA_PEM`].
pub const IP_LEAF: Cert = Cert {
    pem: IP_LEAF_PEM,
    key: IP_LEAF_KEY,
};
/// For a DNS name only, signed by [`CA_PEM`]: a hostname mismatch on 127.0.0.1.
pub const DNS_LEAF: Cert = Cert {
    pem: DNS_LEAF_PEM,
    key: DNS_LEAF_KEY,
};
/// [`IP_LEAF`]'s key in a certificate whose validity has ended.
pub const EXPIRED_LEAF: Cert = Cert {
    pem: EXPIRED_LEAF_PEM,
    key: IP_LEAF_KEY,
};

pub fn server_config(cert: Cert) -> Arc<rustls::ServerConfig> {
    let der = CertificateDer::from_pem_slice(cert.pem.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .unwrap();
    Arc::new(config)
}

pub fn acceptor(cert: Cert) -> TlsAcceptor {
    TlsAcceptor::from(server_config(cert))
}

/// Writes the test CA into `dir` for a config's `ca_file`.
pub fn write_test_ca(dir: &Path) -> PathBuf {
    let path = dir.join("test-ca.pem");
    std::fs::write(&path, CA_PEM).unwrap();
    path
}

// Test PKI, generated once with openssl (P-256; valid 2000-2100 except EXPIRED_LEAF),
// so the tests need no certificate-generation crate. Test-only keys: never trust them.

/// The test CA (CN=seedprobe test CA).
pub const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBbTCCARKgAwIBAgICEAAwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBwx\n\
GjAYBgNVBAMMEXNlZWRwcm9iZSB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n\
AQcDQgAELTOvjeXLCoCqEP9XqD6IYVHZ69lWO6hCZApBBVGW69OqjPguwUxsVxUH\n\
3vF3+ayGCkc+kf7STN4oHGtXqFQeJaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNV\n\
HQ8BAf8EBAMCAQYwHQYDVR0OBBYEFFp2ldn7DlBy0etueIGwjBd3rE4dMAoGCCqG\n\
SM49BAMCA0kAMEYCIQDFqb19UoXJDk7vqOPqYXtHqXKRXGDhC+CcTk4tUXjgNgIh\n\
AJ89naz47/wA+tZWoNQ01AD/1q+ys/xInxoKnZmPr7IS\n\
-----END CERTIFICATE-----\n\
";
/// Leaf for IP:127.0.0.1, issued by the test CA.
pub const IP_LEAF_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBpDCCAUugAwIBAgICEAEwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBYx\n\
FDASBgNVBAMMC214LmxhYi50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n\
ilGCKMXmwfiqUC5rYmcPHQ/WslX6wCgE4leLH+sKELwKYvp1zQMgJ2R+exrMpGyZ\n\
f1pKM9dVOuv9oFY2Qjd2HKOBgDB+MA8GA1UdEQQIMAaHBH8AAAEwCQYDVR0TBAIw\n\
ADALBgNVHQ8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFF3H\n\
qYZPnMHt/NcrdO3anaEiPpwPMB8GA1UdIwQYMBaAFFp2ldn7DlBy0etueIGwjBd3\n\
rE4dMAoGCCqGSM49BAMCA0cAMEQCIGqy1C5LezHiVbnamVOMUhEi+1GtvKbXr37X\n\
VG4ep4YnAiAt6O355zS6WJY+Hrdjp7zITEGHNenmqSYnrN5IQ7meIA==\n\
-----END CERTIFICATE-----\n\
";
/// Key of `IP_LEAF_PEM` and `EXPIRED_LEAF_PEM`.
pub const IP_LEAF_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2VgZT13Q9TVhKvLn\n\
ebSirL+OSOILlfuFgpqa3VklYIihRANCAASKUYIoxebB+KpQLmtiZw8dD9ayVfrA\n\
KATiV4sf6woQvApi+nXNAyAnZH57GsykbJl/Wkoz11U66/2gVjZCN3Yc\n\
-----END PRIVATE KEY-----\n\
";
/// Leaf for DNS:mx.lab.test only, issued by the test CA.
pub const DNS_LEAF_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBrTCCAVOgAwIBAgICEAIwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBYx\n\
FDASBgNVBAMMC214LmxhYi50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n\
FyqAYax9WJdLZfHzPOx6Qt+lYjJlHtxO4U5Dwpo//OFmxmwJdJV7GAcCypdNjpVd\n\
nBGOJNhsyH1J0JlXNruR/aOBiDCBhTAWBgNVHREEDzANggtteC5sYWIudGVzdDAJ\n\
BgNVHRMEAjAAMAsGA1UdDwQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNV\n\
HQ4EFgQUTJlYVuZUFS2GHFKKdypMManRBtMwHwYDVR0jBBgwFoAUWnaV2fsOUHLR\n\
6254gbCMF3esTh0wCgYIKoZIzj0EAwIDSAAwRQIhALOmY6aVi3SdH7T8xqyingZk\n\
MQne4xQ6B+BpbHCbYAN6AiAxubH95Mbv2fn7VYpfkALzSqW0C+VXmjJzaAhnEZBq\n\
NQ==\n\
-----END CERTIFICATE-----\n\
";
/// Key of `DNS_LEAF_PEM`.
pub const DNS_LEAF_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgB7F4Nh1irrXR60ir\n\
tf01lXnoCQGCorNV0lzRiJalxE6hRANCAAQXKoBhrH1Yl0tl8fM87HpC36ViMmUe\n\
3E7hTkPCmj/84WbGbAl0lXsYBwLKl02OlV2cEY4k2GzIfUnQmVc2u5H9\n\
-----END PRIVATE KEY-----\n\
";
/// Leaf for IP:127.0.0.1 that expired on 2001-01-01.
pub const EXPIRED_LEAF_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBozCCAUmgAwIBAgICEAMwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwHhcNMDAwMTAxMDAwMDAwWhcNMDEwMTAxMDAwMDAwWjAWMRQw\n\
EgYDVQQDDAtteC5sYWIudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIpR\n\
gijF5sH4qlAua2JnDx0P1rJV+sAoBOJXix/rChC8CmL6dc0DICdkfnsazKRsmX9a\n\
SjPXVTrr/aBWNkI3dhyjgYAwfjAPBgNVHREECDAGhwR/AAABMAkGA1UdEwQCMAAw\n\
CwYDVR0PBAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBRdx6mG\n\
T5zB7fzXK3Tt2p2hIj6cDzAfBgNVHSMEGDAWgBRadpXZ+w5QctHrbniBsIwXd6xO\n\
HTAKBggqhkjOPQQDAgNIADBFAiEA1WEE0ehrUHkFOP4V930szEIHBx0bQQZAPfNc\n\
/hVF56UCIHtickcSUQahc+LFVWFfSkxEU9vSeU1cRm3sKekta+rk\n\
-----END CERTIFICATE-----\n\
";
