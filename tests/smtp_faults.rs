//! Fault injection for the SMTP client: a scripted fake server on loopback
//! produces the misbehaviour real servers rarely do on demand (stalls,
//! garbage, dropped connections, broken TLS).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use seedprobe::secrets::SecretString;
use seedprobe::send::auth::base64;
use seedprobe::send::{
    Auth, AuthMechanism, Delivery, Ending, Envelope, LineKind, Observed, Outgoing, QuitAfter,
    Route, SendSettings, SessionError, Stage, Timeouts, TlsPolicy, deliver, deliver_each,
    deliver_many,
};
use seedprobe::tls::{CertVerdict, load_ca_file};
use tokio_rustls::TlsAcceptor;

use crate::support::smtp::{Step, fake_server, server_logs};
use crate::support::tls::{CA_PEM, DNS_LEAF, EXPIRED_LEAF, IP_LEAF, acceptor};

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
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            command: command_timeout,
            data_end: command_timeout,
        },
        ..SendSettings::new("probe.lab.test")
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
            // Pipelined (RFC 2920): the group, then its replies in order.
            "-> MAIL FROM:<probe@lab.test>",
            "-> RCPT TO:<seed@lab.test>",
            "-> DATA",
            "<- 250 2.1.0 Ok",
            "<- 250 2.1.5 Ok",
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
    let delivery = tls_delivery(acceptor(IP_LEAF), test_ca()).await;
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
    let delivery = tls_delivery(acceptor(IP_LEAF), Vec::new()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::Untrusted);
}

#[tokio::test]
async fn starttls_records_a_hostname_mismatch() {
    let delivery = tls_delivery(acceptor(DNS_LEAF), test_ca()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::HostnameMismatch);
}

#[tokio::test]
async fn starttls_records_an_expired_certificate() {
    let delivery = tls_delivery(acceptor(EXPIRED_LEAF), test_ca()).await;
    assert!(delivery.ending().is_accepted(), "{}", delivery.ending());
    let tls = delivery.attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::Expired);
}

// ---- issue 3: batches, pipelining, DSN, AUTH, TLS policy, quit-after, source address ----

/// An item for the batch tests: `seed{n}@lab.test`.
fn item(n: usize) -> Outgoing {
    Outgoing {
        envelope: Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: format!("seed{n}@lab.test"),
        },
        message: message(),
        envid: None,
    }
}

/// The standard envelope and message as a batch item.
fn standard_item() -> Outgoing {
    Outgoing {
        envelope: envelope(),
        message: message(),
        envid: None,
    }
}

/// `deliver_many` with a guard against hangs.
async fn deliver_all(port: u16, items: &[Outgoing], settings: &SendSettings) -> Vec<Delivery> {
    tokio::time::timeout(
        Duration::from_secs(20),
        deliver_many(&route(port), items, settings),
    )
    .await
    .expect("deliver_many hung")
}

fn ending_line(delivery: &Delivery) -> String {
    delivery.ending().to_string()
}

