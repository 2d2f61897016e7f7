//! Property tests: every parser of what a server or a file sends takes arbitrary input without
//! panicking. A panic there would turn one odd reply, bounce or log line into a crashed run
//! (exit 101) and an unfinished run in the store, so "never panics" is the property.
//!
//! Each parser gets arbitrary bytes or text, and real-looking input with random bytes spliced
//! in (a valid reply, DSN, header or config with damage somewhere), which reaches deeper than
//! pure noise. Case counts are modest so this stays a few seconds in a debug build; proptest
//! prints a minimal failing input when a property fails.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use seedprobe::config::Config;
use seedprobe::downstream::{dsn, maillog};
use seedprobe::evidence::{SpamSignals, auth_results, received};
use seedprobe::poll::{HeaderEvidence, utf7};
use seedprobe::send::{
    EnhancedStatus, Envelope, Reply, Route, SendSettings, Timeouts, TlsPolicy, deliver,
};

use crate::support::smtp::Holder;
use crate::support::{Password, Seed, Seeds};

/// `base` with `insert` put in at `at` and `remove` bytes after it taken out: a real-looking
/// input damaged in one place.
fn splice(base: &[u8], at: Index, remove: usize, insert: &[u8]) -> Vec<u8> {
    let start = at.index(base.len() + 1);
    let end = (start + remove).min(base.len());
    let mut out = base[..start].to_vec();
    out.extend_from_slice(insert);
    out.extend_from_slice(&base[end..]);
    out
}

/// Bytes that are mostly what breaks line-oriented parsers: separators, line ends, digits,
/// non-ASCII and invalid UTF-8.
fn nasty_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(&b"\r\n \t-;:=.()\"\\<>&+,05\xc3\xa9\xff\x00\x1b"[..]),
    ];
    prop::collection::vec(byte, 0..48)
}

/// A damaged copy of one of `samples`.
fn mutated(samples: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(samples),
        prop::collection::vec((any::<Index>(), 0..8usize, nasty_bytes()), 1..4),
    )
        .prop_map(|(sample, edits)| {
            let mut bytes = sample.as_bytes().to_vec();
            for (at, remove, insert) in edits {
                bytes = splice(&bytes, at, remove, &insert);
            }
            bytes
        })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Everything the SMTP client derives from a reply, exercised.
fn use_reply(lines: &[String]) {
    if let Ok(reply) = Reply::parse(lines) {
        let _ = (reply.text(), reply.to_string(), reply.queue_id());
        let _ = (reply.severity(), reply.is_positive_completion());
    }
    for line in lines {
        let _ = EnhancedStatus::parse_prefix(line);
        let _ = EnhancedStatus::parse(line);
    }
}

const REPLIES: &[&str] = &[
    "250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-DSN\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250 SMTPUTF8\r\n",
    "250 2.0.0 Ok: queued as 4D16198E6AE\r\n",
    "450-4.7.1 <a@b.example>: Recipient address rejected:\r\n450 4.7.1 try later\r\n",
    "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org\r\n",
];

/// Header blocks as providers deliver them (tests/fixtures/headers/), plus the marks of
/// SpamAssassin, rspamd, OpenSMTPD and Exchange.
const HEADERS: &[&str] = &[
    include_str!("fixtures/headers/gmail-inbox.eml"),
    include_str!("fixtures/headers/outlook-junk.eml"),
    include_str!("fixtures/headers/gmx-clean.eml"),
    include_str!("fixtures/headers/gmx-junk.eml"),
    include_str!("fixtures/headers/spamassassin-tagged.eml"),
    "Subject: [SPAM] hello\r\nX-Spam: Yes\r\nX-Spam-Level: *******\r\nX-Spamd-Result: default: True [12.50 / 15.00];\r\n\tBAYES_SPAM(5.10)[99.99%]\r\nX-Rspamd-Action: add header\r\nX-MS-Exchange-Organization-SCL: 9\r\nX-Forefront-Antispam-Report: CIP:192.0.2.1;SCL:5;SFV:SPM;BCL:7;\r\n\r\n",
];

const AUTH_RESULTS: &[&str] = &[
    "mx.google.com; dkim=pass header.i=@example.org header.s=s1 header.b=abc; spf=pass (google.com: domain of a@example.org designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.org; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org",
    "spf=fail (sender IP is 192.0.2.1) smtp.mailfrom=example.org; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=example.org;compauth=fail reason=000",
    "mx.example.net 1; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net; dkim=pass reason=\"good signature\" header.d=\"example.net\"",
    "example.com; none",
];

