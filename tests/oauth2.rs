//! OAuth 2.0: the refresh-token exchange against a local HTTPS token endpoint, its errors, and
//! the exact XOAUTH2 payload, checked by a scripted IMAP server. `oauth2_dovecot.rs` logs into
//! the lab's real Dovecot with both mechanisms.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::lab::{ensure_lab, lab_dir, probe, show};
use crate::smtp_faults::acceptor;

const ACCESS_TOKEN: &str = "ya29.lab-access-token-4Qz";
const REFRESH_TOKEN: &str = "1//lab-refresh-token-9Lm";
const CLIENT_SECRET: &str = "lab-client-secret-7Hp";

/// The token endpoint: 200 with an access token for the right refresh token, RFC 6749 §5.2
/// `invalid_grant` otherwise. Returns the request bodies it saw.
async fn token_endpoint(listener: TcpListener, seen: Arc<Mutex<Vec<String>>>) {
    let tls = acceptor(
        &std::fs::read_to_string(lab_dir().join("tls/server.pem")).unwrap(),
        &std::fs::read_to_string(lab_dir().join("tls/server.key")).unwrap(),
    );
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut stream) = tls.accept(tcp).await else {
            continue;
        };
        let (_path, body) = crate::oauth2_dovecot::read_request(&mut stream).await;
        seen.lock().unwrap().push(body.clone());
        let good = body.contains("grant_type=refresh_token")
            && body.contains("client_id=probe-client")
            && body.contains(&format!("client_secret={CLIENT_SECRET}"))
            && body.contains("refresh_token=1%2F%2Flab-refresh-token-9Lm");
        let (status, json) = if good {
            (
                "200 OK",
                format!(
                    "{{\"access_token\":\"{ACCESS_TOKEN}\",\"expires_in\":3599,\"token_type\":\"Bearer\"}}"
                ),
            )
        } else {
            ("400 Bad Request", "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}".to_owned())
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// A minimal IMAP server that accepts only `AUTHENTICATE XOAUTH2` with the expected payload.
async fn imap_server(listener: TcpListener, user: &'static str) {
    use base64_helper::encode;
    let want = encode(format!("user={user}\x01auth=Bearer {ACCESS_TOKEN}\x01\x01").as_bytes());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let want = want.clone();
        tokio::spawn(async move {
            let (read, mut write) = tcp.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write
                .write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] fake ready\r\n")
                .await;
            let mut pending_auth: Option<String> = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(tag) = pending_auth.take() {
                    let reply = if line.trim() == want {
                        format!("{tag} OK [CAPABILITY IMAP4rev1 IDLE] authenticated\r\n")
                    } else {
                        format!("{tag} NO [AUTHENTICATIONFAILED] bad token\r\n")
                    };
                    let _ = write.write_all(reply.as_bytes()).await;
                    continue;
                }
                let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
                let upper = rest.to_ascii_uppercase();
                let reply = if upper.starts_with("AUTHENTICATE XOAUTH2") {
                    pending_auth = Some(tag.to_owned());
                    "+ \r\n".to_owned()
                } else if upper.starts_with("CAPABILITY") {
                    format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n")
                } else if upper.starts_with("LIST") {
                    format!(
                        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk Email\"\r\n{tag} OK done\r\n"
                    )
                } else if upper.starts_with("LOGOUT") {
                    let _ = write
                        .write_all(format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes())
                        .await;
                    return;
                } else {
                    format!("{tag} BAD unexpected\r\n")
                };
                let _ = write.write_all(reply.as_bytes()).await;
            }
        });
    }
}

mod base64_helper {
    pub fn encode(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn config(token_port: u16, imap_port: u16, refresh_env: &str) -> String {
    format!(
        "sender:\n  from: probe@example.org\nseeds:\n  - name: outlook-1\n    provider: outlook\n    address: seed@outlook.lab.test\n\
         \x20   imap:\n      host: 127.0.0.1\n      port: {imap_port}\n      tls: none\n      password:\n        oauth2:\n\
         \x20         token_url: https://127.0.0.1:{token_port}/oauth2/v2.0/token\n          client_id: probe-client\n\
         \x20         client_secret: {{ env: LAB_CLIENT_SECRET }}\n          refresh_token: {{ env: {refresh_env} }}\n\
         \x20         ca_file: {ca}\n",
        ca = lab_dir().join("tls/ca.pem").display()
    )
}

#[test]
fn refresh_token_is_traded_and_used_for_xoauth2() {
    ensure_lab();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token_std = StdListener::bind("127.0.0.1:0").unwrap();
    let imap_std = StdListener::bind("127.0.0.1:0").unwrap();
    let (token_port, imap_port) = (
        token_std.local_addr().unwrap().port(),
        imap_std.local_addr().unwrap().port(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    {
        let _guard = runtime.enter();
        token_std.set_nonblocking(true).unwrap();
        imap_std.set_nonblocking(true).unwrap();
        runtime.spawn(token_endpoint(
            TcpListener::from_std(token_std).unwrap(),
            seen.clone(),
        ));
        runtime.spawn(imap_server(
            TcpListener::from_std(imap_std).unwrap(),
            "seed@outlook.lab.test",
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("seeds.yaml"),
        config(token_port, imap_port, "LAB_REFRESH"),
    )
    .unwrap();

    let out = probe(dir.path())
        .env("LAB_CLIENT_SECRET", CLIENT_SECRET)
        .env("LAB_REFRESH", REFRESH_TOKEN)
        .env("PROBE_LOG", "trace")
        .args(["-vv", "seeds", "check", "--config", "seeds.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("login: ok (OAuth 2.0, AUTHENTICATE XOAUTH2)"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("spam folder: Junk Email"), "{}", show(&out));
    assert_eq!(seen.lock().unwrap().len(), 1, "one token exchange");
    // Traced at the most verbose level, still no token of any kind.
    for secret in [ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET] {
        assert!(!stdout.contains(secret), "{secret} in stdout");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains(secret),
            "{secret} in stderr"
        );
    }

    // A revoked refresh token: a config error naming the field and the OAuth error, no login.
    let out = probe(dir.path())
        .env("LAB_CLIENT_SECRET", CLIENT_SECRET)
        .env("LAB_REFRESH", "1//revoked")
        .args(["seeds", "check", "--config", "seeds.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seeds.yaml:"), "{stderr}");
    assert!(stderr.contains("seeds[0].imap.password"), "{stderr}");
    assert!(
        stderr.contains(
            "refused the refresh token: invalid_grant (Token has been expired or revoked.)"
        ),
        "{stderr}"
    );
    for secret in [ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET, "1//revoked"] {
        assert!(!stderr.contains(secret), "{secret} in stderr");
    }
    runtime.shutdown_background();
}
