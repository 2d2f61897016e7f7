//! Where the store is: a SQLite file, or a PostgreSQL database given by URL. The one place a
//! `--store`/`PROBE_STORE` string is read, and the one place a PostgreSQL URL is shown (always
//! without its password).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The URL schemes taken as PostgreSQL, as libpq takes them.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres", "postgresql"];

/// Where the store is.
#[derive(Clone)]
pub enum Location {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgUrl),
}

/// Whether TLS is used to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// Plain TCP: the server is on this machine (loopback), or the URL says `sslmode=disable`.
    Off,
    /// TLS with the server's certificate verified (public roots, plus `sslrootcert`).
    Verified,
}

/// A parsed `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...&sslrootcert=...]`.
#[derive(Clone)]
pub struct PgUrl {
    /// The user.
    pub user: String,
    /// The password written in the URL itself, if any (never shown).
    pub(crate) password: Option<String>,
    /// The host name or IP address.
    pub host: String,
    /// The port (default 5432).
    pub port: u16,
    /// The database (default: the user's name, as libpq).
    pub dbname: String,
    /// TLS or not (see [`PgTls`] for the rule).
    pub tls: PgTls,
    /// A CA file (PEM) the server's certificate may chain to, besides the public roots.
    pub root_cert: Option<PathBuf>,
    /// Seconds to wait for a connection (default 10).
    pub connect_timeout: u64,
}

impl Location {
    /// Reads a `--store` string: a PostgreSQL URL, or else a path. Any other URL (`mysql://`,
    /// `sqlite://`, `postgres:` without `//`) is an error naming it, never a file in a folder
    /// named after the scheme.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        let bad = |reason: String| StoreError::BadLocation {
            given: redact(text),
            reason,
        };
        if text.trim().is_empty() {
            return Err(bad("empty; give a file path or a postgres:// URL".into()));
        }
        let Some((scheme, rest)) = text.split_once(':').filter(|(s, _)| is_scheme(s)) else {
            return Ok(Location::Sqlite(PathBuf::from(text)));
        };
        let lower = scheme.to_ascii_lowercase();
        if POSTGRES_SCHEMES.contains(&lower.as_str()) {
            if !rest.starts_with("//") {
                return Err(bad(format!(
                    "a PostgreSQL URL starts with {lower}:// (postgres://USER@HOST[:PORT]/DB)"
                )));
            }
            return PgUrl::parse(text).map(Location::Postgres).map_err(bad);
        }
        if rest.starts_with("//") {
            return Err(bad(format!(
                "{lower}:// is not a supported store; give a file path (SQLite) or a \
                 postgres://USER@HOST[:PORT]/DB URL"
            )));
        }
        // `a:b` with no `//` is a file name with a colon in it.
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    /// A SQLite file.
    pub fn sqlite(path: &Path) -> Location {
        Location::Sqlite(path.to_owned())
    }
}

impl fmt::Display for Location {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => url.fmt(f),
        }
    }
}

/// As shown: never the password (a `{:?}` in a log or a panic must not leak it either).
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// As shown: never the password.
impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self}, {:?})", self.tls)
    }
}

impl fmt::Display for PgUrl {
    /// `postgres://USER@HOST:PORT/DB`: never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }
}

/// A URL scheme as RFC 3986 spells one (a letter, then letters, digits, `+`, `-`, `.`), of at
/// least two characters so that a Windows-style `C:` is not one.
fn is_scheme(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The store string as it may be shown: any password in a URL's user part replaced by `***`.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => text.to_owned(),
    }
}

fn decode(part: &str, what: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("the {what} is not UTF-8 once %-decoded"))
}

impl PgUrl {
    /// Parses a PostgreSQL URL; the error says which part is wrong (without the password).
    fn parse(text: &str) -> Result<PgUrl, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        if url.username().is_empty() {
            return Err("no user: postgres://USER@HOST[:PORT]/DB".into());
        }
        let user = decode(url.username(), "user")?;
        let password = url.password().map(|p| decode(p, "password")).transpose()?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) if d.contains(',') => {
                return Err("several hosts are not supported; give one".into());
            }
            Some(url::Host::Domain(d)) if !d.is_empty() => decode(d, "host")?,
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("no host: postgres://USER@HOST[:PORT]/DB".into()),
        };
        let port = url.port().unwrap_or(5432);
        let path = url.path().trim_start_matches('/');
        if path.contains('/') {
            return Err(format!("{path:?} is not a database name"));
        }
        let dbname = if path.is_empty() {
            user.clone()
        } else {
            decode(path, "database name")?
        };
        let mut sslmode: Option<String> = None;
        let mut root_cert = None;
        let mut connect_timeout = 10;
        for (key, value) in url.query_pairs() {
            match &*key {
                "sslmode" => sslmode = Some(value.into_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(&*value)),
                "connect_timeout" => {
                    connect_timeout = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("connect_timeout={value} is not a number of seconds")
                    })?
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?} (known: sslmode, sslrootcert, connect_timeout)"
                    ));
                }
            }
        }
        let tls = tls_for(&host, sslmode.as_deref())?;
        Ok(PgUrl {
            user,
            password,
            host,
            port,
            dbname,
            tls,
            root_cert,
            connect_timeout,
        })
    }

    /// Whether the server is on this machine.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The TLS rule: credentials never cross a network in plain text, nor go to a server whose
