//! seedprobe: measure where your mail lands.
//!
//! The flow, one module per step:
//!
//! 1. [`config`]: read and check the seeds file; resolve passwords before anything is sent.
//! 2. [`message`]: compose one message per seed, tagged with a unique [`message::Token`].
//! 3. [`send`]: deliver it over SMTP (straight to the MX, or a fixed host), recording every
//!    reply and the TLS details ([`tls`]).
//! 4. [`poll`]: log into each seed mailbox over IMAP, find each message by its token, note
//!    the folder and the headers that matter.
//! 5. [`verdict`]: the one place that turns that evidence into `inbox`, `spam_tagged`, `spam`,
//!    `deferred`, `rejected` or `missing`.
//! 6. [`store`]: every run, attempt, observation and verdict in SQLite, written as it happens.
//! 7. [`report`]: a terminal table or JSON from the store.
//!
//! [`run`] ties the steps together; [`cli`] is the `probe` command line and owns exit codes.
#![deny(missing_docs)]

pub mod cli;
pub mod compare;
pub mod config;
pub mod downstream;
pub mod evidence;
pub mod message;
pub mod poll;
pub mod report;
pub mod run;
pub mod secrets;
pub mod send;
pub mod store;
pub mod tls;
pub mod verdict;
