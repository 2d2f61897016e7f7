//! Integration tests: one binary (as in just and ripgrep), a module per feature.
//! Lab tests start the real Postfix + Dovecot lab through `docker/lab/lab.sh start`.

mod compare;
mod config_errors;
mod direct;
mod faults;
mod folders;
mod history;
mod html;
mod interrupt;
mod judging;
mod lab;
mod mailbox_untouched;
mod oauth2;
mod oauth2_dovecot;
mod polling;
mod progress;
mod relay;
mod secrets;
mod seeds_check;
mod smtp_cli;
mod smtp_faults;
mod store_commits;
mod verdicts;
