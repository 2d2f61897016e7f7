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
    Probe::new()
        .lab()
        .args(["run", "--all"])
        .config(&seeds)
        .stderr_has(format!(
            "127.0.0.1:{port}: no answer to greeting within the IMAP timeout"
        ))
        // Never logged in: a probe failure, and the message stays undecided, not `missing`.
        .expect_exit(3)
        .stdout_has("pending")
        .run();
    let took = start.elapsed();
    // Retries until the 5 s run timeout plus two IMAP timeouts, then gives up.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    drop(staller);
}