/// One accepted transaction after the opening, without PIPELINING.
fn lockstep_transaction(rcpt: &'static str, queue_id_reply: &'static str) -> Vec<Step> {
    vec![
        Step::Expect("MAIL FROM:<probe@lab.test>"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect(rcpt),
        Step::Send("250 2.1.5 Ok\r\n"),
        Step::Expect("DATA"),
        Step::Send("354 go ahead\r\n"),
        Step::ReadMessage,
        Step::Send(queue_id_reply),
    ]
}

const PLAIN_OPENING: [Step; 3] = [
    Step::Send("220 fake.lab.test ESMTP\r\n"),
    Step::Expect("EHLO probe.lab.test"),
    Step::Send("250-fake.lab.test\r\n250 8BITMIME\r\n"),
];

#[tokio::test]
async fn batch_resets_between_transactions_and_a_refusal_does_not_stop_the_next() {
    let mut script = PLAIN_OPENING.to_vec();
    script.extend(lockstep_transaction(
        "RCPT TO:<seed1@lab.test>",
        "250 2.0.0 Ok: queued as AAA111\r\n",
    ));
    script.extend([
        Step::ExpectExact("RSET"),
        Step::Send("250 2.0.0 Ok\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect("RCPT TO:<seed2@lab.test>"),
        Step::Send("550 5.1.1 <seed2@lab.test>: Recipient address rejected\r\n"),
        Step::ExpectExact("RSET"),
        Step::Send("250 2.0.0 Ok\r\n"),
    ]);
    script.extend(lockstep_transaction(
        "RCPT TO:<seed3@lab.test>",
        "250 2.0.0 Ok: queued as CCC333\r\n",
    ));
    script.extend([Step::Expect("QUIT"), Step::Send("221 2.0.0 Bye\r\n")]);
    let (port, server) = fake_server(vec![script], None).await;
    let items = [item(1), item(2), item(3)];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut settings = settings(Duration::from_secs(5));
    settings.observer = Some(tx);
    let deliveries = deliver_all(port, &items, &settings).await;
    let logs = server_logs(server).await;

    assert_eq!(logs.len(), 1, "one connection for the whole batch");
    // Every message's lines went live, not just the first's.
    let mut observed = 0;
    while let Ok(event) = rx.try_recv() {
        observed += usize::from(matches!(event, Observed::Line(_)));
    }
    let kept: usize = deliveries
        .iter()
        .map(|d| d.attempts[0].transcript.lines.len())
        .sum();
    assert_eq!(observed, kept);
    let endings: Vec<String> = deliveries.iter().map(ending_line).collect();
    assert_eq!(
        endings,
        [
            "accepted: 250 2.0.0 Ok: queued as AAA111",
            "refused at rcpt_to: 550 5.1.1 <seed2@lab.test>: Recipient address rejected",
            "accepted: 250 2.0.0 Ok: queued as CCC333",
        ]
    );
    assert_eq!(
        deliveries[0].ending().reply().and_then(|r| r.queue_id()),
        Some("AAA111")
    );
    // The opening stays with the first message; later ones say they reuse it.
    assert!(dialogue(&deliveries[0], 0).contains(&"<- 220 fake.lab.test ESMTP".to_owned()));
    for (n, delivery) in deliveries.iter().enumerate().skip(1) {
        assert_eq!(delivery.attempts.len(), 1);
        let lines = &delivery.attempts[0].transcript.lines;
        assert_eq!(
            lines[0].text,
            format!(
                "Reusing the connection to 127.0.0.1:{port} (message {} on it)",
                n + 1
            )
        );
        assert_eq!(dialogue(delivery, 0)[0], "-> RSET");
        assert!(!dialogue(delivery, 0).iter().any(|l| l.contains("EHLO")));
    }
    assert_eq!(
        dialogue(&deliveries[2], 0).last().map(String::as_str),
        Some("<- 221 2.0.0 Bye")
    );
    assert!(!dialogue(&deliveries[1], 0).contains(&"-> QUIT".to_owned()));
}

#[tokio::test]
async fn pipelining_sends_each_group_in_one_write() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
        Step::ExpectGroup(&["MAIL FROM:<probe@lab.test>", "RCPT TO:<seed1@", "DATA"]),
        Step::Send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        Step::ReadMessage,
        Step::Send("250 2.0.0 Ok: queued as P1\r\n"),
        // A refused recipient: the server refuses DATA too, as RFC 2920 asks.
        Step::ExpectGroup(&["RSET", "MAIL FROM:", "RCPT TO:<seed2@", "DATA"]),
        Step::Send(
            "250 Ok\r\n250 Ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n",
        ),
        // A server that wrongly accepts DATA after a refusal gets an empty message.
        Step::ExpectGroup(&["RSET", "MAIL FROM:", "RCPT TO:<seed3@", "DATA"]),
        Step::Send("250 Ok\r\n250 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"),
        Step::ExpectExact("."),
        Step::Send("554 5.5.1 no valid recipients\r\n"),
        Step::ExpectGroup(&["RSET", "MAIL FROM:", "RCPT TO:<seed4@", "DATA"]),
        Step::Send("250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go ahead\r\n"),
        Step::ReadMessage,
        Step::Send("250 2.0.0 Ok: queued as P4\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let items = [item(1), item(2), item(3), item(4)];
    let deliveries = deliver_all(port, &items, &settings(Duration::from_secs(5))).await;
    let logs = server_logs(server).await;

    let endings: Vec<String> = deliveries.iter().map(ending_line).collect();
    assert_eq!(
        endings,
        [
            "accepted: 250 2.0.0 Ok: queued as P1",
            "refused at rcpt_to: 550 5.1.1 no such user",
            "refused at rcpt_to: 550 5.1.1 no such user",
            "accepted: 250 2.0.0 Ok: queued as P4",
        ]
    );
    assert_eq!(logs[0].data.len(), 2 * 5, "two messages of five lines each");
    assert_eq!(
        dialogue(&deliveries[2], 0)[4..],
        [
            "<- 250 Ok",
            "<- 250 Ok",
            "<- 550 5.1.1 no such user",
            "<- 354 go ahead",
            "-> .",
            "<- 554 5.5.1 no valid recipients",
        ]
    );
}

#[tokio::test]
async fn a_lost_connection_mid_batch_leaves_the_rest_not_tried() {
    let mut first = PLAIN_OPENING.to_vec();
    first.extend(lockstep_transaction(
        "RCPT TO:<seed1@",
        "250 2.0.0 Ok: queued as Q1\r\n",
    ));
    // The server hangs up instead of answering the second transaction.
    first.push(Step::ExpectExact("RSET"));
    // A second connection would find this listener still there: it must not come.
    let (port, server) = fake_server(vec![first], None).await;
    let items = [item(1), item(2), item(3), item(4)];
    let mut order: Vec<(usize, Delivery)> = Vec::new();
    let settings = settings(Duration::from_secs(5));
    tokio::time::timeout(
        Duration::from_secs(20),
        deliver_each(&route(port), &items, &settings, &mut |i, d: &Delivery| {
            order.push((i, d.clone()));
        }),
    )
    .await
    .expect("deliver_each hung");
    let logs = server_logs(server).await;

    assert_eq!(logs.len(), 1);
    let indices: Vec<usize> = order.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [0, 1, 2, 3], "each reported once, as it ended");
    let endings: Vec<String> = order.iter().map(|(_, d)| ending_line(d)).collect();
    assert_eq!(endings[0], "accepted: 250 2.0.0 Ok: queued as Q1");
    assert!(
        matches!(
            order[1].1.ending(),
            Ending::Failed {
                stage: Stage::MailFrom,
                error: SessionError::ConnectionClosed { .. }
            }
        ),
        "{}",
        endings[1]
    );
    // The rest were never attempted: the drop on message 2 is their evidence.
    for (_, delivery) in &order[2..] {
        assert_eq!(delivery.attempts.len(), 1);
        assert_eq!(delivery.attempts[0].addr, None, "no connection for it");
        assert!(
            matches!(delivery.ending(), Ending::NotTried { earlier, .. }
                if matches!(**earlier, Ending::Failed { error: SessionError::ConnectionClosed { .. }, .. })),
            "{}",
            ending_line(delivery)
        );
        assert_eq!(
            ending_line(delivery),
            format!(
                "not tried: 127.0.0.1:{port} closed the connection on an earlier message of this run"
            )
        );
    }
}

#[tokio::test]
async fn a_421_mid_batch_is_not_followed_by_a_reconnect() {
    let mut script = PLAIN_OPENING.to_vec();
    script.extend(lockstep_transaction(
        "RCPT TO:<seed1@",
        "250 2.0.0 Ok: queued as R1\r\n",
    ));
    script.extend([
        Step::ExpectExact("RSET"),
        Step::Send("250 2.0.0 Ok\r\n"),
        Step::Expect("MAIL FROM:"),
        Step::Send("250 2.1.0 Ok\r\n"),
        Step::Expect("RCPT TO:<seed2@"),
        Step::Send("421 4.7.0 fake.lab.test rate limited, try again later\r\n"),
        // RFC 5321 §3.8: after a 421 the client hangs up, without QUIT.
        Step::ExpectEof,
    ]);
    let (port, server) = fake_server(vec![script], None).await;
    let items = [item(1), item(2), item(3), item(4)];
    let deliveries = deliver_all(port, &items, &settings(Duration::from_secs(5))).await;
    let logs = server_logs(server).await;

    assert_eq!(logs.len(), 1, "one connection, no reconnect");
    let endings: Vec<String> = deliveries.iter().map(ending_line).collect();
    let not_tried = "not tried: 421 4.7.0 fake.lab.test rate limited, try again later \
                     from 127.0.0.1 on an earlier message of this run";
    assert_eq!(
        endings,
        [
            "accepted: 250 2.0.0 Ok: queued as R1",
            "refused at rcpt_to: 421 4.7.0 fake.lab.test rate limited, try again later",
            not_tried,
            not_tried,
        ]
    );
    // The reply is the evidence of the messages not tried.
    assert_eq!(deliveries[3].ending().reply().map(|r| r.code), Some(421));
    assert_eq!(deliveries[3].ending().stage(), Some(Stage::RcptTo));
    assert!(!deliveries[3].ending().warrants_next_mx());
}

#[tokio::test]
async fn dsn_parameters_only_when_offered_and_xtext_encoded() {
    let transaction = |mail: &'static str, rcpt: &'static str| {
        vec![
            Step::ExpectExact(mail),
            Step::Send("250 2.1.0 Ok\r\n"),
            Step::ExpectExact(rcpt),
            Step::Send("250 2.1.5 Ok\r\n"),
            Step::Expect("DATA"),
            Step::Send("354 go ahead\r\n"),
            Step::ReadMessage,
            Step::Send("250 2.0.0 Ok\r\n"),
            Step::Expect("QUIT"),
            Step::Send("221 Bye\r\n"),
        ]
    };
    let mut with_dsn = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 DSN\r\n"),
    ];
    // The ENVID is "run=1+a b": "=", "+" and the space are xtext-encoded.
    with_dsn.extend(transaction(
        "MAIL FROM:<probe@lab.test> RET=HDRS ENVID=run+3D1+2Ba+20b",
        "RCPT TO:<seed+tag@lab.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;seed+2Btag@lab.test",
    ));
    let mut without = PLAIN_OPENING.to_vec();
    without.extend(transaction(
        "MAIL FROM:<probe@lab.test>",
        "RCPT TO:<seed+tag@lab.test>",
    ));
    let (port, server) = fake_server(vec![with_dsn, without], None).await;
    let outgoing = Outgoing {
        envelope: Envelope {
            mail_from: "probe@lab.test".into(),
            rcpt_to: "seed+tag@lab.test".into(),
        },
        message: message(),
        envid: Some("run=1+a b".into()),
    };
    let settings = settings(Duration::from_secs(5));
    for _ in 0..2 {
        let deliveries = deliver_all(port, std::slice::from_ref(&outgoing), &settings).await;
        assert!(
            deliveries[0].ending().is_accepted(),
            "{}",
            ending_line(&deliveries[0])
        );
    }
    server_logs(server).await;
}

