//! Tests against the real lab (`docker/lab/lab.sh`): root the first time, to install and start
//! it. `--skip lab::` leaves them out.

mod backoff;
mod causes;
mod check;
mod compare;
mod cyrus;
mod direct;
mod dkim;
mod faults;
mod folders;
mod history;
mod html;
mod init;
mod interrupt;
mod judging;
mod killed_send;
mod mailbox_untouched;
mod maillog;
mod not_tested;
mod oauth2_dovecot;
mod polling;
mod postgres;
mod precedence;
mod progress;
mod relay;
mod rescue;
mod run_checks;
mod secrets;
mod seeds_check;
mod serve;
mod smtp_cli;
mod store_commits;
mod trend;
mod verdicts;
