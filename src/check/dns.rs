//! The DNS questions `probe check` asks: one resolver (the configured server or the system's),
//! every lookup bounded by a timeout, and answers sorted into "records", "no such record",
//! "no such name" and failures that name the server and what it said.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};

/// What a name has of one record type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// The records (never empty).
    Found(Vec<T>),
    /// The name exists without records of this type (NOERROR, no answer).
    NoData,
    /// The name does not exist (NXDOMAIN): for a DNS list, "not listed".
    NxDomain,
}

impl<T> Answer<T> {
    /// The records, empty for NODATA and NXDOMAIN.
    pub fn records(&self) -> &[T] {
        match self {
            Answer::Found(records) => records,
            _ => &[],
        }
    }
}

/// A lookup that gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsFailure {
    /// Nothing came back in time.
    #[error("no answer from {server} within {limit} for {qtype} {name}")]
    Timeout {
        /// The resolver asked.
        server: String,
        /// The bound, as humans write it.
        limit: String,
        /// The record type.
        qtype: String,
        /// The name asked for.
        name: String,
    },
    /// The server answered with an error code (REFUSED, SERVFAIL, ...).
    #[error("{server} answered {code} for {qtype} {name}")]
    Code {
        /// The resolver asked.
        server: String,
        /// Its response code.
        code: String,
        /// The record type.
        qtype: String,
        /// The name asked for.
        name: String,
    },
    /// Anything else (network error, malformed answer), in the resolver's words.
    #[error("{qtype} {name} via {server}: {reason}")]
    Other {
        /// The resolver asked.
        server: String,
        /// What went wrong.
        reason: String,
        /// The record type.
        qtype: String,
        /// The name asked for.
        name: String,
    },
}

/// The resolver every check asks.
pub struct Dns {
    resolver: TokioResolver,
    config: ResolverConfig,
    opts: ResolverOpts,
    server: String,
    limit: Duration,
}

impl Dns {
    /// Asks only `server` (UDP, TCP for truncated answers) when given, else the system's
    /// resolver (/etc/resolv.conf); /etc/hosts never: a list answer must come from DNS.
    pub fn new(server: Option<SocketAddr>, limit: Duration) -> Result<Dns, String> {
        let mut opts = ResolverOpts::default();
        // One try within the limit: the limit is the user's bound for the whole lookup.
        opts.timeout = limit;
        opts.attempts = 1;
        opts.use_hosts_file = ResolveHosts::Never;
        let (config, label) = match server {
            Some(server) => (crate::send::mx::resolver_config(server), server.to_string()),
            None => {
                let (config, _) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
                let label = config
                    .name_servers()
                    .first()
                    .map(|ns| ns.ip.to_string())
                    .unwrap_or_else(|| "the system resolver".to_owned());
                (config, label)
            }
        };
        let resolver =
            TokioResolver::builder_with_config(config.clone(), TokioRuntimeProvider::default())
                .with_options(opts.clone())
                .build()
                .map_err(|e| format!("cannot set up the resolver {label}: {e}"))?;
        Ok(Dns {
            resolver,
            config,
            opts,
            server: label,
            limit,
        })
    }

    /// The same resolver for mail-auth's SPF evaluator, so SPF asks the server the other
    /// checks ask (the lab's dnsmasq in the tests).
    pub fn authenticator(&self) -> Result<mail_auth::MessageAuthenticator, String> {
        mail_auth::MessageAuthenticator::new(self.config.clone(), self.opts.clone())
            .map_err(|e| format!("cannot set up the SPF resolver {}: {e}", self.server))
    }

