//! Fault injection for the SMTP client: a scripted fake server on loopback
//! produces the misbehaviour real servers rarely do on demand (stalls,
//! garbage, dropped connections, broken TLS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use seedprobe::send::{
    Delivery, Ending, Envelope, LineKind, Route, SendSettings, SessionError, Stage, Timeouts,
    deliver,
};
use seedprobe::tls::{CertVerdict, load_ca_file};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One thing the fake server does, in order.
#[derive(Debug, Clone)]
enum Step {
    /// Write these bytes verbatim.
    Send(&'static str),
    /// Read one line; it must start with this (ASCII case-insensitively).
    Expect(&'static str),
    /// Read message content up to and including the lone ".".
    ReadMessage,
    /// Read one line of message content, then drop the connection.
    DropMidData,
    /// Never answer again; read and discard until the client hangs up.
    StallUntilClosed,
    /// Act as the TLS server on this connection from now on.
    StartTls,
}

/// What the fake server saw on one connection.
#[derive(Debug, Default)]
struct ServerLog {
    /// Command lines received, without CRLF.
    commands: Vec<String>,
    /// Message content lines received, raw (with their line endings).
    data: Vec<Vec<u8>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Serves one script per accepted connection, in order.
async fn fake_server(
    scripts: Vec<Vec<Step>>,
    acceptor: Option<TlsAcceptor>,
) -> (u16, tokio::task::JoinHandle<Vec<ServerLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut logs = Vec::new();
        for script in scripts {
            let (socket, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(Box::new(socket) as Box<dyn Io>);
            let mut log = ServerLog::default();
            for step in script {
                match step {
                    Step::Send(text) => {
                        conn.get_mut().write_all(text.as_bytes()).await.unwrap();
                        conn.get_mut().flush().await.unwrap();
                    }
                    Step::Expect(prefix) => {
                        let mut raw = Vec::new();
                        conn.read_until(b'\n', &mut raw).await.unwrap();
                        let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                        assert!(
                            line.to_ascii_uppercase()
                                .starts_with(&prefix.to_ascii_uppercase()),
                            "server expected {prefix:?}, got {line:?}"
                        );
                        log.commands.push(line);
                    }
                    Step::ReadMessage => loop {
                        let mut raw = Vec::new();
                        let n = conn.read_until(b'\n', &mut raw).await.unwrap();
                        assert!(n > 0, "client closed during message content");
                        if raw == b".\r\n" {
                            break;
                        }
                        log.data.push(raw);
                    },
                    Step::DropMidData => {
                        let mut raw = Vec::new();
                        conn.read_until(b'\n', &mut raw).await.unwrap();
                        log.data.push(raw);
                        break;
                    }
                    Step::StallUntilClosed => {
                        let mut sink = [0u8; 1024];
                        while conn.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                        break;
                    }
                    Step::StartTls => {
                        let acceptor = acceptor.clone().expect("script needs a TLS acceptor");
                        let plain = conn.into_inner();
                        let tls = acceptor.accept(plain).await.unwrap();
                        conn = BufReader::new(Box::new(tls) as Box<dyn Io>);
                    }
                }
            }
            logs.push(log);
        }
        logs
    });
    (port, task)
}

/// Waits for the fake server, failing (not hanging) if the client never
/// made the connections its script expects.
async fn server_logs(task: tokio::task::JoinHandle<Vec<ServerLog>>) -> Vec<ServerLog> {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("fake server did not finish its scripts")
        .expect("fake server failed")
}

/// `deliver`, but a hang fails the test instead of stalling the suite.
/// The common case: the standard message to a fake server, 5 s step timeouts.
async fn deliver_to(port: u16) -> Delivery {
    deliver_guarded(
        &route(port),
        &envelope(),
        &message(),
        &settings(Duration::from_secs(5)),
    )
    .await
}

async fn deliver_guarded(
    route: &Route,
    envelope: &Envelope,
    message: &[u8],
    settings: &SendSettings,
) -> Delivery {
    tokio::time::timeout(
        Duration::from_secs(20),
        deliver(route, envelope, message, settings),
    )
    .await
    .expect("deliver hung")
}

fn settings(command_timeout: Duration) -> SendSettings {
    SendSettings {
        ehlo: "probe.lab.test".into(),
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            command: command_timeout,
            data_end: command_timeout,
        },
        extra_roots: Vec::new(),
    }
}

fn envelope() -> Envelope {
    Envelope {
        mail_from: "probe@lab.test".into(),
        rcpt_to: "seed@lab.test".into(),
    }
}

fn route(port: u16) -> Route {
    Route::Fixed {
        host: "127.0.0.1".into(),
        port,
    }
}

/// The dialogue lines of a transcript (no notes), swaks-style.
fn dialogue(delivery: &Delivery, attempt: usize) -> Vec<String> {
    delivery.attempts[attempt]
        .transcript
        .lines
        .iter()
        .filter(|l| !matches!(l.kind, LineKind::Info | LineKind::Error))
        .map(|l| format!("{}{}", l.kind.prefix(), l.text))
        .collect()
}

const MARKER: &str = "BODY-MARKER-7f3a";

/// Bare LF line endings, a line needing dot-stuffing, and a marker that must
/// never appear in a transcript.
fn message() -> Vec<u8> {
    format!("Subject: probe\n\n{MARKER}\n.hidden\nend").into_bytes()
}

/// Banner, EHLO without STARTTLS, MAIL, RCPT: the common opening.
const OPENING: [Step; 7] = [
    Step::Send("220 fake.lab.test ESMTP\r\n"),
    Step::Expect("EHLO probe.lab.test"),
    Step::Send("250-fake.lab.test\r\n250 PIPELINING\r\n"),
    Step::Expect("MAIL FROM:<probe@lab.test>"),
    Step::Send("250 2.1.0 Ok\r\n"),
    Step::Expect("RCPT TO:<seed@lab.test>"),
    Step::Send("250 2.1.5 Ok\r\n"),
];

fn accepting_script(opening: &[Step]) -> Vec<Step> {
    let mut script = opening.to_vec();
    script.extend([
        Step::Expect("DATA"),
        Step::Send("354 End data with <CR><LF>.<CR><LF>\r\n"),
        Step::ReadMessage,
        Step::Send("250 2.0.0 Ok: queued as ABC123\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 2.0.0 Bye\r\n"),
    ]);
    script
}

#[tokio::test]
async fn happy_path_without_starttls_is_accepted() {
    let (port, server) = fake_server(vec![accepting_script(&OPENING)], None).await;
    let delivery = deliver_to(port).await;
    let logs = server_logs(server).await;

    let Ending::Accepted { reply } = delivery.ending() else {
        panic!("not accepted: {}", delivery.ending());
    };
    assert_eq!(reply.code, 250);
    assert_eq!(reply.to_string(), "250 2.0.0 Ok: queued as ABC123");
    assert_eq!(delivery.attempts.len(), 1);
    let attempt = &delivery.attempts[0];
    assert_eq!(attempt.host, "127.0.0.1");
    assert_eq!(attempt.addr, Some(SocketAddr::from(([127, 0, 0, 1], port))));
    assert!(attempt.tls.is_none());
    assert_eq!(
        dialogue(&delivery, 0),
        [
            "<- 220 fake.lab.test ESMTP",
            "-> EHLO probe.lab.test",
            "<- 250-fake.lab.test",
            "<- 250 PIPELINING",
            "-> MAIL FROM:<probe@lab.test>",
            "<- 250 2.1.0 Ok",
            "-> RCPT TO:<seed@lab.test>",
            "<- 250 2.1.5 Ok",
            "-> DATA",
            "<- 354 End data with <CR><LF>.<CR><LF>",
            "-> .",
            "<- 250 2.0.0 Ok: queued as ABC123",
            "-> QUIT",
            "<- 221 2.0.0 Bye",
        ]
    );
    let text = attempt.transcript.to_string();
    assert!(
        !text.contains(MARKER),
        "message content leaked into:\n{text}"
    );
    assert!(
        !text.contains("hidden"),
        "message content leaked into:\n{text}"
    );
    assert!(text.contains("=== 51 bytes of message data"), "{text}");

    // On the wire: CRLF everywhere and the dot stuffed.
    let data: Vec<&[u8]> = logs[0].data.iter().map(Vec::as_slice).collect();
    let marker_line = format!("{MARKER}\r\n");
    assert_eq!(
        data,
        [
            b"Subject: probe\r\n".as_slice(),
            b"\r\n",
            marker_line.as_bytes(),
            b"..hidden\r\n",
            b"end\r\n",
        ]
    );
}

#[tokio::test]
async fn connection_dropped_mid_data_fails() {
    let mut script = OPENING.to_vec();
    script.extend([
        Step::Expect("DATA"),
        Step::Send("354 go ahead\r\n"),
        Step::DropMidData,
    ]);
    let (port, server) = fake_server(vec![script], None).await;
    // Big enough that the client is usually still writing when the server
    // hangs up; either way the ending must be a failure in DATA or after it.
    let mut big = message();
    big.extend(std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\n", 200_000).flatten());
    let delivery = deliver_guarded(
        &route(port),
        &envelope(),
        &big,
        &settings(Duration::from_secs(5)),
    )
    .await;
    server_logs(server).await;

    match delivery.ending() {
        Ending::Failed {
            stage: Stage::Data | Stage::DataEnd,
            error: SessionError::ConnectionClosed { .. } | SessionError::Io { .. },
        } => {}
        other => panic!("unexpected ending: {other}"),
    }
    let text = delivery.attempts[0].transcript.to_string();
    assert!(
        !text.contains("-> QUIT"),
        "QUIT on a dead connection:\n{text}"
    );
    assert!(!text.contains(MARKER));
}

#[tokio::test]
async fn stall_after_banner_times_out_at_ehlo() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::StallUntilClosed,
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let delivery = deliver_guarded(&route(port), &envelope(), &message(), &settings(limit)).await;
    let took = started.elapsed();
    server_logs(server).await;

    match delivery.ending() {
        Ending::Failed {
            stage: Stage::Ehlo,
            error: SessionError::Timeout { after, .. },
        } => assert_eq!(*after, limit),
        other => panic!("unexpected ending: {other}"),
    }
    assert!(took >= limit, "gave up too early: {took:?}");
    assert!(took < limit + Duration::from_secs(2), "hung: {took:?}");
    let text = delivery.attempts[0].transcript.to_string();
    assert!(text.contains("*** 127.0.0.1:"), "{text}");
    assert!(
        text.contains("timed out after 300ms waiting for the reply to EHLO"),
        "{text}"
    );
}

#[tokio::test]
async fn garbage_reply_is_malformed() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("HTTP/1.1 400 Bad Request\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    server_logs(server).await;

    assert!(
        matches!(
            delivery.ending(),
            Ending::Failed {
                stage: Stage::Ehlo,
                error: SessionError::MalformedReply { .. }
            }
        ),
        "{}",
        delivery.ending()
    );
    // The garbage itself is evidence and is kept.
    assert!(dialogue(&delivery, 0).contains(&"<- HTTP/1.1 400 Bad Request".to_owned()));
}

#[tokio::test]
async fn endless_line_is_cut_off() {
    // 64 KiB without a line break: the client must stop buffering at its cap
    // and fail, not wait for a newline that never comes.
    let endless: &'static str = "2".repeat(64 * 1024).leak();
    let script = vec![Step::Send(endless), Step::StallUntilClosed];
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    server_logs(server).await;

    match delivery.ending() {
        Ending::Failed {
            stage: Stage::Banner,
            error: SessionError::MalformedReply { problem, .. },
        } => assert_eq!(*problem, seedprobe::send::ReplyError::LineTooLong),
        other => panic!("unexpected ending: {other}"),
    }
}

#[tokio::test]
async fn transient_refusal_at_rcpt_is_refused_and_quits() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250 fake.lab.test\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect("RCPT TO:"),
        Step::Send("450 4.7.1 <defer@defer.lab.test>: Recipient address rejected: Greylisted\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 2.0.0 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    let logs = server_logs(server).await;

    let Ending::Refused {
        stage: Stage::RcptTo,
        reply,
    } = delivery.ending()
    else {
        panic!("unexpected ending: {}", delivery.ending());
    };
    assert_eq!(reply.code, 450);
    assert_eq!(
        reply.enhanced.map(|e| e.to_string()).as_deref(),
        Some("4.7.1")
    );
    assert_eq!(
        reply.to_string(),
        "450 4.7.1 <defer@defer.lab.test>: Recipient address rejected: Greylisted"
    );
    assert_eq!(logs[0].commands.last().map(String::as_str), Some("QUIT"));
    assert!(logs[0].data.is_empty());
    assert_eq!(
        dialogue(&delivery, 0).last().map(String::as_str),
        Some("<- 221 2.0.0 Bye")
    );
}

#[tokio::test]
async fn refusal_in_banner_is_refused_at_banner() {
    let script = vec![
        Step::Send("554 5.7.1 fake.lab.test: no SMTP service here\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 2.0.0 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    let logs = server_logs(server).await;

    match delivery.ending() {
        Ending::Refused {
            stage: Stage::Banner,
            reply,
        } => assert_eq!(reply.code, 554),
        other => panic!("unexpected ending: {other}"),
    }
    // No EHLO after a refusing banner; just the polite QUIT.
    assert_eq!(logs[0].commands, ["QUIT"]);
}

#[tokio::test]
async fn service_closing_421_ends_without_quit() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("421 4.3.2 fake.lab.test Service shutting down\r\n"),
        Step::StallUntilClosed,
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    server_logs(server).await;

    assert!(matches!(
        delivery.ending(),
        Ending::Refused { stage: Stage::Ehlo, reply } if reply.code == 421
    ));
    assert!(!dialogue(&delivery, 0).contains(&"-> QUIT".to_owned()));
}

#[tokio::test]
async fn helo_fallback_after_ehlo_is_rejected() {
    let mut script = vec![
        Step::Send("220 old.lab.test SMTP\r\n"),
        Step::Expect("EHLO probe.lab.test"),
        Step::Send("502 5.5.2 Error: command not recognized\r\n"),
        Step::Expect("HELO probe.lab.test"),
        Step::Send("250 old.lab.test\r\n"),
    ];
    script.extend(accepting_script(&OPENING[3..]));
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    server_logs(server).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
}

#[tokio::test]
async fn failed_tls_handshake_falls_back_to_plain_connection() {
    let broken_tls = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 STARTTLS\r\n"),
        Step::Expect("STARTTLS"),
        Step::Send("220 2.0.0 Ready to start TLS\r\n"),
        Step::Send("this is not a TLS server hello\r\n"),
    ];
    // The second connection offers STARTTLS again; the client must not take it.
    let mut plain = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 STARTTLS\r\n"),
    ];
    plain.extend(accepting_script(&OPENING[3..]));
    let (port, server) = fake_server(vec![broken_tls, plain], None).await;
    let delivery = deliver_to(port).await;
    let logs = server_logs(server).await;