const USER: &str = "probe@lab.test";
const PASSWORD: &str = "s3cret-Pw-9x";

fn auth(mechanisms: Vec<AuthMechanism>, allow_plaintext: bool) -> Auth {
    Auth {
        username: USER.into(),
        password: SecretString::new(PASSWORD.into()),
        mechanisms,
        allow_plaintext,
    }
}

/// Everything a secret could leak through: the rendered transcripts, their
/// JSON (what the store keeps), the endings and the Debug output.
fn assert_no_secrets(deliveries: &[Delivery]) {
    let plain = base64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    let secrets = [PASSWORD.to_owned(), base64(PASSWORD.as_bytes()), plain];
    for delivery in deliveries {
        let mut texts = vec![
            serde_json::to_string(delivery).unwrap(),
            format!("{delivery:?}"),
            delivery.ending().to_string(),
        ];
        texts.extend(delivery.attempts.iter().map(|a| a.transcript.to_string()));
        for text in &texts {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{secret:?} leaked into:\n{text}"
                );
            }
        }
    }
}

/// Banner, EHLO, STARTTLS, handshake, EHLO offering `ehlo_after_tls`.
fn tls_opening(ehlo_after_tls: &'static str) -> Vec<Step> {
    vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 STARTTLS\r\n"),
        Step::Expect("STARTTLS"),
        Step::Send("220 2.0.0 Ready to start TLS\r\n"),
        Step::StartTls,
        Step::Expect("EHLO probe.lab.test"),
        Step::Send(ehlo_after_tls),
    ]
}