const DSNS: &[&str] = &[
    include_str!("../docker/lab/samples/dsn-failed.eml"),
    include_str!("../docker/lab/samples/dsn-delayed.eml"),
    include_str!("../docker/lab/samples/dsn-expired.eml"),
    include_str!("../docker/lab/samples/dsn-failed-full-message.eml"),
    include_str!("../docker/lab/samples/dovecot-sieve-reject.eml"),
    // Plain-text bounces and an abuse report, which take the other parsers' paths.
    include_str!("fixtures/bounces/exim-userunknown.eml"),
    include_str!("fixtures/bounces/qmail-mailboxfull.eml"),
    include_str!("fixtures/bounces/sendmail-transcript.eml"),
    include_str!("fixtures/bounces/feedback-abuse-report.eml"),
];

const LOG_LINES: &[&str] = &[
    "Nov 28 08:10:02 relay postfix/smtp[812]: 4D16198E6AE: to=<defer@defer.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.05, delays=0.01/0/0.02/0.02, dsn=4.7.1, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.7.1 <defer@defer.lab.test>: Recipient address rejected: Temporarily deferred (in reply to RCPT TO command))\n",
    "2026-11-28T08:10:03.123456+00:00 relay postfix-relay/smtp[813]: 5E27298E6AF: to=<reject@reject.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.04, dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.7.1 refused (in reply to RCPT TO command))\n",
    "Nov 28 08:10:04 relay postfix/smtp[814]: 6F38398E6B0: to=<inbox@inbox.lab.test>, relay=127.0.0.1[127.0.0.1]:2525, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)\n",
    "Nov  9 16:09:07 mx postfix/smtpd[11372]: NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.7.1 <reject@reject.lab.test>: Recipient address rejected: refused; from=<p@s.test> to=<reject@reject.lab.test> proto=ESMTP helo=<h>\n",
    "Nov 29 16:11:49 smtp postfix-relay/qmgr[11368]: B25E598FFC2: from=<probe@sender.lab.test>, status=expired, returned to sender\n",
    "Nov 29 16:11:49 smtp postfix-relay/qmgr[11368]: B25E598FFC2: removed\n",
    "Nov 29 16:40:23 mx postfix/cleanup[31559]: 12F4398E27C: milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: 4.7.1 try later; from=<a@b> to=<c@d>\n",
];

const UTF7: &[&str] = &[
    "Entw&APw-rfe",
    "&BCcENQRABD0EPgQyBDgEOgQ4-",
    "Tom &- Jerry",
    "[Gmail]/&ZeVnLIqe-",
];

const CONFIGS: &[&str] = &[
    include_str!("../seeds.example.yaml"),
    include_str!("../docker/lab/seeds.yaml"),
    include_str!("../docker/lab/seeds-relay.yaml"),
];

fn use_headers(raw: &[u8]) {
    if let Some((_, evidence)) = HeaderEvidence::from_header_block(raw) {
        use_evidence(&evidence);
    }
}

fn use_evidence(evidence: &HeaderEvidence) {
    let _ = SpamSignals::from_headers(evidence).marks();
    let _ = auth_results::from_receiver(evidence.values("Authentication-Results"));
    let _ = received::received_at(evidence);
}

fn use_dsn(raw: &[u8]) {
    if let Some(report) = dsn::parse(raw) {
        let _ = report.token();
        for recipient in &report.recipients {
            let _ = recipient.reply_code();
        }
    }
    // `probe bounce` reads the same bytes, then classifies the reason and the provider.
    let message = seedprobe::bounce::RawMessage {
        file: "x".to_owned(),
        bytes: raw.to_vec(),
    };
    for b in seedprobe::bounce::bounces(&message).unwrap_or_default() {
        let _ = serde_json::to_string(&b);
    }
    let text = lossy(raw);
    let _ = seedprobe::reason::classify(Some(&text), Some(&text));
    let _ = seedprobe::reason::provider::provider(Some(&text), Some(&text));
}

fn use_log_line(line: &str) {
    if let Some(entry) = maillog::parse_line(line) {
        let _ = entry.report.reply_code();
    }
    use_log_bytes(line.as_bytes());
}

