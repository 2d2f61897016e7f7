//! OAuth 2.0 against the REAL lab Dovecot: `probe` trades a refresh token at a token endpoint
//! served here, logs in with SASL XOAUTH2 or OAUTHBEARER, and Dovecot's `oauth2` passdb checks
//! the bearer token by POSTing it to the introspection endpoint (RFC 7662) served here too, on
//! the fixed port the lab's config names (docker/lab/dovecot/oauth2.conf.ext): 127.0.0.1:9443.
//! One #[test] only: no two tests can hold that port.

use crate::support::https::{FakeHttps, Request, Response};
use crate::support::lab::{ensure_lab, lab_ca, lab_server_cert};
use crate::support::{Password, Probe, Ran, Seed, Seeds, message_for};

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

/// `POST /token`: refresh token -> access token (RFC 6749 §6). `POST /introspect`: Dovecot's
/// token check (RFC 7662), active with the username only for [`ACCESS`].
fn endpoint(req: &Request) -> Response {
    match req.path.as_str() {
        "/token" => {
            let access = if !req.has("grant_type=refresh_token")
                || !req.has(&format!("client_id={CLIENT_ID}"))
            {
                None
            } else if req.has(&format!("refresh_token={REFRESH}")) {
                Some(ACCESS)
            } else if req.has(&format!("refresh_token={REFRESH_INACTIVE}")) {
                Some(ACCESS_INACTIVE)
            } else if req.has(&format!("refresh_token={REFRESH_OTHER}")) {
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
        "/introspect" if req.has(&format!("token={ACCESS}")) => (
            "200 OK",
            format!("{{\"active\":true,\"username\":\"{USER}\",\"scope\":\"imap\"}}"),
        ),
        "/introspect" if req.has(&format!("token={ACCESS_OTHER}")) => (
            "200 OK",
            "{\"active\":true,\"username\":\"inbox@inbox.lab.test\"}".to_owned(),
        ),
        "/introspect" => ("200 OK", "{\"active\":false}".to_owned()),
        _ => ("404 Not Found", "{}".to_owned()),
    }
}

/// The lab's OAuth seed, its refresh token from `LAB_OAUTH_REFRESH`.
fn seeds(mechanism: &str) -> Seeds {
    let ca = lab_ca().display().to_string();
    Seeds::lab("10s").lab_sender().seed(
        Seed::new("oauth", USER)
            .mx("127.0.0.1:2525")
            .lab_imap("oauth")
            .password(Password::OAuth2(vec![
                (
                    "token_url".into(),
                    format!("https://127.0.0.1:{PORT}/token"),
                ),
                ("client_id".into(), CLIENT_ID.into()),
                ("refresh_token".into(), "{ env: LAB_OAUTH_REFRESH }".into()),
                ("ca_file".into(), ca),
                ("mechanism".into(), mechanism.into()),
            ])),
    )
}

/// `probe ARGS` in `dir` with the given mechanism and refresh token.
fn probe_with(dir: &std::path::Path, mechanism: &str, refresh: &str, args: &[&str]) -> Probe {
    Probe::in_dir(dir)
        .env("LAB_OAUTH_REFRESH", refresh)
        .args(args)
        .config(&seeds(mechanism))
}

/// The bodies of Dovecot's introspection requests so far.
fn introspections(endpoint: &FakeHttps) -> Vec<String> {
    endpoint
        .requests()
        .into_iter()
        .filter(|r| r.path == "/introspect")
        .map(|r| r.body)
        .collect()
}

/// The `token` field of an introspection request body.
fn token_of(body: &str) -> Option<&str> {
    body.split('&').find_map(|p| p.strip_prefix("token="))
}

#[test]
fn dovecot_checks_bearer_tokens_by_introspection() {
    ensure_lab();
    // On the fixed port Dovecot asks, with the certificate Dovecot trusts.
    let endpoint = FakeHttps::start_on(PORT, lab_server_cert(), endpoint);
    let dir = tempfile::tempdir().unwrap();

    // Both mechanisms: one token exchange, one introspection each (Dovecot caches nothing).
    for (mechanism, name) in [("xoauth2", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER")] {
        let before = introspections(&endpoint).len();
        probe_with(dir.path(), mechanism, REFRESH, &["seeds", "check"])
            .expect_exit(0)
            .stdout_has(format!("login: ok (OAuth 2.0, AUTHENTICATE {name})"))
            .output_lacks(ACCESS)
            .output_lacks(REFRESH)
            .run();
        let asked = introspections(&endpoint);
        assert_eq!(asked.len(), before + 1, "{mechanism}: {asked:?}");
        // Dovecot 2.3.19 posts `token=...&client_id=&client_secret=` (empty without a
        // client_id/client_secret in its oauth2 settings).
        assert!(
            token_of(&asked[before]) == Some(ACCESS),
            "Dovecot's POST body: {}",
            asked[before]
        );
    }

    // A token the resource server calls inactive, and an active one issued to another user:
    // Dovecot refuses the login.
    for (mechanism, refresh) in [
        ("xoauth2", REFRESH_INACTIVE),
        ("oauthbearer", REFRESH_INACTIVE),
        ("xoauth2", REFRESH_OTHER),
    ] {
        let out: Ran = probe_with(dir.path(), mechanism, refresh, &["seeds", "check"])
            .expect_exit(1)
            .run();
        let all = format!("{}{}", out.stdout(), out.stderr());
        assert!(
            all.contains(&format!("login as {USER} refused")),
            "{mechanism}: {}",
            out.show()
        );
        assert!(
            !all.contains(ACCESS_INACTIVE) && !all.contains(ACCESS_OTHER),
            "token in output"
        );
    }
    assert_eq!(
        introspections(&endpoint)
            .iter()
            .filter(|b| token_of(b) == Some(ACCESS_INACTIVE))
            .count(),
        2,
        "each refused login was asked about"
    );

    // End to end: sent through the lab MX, found in INBOX over an XOAUTH2 session.
    let json = probe_with(
        dir.path(),
        "xoauth2",
        REFRESH,
        &["run", "--seed", "oauth", "--json"],
    )
    .expect_exit(0)
    .run()
    .json();
    assert_eq!(message_for(&json, "oauth")["verdict"], "inbox", "{json:#}");
}