    assert_eq!(delivery.attempts.len(), 2, "{:#?}", delivery.attempts);
    assert!(
        matches!(
            &delivery.attempts[0].ending,
            Ending::Failed {
                stage: Stage::StartTls,
                error: SessionError::Tls { .. }
            }
        ),
        "{}",
        delivery.attempts[0].ending
    );
    assert!(
        delivery.attempts[0]
            .transcript
            .to_string()
            .contains("*** TLS with 127.0.0.1:")
    );
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    assert!(delivery.attempts[1].tls.is_none());
    assert!(!logs[1].commands.iter().any(|c| c == "STARTTLS"));
}

#[tokio::test]
async fn refused_starttls_continues_in_the_clear() {
    let mut script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 STARTTLS\r\n"),
        Step::Expect("STARTTLS"),
        Step::Send("454 4.7.0 TLS not available due to local problem\r\n"),
    ];
    script.extend(accepting_script(&OPENING[3..]));
    let (port, server) = fake_server(vec![script], None).await;
    let delivery = deliver_to(port).await;
    server_logs(server).await;
    assert_eq!(delivery.attempts.len(), 1);
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
}

fn acceptor(cert_pem: &str, key_pem: &str) -> TlsAcceptor {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// The test CA, loaded through the public loader from a file.
fn test_ca() -> Vec<CertificateDer<'static>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, CA_PEM).unwrap();
    load_ca_file(&path).unwrap()
}

