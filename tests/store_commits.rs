//! Each send outcome is in the store before the next message is sent: a probe killed while a
//! later server stalls has already recorded the earlier messages.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use seedprobe::store::Store;

use crate::lab::{ensure_lab, lab_dir, password_file, show};

#[test]
fn outcomes_are_committed_one_by_one() {
    ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    // The second seed's "MX" accepts the connection and never says a word.
    let staller = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = staller.local_addr().unwrap().port();
    let ca = lab_dir().join("tls/ca.pem");
    let yaml = format!(
        "sender:\n  from: probe@example.org\ntiming:\n  smtp_timeout: 60s\nseeds:\n\
         \x20 - name: first\n    address: inbox@inbox.lab.test\n    mx: \"127.0.0.1:2525\"\n\
         \x20   imap: {{ host: 127.0.0.1, port: 1993, password: {pw}, ca_file: {ca} }}\n\
         \x20 - name: second\n    address: inbox@inbox.lab.test\n    mx: \"127.0.0.1:{port}\"\n\
         \x20   imap: {{ host: 127.0.0.1, port: 1993, password: {pw}, ca_file: {ca} }}\n",
        pw = password_file("inbox"),
        ca = ca.display()
    );
    std::fs::write(dir.path().join("seeds.yaml"), yaml).unwrap();
    let mut child = crate::lab::probe(dir.path())
        .args(["send", "--all", "--config", "seeds.yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Wait (bounded) until the probe is stuck on the second seed.
    staller.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let _conn = loop {
        match staller.accept() {
            Ok((conn, _)) => break conn,
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    child
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    panic!("probe exited early ({status}): {err}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("probe never connected to the second MX: {e}"),
        }
    };
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();

    let store = Store::open(&dir.path().join("store.sqlite")).unwrap();
    let run_id = store.latest_unfinished_run().unwrap();
    let messages = store.messages(&run_id).unwrap();
    assert_eq!(messages.len(), 1, "{}", show(&out));
    assert_eq!(messages[0].seed, "first");
    assert_eq!(messages[0].smtp.code, Some(250));
}
