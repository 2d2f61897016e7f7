//! The DNS records a sending domain publishes, read: SPF (which record applies), DMARC
//! (policy and alignment modes), a DKIM key record, the MTA-STS record. Parsing only; the
//! lookups are in `mod.rs`.

/// The one SPF record among a name's TXT records (RFC 7208 §4.5): records starting with
/// `v=spf1` (case-insensitive, then a space or the end).
pub fn spf_record(txt: &[String]) -> Result<Option<&str>, String> {
    let spf: Vec<&str> = txt
        .iter()
        .map(String::as_str)
        .filter(|t| {
            let t = t.trim_start();
            t.len() >= 6
                && t[..6].eq_ignore_ascii_case("v=spf1")
                && (t.len() == 6 || t.as_bytes()[6] == b' ')
        })
        .collect();
    match spf[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(format!(
            "{} SPF records (a domain may publish one; receivers give permerror): {}",
            spf.len(),
            spf.join(" | ")
        )),
    }
}

/// DMARC alignment mode (RFC 7489 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    /// Organizational domains match (the default).
    Relaxed,
    /// Exactly the same domain.
    Strict,
}

/// A DMARC record's tags that `probe check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    /// `p`: none, quarantine or reject.
    pub policy: String,
    /// `sp`, when given.
    pub subdomain_policy: Option<String>,
    /// `pct` (default 100).
    pub pct: u8,
    /// `adkim`.
    pub adkim: Alignment,
    /// `aspf`.
    pub aspf: Alignment,
    /// `rua`, when given.
    pub rua: Option<String>,
}

/// Parses a DMARC record (`v=DMARC1; p=...`), as RFC 7489 §6.3 reads it: `v` first, then `p`
/// required; unknown tags ignored.
pub fn dmarc(record: &str) -> Result<Dmarc, String> {
    let tags: Vec<(String, String)> = record
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (t.to_ascii_lowercase(), String::new()),
        })
        .collect();
    match tags.first() {
        Some((k, v)) if k == "v" && v == "DMARC1" => {}
        _ => return Err("does not start with v=DMARC1".into()),
    }
    let tag = |name: &str| {
        tags.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let policy_of = |name: &str| -> Result<Option<String>, String> {
        match tag(name).map(str::to_ascii_lowercase) {
            None => Ok(None),
            Some(p) if ["none", "quarantine", "reject"].contains(&p.as_str()) => Ok(Some(p)),
            Some(p) => Err(format!("{name}={p}: use none, quarantine or reject")),
        }
    };
    let policy = policy_of("p")?.ok_or("has no p= tag (the policy is required)")?;
    let alignment = |name: &str| -> Result<Alignment, String> {
        match tag(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("r") => Ok(Alignment::Relaxed),
            Some("s") => Ok(Alignment::Strict),
            Some(other) => Err(format!("{name}={other}: use r or s")),
        }
    };
    let pct = match tag("pct") {
        None => 100,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or(format!("pct={p}: a number from 0 to 100"))?,
    };
    Ok(Dmarc {
        policy,
        subdomain_policy: policy_of("sp")?,
        pct,
        adkim: alignment("adkim")?,
        aspf: alignment("aspf")?,
        rua: tag("rua").map(str::to_owned),
    })
}

/// Whether `a` and `b` align in `mode`. Relaxed compares organizational domains, taken here
/// as the last two labels: without the public suffix list a `co.uk`-style domain reads as
/// aligned more often than it is, which only ever errs towards a warning not given.
pub fn aligned(a: &str, b: &str, mode: Alignment) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    match mode {
        Alignment::Strict => a == b,
        Alignment::Relaxed => organizational(&a) == organizational(&b),
    }
}

/// The last two labels of `domain`.
pub fn organizational(domain: &str) -> String {
    let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

/// A DKIM key record's `k` and `p` (RFC 6376 §3.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// Key type (`rsa` by default, `ed25519`).
    pub key_type: String,
    /// The public key, base64; empty means revoked.
    pub public_key: String,
}

/// Parses a DKIM key record; `v`, when present, must be `DKIM1`.
pub fn dkim_key(record: &str) -> Result<DkimKey, String> {
    let mut key_type = "rsa".to_owned();
    let mut public_key = None;
    for (i, tag) in record
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
        match k.trim() {
            "v" if i == 0 && v.trim() != "DKIM1" => {
                return Err(format!("v={}: not DKIM1", v.trim()));
            }
            "k" => key_type = v.trim().to_ascii_lowercase(),
            "p" => public_key = Some(v.split_whitespace().collect::<String>()),
            _ => {}
        }
    }
    let public_key = public_key.ok_or("has no p= tag")?;
    Ok(DkimKey {
        key_type,
        public_key,
    })
}

