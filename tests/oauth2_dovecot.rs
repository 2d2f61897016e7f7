//! OAuth 2.0 against the REAL lab Dovecot: `probe` trades a refresh token at a token endpoint
//! served here, logs in with SASL XOAUTH2 or OAUTHBEARER, and Dovecot's `oauth2` passdb checks
//! the bearer token by POSTing it to the introspection endpoint (RFC 7662) served here too, on
//! the fixed port the lab's config names (docker/lab/dovecot/oauth2.conf.ext): 127.0.0.1:9443.
//! One #[test] only: no two tests can hold that port.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::lab::{config_yaml, ensure_lab, lab_dir, message_for, probe, run, show};
use crate::smtp_faults::acceptor;

/// Where Dovecot's oauth2 passdb asks (docker/lab/dovecot/oauth2.conf.ext).
const PORT: u16 = 9443;
const USER: &str = "oauth@oauth.lab.test";
const CLIENT_ID: &str = "lab-dovecot-client";
/// A refresh token the endpoint trades for [`ACCESS`], which introspection calls active.
const REFRESH: &str = "lab-dovecot-refresh-5Tq";
const ACCESS: &str = "lab-dovecot-access-3Rk";
/// A refresh token still traded, but for [`ACCESS_INACTIVE`]: revoked at the resource server.
const REFRESH_INACTIVE: &str = "lab-dovecot-refresh-inactive-2Zx";
const ACCESS_INACTIVE: &str = "lab-dovecot-access-inactive-8Wd";
/// A refresh token traded for [`ACCESS_OTHER`], active but issued to another user.
const REFRESH_OTHER: &str = "lab-dovecot-refresh-other-4Jn";
const ACCESS_OTHER: &str = "lab-dovecot-access-other-6Cv";

