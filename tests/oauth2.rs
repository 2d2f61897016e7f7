//! OAuth 2.0: the refresh-token exchange against a fake HTTPS token endpoint, its errors, and
//! the exact XOAUTH2 payload, checked by a fake IMAP server. No lab: the endpoint's certificate
//! is the test PKI's. `lab::oauth2_dovecot` logs into the lab's real Dovecot with both
//! mechanisms.

use crate::support::https::FakeHttps;
use crate::support::imap::{Cmd, FakeImap, Reply, Session};
use crate::support::tls::{IP_LEAF, write_test_ca};
use crate::support::{Password, Probe, Seed, Seeds};

const ACCESS_TOKEN: &str = "ya29.lab-access-token-4Qz";
const REFRESH_TOKEN: &str = "1//lab-refresh-token-9Lm";
const CLIENT_SECRET: &str = "lab-client-secret-7Hp";

/// The token endpoint: 200 with an access token for the right refresh token, RFC 6749 §5.2
/// `invalid_grant` otherwise.
fn token_endpoint() -> FakeHttps {
    FakeHttps::start(IP_LEAF, |req| {
        let body = &req.body;
        let good = body.contains("grant_type=refresh_token")
            && body.contains("client_id=probe-client")
            && body.contains(&format!("client_secret={CLIENT_SECRET}"))
            && body.contains("refresh_token=1%2F%2Flab-refresh-token-9Lm");
        if good {
            (
                "200 OK",
                format!(
                    "{{\"access_token\":\"{ACCESS_TOKEN}\",\"expires_in\":3599,\"token_type\":\"Bearer\"}}"
                ),
            )
        } else {
            ("400 Bad Request", "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}".to_owned())
        }
    })
}

/// An IMAP server that accepts only `AUTHENTICATE XOAUTH2` with the expected payload.
fn imap_server(user: &'static str) -> FakeImap {
    let want = base64_helper::encode(
        format!("user={user}\x01auth=Bearer {ACCESS_TOKEN}\x01\x01").as_bytes(),
    );
    FakeImap::new("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] fake ready")
        .on("AUTHENTICATE XOAUTH2", move |_: &mut Session, cmd: &Cmd| {
            let (tag, want) = (cmd.tag.to_owned(), want.clone());
            Reply::Continue(
                "+ \r\n".into(),
                std::sync::Arc::new(move |_: &mut Session, line: &Cmd| {
                    Reply::Send(if line.text.trim() == want {
                        format!("{tag} OK [CAPABILITY IMAP4rev1 IDLE] authenticated\r\n")
                    } else {
                        format!("{tag} NO [AUTHENTICATIONFAILED] bad token\r\n")
                    })
                }),
            )
        })
        .reply("CAPABILITY", "* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n")
        .reply(
            "LIST",
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk Email\"\r\n{tag} OK done\r\n",
        )
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

/// An Outlook seed behind the fake IMAP server, its token from the fake endpoint.
fn seeds(token_port: u16, imap_port: u16, ca: &std::path::Path) -> Seeds {
    let ca = ca.display().to_string();
    Seeds::new().seed(
        Seed::new("outlook-1", "seed@outlook.lab.test")
            .provider("outlook")
            .imap_server("127.0.0.1", imap_port)
            .tls("none")
            .password(Password::OAuth2(vec![
                (
                    "token_url".into(),
                    format!("https://127.0.0.1:{token_port}/oauth2/v2.0/token"),
                ),
                ("client_id".into(), "probe-client".into()),
                ("client_secret".into(), "{ env: LAB_CLIENT_SECRET }".into()),
                ("refresh_token".into(), "{ env: LAB_REFRESH }".into()),
                ("ca_file".into(), ca),
            ])),
    )
}

#[test]
fn refresh_token_is_traded_and_used_for_xoauth2() {
    let token = token_endpoint();
    let imap = imap_server("seed@outlook.lab.test").start();
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(token.port, imap.port, &write_test_ca(dir.path()));

    // Traced at the most verbose level, still no token of any kind.
    let probe = Probe::in_dir(dir.path())
        .env("LAB_CLIENT_SECRET", CLIENT_SECRET)
        .env("LAB_REFRESH", REFRESH_TOKEN)
        .env("PROBE_LOG", "trace")
        .args(["-vv", "seeds", "check"])
        .config(&seeds)
        .expect_exit(0)
        .stdout_has("login: ok (OAuth 2.0, AUTHENTICATE XOAUTH2)")
        .stdout_has("spam folder: Junk Email");
    [ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET]
        .into_iter()
        .fold(probe, Probe::output_lacks)
        .run();
    assert_eq!(token.requests().len(), 1, "one token exchange");

    // A revoked refresh token: a config error naming the field and the OAuth error, no login.
    let probe = Probe::in_dir(dir.path())
        .env("LAB_CLIENT_SECRET", CLIENT_SECRET)
        .env("LAB_REFRESH", "1//revoked")
        .args(["seeds", "check"])
        .config(&seeds)
        .expect_exit(2)
        .stderr_has("seeds.yaml:")
        .stderr_has("seeds[0].imap.password")
        .stderr_has(
            "refused the refresh token: invalid_grant (Token has been expired or revoked.)",
        );
    [ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET, "1//revoked"]
        .into_iter()
        .fold(probe, Probe::stderr_lacks)
        .run();
}