/// certificate was not verified, unless the URL says `sslmode=disable`. On loopback, where
/// nothing crosses a network, plain TCP is the default (`require` and `verify-*` still ask for
/// TLS). Stricter than libpq, whose `prefer` and `require` accept any certificate.
fn tls_for(host: &str, sslmode: Option<&str>) -> Result<PgTls, String> {
    match sslmode {
        Some("disable") => Ok(PgTls::Off),
        None | Some("allow" | "prefer") if is_loopback(host) => Ok(PgTls::Off),
        None | Some("allow" | "prefer" | "require" | "verify-ca" | "verify-full") => {
            Ok(PgTls::Verified)
        }
        Some(other) => Err(format!(
            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(text: &str) -> PgUrl {
        match Location::parse(text) {
            Ok(Location::Postgres(url)) => url,
            Ok(Location::Sqlite(p)) => panic!("{text}: read as the file {}", p.display()),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn store_strings_are_paths_urls_or_errors() {
        for path in [
            "store.sqlite",
            "/var/lib/probe/probe.sqlite",
            "./a:b.sqlite",
            "weird:name.sqlite",
            "C:/probe.sqlite",
        ] {
            assert!(
                matches!(Location::parse(path), Ok(Location::Sqlite(p)) if p == Path::new(path)),
                "{path}"
            );
        }
        for (bad, says) in [
            ("", "empty"),
            ("mysql://u@h/db", "mysql:// is not a supported store"),
            ("sqlite:///tmp/x", "sqlite:// is not a supported store"),
            ("postgres:db", "starts with postgres://"),
            ("postgres://h/db", "no user"),
            ("postgres://u@/db", "empty host"),
            ("postgres://u@h1,h2/db", "several hosts"),
            ("postgres://u@h/db?sslmode=maybe", "sslmode=maybe"),
            (
                "postgres://u@h/db?target_session_attrs=any",
                "unknown parameter",
            ),
            ("postgres://u@h:99999/db", "not a URL"),
        ] {
            let e = Location::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad}: accepted"));
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn urls_read_with_libpq_defaults_and_the_tls_rule() {
        let u = pg("postgres://probe@127.0.0.1:5433/runs");
        assert_eq!(
            (
                u.user.as_str(),
                u.host.as_str(),
                u.port,
                u.dbname.as_str(),
                u.tls
            ),
            ("probe", "127.0.0.1", 5433, "runs", PgTls::Off)
        );
        let u = pg("postgresql://probe@db.example.org");
        assert_eq!(
            (u.port, u.dbname.as_str(), u.tls),
            (5432, "probe", PgTls::Verified)
        );
        for (url, tls) in [
            ("postgres://u@localhost/d", PgTls::Off),
            ("postgres://u@[::1]/d", PgTls::Off),
            ("postgres://u@localhost/d?sslmode=require", PgTls::Verified),
            (
                "postgres://u@db.example.org/d?sslmode=prefer",
                PgTls::Verified,
            ),
            (
                "postgres://u@db.example.org/d?sslmode=require",
                PgTls::Verified,
            ),
            ("postgres://u@db.example.org/d?sslmode=disable", PgTls::Off),
            ("postgres://u@10.0.0.5/d", PgTls::Verified),
        ] {
            assert_eq!(pg(url).tls, tls, "{url}");
        }
        let u = pg("postgres://pro%40be:s%3Acret@h/d%20b?sslrootcert=/etc/ca.pem");
        assert_eq!(
            (u.user.as_str(), u.password.as_deref(), u.dbname.as_str()),
            ("pro@be", Some("s:cret"), "d b")
        );
        assert_eq!(u.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let text = "postgres://probe:hunter2@127.0.0.1:5433/runs";
        assert_eq!(pg(text).to_string(), "postgres://probe@127.0.0.1:5433/runs");
        assert_eq!(redact(text), "postgres://probe:***@127.0.0.1:5433/runs");
        let e = Location::parse("postgres://probe:hunter2@h/db?sslmode=no").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = Location::parse("mysql://probe:hunter2@h/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