/// `probe maillog`'s path: the byte parser, the stamp, and a whole tally with and without
/// `--since`, its summary serialised.
fn use_log_bytes(bytes: &[u8]) {
    use seedprobe::maillog::{Tally, line, since::Stamp};
    let now = Stamp::from_system(std::time::SystemTime::now());
    if let Some(parsed) = line::parse(bytes) {
        let _ = Stamp::parse(parsed.stamp, now);
    }
    for since in [None, Some(now)] {
        let mut tally = Tally::new(since, now);
        bytes.split(|&b| b == b'\n').for_each(|l| tally.line(l));
        let summary = tally.finish();
        let _ = serde_json::to_string(&summary);
        let _ = summary.over(0.0);
    }
}

fn use_config(text: &str) {
    if let Err(e) = Config::parse(Path::new("seeds.yaml"), text) {
        let _ = e.to_string();
    }
}

/// Header field names the spam parser reads, for arbitrary values under real names.
const SPAM_FIELDS: &[&str] = &[
    "X-Spam",
    "X-Spam-Flag",
    "X-Spam-Status",
    "X-Spam-Score",
    "X-Spam-Level",
    "X-Spamd-Result",
    "X-Rspamd-Action",
    "X-MS-Exchange-Organization-SCL",
    "X-Forefront-Antispam-Report",
    "X-Microsoft-Antispam",
    "X-UI-Filterresults",
    "Authentication-Results",
    "Received",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn smtp_reply_lines_never_panic(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = lossy(&raw);
        let lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
        use_reply(&lines);
    }

    #[test]
    fn damaged_smtp_replies_never_panic(raw in mutated(REPLIES)) {
        let text = lossy(&raw);
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        use_reply(&lines);
    }

    #[test]
    fn spam_and_auth_headers_never_panic(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        use_headers(&raw);
    }

    #[test]
    fn damaged_provider_headers_never_panic(raw in mutated(HEADERS)) {
        use_headers(&raw);
    }

    #[test]
    fn spam_header_values_never_panic(
        fields in prop::collection::vec((prop::sample::select(SPAM_FIELDS), any::<String>()), 0..6),
        subject in proptest::option::of(any::<String>()),
    ) {
        let evidence = HeaderEvidence {
            subject,
            fields: fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
        };
        use_evidence(&evidence);
    }

    #[test]
    fn auth_results_never_panic(value in any::<String>()) {
        let _ = auth_results::parse(&value);
    }

    #[test]
    fn damaged_auth_results_never_panic(raw in mutated(AUTH_RESULTS)) {
        let _ = auth_results::parse(&lossy(&raw));
    }

    #[test]
    fn dsns_never_panic(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        use_dsn(&raw);
    }

    #[test]
    fn damaged_dsns_and_mdns_never_panic(raw in mutated(DSNS)) {
        use_dsn(&raw);
        let _ = dsn::xtext_decode(&lossy(&raw));
    }

    #[test]
    fn xtext_never_panics(value in any::<String>()) {
        let _ = dsn::xtext_decode(&value);
    }

    #[test]
    fn postfix_log_lines_never_panic(line in any::<String>()) {
        use_log_line(&line);
    }

    #[test]
    fn damaged_postfix_log_lines_never_panic(raw in mutated(LOG_LINES)) {
        use_log_line(&lossy(&raw));
    }

    #[test]
    fn postfix_log_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        use_log_bytes(&raw);
    }

    #[test]
    fn damaged_postfix_logs_never_panic(
        lines in prop::collection::vec(mutated(LOG_LINES), 1..8),
    ) {
        use_log_bytes(&lines.concat());
    }

    #[test]
    fn modified_utf7_never_panics(name in any::<String>()) {
        let _ = utf7::decode(&name);
    }

    #[test]
    fn damaged_modified_utf7_never_panics(raw in mutated(UTF7)) {
        let _ = utf7::decode(&lossy(&raw));
    }
}

/// A config with `numbers` (as YAML, any text) at each of its eight number places: the SMTP
/// port, the five timing values, the MX port and the IMAP port.
fn numbered_config(numbers: &[String]) -> String {
    let [
        smtp_port,
        poll,
        timeout,
        smtp_timeout,
        imap_timeout,
        connections,
        mx_port,
        imap_port,
    ] = numbers
    else {
        panic!("eight numbers, not {}", numbers.len());
    };
    Seeds::new()
        .sender("smtp_port", smtp_port)
        .timing("poll_interval", poll)
        .timing("timeout", timeout)
        .timing("smtp_timeout", smtp_timeout)
        .timing("imap_timeout", imap_timeout)
        .timing("imap_connections", connections)
        .seed(
            Seed::new("a", "a@example.net")
                .mx(&format!("127.0.0.1:{mx_port}"))
                .imap_port(imap_port)
                .tls("implicit")
                .password(Password::Env("P".into())),
        )
        .yaml()
}

