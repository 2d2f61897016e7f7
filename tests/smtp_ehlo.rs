//! `probe smtp`'s default EHLO name: never `localhost` when a better name is known (issue 9,
//! item 5). Needs no lab: a one-connection fake server records what the client said.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;

/// Serves one SMTP connection up to QUIT and sends back the EHLO line the client gave.
fn recording_server() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut write = socket.try_clone().unwrap();
        let mut read = BufReader::new(socket);
        write.write_all(b"220 fake.example ESMTP\r\n").unwrap();
        let mut line = String::new();
        while read.read_line(&mut line).unwrap_or(0) > 0 {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                let _ = tx.send(line.trim_end().to_owned());
            }
            let quit = upper.starts_with("QUIT");
            let answer: &[u8] = if quit {
                b"221 bye\r\n"
            } else {
                b"250 fake.example\r\n"
            };
            if write.write_all(answer).is_err() || quit {
                break;
            }
            line.clear();
        }
    });
    (port, rx)
}

/// This machine's name as the kernel has it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn default_ehlo_is_the_fqdn_or_the_senders_domain() {
    let (port, ehlo) = recording_server();
    let server = format!("127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_probe"))
        .args([
            "smtp",
            "--to",
            "seed@example.net",
            "--from",
            "probe@sender.example",
        ])
        .args([
            "--server",
            &server,
            "--quit-after",
            "ehlo",
            "--timeout",
            "10s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = ehlo.recv().unwrap();
    let host = host_name();
    let want = if host.contains('.') {
        format!("EHLO {host}")
    } else {
        "EHLO sender.example".to_owned()
    };
    assert_eq!(said, want);
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(transcript.contains(&format!("-> {want}")), "{transcript}");
}
