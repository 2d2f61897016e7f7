//! Integration tests: one binary (as in just and ripgrep), a module per feature.
//! Lab tests start the real Postfix + Dovecot lab through `docker/lab/lab.sh start`.

mod config_errors;
mod faults;
mod lab;
mod mailbox_untouched;
mod secrets;
mod smtp_faults;
mod store_commits;
mod verdicts;