    /// The bound on each lookup.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The server's name in messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Addresses (A and AAAA) of `name`.
    pub async fn addresses(&self, name: &str) -> Result<Answer<IpAddr>, DnsFailure> {
        let (v4, v6) = futures::join!(self.ipv4(name), self.ipv6(name));
        let mut all: Vec<IpAddr> = Vec::new();
        let mut nx = false;
        for answer in [
            v4.map(|a| map(a, IpAddr::V4)),
            v6.map(|a| map(a, IpAddr::V6)),
        ] {
            match answer {
                Ok(Answer::Found(ips)) => all.extend(ips),
                Ok(Answer::NxDomain) => nx = true,
                Ok(Answer::NoData) => {}
                // An AAAA failure must not hide a good A answer, nor the reverse.
                Err(e) if all.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        Ok(if !all.is_empty() {
            Answer::Found(all)
        } else if nx {
            Answer::NxDomain
        } else {
            Answer::NoData
        })
    }

    /// A records of `name`: DNS list answers are IPv4 addresses.
    pub async fn ipv4(&self, name: &str) -> Result<Answer<std::net::Ipv4Addr>, DnsFailure> {
        self.query(name, RecordType::A, |d| match d {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    async fn ipv6(&self, name: &str) -> Result<Answer<std::net::Ipv6Addr>, DnsFailure> {
        self.query(name, RecordType::AAAA, |d| match d {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// TXT records of `name`, each record's strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    pub async fn txt(&self, name: &str) -> Result<Answer<String>, DnsFailure> {
        self.query(name, RecordType::TXT, |d| match d {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .await
    }

    /// PTR names of `ip`, without the trailing dot. hickory answers for 127.0.0.0/8 and ::1
    /// itself with `localhost` (RFC 6761 §6.3) and never asks the server: a loopback address
    /// always shows `localhost`, which is why the lab's checked hosts are in 192.0.2.0/24.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Answer<String>, DnsFailure> {
        self.query(
            &reverse_name(ip, "in-addr.arpa", "ip6.arpa"),
            RecordType::PTR,
            |d| match d {
                RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_owned()),
                _ => None,
            },
        )
        .await
    }

    /// MX records of `name`: (preference, exchange without the trailing dot).
    pub async fn mx(&self, name: &str) -> Result<Answer<(u16, String)>, DnsFailure> {
        self.query(name, RecordType::MX, |d| match d {
            RData::MX(mx) => Some((
                mx.preference,
                mx.exchange.to_ascii().trim_end_matches('.').to_owned(),
            )),
            _ => None,
        })
        .await
    }

    async fn query<T>(
        &self,
        name: &str,
        qtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, DnsFailure> {
        // Absolute names: a resolv.conf search domain must never turn "example.org" into
        // "example.org.corp.local".
        let fqdn = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        let shown = fqdn.trim_end_matches('.').to_owned();
        let answer = tokio::time::timeout(self.limit, self.resolver.lookup(fqdn.as_str(), qtype));
        let failure = |reason: String| DnsFailure::Other {
            server: self.server.clone(),
            reason,
            qtype: qtype.to_string(),
            name: shown.clone(),
        };
        match answer.await {
            Err(_) | Ok(Err(NetError::Timeout)) => Err(DnsFailure::Timeout {
                server: self.server.clone(),
                limit: humantime::format_duration(self.limit).to_string(),
                qtype: qtype.to_string(),
                name: shown,
            }),
            Ok(Ok(lookup)) => {
                let records: Vec<T> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| pick(&r.data))
                    .collect();
                Ok(if records.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Found(records)
                })
            }
            Ok(Err(e)) if e.is_nx_domain() => Ok(Answer::NxDomain),
            Ok(Err(e)) if e.is_no_records_found() => Ok(Answer::NoData),
            Ok(Err(NetError::Dns(DnsError::ResponseCode(code)))) => Err(DnsFailure::Code {
                server: self.server.clone(),
                code: code.to_string(),
                qtype: qtype.to_string(),
                name: shown,
            }),
            Ok(Err(e)) => Err(failure(e.to_string())),
        }
    }
}

fn map<A, B>(answer: Answer<A>, f: impl Fn(A) -> B) -> Answer<B> {
    match answer {
        Answer::Found(v) => Answer::Found(v.into_iter().map(f).collect()),
        Answer::NoData => Answer::NoData,
        Answer::NxDomain => Answer::NxDomain,
    }
}

/// `ip` in reverse-label form under `v4_zone` or `v6_zone`: `3.0.0.127.zen.spamhaus.org`, and
/// nibbles for IPv6 (RFC 5782 §2.4), as both PTR lookups and DNS lists want it.
pub fn reverse_name(ip: IpAddr, v4_zone: &str, v6_zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{v4_zone}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::with_capacity(33);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push(v6_zone.to_owned());
            labels.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_for_lists_and_ptr() {
        let v4: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(
            reverse_name(v4, "zen.spamhaus.org", "zen.spamhaus.org"),
            "10.2.0.192.zen.spamhaus.org"
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            reverse_name(v6, "in-addr.arpa", "ip6.arpa"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