#[tokio::test]
async fn auth_plain_over_verified_tls_is_sent_and_redacted() {
    let mut script = tls_opening("250-fake.lab.test\r\n250 AUTH LOGIN PLAIN\r\n");
    script.extend([
        Step::ExpectExact("AUTH PLAIN AHByb2JlQGxhYi50ZXN0AHMzY3JldC1Qdy05eA=="),
        Step::Send("235 2.7.0 Authentication successful\r\n"),
    ]);
    script.extend(accepting_script(&OPENING[3..]));
    let (port, server) = fake_server(vec![script], Some(acceptor(IP_LEAF))).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.extra_roots = test_ca();
    settings.tls = TlsPolicy::Verified;
    settings.auth = Some(auth(Vec::new(), false));
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    server_logs(server).await;

    assert!(
        deliveries[0].ending().is_accepted(),
        "{}",
        ending_line(&deliveries[0])
    );
    let line = deliveries[0].attempts[0]
        .transcript
        .lines
        .iter()
        .find(|l| l.text.starts_with("AUTH"))
        .expect("AUTH in the transcript");
    assert_eq!(
        (line.kind, line.text.as_str()),
        (LineKind::SentTls, "AUTH PLAIN <redacted>")
    );
    assert!(line.redacted);
    assert_no_secrets(&deliveries);
}

