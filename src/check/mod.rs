//! `probe check`: the sending IP's and domain's reputation and DNS set-up, before anything is
//! sent. PTR and forward-confirmed reverse DNS, the EHLO name, SPF (evaluated by mail-auth's
//! RFC 7208 evaluator), the DKIM key, DMARC, MX and MTA-STS, and DNS block and allow lists
//! ([`lists`], data in `lists.tsv`). Every lookup goes through one resolver ([`dns::Dns`]),
//! bounded by a timeout, all of them at once.

pub mod dkim;
pub mod dns;
pub mod lists;
pub mod records;

use std::net::{IpAddr, UdpSocket};

use serde::{Deserialize, Serialize};

use dns::{Answer, Dns, DnsFailure};
use lists::{Kind, List, ListSet, Reading, Role};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Pass,
    /// Works, but costs reputation or protection.
    Warn,
    /// Wrong: receivers hold it against the sender (a listing, no PTR, SPF fail, ...).
    Fail,
    /// Could not be checked (DNS timeout, a refused list query): says nothing either way.
    Error,
}

impl Status {
    /// The JSON and table label.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// One check's result: the object `probe check --json` prints, stored with a run as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// `ptr`, `fcrdns`, `ehlo`, `spf`, `dkim`, `dmarc`, `mx`, `mta-sts`, `dnsbl`, `dnswl`.
    pub check: String,
    /// The IP or domain checked.
    pub subject: String,
    /// The list's zone, for `dnsbl` and `dnswl`.
    pub list: Option<String>,
    /// The outcome.
    pub status: Status,
    /// Why, for people.
    pub detail: String,
    /// The list's answer (`127.0.0.2`), when it gave one.
    pub code: Option<String>,
}

/// Every check for one sending IP and domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The sending IP.
    pub source_ip: IpAddr,
    /// The sender's domain.
    pub domain: String,
    /// In a fixed order: host checks, domain checks, then the lists in file order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Whether any check failed (exit 1).
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Fail)
    }

    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

/// What is checked.
#[derive(Debug, Clone)]
pub struct Target {
    /// The sending IP.
    pub ip: IpAddr,
    /// The `From:` domain.
    pub domain: String,
    /// The envelope sender (MAIL FROM), whose domain SPF is evaluated for.
    pub mail_from: String,
    /// The EHLO name.
    pub ehlo: String,
    /// The DKIM signing domain and selector, when known.
    pub dkim: Option<(String, String)>,
    /// The DKIM private key's public half, to compare with the selector's record.
    pub dkim_key: Option<dkim::LocalKey>,
}

impl Target {
    /// The configured sender, checked from `ip`: the From domain, the envelope sender, the
    /// EHLO name; no DKIM selector (callers that know one add it).
    pub fn of_sender(sender: &crate::config::Sender, ip: IpAddr) -> Target {
        Target {
            ip,
            domain: sender.from.email.domain().to_ascii_lowercase(),
            mail_from: sender.from.email.to_string(),
            ehlo: sender.ehlo.clone(),
            dkim: None,
            dkim_key: None,
        }
    }
}

/// The address this host would send from to reach the internet: the kernel's choice of source
/// address for a UDP "connection" to a public address (Google's resolver, as a well-known
/// address reached by the default route; a documentation range could be on-link, as on some
/// lab hosts). `connect` on UDP only picks a route: no packet is sent.
pub fn discover_source_ip() -> std::io::Result<IpAddr> {
    let try_from = |bind: &str, to: &str| -> std::io::Result<IpAddr> {
        let socket = UdpSocket::bind(bind)?;
        socket.connect(to)?;
        Ok(socket.local_addr()?.ip())
    };
    try_from("0.0.0.0:0", "8.8.8.8:53").or_else(|_| try_from("[::]:0", "[2001:4860:4860::8888]:53"))
}

/// Runs every check at once and returns them in order.
pub async fn run(target: &Target, dns: &Dns, lists: &ListSet) -> Report {
    let (host, ehlo, spf, dkim, dmarc, mx, sts, listed) = futures::join!(
        ptr_and_fcrdns(dns, target.ip),
        ehlo(dns, target),
        spf(dns, target),
        dkim(dns, target),
        dmarc(dns, target),
        mx(dns, &target.domain),
        mta_sts(dns, &target.domain),
        futures::future::join_all(lists.lists.iter().map(|l| list(dns, lists, l, target))),
    );
    let mut results = host;
    results.push(ehlo);
    results.push(spf);
    results.extend(dkim);
    results.push(dmarc);
    results.push(mx);
    results.push(sts);
    results.extend(listed);
    Report {
        source_ip: target.ip,
        domain: target.domain.clone(),
        results,
    }
}