/// With sane numbers it is a valid config, so the property reaches the range checks.
#[test]
fn numbered_config_is_valid_as_written() {
    let sane = ["25", "5s", "15m", "2m", "30s", "8", "2525", "1143"].map(String::from);
    let text = numbered_config(&sane);
    if let Err(e) = Config::parse(Path::new("seeds.yaml"), &text) {
        panic!("{e}\n{text}");
    }
}

/// Numbers and durations at and past every limit: what a typo or a hostile file holds.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (
            any::<u64>(),
            prop::sample::select(&["ns", "ms", "s", "m", "h", "d", "y", "years"][..])
        )
            .prop_map(|(n, unit)| format!("{n}{unit}")),
        prop::sample::select(&["0", "-1", "65536", "1e400", ".inf", "~", "0x10", "1ns", ""][..])
            .prop_map(str::to_owned),
    ]
}

/// A `Received` field whose date is made of arbitrary numbers and names.
fn received_date() -> impl Strategy<Value = String> {
    (
        any::<u32>(),
        prop::sample::select(&["Jan", "Feb", "Dec", "Foo", ""][..]),
        any::<i64>(),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        prop::sample::select(&["+0000", "-9999", "+2400", "UTC", "GMT", "x", ""][..]),
    )
        .prop_map(|(day, month, year, (h, m, s), zone)| {
            format!("from a by b; Sat, {day} {month} {year} {h}:{m}:{s} {zone}")
        })
}

proptest! {
    // The YAML parser is the slowest thing here, and a log file is a file per case.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn config_never_panics(text in any::<String>()) {
        use_config(&text);
    }

    #[test]
    fn config_numbers_never_panic(numbers in prop::collection::vec(number(), 8)) {
        use_config(&numbered_config(&numbers));
    }

    #[test]
    fn received_dates_never_panic(date in received_date()) {
        use_evidence(&HeaderEvidence {
            subject: None,
            fields: vec![("Received".into(), date)],
        });
    }

    #[test]
    fn damaged_configs_never_panic(raw in mutated(CONFIGS)) {
        use_config(&lossy(&raw));
    }

    /// The log follower reads raw bytes in chunks, so a line (or a UTF-8 sequence) may be cut
    /// anywhere between two reads.
    #[test]
    fn postfix_log_files_never_panic(
        raw in mutated(LOG_LINES),
        noise in prop::collection::vec(any::<u8>(), 0..200),
        cut in any::<Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("maillog");
        let mut bytes = raw;
        bytes.extend_from_slice(&noise);
        let cut = cut.index(bytes.len() + 1);
        let mut follower = maillog::LogFollower::at_end(&path);
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&bytes[..cut]).unwrap();
        follower.read_new(&path).unwrap();
        file.write_all(&bytes[cut..]).unwrap();
        for entry in follower.read_new(&path).unwrap() {
            let _ = entry.report.reply_code();
        }
    }
}

/// One delivery to the kit's holding server answering EHLO with `ehlo` (any bytes) and
/// everything else plausibly; the client must finish (or give up) without a panic and within
/// its timeouts. The holder serves every connection, so a retry on a new one is answered too.
async fn converse(ehlo: Vec<u8>) {
    let server = Holder::answering_ehlo(ehlo);
    let mut settings = SendSettings::new("probe.example.org");
    settings.tls = TlsPolicy::None;
    settings.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        command: Duration::from_millis(200),
        data_end: Duration::from_millis(200),
    };
    let route = Route::Fixed {
        host: "127.0.0.1".into(),
        port: server.port(),
    };
    let envelope = Envelope {
        mail_from: "probe@example.org".into(),
        rcpt_to: "seed@example.net".into(),
    };
    let message = b"Subject: t\r\n\r\nbody \xc3\xa9\r\n";
    let delivery = deliver(&route, &envelope, message, &settings).await;
    let _ = delivery.ending().to_string();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The EHLO reply drives the rest of the dialogue (PIPELINING, SIZE, 8BITMIME, DSN, AUTH):
    /// a damaged one must still give an ending, never a panic.
    #[test]
    fn damaged_ehlo_replies_never_panic(raw in mutated(&REPLIES[..1])) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(converse(raw));
    }
}