#[tokio::test]
async fn auth_login_wire_format_and_redaction() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 AUTH=LOGIN\r\n"),
        Step::ExpectExact("AUTH LOGIN"),
        Step::Send("334 VXNlcm5hbWU6\r\n"),
        Step::ExpectExact("cHJvYmVAbGFiLnRlc3Q="),
        Step::Send("334 UGFzc3dvcmQ6\r\n"),
        Step::ExpectExact("czNjcmV0LVB3LTl4"),
        // A server that echoes what it got must not smuggle it into the record.
        Step::Send("535 5.7.8 authentication failed for czNjcmV0LVB3LTl4\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let mut settings = settings(Duration::from_secs(5));
    // In the clear only because the caller allows it (a loopback relay).
    settings.auth = Some(auth(vec![AuthMechanism::Login], true));
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    server_logs(server).await;

    match deliveries[0].ending() {
        Ending::Refused {
            stage: Stage::Auth,
            reply,
        } => assert_eq!(reply.code, 535),
        other => panic!("unexpected ending: {other}"),
    }
    assert_eq!(
        dialogue(&deliveries[0], 0)[4..],
        [
            "-> AUTH LOGIN",
            "<- 334 VXNlcm5hbWU6",
            "-> <redacted>",
            "<- 334 UGFzc3dvcmQ6",
            "-> <redacted>",
            "<- 535 5.7.8 authentication failed for <redacted>",
            "-> QUIT",
            "<- 221 Bye",
        ]
    );
    assert_no_secrets(&deliveries);
}

