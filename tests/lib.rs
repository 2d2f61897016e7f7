//! Integration tests: one binary (as in just and ripgrep), a module per feature, on one test
//! kit (`support`).
//!
//! Two tiers, told apart by the module path:
//! - top-level modules need no lab and no root (fakes, config errors, usage errors):
//!   `cargo test --locked -- --skip lab::` runs them as any user;
//! - `lab::` modules run against the real Postfix + Dovecot lab, which they start through
//!   `docker/lab/lab.sh start` (root, the first time).

mod support;

mod bounce;
mod config_errors;
mod contrib;
mod dkim;
mod imap_faults;
mod init;
mod kit;
mod lab;
mod maillog;
mod metrics_format;
mod oauth2;
mod polling;
mod properties;
mod rescue_copy;
mod secret_command;
mod serve;
mod smtp_cli;
mod smtp_ehlo;
mod smtp_faults;
mod special_use;
mod terminal_output;