fn result(
    check: &'static str,
    subject: impl Into<String>,
    status: Status,
    detail: impl Into<String>,
) -> CheckResult {
    CheckResult {
        check: check.to_owned(),
        subject: subject.into(),
        list: None,
        status,
        detail: detail.into(),
        code: None,
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn ptr_and_fcrdns(dns: &Dns, ip: IpAddr) -> Vec<CheckResult> {
    let subject = ip.to_string();
    let names = match dns.ptr(ip).await {
        Err(e) => {
            return vec![
                result("ptr", &subject, Status::Error, e.to_string()),
                result(
                    "fcrdns",
                    &subject,
                    Status::Error,
                    "no PTR name to check: the PTR lookup failed",
                ),
            ];
        }
        Ok(Answer::Found(names)) => names,
        Ok(_) => {
            return vec![
                result(
                    "ptr",
                    &subject,
                    Status::Fail,
                    format!(
                        "{ip} has no PTR record: Gmail, Microsoft and most large receivers refuse or junk mail from it; whoever runs the IP (the hosting provider) sets it"
                    ),
                ),
                result(
                    "fcrdns",
                    &subject,
                    Status::Fail,
                    "no PTR name to resolve back",
                ),
            ];
        }
    };
    let ptr = result(
        "ptr",
        &subject,
        Status::Pass,
        format!("{ip} -> {}", join(&names)),
    );
    let forward = futures::future::join_all(names.iter().map(|n| dns.addresses(n))).await;
    let mut problems = Vec::new();
    let mut error = None;
    for (name, answer) in names.iter().zip(forward) {
        match answer {
            Ok(Answer::Found(ips)) if ips.contains(&ip) => {
                return vec![
                    ptr,
                    result(
                        "fcrdns",
                        &subject,
                        Status::Pass,
                        format!("{name} resolves back to {ip}"),
                    ),
                ];
            }
            Ok(Answer::Found(ips)) => {
                problems.push(format!("{name} resolves to {}, not {ip}", join(&ips)))
            }
            Ok(_) => problems.push(format!("{name} has no address record")),
            Err(e) => error = Some(e.to_string()),
        }
    }
    let fcrdns = match error {
        Some(e) if problems.is_empty() => result("fcrdns", &subject, Status::Error, e),
        _ => result(
            "fcrdns",
            &subject,
            Status::Fail,
            format!(
                "{}: the PTR name must resolve back to the IP (forward-confirmed reverse DNS)",
                problems.join("; ")
            ),
        ),
    };
    vec![ptr, fcrdns]
}

async fn ehlo(dns: &Dns, target: &Target) -> CheckResult {
    let name = target.ehlo.as_str();
    let ip = target.ip;
    if name.parse::<IpAddr>().is_ok() || !name.contains('.') {
        return result(
            "ehlo",
            name,
            Status::Fail,
            format!(
                "\"{name}\" is no fully qualified host name (RFC 5321 §4.1.1.1); receivers distrust it"
            ),
        );
    }
    match dns.addresses(name).await {
        Err(e) => result("ehlo", name, Status::Error, e.to_string()),
        Ok(Answer::Found(ips)) if ips.contains(&ip) => result(
            "ehlo",
            name,
            Status::Pass,
            format!("{name} resolves to {ip}"),
        ),
        Ok(Answer::Found(ips)) => result(
            "ehlo",
            name,
            Status::Warn,
            format!(
                "{name} resolves to {}, not {ip}: some receivers score a mismatch",
                join(&ips)
            ),
        ),
        Ok(_) => result(
            "ehlo",
            name,
            Status::Fail,
            format!(
                "{name} does not resolve: receivers reject or score an EHLO name without an address"
            ),
        ),
    }
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

async fn spf(dns: &Dns, target: &Target) -> CheckResult {
    use mail_auth::SpfResult;
    use mail_auth::spf::verify::SpfParameters;
    let domain = domain_of(&target.mail_from).to_owned();
    let ip = target.ip;
    let authenticator = match dns.authenticator() {
        Ok(a) => a,
        Err(e) => return result("spf", &domain, Status::Error, e),
    };
    let params =
        SpfParameters::verify_mail_from(ip, &target.ehlo, "probe.invalid", &target.mail_from);
    // An SPF evaluation takes up to 10 lookups (RFC 7208 §4.6.4), each bounded by the resolver.
    let limit = dns.limit() * 3;
    let (output, record) = futures::join!(
        tokio::time::timeout(limit, authenticator.verify_spf(params)),
        dns.txt(&domain)
    );
    let record = match record {
        Ok(Answer::Found(txt)) => records::spf_record(&txt).map(|r| r.map(str::to_owned)),
        Ok(_) => Ok(None),
        Err(e) => return result("spf", &domain, Status::Error, e.to_string()),
    };
    let shown = match &record {
        Ok(Some(r)) => format!(" ({r})"),
        Ok(None) => String::new(),
        Err(e) => return result("spf", &domain, Status::Fail, e.clone()),
    };
    let Ok(output) = output else {
        return result(
            "spf",
            &domain,
            Status::Error,
            format!(
                "SPF evaluation for {domain} took longer than {}",
                humantime::format_duration(limit)
            ),
        );
    };
    let (status, says) = match output.result() {
        SpfResult::Pass => (Status::Pass, format!("pass: {ip} may send for {domain}")),
        SpfResult::Fail => (
            Status::Fail,
            format!("fail: {domain} does not allow {ip} to send; add it to the record"),
        ),
        SpfResult::SoftFail => (
            Status::Fail,
            format!(
                "softfail: {ip} is not in {domain}'s SPF record (~all); receivers junk or refuse it"
            ),
        ),
        SpfResult::Neutral => (
            Status::Warn,
            format!("neutral: {domain}'s record says nothing about {ip} (?all)"),
        ),
        SpfResult::None => (
            Status::Warn,
            format!(
                "none: {domain} publishes no SPF record; Gmail requires SPF or DKIM of every sender"
            ),
        ),
        SpfResult::PermError => (
            Status::Fail,
            format!(
                "permerror: {domain}'s SPF record is broken (syntax, too many lookups, a missing include)"
            ),
        ),
        SpfResult::TempError => (
            Status::Error,
            format!(
                "temperror: a DNS lookup for {domain}'s SPF record failed through {}",
                dns.server()
            ),
        ),
    };
    result("spf", &domain, status, format!("{says}{shown}"))
}

async fn dkim(dns: &Dns, target: &Target) -> Option<CheckResult> {
    let (domain, selector) = target.dkim.as_ref()?;
    let name = format!("{selector}._domainkey.{domain}");
    Some(match dns.txt(&name).await {
        Err(e) => result("dkim", &name, Status::Error, e.to_string()),
        Ok(Answer::Found(txt)) => match records::dkim_key(&txt.concat()) {
            Err(e) => result(
                "dkim",
                &name,
                Status::Fail,
                format!("the key record at {name} {e}"),
            ),
            Ok(key) if key.public_key.is_empty() => result(
                "dkim",
                &name,
                Status::Fail,
                format!(
                    "the key at {name} is revoked (empty p=): signatures with selector {selector} fail"
                ),
            ),
            Ok(key) => match &target.dkim_key {
                Some(local) if !dkim::publishes(&key.key_type, &key.public_key, local) => result(
                    "dkim",
                    &name,
                    Status::Fail,
                    format!(
                        "the {} key published at {name} is not the public half of the given {} private key: every signature fails",
                        key.key_type, local.key_type
                    ),
                ),
                Some(_) => result(
                    "dkim",
                    &name,
                    Status::Pass,
                    format!(
                        "{} public key published at {name}, and it matches the private key",
                        key.key_type
                    ),
                ),
                None => result(
                    "dkim",
                    &name,
                    Status::Pass,
                    format!(
                        "{} public key published at {name} ({} base64 characters)",
                        key.key_type,
                        key.public_key.len()
                    ),
                ),
            },
        },
        Ok(_) => result(
            "dkim",
            &name,
            Status::Fail,
            format!(
                "no key record at {name}: signatures with selector {selector} fail (dkim=permerror)"
            ),
        ),
    })
}

async fn dmarc(dns: &Dns, target: &Target) -> CheckResult {
    let domain = target.domain.as_str();
    let mut at = format!("_dmarc.{domain}");
    let mut answer = dns.txt(&at).await;
    // RFC 7489 §6.6.3: without a record of its own, the organizational domain's applies.
    let org = records::organizational(domain);
    if matches!(answer, Ok(Answer::NxDomain | Answer::NoData)) && org != domain {
        at = format!("_dmarc.{org}");
        answer = dns.txt(&at).await;
    }
    let txt = match answer {
        Err(e) => return result("dmarc", domain, Status::Error, e.to_string()),
        Ok(a) => a.records().to_vec(),
    };
    let found: Vec<&String> = txt
        .iter()
        .filter(|t| t.trim_start().starts_with("v=DMARC1"))
        .collect();
    let record = match found[..] {
        [] => {
            return result(
                "dmarc",
                domain,
                Status::Warn,
                format!(
                    "no DMARC record at _dmarc.{domain}: Gmail and Yahoo require one of bulk senders (p=none at least)"
                ),
            );
        }
        [one] => one,
        _ => {
            return result(
                "dmarc",
                domain,
                Status::Fail,
                format!(
                    "{} DMARC records at {at}: receivers ignore them all",
                    found.len()
                ),
            );
        }
    };
    let d = match records::dmarc(record) {
        Ok(d) => d,
        Err(e) => {
            return result(
                "dmarc",
                domain,
                Status::Fail,
                format!("the record at {at} {e}: receivers ignore it ({record})"),
            );
        }
    };
    let mode = |a: records::Alignment| {
        if a == records::Alignment::Strict {
            "strict"
        } else {
            "relaxed"
        }
    };
    let envelope = domain_of(&target.mail_from);
    let spf_aligned = records::aligned(envelope, domain, d.aspf);
    let dkim_aligned = target.dkim.as_ref().map(|(d_domain, _)| {
        (
            d_domain.clone(),
            records::aligned(d_domain, domain, d.adkim),
        )
    });
    let mut said = vec![format!("p={}", d.policy)];
    if let Some(sp) = &d.subdomain_policy {
        said.push(format!("sp={sp}"));
    }
    if d.pct != 100 {
        said.push(format!("pct={}", d.pct));
    }
    said.push(format!(
        "SPF alignment {} (MAIL FROM {envelope}: {})",
        mode(d.aspf),
        if spf_aligned {
            "aligned"
        } else {
            "not aligned"
        }
    ));
    match &dkim_aligned {
        Some((d_domain, ok)) => said.push(format!(
            "DKIM alignment {} (d={d_domain}: {})",
            mode(d.adkim),
            if *ok { "aligned" } else { "not aligned" }
        )),
        None => said.push(format!(
            "DKIM alignment {} (no DKIM selector given)",
            mode(d.adkim)
        )),
    }
    if d.rua.is_none() {
        said.push("no rua= (no aggregate reports)".into());
    }
    let detail = format!("{}; {}", at, said.join(", "));
    let any_aligned = spf_aligned || dkim_aligned.as_ref().is_some_and(|(_, ok)| *ok);
    if !any_aligned {
        return result(
            "dmarc",
            domain,
            Status::Fail,
            format!(
                "{detail}: neither SPF nor DKIM aligns with From {domain}, so DMARC fails for every message"
            ),
        );
    }
    let status = if d.policy == "none" {
        Status::Warn
    } else {
        Status::Pass
    };
    let detail = if status == Status::Warn {
        format!("{detail}: p=none only monitors")
    } else {
        detail
    };
    result("dmarc", domain, status, detail)
}

async fn mx(dns: &Dns, domain: &str) -> CheckResult {
    match dns.mx(domain).await {
        Err(e) => result("mx", domain, Status::Error, e.to_string()),
        Ok(Answer::NxDomain) => result(
            "mx",
            domain,
            Status::Fail,
            format!(
                "{domain} does not exist: receivers refuse mail from a domain that does not exist"
            ),
        ),
        Ok(Answer::NoData) => result(
            "mx",
            domain,
            Status::Warn,
            format!(
                "{domain} has no MX record: replies and bounces go to its address record, if any (RFC 5321 §5.1)"
            ),
        ),
        Ok(Answer::Found(mut records)) => {
            records.sort();
            if records.iter().all(|(_, host)| host.is_empty()) {
                return result(
                    "mx",
                    domain,
                    Status::Warn,
                    format!(
                        "{domain} has a null MX (RFC 7505): it takes no mail, so replies and bounces are lost; some receivers refuse such senders"
                    ),
                );
            }
            let list: Vec<String> = records.iter().map(|(p, h)| format!("{p} {h}")).collect();
            result(
                "mx",
                domain,
                Status::Pass,
                format!("MX {}", list.join(", ")),
            )
        }
    }
}

async fn mta_sts(dns: &Dns, domain: &str) -> CheckResult {
    let at = format!("_mta-sts.{domain}");
    match dns.txt(&at).await {
        Err(e) => result("mta-sts", domain, Status::Error, e.to_string()),
        Ok(Answer::Found(txt)) => {
            let sts: Vec<&String> = txt
                .iter()
                .filter(|t| t.trim_start().starts_with("v=STSv1"))
                .collect();
            match sts[..] {
                [] => result(
                    "mta-sts",
                    domain,
                    Status::Pass,
                    format!("no MTA-STS record at {at} (optional: it protects mail to {domain})"),
                ),
                [one] => match records::mta_sts_id(one) {
                    Some(id) => result(
                        "mta-sts",
                        domain,
                        Status::Pass,
                        format!(
                            "{at}: id={id}; the policy is at https://mta-sts.{domain}/.well-known/mta-sts.txt (not fetched)"
                        ),
                    ),
                    None => result(
                        "mta-sts",
                        domain,
                        Status::Warn,
                        format!("{at} is malformed ({one}): senders ignore the policy"),
                    ),
                },
                _ => result(
                    "mta-sts",
                    domain,
                    Status::Warn,
                    format!(
                        "{} MTA-STS records at {at}: senders ignore the policy",
                        sts.len()
                    ),
                ),
            }
        }
        Ok(_) => result(
            "mta-sts",
            domain,
            Status::Pass,
            format!("no MTA-STS record at {at} (optional: it protects mail to {domain})"),
        ),
    }
}

async fn list(dns: &Dns, set: &ListSet, list: &List, target: &Target) -> CheckResult {
    let (subject, name) = match list.kind {
        Kind::Ip => (
            target.ip.to_string(),
            dns::reverse_name(target.ip, &list.zone, &list.zone),
        ),
        Kind::Domain => (
            target.domain.clone(),
            format!("{}.{}", target.domain, list.zone),
        ),
    };
    let check = match list.role {
        Role::Block => "dnsbl",
        Role::Allow => "dnswl",
    };
    let done = |status: Status, detail: String, code: Option<String>| CheckResult {
        check: check.to_owned(),
        subject: subject.clone(),
        list: Some(list.zone.clone()),
        status,
        detail,
        code,
    };
    let answers = match dns.ipv4(&name).await {
        Err(e) => return done(Status::Error, failure_hint(&e), None),
        Ok(Answer::Found(answers)) => answers,
        Ok(_) => {
            return done(
                Status::Pass,
                match list.role {
                    Role::Block => format!("not listed on {}", list.name),
                    Role::Allow => format!(
                        "not on {} (most senders are not; an allow list only adds trust)",
                        list.name
                    ),
                },
                None,
            );
        }
    };
    let code = Some(join(&answers));
    let readings: Vec<Reading> = answers.iter().map(|a| set.read(list, *a)).collect();
    if let Some(Reading::Listed(meaning)) =
        readings.iter().find(|r| matches!(r, Reading::Listed(_)))
    {
        if list.role == Role::Allow {
            return done(Status::Pass, format!("on {}: {meaning}", list.name), code);
        }
        // Lists put the reason and the removal page in a TXT record beside the A record.
        let why = match dns.txt(&name).await {
            Ok(Answer::Found(txt)) => format!(" (the list says: {})", txt.join(" ")),
            _ => String::new(),
        };
        return done(
            Status::Fail,
            format!(
                "{subject} is listed on {} ({}): {meaning}{why}",
                list.name, list.zone
            ),
            code,
        );
    }
    if let Some(Reading::Refused(meaning)) =
        readings.iter().find(|r| matches!(r, Reading::Refused(_)))
    {
        return done(
            Status::Error,
            format!(
                "{} refused the query through {}: {meaning}; nothing is known about the listing. Ask through your own recursive resolver (sender.resolver)",
                list.name,
                dns.server()
            ),
            code,
        );
    }
    if let Some(Reading::Allowed(meaning)) =
        readings.iter().find(|r| matches!(r, Reading::Allowed(_)))
    {
        return done(Status::Pass, format!("on {}: {meaning}", list.name), code);
    }
    done(
        Status::Error,
        format!(
            "{} answered {} for {name}, which is no list answer (lists answer in 127.0.0.0/8): the resolver {} rewrites unknown names",
            list.name,
            join(&answers),
            dns.server()
        ),
        code,
    )
}

/// A failed list lookup, with what the user can do about a refusal.
fn failure_hint(e: &DnsFailure) -> String {
    match e {
        DnsFailure::Code { code, .. } if code.contains("Refused") || code.contains("REFUSED") => {
            format!(
                "{e}: the resolver does not answer for this list; use a recursive resolver of your own (sender.resolver)"
            )
        }
        _ => e.to_string(),
    }
}