#[tokio::test]
async fn auth_xoauth2_answers_the_error_challenge_with_an_empty_line() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 AUTH PLAIN XOAUTH2\r\n"),
        Step::ExpectExact(
            "AUTH XOAUTH2 dXNlcj1wcm9iZUBsYWIudGVzdAFhdXRoPUJlYXJlciBzM2NyZXQtUHctOXgBAQ==",
        ),
        Step::Send("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
        Step::ExpectExact(""),
        Step::Send("535 5.7.8 Username and Password not accepted\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.auth = Some(auth(vec![AuthMechanism::Xoauth2], true));
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    server_logs(server).await;
    assert!(
        matches!(deliveries[0].ending(), Ending::Refused { stage: Stage::Auth, reply } if reply.code == 535),
        "{}",
        ending_line(&deliveries[0])
    );
    assert!(dialogue(&deliveries[0], 0).contains(&"-> AUTH XOAUTH2 <redacted>".to_owned()));
}

#[tokio::test]
async fn auth_is_refused_without_tls_or_with_an_unverified_certificate() {
    // In the clear: nothing is sent; QUIT, since the dialogue is in step.
    let clear = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 AUTH PLAIN LOGIN\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    // Over TLS the test CA is not told about: untrusted, so no credentials either.
    let mut untrusted = tls_opening("250-fake.lab.test\r\n250 AUTH PLAIN\r\n");
    untrusted.extend([Step::Expect("QUIT"), Step::Send("221 Bye\r\n")]);
    let (port, server) = fake_server(vec![clear, untrusted], Some(acceptor(IP_LEAF))).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.auth = Some(auth(Vec::new(), false));
    let mut reasons = Vec::new();
    for _ in 0..2 {
        let deliveries = deliver_all(port, &[standard_item()], &settings).await;
        match deliveries[0].ending() {
            Ending::Failed {
                stage: Stage::Auth,
                error: error @ SessionError::PlaintextAuthRefused { .. },
            } => reasons.push(error.to_string()),
            other => panic!("unexpected ending: {other}"),
        }
        assert_no_secrets(&deliveries);
    }
    let logs = server_logs(server).await;
    for log in &logs {
        assert!(
            !log.commands.iter().any(|c| c.starts_with("AUTH")),
            "{:?}",
            log.commands
        );
        assert_eq!(log.commands.last().map(String::as_str), Some("QUIT"));
    }
    assert!(
        reasons[0].ends_with("the connection is not encrypted"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].ends_with("its TLS certificate is untrusted"),
        "{}",
        reasons[1]
    );
}

#[tokio::test]
async fn required_tls_fails_when_starttls_is_not_offered() {
    let script = vec![
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250-fake.lab.test\r\n250 PIPELINING\r\n"),
        Step::Expect("QUIT"),
        Step::Send("221 Bye\r\n"),
    ];
    let (port, server) = fake_server(vec![script], None).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.tls = TlsPolicy::Required;
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    let logs = server_logs(server).await;
    match deliveries[0].ending() {
        Ending::Failed {
            stage: Stage::StartTls,
            error: error @ SessionError::TlsRequired { .. },
        } => assert!(
            error
                .to_string()
                .ends_with("the server does not offer STARTTLS"),
            "{error}"
        ),
        other => panic!("unexpected ending: {other}"),
    }
    assert_eq!(deliveries[0].attempts.len(), 1, "no retry in the clear");
    assert_eq!(logs[0].commands, ["EHLO probe.lab.test", "QUIT"]);
}

#[tokio::test]
async fn required_tls_records_an_untrusted_certificate_verified_tls_refuses_it() {
    let mut delivered = tls_opening("250 fake.lab.test\r\n");
    delivered.extend(accepting_script(&OPENING[3..]));
    let mut refused = tls_opening("250 fake.lab.test\r\n")[..5].to_vec();
    refused.push(Step::TlsRefusedByClient);
    let (port, server) = fake_server(vec![delivered, refused], Some(acceptor(IP_LEAF))).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.tls = TlsPolicy::Required;
    let required = deliver_all(port, &[standard_item()], &settings).await;
    settings.tls = TlsPolicy::Verified;
    let verified = deliver_all(port, &[standard_item()], &settings).await;
    server_logs(server).await;

    assert!(
        required[0].ending().is_accepted(),
        "{}",
        ending_line(&required[0])
    );
    let tls = required[0].attempts[0].tls.as_ref().expect("TLS info");
    assert_eq!(tls.certificate, CertVerdict::Untrusted);
    match verified[0].ending() {
        Ending::Failed {
            stage: Stage::StartTls,
            error: error @ SessionError::TlsRequired { .. },
        } => assert!(
            error.to_string().ends_with("its certificate is untrusted"),
            "{error}"
        ),
        other => panic!("unexpected ending: {other}"),
    }
    assert_eq!(verified[0].attempts.len(), 1, "no retry in the clear");
}

#[tokio::test]
async fn implicit_tls_talks_tls_from_the_first_byte() {
    let mut script = vec![
        Step::StartTls,
        Step::Send("220 fake.lab.test ESMTP\r\n"),
        Step::Expect("EHLO"),
        Step::Send("250 fake.lab.test\r\n"),
    ];
    script.extend(accepting_script(&OPENING[3..]));
    let (port, server) = fake_server(vec![script], Some(acceptor(IP_LEAF))).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.tls = TlsPolicy::Implicit;
    settings.extra_roots = test_ca();
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    server_logs(server).await;
    assert!(
        deliveries[0].ending().is_accepted(),
        "{}",
        ending_line(&deliveries[0])
    );
    let lines = dialogue(&deliveries[0], 0);
    assert_eq!(
        lines[..2],
        ["<~ 220 fake.lab.test ESMTP", "~> EHLO probe.lab.test"]
    );
    assert_eq!(
        deliveries[0].attempts[0]
            .tls
            .as_ref()
            .map(|t| &t.certificate),
        Some(&CertVerdict::Trusted)
    );
}

#[tokio::test]
async fn quit_after_each_stage() {
    // A server offering everything; the client stops where it is told.
    let full: Vec<Step> = {
        let mut s = tls_opening("250-fake.lab.test\r\n250 AUTH PLAIN\r\n");
        s.extend([
            Step::Expect("AUTH PLAIN"),
            Step::Send("235 2.7.0 Ok\r\n"),
            Step::Expect("MAIL FROM:"),
            Step::Send("250 2.1.0 Ok\r\n"),
            Step::Expect("RCPT TO:"),
            Step::Send("250 2.1.5 Ok\r\n"),
        ]);
        s
    };
    let quit = [Step::Expect("QUIT"), Step::Send("221 Bye\r\n")];
    // How far into `full` the server gets before the QUIT, per stage.
    let cases: [(QuitAfter, usize); 7] = [
        (QuitAfter::Connect, 0),
        (QuitAfter::Banner, 1),
        (QuitAfter::Tls, 6),
        (QuitAfter::Ehlo, 8),
        (QuitAfter::Auth, 10),
        (QuitAfter::Mail, 12),
        (QuitAfter::Rcpt, 14),
    ];
    let scripts = cases
        .iter()
        .map(|&(after, steps)| {
            let mut script = full[..steps].to_vec();
            if after == QuitAfter::Connect {
                script.push(Step::ExpectEof);
            } else {
                script.extend(quit.iter().cloned());
            }
            script
        })
        .collect();
    let (port, server) = fake_server(scripts, Some(acceptor(IP_LEAF))).await;
    let mut settings = settings(Duration::from_secs(5));
    settings.extra_roots = test_ca();
    settings.auth = Some(auth(Vec::new(), false));
    for &(after, _) in &cases {
        settings.quit_after = Some(after);
        let deliveries = deliver_all(port, &[standard_item()], &settings).await;
        let ending = deliveries[0].ending();
        assert!(ending.is_stopped(), "{after}: {ending}");
        assert_eq!(ending.stage(), Some(after.stage()), "{after}");
        assert!(!ending.warrants_next_mx());
        assert_eq!(deliveries[0].attempts.len(), 1, "{after}");
    }
    let logs = server_logs(server).await;
    assert!(logs[0].commands.is_empty());
    for log in &logs[1..] {
        assert_eq!(log.commands.last().map(String::as_str), Some("QUIT"));
        assert!(
            !log.commands.iter().any(|c| c == "DATA"),
            "{:?}",
            log.commands
        );
    }
}

#[tokio::test]
async fn source_address_is_bound_and_its_family_respected() {
    let (port, server) = fake_server(vec![accepting_script(&OPENING)], None).await;
    let mut settings = settings(Duration::from_secs(5));
    let source: IpAddr = "127.0.0.2".parse().unwrap();
    settings.source_ip = Some(source);
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    let logs = server_logs(server).await;
    let _ = deliveries;
    assert_eq!(logs[0].peer.ip(), source, "the server saw the wrong peer");

    // An address this host does not have: a clear local error, no next MX.
    settings.source_ip = Some("192.0.2.1".parse().unwrap());
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    match deliveries[0].ending() {
        Ending::Failed {
            stage: Stage::Connect,
            error: error @ SessionError::Bind { .. },
        } => assert!(
            error
                .to_string()
                .starts_with("cannot bind the source address 192.0.2.1:"),
            "{error}"
        ),
        other => panic!("unexpected ending: {other}"),
    }
    assert!(!deliveries[0].ending().warrants_next_mx());

    // An IPv6 source cannot reach an IPv4 server: skipped, nothing bound.
    settings.source_ip = Some("::1".parse().unwrap());
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    assert!(
        matches!(
            deliveries[0].ending(),
            Ending::Failed {
                stage: Stage::Connect,
                error: SessionError::NoAddressOfFamily { family: "IPv6", .. }
            }
        ),
        "{}",
        ending_line(&deliveries[0])
    );
}

#[tokio::test]
async fn observer_sees_the_dialogue_live_and_the_content_that_transcripts_never_keep() {
    let (port, server) = fake_server(vec![accepting_script(&OPENING)], None).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut settings = settings(Duration::from_secs(5));
    settings.observer = Some(tx);
    let deliveries = deliver_all(port, &[standard_item()], &settings).await;
    server_logs(server).await;
    drop(settings);

    let mut lines = Vec::new();
    let mut content = Vec::new();
    while let Ok(event) = rx.try_recv() {
        match event {
            Observed::Line(line) => lines.push(line),
            Observed::Content { tls, text } => {
                assert!(!tls);
                content.push(text);
            }
        }
    }
    // Live lines are exactly what the transcript kept, in order.
    assert_eq!(lines, deliveries[0].attempts[0].transcript.lines);
    assert_eq!(
        content,
        ["Subject: probe", "", MARKER, "..hidden", "end"],
        "content as on the wire"
    );
    assert!(
        !deliveries[0].attempts[0]
            .transcript
            .to_string()
            .contains(MARKER)
    );
}
