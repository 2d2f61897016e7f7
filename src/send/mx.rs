//! Mail exchanger selection (RFC 5321 §5.1, RFC 7505).
//!
//! The DNS query is kept apart from [`plan`], which turns the raw records into
//! the ordered host list, so the ordering and fallback rules can be tested
//! without a DNS server.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use super::outcome::SessionError;

/// One mail exchanger to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// The MX preference (lower is tried first); 0 for an implicit MX.
    pub preference: u16,
    /// The exchanger's host name, lower-case, without a trailing dot.
    pub host: String,
}

/// Where mail for a domain should go, according to its MX records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxPlan {
    /// MX records exist: try these hosts in this order.
    Exchangers(Vec<MxHost>),
    /// No MX records: the domain itself is the mail host (RFC 5321 §5.1
    /// "implicit MX").
    Implicit {
        /// The domain, normalised like an MX host name.
        host: String,
    },
    /// A null MX (RFC 7505): the domain accepts no mail.
    NullMx,
}

/// Orders raw `(preference, exchange)` MX records into a plan.
///
/// Hosts are sorted by preference; hosts of equal preference keep the order
/// the resolver gave. RFC 5321 §5.1 suggests shuffling those for load
/// spreading, but a probe sends a handful of messages and reproducible runs
/// matter more. A host listed twice is tried once, at its best preference.
/// "." entries are null MX records: if they are all there is, the domain
/// takes no mail (RFC 7505 §3); mixed with real hosts (a misconfiguration
/// RFC 7505 forbids) they are ignored, as a sending MTA would.
pub fn plan(domain: &str, records: &[(u16, String)]) -> MxPlan {
    if records.is_empty() {
        return MxPlan::Implicit {
            host: normalise(domain),
        };
    }
    let mut hosts: Vec<MxHost> = records
        .iter()
        .map(|(preference, host)| MxHost {
            preference: *preference,
            host: normalise(host),
        })
        .filter(|mx| !mx.host.is_empty())
        .collect();
    if hosts.is_empty() {
        return MxPlan::NullMx;
    }
    hosts.sort_by_key(|mx| mx.preference); // stable: ties keep DNS order
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|mx| seen.insert(mx.host.clone()));
    MxPlan::Exchangers(hosts)
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A resolver built from the system configuration (/etc/resolv.conf).
///
/// Both address families are asked for, IPv4 first: many probe hosts have no
/// IPv6 route, and an MX whose IPv6 address times out should not cost a full
/// connect timeout before its IPv4 address is tried.
pub(crate) fn system_resolver() -> Result<TokioResolver, SessionError> {
    let dns_error = |error: NetError| SessionError::Dns {
        name: "(resolver setup)".to_owned(),
        reason: error.to_string(),
        nxdomain: false,
    };
    let mut builder = TokioResolver::builder_tokio().map_err(dns_error)?;
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    builder.build().map_err(dns_error)
}

/// A resolver configuration that asks only `server`, on its port, over UDP with TCP for
/// truncated answers (also what `probe check` asks through).
pub(crate) fn resolver_config(server: SocketAddr) -> ResolverConfig {
    let with_port = |mut connection: ConnectionConfig| {
        connection.port = server.port();
        connection
    };
    let name_server = NameServerConfig::new(
        server.ip(),
        true,
        vec![
            with_port(ConnectionConfig::udp()),
            with_port(ConnectionConfig::tcp()),
        ],
    );
    ResolverConfig::from_name_servers(vec![name_server])
}

/// A resolver that asks only `server` ([`resolver_config`]), and ignores /etc/resolv.conf
/// and /etc/hosts: a lab's or a split-horizon view of DNS must not be mixed with the system's.
pub(crate) fn resolver_at(server: SocketAddr) -> Result<TokioResolver, SessionError> {
    let config = resolver_config(server);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder.build().map_err(|error| SessionError::Dns {
        name: format!("(resolver {server})"),
        reason: error.to_string(),
        nxdomain: false,
    })
}

