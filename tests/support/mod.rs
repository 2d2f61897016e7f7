//! The test kit: every fake server, the seeds-file builder and the `probe` runner, written
//! once for the whole suite.
//!
//! - [`probe::Probe`]: run `probe` with expectations on exit code and output.
//! - [`seeds::Seeds`], [`seeds::Seed`]: build the seeds file (never hand-written YAML).
//! - [`smtp`]: the scripted fake SMTP server and the holding server.
//! - [`imap::FakeImap`]: a fake IMAP server from rules.
//! - [`https::FakeHttps`]: a fake HTTPS (OAuth 2.0) endpoint.
//! - [`net`]: a sentinel port, a closed port, bounded waits.
//! - [`lab`]: the real lab (start, passwords, CA, keeping it steady).
//! - [`tls`]: the embedded test PKI.
//!
//! Fakes are for faults and servers the lab cannot provide; everything else runs against the
//! real lab, in the `lab::` modules.

pub mod https;
pub mod imap;
pub mod lab;
pub mod net;
pub mod probe;
pub mod seeds;
pub mod smtp;
pub mod tls;

pub use probe::{Probe, Ran, message_for, show_output};
pub use seeds::{Imap, Password, Seed, Seeds};
