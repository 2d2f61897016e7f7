//! The test message and the token that lets polling find it again.
//!
//! Each message carries one [`Token`] three times: in the subject (what IMAP searches, since
//! some providers do not index custom headers), in an `X-Probe-Id` header (what confirms a
//! search hit), and in the `Message-ID`. In direct mode a [`DkimSigner`] signs it as it is
//! composed, as the user's MTA signs their real mail.

mod build;
mod dkim;
mod tag;

pub use build::{BuildError, TestMessage, X_PROBE_ID, build};
pub use dkim::{DkimKeyError, DkimSignError, DkimSigner, SIGNED_HEADERS};
pub use tag::Token;