/// Looks up the MX records of `domain` and plans the hosts to try.
pub(crate) async fn lookup(
    resolver: &TokioResolver,
    domain: &str,
    limit: Duration,
) -> Result<MxPlan, SessionError> {
    let query = fqdn(domain);
    let answer = match tokio::time::timeout(limit, resolver.mx_lookup(query.as_str())).await {
        Err(_) => return Err(dns_timeout(domain, limit)),
        Ok(answer) => answer,
    };
    let records: Vec<(u16, String)> = match answer {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect(),
        // NODATA: the name exists without MX records, so the implicit MX applies.
        Err(error) if error.is_no_records_found() && !error.is_nx_domain() => Vec::new(),
        Err(error) => return Err(dns_failure(domain, &error)),
    };
    let plan = plan(domain, &records);
    tracing::debug!(domain, ?plan, "MX plan");
    if plan == MxPlan::NullMx {
        return Err(SessionError::NullMx {
            domain: domain.to_owned(),
        });
    }
    Ok(plan)
}

/// Looks up the addresses of an MX host.
pub(crate) async fn addresses(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Vec<SocketAddr>, SessionError> {
    let query = fqdn(host);
    match tokio::time::timeout(limit, resolver.lookup_ip(query.as_str())).await {
        Err(_) => Err(dns_timeout(host, limit)),
        Ok(Ok(lookup)) => Ok(lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
        Ok(Err(error)) if error.is_no_records_found() && !error.is_nx_domain() => {
            Err(SessionError::NoAddresses {
                host: host.to_owned(),
            })
        }
        Ok(Err(error)) => Err(dns_failure(host, &error)),
    }
}

/// Queries absolute names so that resolv.conf search domains never turn an
/// MX lookup for "example.com" into one for "example.com.corp.local".
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn dns_failure(name: &str, error: &NetError) -> SessionError {
    SessionError::Dns {
        name: name.to_owned(),
        reason: error.to_string(),
        nxdomain: error.is_nx_domain(),
    }
}

fn dns_timeout(name: &str, limit: Duration) -> SessionError {
    SessionError::Dns {
        name: name.to_owned(),
        reason: format!("no answer within {}", humantime::format_duration(limit)),
        nxdomain: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, h)| (*p, (*h).to_owned())).collect()
    }

    fn hosts(plan: MxPlan) -> Vec<(u16, String)> {
        match plan {
            MxPlan::Exchangers(hosts) => {
                hosts.into_iter().map(|m| (m.preference, m.host)).collect()
            }
            other => panic!("expected exchangers, got {other:?}"),
        }
    }

    #[test]
    fn sorts_by_preference_keeping_dns_order_for_ties() {
        let plan = plan(
            "lab.test",
            &records(&[
                (20, "mx3.lab.test."),
                (10, "MX1.lab.test."),
                (20, "mx2.lab.test."),
                (5, "mx0.lab.test"),
            ]),
        );
        assert_eq!(
            hosts(plan),
            records(&[
                (5, "mx0.lab.test"),
                (10, "mx1.lab.test"),
                (20, "mx3.lab.test"),
                (20, "mx2.lab.test"),
            ])
        );
    }

    #[test]
    fn duplicate_hosts_are_tried_once_at_best_preference() {
        let plan = plan(
            "lab.test",
            &records(&[
                (30, "mx.lab.test."),
                (10, "mx.lab.test"),
                (20, "b.lab.test."),
            ]),
        );
        assert_eq!(
            hosts(plan),
            records(&[(10, "mx.lab.test"), (20, "b.lab.test")])
        );
    }

    #[test]
    fn no_records_means_implicit_mx() {
        assert_eq!(
            plan("Lab.Test.", &[]),
            MxPlan::Implicit {
                host: "lab.test".into()
            }
        );
    }

    #[test]
    fn null_mx() {
        assert_eq!(plan("lab.test", &records(&[(0, ".")])), MxPlan::NullMx);
        assert_eq!(plan("lab.test", &records(&[(0, "")])), MxPlan::NullMx);
        // Mixed with real hosts, the null entry is ignored.
        assert_eq!(
            hosts(plan(
                "lab.test",
                &records(&[(0, "."), (10, "mx.lab.test.")])
            )),
            records(&[(10, "mx.lab.test")])
        );
    }

    #[test]
    fn queries_are_absolute() {
        assert_eq!(fqdn("lab.test"), "lab.test.");
        assert_eq!(fqdn("lab.test."), "lab.test.");
    }
}
