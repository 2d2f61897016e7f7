//! Faults the real lab will not produce, from a scripted server: probe gives up after the
//! configured timeout with a clear message instead of hanging.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::lab::{self, ensure_lab, probe, run, show};

#[test]
fn a_stalled_imap_server_times_out() {
    ensure_lab();
    // Accepts connections and never sends a greeting.
    let staller = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = staller.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "sender:\n  from: probe@example.org\n\
         timing:\n  timeout: 5s\n  imap_timeout: 1s\n\
         seeds:\n  - name: stalled\n    address: inbox@inbox.lab.test\n    mx: \"127.0.0.1:2525\"\n\
         \x20   imap: {{ host: 127.0.0.1, port: {port}, tls: none, password: {pw} }}\n",
        pw = lab::password_file("inbox")
    );
    std::fs::write(dir.path().join("seeds.yaml"), yaml).unwrap();
    let start = Instant::now();
    let out = run(probe(dir.path()).args(["run", "--all", "--config", "seeds.yaml"]));
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{port}: no answer to greeting within the IMAP timeout"
        )),
        "{}",
        show(&out)
    );
    // Never logged in: a probe failure, and the message stays undecided rather than `missing`.
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pending"),
        "{}",
        show(&out)
    );
    // Retries until the 5 s run timeout plus two IMAP timeouts, then gives up.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    drop(staller);
}