async fn tls_delivery(
    acceptor: TlsAcceptor,
    extra_roots: Vec<CertificateDer<'static>>,
) -> Delivery {
    let mut script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 STARTTLS\r\n"),
        Step::Expect("STARTTLS"),
        Step::Send("220 2.0.0 Ready to start TLS\r\n"),
        Step::StartTls,
        Step::Expect("EHLO probe.lab.test"),
        Step::Send("250-fake.lab.test\r\n250 8BITMIME\r\n"),
    ];
    script.extend(accepting_script(&OPENING[3..]));
    let (port, server) = fake_server(vec![script], Some(acceptor)).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.extra_roots = extra_roots;
    let delivery = deliver_guarded(&route(port), &envelope(), &message(), &settings).await;
    server_logs(server).await;
    delivery
}

#[tokio::test]
async fn starttls_records_a_trusted_certificate() {
    let delivery = tls_delivery(acceptor(IP_LEAF_PEM, IP_LEAF_KEY), test_ca()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    assert_eq!(delivery.attempts.len(), 1);
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::Trusted);
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
    let lines = dialogue(&delivery, 0);
    assert_eq!(
        lines[..6],
        [
            "<- 220 fake.lab.test ESMTP",
            "-> EHLO probe.lab.test",
            "<- 250-fake.lab.test",
            "<- 250 STARTTLS",
            "-> STARTTLS",
            "<- 220 2.0.0 Ready to start TLS",
        ]
    );
    assert_eq!(
        lines[6..9],
        [
            "~> EHLO probe.lab.test",
            "<~ 250-fake.lab.test",
            "<~ 250 8BITMIME",
        ]
    );
    assert!(lines.contains(&"~> QUIT".to_owned()));
    let text = delivery.attempts[0].transcript.to_string();
    assert!(
        text.contains("=== TLS started with cipher TLSv1.3:TLS13_"),
        "{text}"
    );
    assert!(text.contains("=== TLS certificate: trusted"), "{text}");
}

