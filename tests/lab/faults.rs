//! Faults the real lab will not produce, from a silent server: probe gives up after the
//! configured timeout with a clear message instead of hanging.

use std::time::{Duration, Instant};

use crate::support::net::Sentinel;
use crate::support::{Password, Probe, Seed, Seeds};

#[test]
fn a_stalled_imap_server_times_out() {
    // Accepts connections and never sends a greeting.
    let staller = Sentinel::new();
    let port = staller.port();
    let seeds = Seeds::new()
        .timing("timeout", "5s")
        .timing("imap_timeout", "1s")
        .seed(
            Seed::new("stalled", "inbox@inbox.lab.test")
                .mx("127.0.0.1:2525")
                .imap_server("127.0.0.1", port)
                .tls("none")
                .password(Password::lab("inbox")),
        );
    let start = Instant::now();
    // Stalled before any login: found by the check before sending, so nothing is sent and
    // the stall is named (by the step's own timeout, or the check's bound, whichever ends
    // first: both are 1 s here).
    Probe::new()
        .lab()
        .args(["run", "--all"])
        .config(&seeds)
        .stderr_has("no seed mailbox can be read, so nothing was sent")
        .stderr_has(format!("stalled: 127.0.0.1:{port}: no "))
        .expect_exit(3)
        .stdout_is_empty()
        .run();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(staller);
}