/// The `id` of an MTA-STS record (`v=STSv1; id=...`, RFC 8461 §3.1).
pub fn mta_sts_id(record: &str) -> Option<String> {
    let mut tags = record.split(';').map(str::trim).filter(|t| !t.is_empty());
    if tags.next()?.replace(' ', "") != "v=STSv1" {
        return None;
    }
    tags.find_map(|t| t.strip_prefix("id=").map(|id| id.trim().to_owned()))
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(records: &[&str]) -> Vec<String> {
        records.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spf_record_is_the_one_v_spf1() {
        let r = txt(&["google-site-verification=x", "v=spf1 ip4:192.0.2.1 -all"]);
        assert_eq!(spf_record(&r), Ok(Some("v=spf1 ip4:192.0.2.1 -all")));
        assert_eq!(spf_record(&txt(&["V=SPF1 -all"])), Ok(Some("V=SPF1 -all")));
        assert_eq!(spf_record(&txt(&["v=spf1"])), Ok(Some("v=spf1")));
        // v=spf10 is not an SPF record.
        assert_eq!(spf_record(&txt(&["v=spf10 -all", "other"])), Ok(None));
        let two = spf_record(&txt(&["v=spf1 -all", "v=spf1 +all"])).unwrap_err();
        assert!(two.starts_with("2 SPF records"), "{two}");
    }

    #[test]
    fn dmarc_records_read() {
        let d = dmarc("v=DMARC1; p=reject; adkim=r; aspf=s; rua=mailto:d@example.org").unwrap();
        assert_eq!(d.policy, "reject");
        assert_eq!((d.adkim, d.aspf), (Alignment::Relaxed, Alignment::Strict));
        assert_eq!(d.pct, 100);
        assert_eq!(d.rua.as_deref(), Some("mailto:d@example.org"));
        let d = dmarc("v=DMARC1;p=Quarantine;sp=none;pct=25").unwrap();
        assert_eq!(
            (d.policy.as_str(), d.subdomain_policy.as_deref()),
            ("quarantine", Some("none"))
        );
        assert_eq!(d.pct, 25);
        assert!(
            dmarc("p=reject; v=DMARC1")
                .unwrap_err()
                .contains("v=DMARC1")
        );
        assert!(
            dmarc("v=DMARC1; rua=mailto:x@y")
                .unwrap_err()
                .contains("p=")
        );
        assert!(dmarc("v=DMARC1; p=block").unwrap_err().contains("p=block"));
        assert!(
            dmarc("v=DMARC1; p=none; pct=150")
                .unwrap_err()
                .contains("pct")
        );
        assert!(
            dmarc("v=DMARC1; p=none; adkim=x")
                .unwrap_err()
                .contains("adkim")
        );
    }

    #[test]
    fn alignment_modes() {
        assert!(aligned(
            "mail.example.org",
            "example.org",
            Alignment::Relaxed
        ));
        assert!(!aligned(
            "mail.example.org",
            "example.org",
            Alignment::Strict
        ));
        assert!(aligned("Example.org.", "example.org", Alignment::Strict));
        assert!(!aligned("example.net", "example.org", Alignment::Relaxed));
    }

    #[test]
    fn dkim_and_mta_sts_records() {
        let k = dkim_key("v=DKIM1; k=ed25519; p=Hagx oTPg=").unwrap();
        assert_eq!(
            (k.key_type.as_str(), k.public_key.as_str()),
            ("ed25519", "HagxoTPg=")
        );
        assert_eq!(dkim_key("p=").unwrap().public_key, "");
        assert_eq!(dkim_key("v=DKIM1; p=MIIB").unwrap().key_type, "rsa");
        assert!(dkim_key("v=DKIM1; k=rsa").is_err());
        assert_eq!(
            mta_sts_id("v=STSv1; id=20260101T0000;"),
            Some("20260101T0000".into())
        );
        assert_eq!(mta_sts_id("v=STSv1;"), None);
        assert_eq!(mta_sts_id("v=spf1 -all"), None);
    }
}