#[tokio::test]
async fn starttls_records_an_untrusted_certificate_and_still_delivers() {
    let delivery = tls_delivery(acceptor(IP_LEAF_PEM, IP_LEAF_KEY), Vec::new()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::Untrusted);
}

#[tokio::test]
async fn starttls_records_a_hostname_mismatch() {
    let delivery = tls_delivery(acceptor(DNS_LEAF_PEM, DNS_LEAF_KEY), test_ca()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::HostnameMismatch);
}

#[tokio::test]
async fn starttls_records_an_expired_certificate() {
    let delivery = tls_delivery(acceptor(EXPIRED_LEAF_PEM, IP_LEAF_KEY), test_ca()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::Expired);
}

// Test PKI, generated once with openssl (P-256; valid 2000-2100 except EXPIRED_LEAF),
// so the tests need no certificate-generation crate. Test-only keys: never trust them.

/// The test CA (CN=seedprobe test CA).
const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBbTCCARKgAwIBAgICEAAwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBwx\n\
GjAYBgNVBAMMEXNlZWRwcm9iZSB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n\
AQcDQgAELTOvjeXLCoCqEP9XqD6IYVHZ69lWO6hCZApBBVGW69OqjPguwUxsVxUH\n\
3vF3+ayGCkc+kf7STN4oHGtXqFQeJaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNV\n\
HQ8BAf8EBAMCAQYwHQYDVR0OBBYEFFp2ldn7DlBy0etueIGwjBd3rE4dMAoGCCqG\n\
SM49BAMCA0kAMEYCIQDFqb19UoXJDk7vqOPqYXtHqXKRXGDhC+CcTk4tUXjgNgIh\n\
AJ89naz47/wA+tZWoNQ01AD/1q+ys/xInxoKnZmPr7IS\n\
-----END CERTIFICATE-----\n\
";
/// Leaf for IP:127.0.0.1, issued by the test CA.
const IP_LEAF_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBpDCCAUugAwIBAgICEAEwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBYx\n\
FDASBgNVBAMMC214LmxhYi50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n\
ilGCKMXmwfiqUC5rYmcPHQ/WslX6wCgE4leLH+sKELwKYvp1zQMgJ2R+exrMpGyZ\n\
f1pKM9dVOuv9oFY2Qjd2HKOBgDB+MA8GA1UdEQQIMAaHBH8AAAEwCQYDVR0TBAIw\n\
ADALBgNVHQ8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFF3H\n\
qYZPnMHt/NcrdO3anaEiPpwPMB8GA1UdIwQYMBaAFFp2ldn7DlBy0etueIGwjBd3\n\
rE4dMAoGCCqGSM49BAMCA0cAMEQCIGqy1C5LezHiVbnamVOMUhEi+1GtvKbXr37X\n\
VG4ep4YnAiAt6O355zS6WJY+Hrdjp7zITEGHNenmqSYnrN5IQ7meIA==\n\
-----END CERTIFICATE-----\n\
";
/// Key of `IP_LEAF_PEM` and `EXPIRED_LEAF_PEM`.
const IP_LEAF_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2VgZT13Q9TVhKvLn\n\
ebSirL+OSOILlfuFgpqa3VklYIihRANCAASKUYIoxebB+KpQLmtiZw8dD9ayVfrA\n\
KATiV4sf6woQvApi+nXNAyAnZH57GsykbJl/Wkoz11U66/2gVjZCN3Yc\n\
-----END PRIVATE KEY-----\n\
";
/// Leaf for DNS:mx.lab.test only, issued by the test CA.
const DNS_LEAF_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBrTCCAVOgAwIBAgICEAIwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBYx\n\
FDASBgNVBAMMC214LmxhYi50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n\
FyqAYax9WJdLZfHzPOx6Qt+lYjJlHtxO4U5Dwpo//OFmxmwJdJV7GAcCypdNjpVd\n\
nBGOJNhsyH1J0JlXNruR/aOBiDCBhTAWBgNVHREEDzANggtteC5sYWIudGVzdDAJ\n\
BgNVHRMEAjAAMAsGA1UdDwQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNV\n\
HQ4EFgQUTJlYVuZUFS2GHFKKdypMManRBtMwHwYDVR0jBBgwFoAUWnaV2fsOUHLR\n\
6254gbCMF3esTh0wCgYIKoZIzj0EAwIDSAAwRQIhALOmY6aVi3SdH7T8xqyingZk\n\
MQne4xQ6B+BpbHCbYAN6AiAxubH95Mbv2fn7VYpfkALzSqW0C+VXmjJzaAhnEZBq\n\
NQ==\n\
-----END CERTIFICATE-----\n\
";
/// Key of `DNS_LEAF_PEM`.
const DNS_LEAF_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgB7F4Nh1irrXR60ir\n\
tf01lXnoCQGCorNV0lzRiJalxE6hRANCAAQXKoBhrH1Yl0tl8fM87HpC36ViMmUe\n\
3E7hTkPCmj/84WbGbAl0lXsYBwLKl02OlV2cEY4k2GzIfUnQmVc2u5H9\n\
-----END PRIVATE KEY-----\n\
";
/// Leaf for IP:127.0.0.1 that expired on 2001-01-01.
const EXPIRED_LEAF_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBozCCAUmgAwIBAgICEAMwCgYIKoZIzj0EAwIwHDEaMBgGA1UEAwwRc2VlZHBy\n\
b2JlIHRlc3QgQ0EwHhcNMDAwMTAxMDAwMDAwWhcNMDEwMTAxMDAwMDAwWjAWMRQw\n\
EgYDVQQDDAtteC5sYWIudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIpR\n\
gijF5sH4qlAua2JnDx0P1rJV+sAoBOJXix/rChC8CmL6dc0DICdkfnsazKRsmX9a\n\
SjPXVTrr/aBWNkI3dhyjgYAwfjAPBgNVHREECDAGhwR/AAABMAkGA1UdEwQCMAAw\n\
CwYDVR0PBAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBRdx6mG\n\
T5zB7fzXK3Tt2p2hIj6cDzAfBgNVHSMEGDAWgBRadpXZ+w5QctHrbniBsIwXd6xO\n\
HTAKBggqhkjOPQQDAgNIADBFAiEA1WEE0ehrUHkFOP4V930szEIHBx0bQQZAPfNc\n\
/hVF56UCIHtickcSUQahc+LFVWFfSkxEU9vSeU1cRm3sKekta+rk\n\
-----END CERTIFICATE-----\n\
";