/// What the endpoint saw: (path, body) of every request.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Reads one HTTP/1.1 request (head, then Content-Length bytes of body).
pub(crate) async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> (String, String) {
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(split) = text.find("\r\n\r\n") {
            let len: usize = text[..split]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if got.len() >= split + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    (path, body.to_owned())
}

/// `POST /token`: refresh token -> access token (RFC 6749 §6). `POST /introspect`: Dovecot's
/// token check (RFC 7662), active with the username only for [`ACCESS`].
async fn endpoint(listener: TcpListener, seen: Seen) {
    let tls = acceptor(
        &std::fs::read_to_string(lab_dir().join("tls/server.pem")).unwrap(),
        &std::fs::read_to_string(lab_dir().join("tls/server.key")).unwrap(),
    );
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = tls.accept(tcp).await else {
                return;
            };
            let (path, body) = read_request(&mut stream).await;
            seen.lock().unwrap().push((path.clone(), body.clone()));
            let has = |pair: &str| body.split('&').any(|p| p == pair);
            let (status, json) = match path.as_str() {
                "/token" => {
                    let access = if !has("grant_type=refresh_token")
                        || !has(&format!("client_id={CLIENT_ID}"))
                    {
                        None
                    } else if has(&format!("refresh_token={REFRESH}")) {
                        Some(ACCESS)
                    } else if has(&format!("refresh_token={REFRESH_INACTIVE}")) {
                        Some(ACCESS_INACTIVE)
                    } else if has(&format!("refresh_token={REFRESH_OTHER}")) {
                        Some(ACCESS_OTHER)
                    } else {
                        None
                    };
                    match access {
                        Some(a) => (
                            "200 OK",
                            format!(
                                "{{\"access_token\":\"{a}\",\"expires_in\":3599,\"token_type\":\"Bearer\"}}"
                            ),
                        ),
                        None => (
                            "400 Bad Request",
                            "{\"error\":\"invalid_grant\"}".to_owned(),
                        ),
                    }
                }
                "/introspect" if has(&format!("token={ACCESS}")) => (
                    "200 OK",
                    format!("{{\"active\":true,\"username\":\"{USER}\",\"scope\":\"imap\"}}"),
                ),
                "/introspect" if has(&format!("token={ACCESS_OTHER}")) => (
                    "200 OK",
                    "{\"active\":true,\"username\":\"inbox@inbox.lab.test\"}".to_owned(),
                ),
                "/introspect" => ("200 OK", "{\"active\":false}".to_owned()),
                _ => ("404 Not Found", "{}".to_owned()),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

fn seed_yaml(mechanism: &str) -> String {
    let ca = lab_dir().join("tls/ca.pem");
    format!(
        "  - name: oauth\n    address: {USER}\n    mx: \"127.0.0.1:2525\"\n    imap:\n      host: 127.0.0.1\n      port: 1993\n\
         \x20     tls: implicit\n      ca_file: {ca}\n      password:\n        oauth2:\n\
         \x20         token_url: https://127.0.0.1:{PORT}/token\n          client_id: {CLIENT_ID}\n\
         \x20         refresh_token: {{ env: LAB_OAUTH_REFRESH }}\n          ca_file: {ca}\n\
         \x20         mechanism: {mechanism}\n",
        ca = ca.display()
    )
}

/// Runs `probe ARGS --config seeds.yaml` in `dir` with the given refresh token.
fn probe_with(
    dir: &std::path::Path,
    mechanism: &str,
    refresh: &str,
    args: &[&str],
) -> std::process::Output {
    std::fs::write(
        dir.join("seeds.yaml"),
        config_yaml("", "10s", &[seed_yaml(mechanism)]),
    )
    .unwrap();
    run(probe(dir)
        .env("LAB_OAUTH_REFRESH", refresh)
        .args(args)
        .args(["--config", "seeds.yaml"]))
}

fn introspections(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/introspect")
        .map(|(_, b)| b.clone())
        .collect()
}

/// The `token` field of an introspection request body.
fn token_of(body: &str) -> Option<&str> {
    body.split('&').find_map(|p| p.strip_prefix("token="))
}

#[test]
fn dovecot_checks_bearer_tokens_by_introspection() {
    ensure_lab();
    let std_listener = StdListener::bind(("127.0.0.1", PORT)).unwrap_or_else(|e| {
        panic!("127.0.0.1:{PORT} (the lab Dovecot's introspection endpoint) is taken: {e}")
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen: Seen = Arc::default();
    {
        let _guard = runtime.enter();
        std_listener.set_nonblocking(true).unwrap();
        runtime.spawn(endpoint(
            TcpListener::from_std(std_listener).unwrap(),
            seen.clone(),
        ));
    }
    let dir = tempfile::tempdir().unwrap();

    // Both mechanisms: one token exchange, one introspection each (Dovecot caches nothing).
    for (mechanism, name) in [("xoauth2", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER")] {
        let before = introspections(&seen).len();
        let out = probe_with(dir.path(), mechanism, REFRESH, &["seeds", "check"]);
        assert_eq!(out.status.code(), Some(0), "{mechanism}: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("login: ok (OAuth 2.0, AUTHENTICATE {name})")),
            "{}",
            show(&out)
        );
        let asked = introspections(&seen);
        assert_eq!(asked.len(), before + 1, "{mechanism}: {asked:?}");
        // Dovecot 2.3.19 posts `token=...&client_id=&client_secret=` (empty without a
        // client_id/client_secret in its oauth2 settings).
        assert!(
            token_of(&asked[before]) == Some(ACCESS),
            "Dovecot's POST body: {}",
            asked[before]
        );
        for secret in [ACCESS, REFRESH] {
            assert!(!stdout.contains(secret), "{secret} in stdout");
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains(secret),
                "{secret} in stderr"
            );
        }
    }

    // A token the resource server calls inactive, and an active one issued to another user:
    // Dovecot refuses the login.
    for (mechanism, refresh) in [
        ("xoauth2", REFRESH_INACTIVE),
        ("oauthbearer", REFRESH_INACTIVE),
        ("xoauth2", REFRESH_OTHER),
    ] {
        let out = probe_with(dir.path(), mechanism, refresh, &["seeds", "check"]);
        assert_eq!(out.status.code(), Some(1), "{mechanism}: {}", show(&out));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            all.contains(&format!("login as {USER} refused")),
            "{mechanism}: {}",
            show(&out)
        );
        assert!(
            !all.contains(ACCESS_INACTIVE) && !all.contains(ACCESS_OTHER),
            "token in output"
        );
    }
    assert_eq!(
        introspections(&seen)
            .iter()
            .filter(|b| token_of(b) == Some(ACCESS_INACTIVE))
            .count(),
        2,
        "each refused login was asked about"
    );

    // End to end: sent through the lab MX, found in INBOX over an XOAUTH2 session.
    let out = probe_with(
        dir.path(),
        "xoauth2",
        REFRESH,
        &["run", "--seed", "oauth", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(&out)));
    assert_eq!(message_for(&json, "oauth")["verdict"], "inbox", "{json:#}");

    runtime.shutdown_background();
}
