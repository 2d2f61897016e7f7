//! `probe maillog`: a Postfix log summarised per provider, pflogsumm's daily look with
//! reasons. [`line`] reads one line (the crate's one parser of this format), [`read`] reads
//! files, `.gz` files and standard input, [`since`] the `--since` cut, and [`Tally`] counts.
//!
//! The counts follow pflogsumm's Grand Totals so the two agree on the same log:
//! - delivered: `status=sent` lines (one per recipient), forwards (`forwarded as`) excluded;
//! - deferred: messages (queue ids) with at least one `status=deferred` line;
//! - bounced: `status=bounced` lines (one per recipient);
//! - rejected: `reject:` lines of our smtpd and postscreen (`NOQUEUE: reject: RCPT ...`), and
//!   cleanup's `reject:`/`milter-reject:` of a header, body or END-OF-MESSAGE;
//! - expired (pflogsumm has none): messages returned to their sender after too long queued.
//!
//! Per provider, deferred is the messages with a deferral toward that provider. A reason is
//! counted for each bounce and for each message's first deferral toward a provider, by
//! [`crate::reason::classify`], so retries of one message do not outweigh many messages.
//!
//! State per queue id (which providers it was already deferred to) is dropped at the queue
//! id's `removed` line, and kept for at most [`QUEUE_CAP`] queue ids besides, so memory does
//! not grow with the log.

pub mod line;
pub mod read;
pub mod since;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::reason;
use line::{Event, Status, StatusLine};
use since::Stamp;

pub use read::ReadError;
pub use since::{SinceError, parse_since};

/// How many queue ids' state is kept at most (in two generations of half each): far more
/// than a queue holds at once, so only ids whose `removed` line is missing are forgotten.
pub const QUEUE_CAP: usize = 1 << 18;

/// The summary, as `--json` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Over the whole log.
    pub totals: Totals,
    /// Per provider, most mail first.
    pub providers: Vec<ProviderSummary>,
}

/// The whole log's counts (see the module doc for each definition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Recipients accepted by the next hop.
    pub delivered: u64,
    /// Messages deferred at least once.
    pub deferred: u64,
    /// Recipients bounced.
    pub bounced: u64,
    /// Messages or recipients our own server refused.
    pub rejected: u64,
    /// Messages returned to their sender after too long in the queue.
    pub expired: u64,
}

/// One provider (or, for others, one recipient domain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProviderSummary {
    /// `gmail`, `outlook`, `yahoo`, `gmx`, `t-online`, `icloud`, or the recipient domain.
    pub provider: String,
    /// The recipient domains seen, sorted.
    pub domains: Vec<String>,
    /// Recipients delivered.
    pub delivered: u64,
    /// Messages deferred toward this provider at least once.
    pub deferred: u64,
    /// Recipients bounced.
    pub bounced: u64,
    /// Why, most frequent first.
    pub reasons: Vec<ReasonCount>,
}

/// A reason, how often, and one reply that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    /// One of [`crate::reason`]'s reasons.
    pub reason: String,
    /// How many deferrals and bounces.
    pub count: u64,
    /// The first reply (or Postfix's words) that gave it.
    pub example: String,
}

impl ProviderSummary {
    /// The share of this provider's mail that was deferred, and that bounced, in percent of
    /// delivered + deferred + bounced (a message deferred, then delivered, counts in both).
    pub fn shares(&self) -> (f64, f64) {
        let all = (self.delivered + self.deferred + self.bounced) as f64;
        if all == 0.0 {
            return (0.0, 0.0);
        }
        (
            self.deferred as f64 * 100.0 / all,
            self.bounced as f64 * 100.0 / all,
        )
    }
}

impl Summary {
    /// The providers whose deferred or bounced share is above `percent`.
    pub fn over(&self, percent: f64) -> Vec<&ProviderSummary> {
        self.providers
            .iter()
            .filter(|p| {
                let (deferred, bounced) = p.shares();
                deferred > percent || bounced > percent
            })
            .collect()
    }
}

/// A log could not be summarised.
#[derive(Debug, thiserror::Error)]
pub enum MaillogError {
    /// A file (or standard input) could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Reads every path in order into one summary (`-` is standard input).
pub fn summarise(paths: &[&Path], since: Option<Stamp>) -> Result<Summary, MaillogError> {
    let mut tally = Tally::new(since, Stamp::from_system(std::time::SystemTime::now()));
    for path in paths {
        read::each_line(path, &mut |l| tally.line(l))?;
    }
    Ok(tally.finish())
}

/// A queue id, padded: ids are at most 24 bytes (checked by the parser).
type QueueKey = [u8; 24];

fn queue_key(id: &[u8]) -> QueueKey {
    let mut key = [0u8; 24];
    let n = id.len().min(24);
    key[..n].copy_from_slice(&id[..n]);
    key
}

/// What is remembered of a queue id until its `removed` line.
#[derive(Debug, Default)]
struct Queued {
    /// The providers it was deferred toward (already counted).
    deferred_to: Vec<u32>,
    /// Its expiry was counted.
    expired: bool,
}

/// Queue ids in two generations: when the young one is full it becomes the old one and the
/// old one is dropped, so what is forgotten is what was not seen for longest.
#[derive(Debug, Default)]
struct Queue {
    young: HashMap<QueueKey, Queued>,
    old: HashMap<QueueKey, Queued>,
}

impl Queue {
    fn get(&mut self, id: &[u8]) -> &mut Queued {
        let key = queue_key(id);
        if !self.young.contains_key(&key) {
            let moved = self.old.remove(&key).unwrap_or_default();
            if self.young.len() >= QUEUE_CAP / 2 {
                self.old = std::mem::take(&mut self.young);
            }
            self.young.insert(key, moved);
        }
        self.young.entry(key).or_default()
    }

    fn remove(&mut self, id: &[u8]) {
        let key = queue_key(id);
        self.young.remove(&key);
        self.old.remove(&key);
    }

    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

/// One provider's counts while reading.
#[derive(Debug, Default)]
struct Counts {
    name: String,
    domains: BTreeSet<String>,
    delivered: u64,
    deferred: u64,
    bounced: u64,
    /// reason -> (count, first example)
    reasons: HashMap<&'static str, (u64, String)>,
}

/// The running count: feed it lines with [`Tally::line`], then [`Tally::finish`].
#[derive(Debug)]
pub struct Tally {
    now: Stamp,
    since: Option<Stamp>,
    totals: Totals,
    providers: Vec<Counts>,
    by_name: HashMap<String, u32>,
    /// `relay host \n recipient domain` -> provider: the lookup allocates, a log repeats.
    routes: HashMap<Vec<u8>, u32>,
    route_key: Vec<u8>,
    queue: Queue,
}

/// Routes remembered at most; past it the cache starts again (memory stays flat).
const ROUTE_CAP: usize = 1 << 16;

impl Tally {
    /// Counts lines at or after `since` (all when `None`); `now` dates year-less stamps.
    pub fn new(since: Option<Stamp>, now: Stamp) -> Tally {
        Tally {
            now,
            since,
            totals: Totals::default(),
            providers: Vec::new(),
            by_name: HashMap::new(),
            routes: HashMap::new(),
            route_key: Vec::new(),
            queue: Queue::default(),
        }
    }

    /// Counts one line (any bytes; a line of another shape is skipped).
    pub fn line(&mut self, bytes: &[u8]) {
        let Some(line) = line::parse(bytes) else {
            return;
        };
        if let Some(since) = self.since
            && Stamp::parse(line.stamp, self.now).is_none_or(|s| s < since)
        {
            return;
        }
        match line.event {
            Event::Status(status) => self.status(&status),
            Event::Expired { queue_id } => self.expired(queue_id),
            Event::Removed { queue_id } => self.queue.remove(queue_id),
            Event::Rejected { .. } => self.totals.rejected += 1,
        }
    }

    /// How many queue ids are remembered now (bounded by [`QUEUE_CAP`]).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    fn expired(&mut self, queue_id: &[u8]) {
        let queued = self.queue.get(queue_id);
        if !queued.expired {
            queued.expired = true;
            self.totals.expired += 1;
        }
    }

    fn status(&mut self, s: &StatusLine) {
        match s.status {
            Status::Forwarded => {}
            Status::Sent => {
                let p = self.provider(s);
                self.totals.delivered += 1;
                self.providers[p as usize].delivered += 1;
            }
            Status::Bounced => {
                let p = self.provider(s);
                self.totals.bounced += 1;
                self.providers[p as usize].bounced += 1;
                self.reason(p, s);
            }
            Status::Deferred => {
                let p = self.provider(s);
                let queued = self.queue.get(s.queue_id);
                if queued.deferred_to.contains(&p) {
                    return;
                }
                if queued.deferred_to.is_empty() {
                    self.totals.deferred += 1;
                }
                queued.deferred_to.push(p);
                self.providers[p as usize].deferred += 1;
                self.reason(p, s);
            }
            Status::Expired => self.expired(s.queue_id),
        }
    }

    fn reason(&mut self, p: u32, s: &StatusLine) {
        let text = s.text.map(String::from_utf8_lossy);
        let dsn = s.dsn.map(String::from_utf8_lossy);
        let reason = reason::classify(dsn.as_deref(), text.as_deref());
        let entry = self.providers[p as usize]
            .reasons
            .entry(reason)
            .or_insert_with(|| (0, text.as_deref().unwrap_or("").to_owned()));
        entry.0 += 1;
    }

    /// The provider that received the mail: by the relay host, then the recipient domain.
    fn provider(&mut self, s: &StatusLine) -> u32 {
        let host = s
            .relay
            .map(|r| &r[..memchr::memchr(b'[', r).unwrap_or(r.len())]);
        let domain = match memchr::memrchr(b'@', s.recipient) {
            Some(at) => &s.recipient[at + 1..],
            None => s.recipient,
        };
        self.route_key.clear();
        self.route_key.extend_from_slice(host.unwrap_or_default());
        self.route_key.push(b'\n');
        self.route_key.extend_from_slice(domain);
        if let Some(&p) = self.routes.get(&self.route_key) {
            return p;
        }
        let host = host.map(String::from_utf8_lossy);
        let domain = String::from_utf8_lossy(domain).to_ascii_lowercase();
        let name = reason::provider::provider(host.as_deref(), Some(&format!("x@{domain}")))
            .map(str::to_owned)
            .unwrap_or_else(|| domain.clone());
        let next = self.providers.len() as u32;
        let p = *self.by_name.entry(name.clone()).or_insert(next);
        if p == next {
            self.providers.push(Counts {
                name,
                ..Counts::default()
            });
        }
        self.providers[p as usize].domains.insert(domain);
        if self.routes.len() >= ROUTE_CAP {
            self.routes.clear();
        }
        self.routes.insert(self.route_key.clone(), p);
        p
    }

    /// The summary: providers with the most mail first, reasons most frequent first.
    pub fn finish(self) -> Summary {
        let mut providers: Vec<ProviderSummary> = self
            .providers
            .into_iter()
            .map(|c| {
                let mut reasons: Vec<ReasonCount> = c
                    .reasons
                    .into_iter()
                    .map(|(reason, (count, example))| ReasonCount {
                        reason: reason.to_owned(),
                        count,
                        example,
                    })
                    .collect();
                reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
                ProviderSummary {
                    provider: c.name,
                    domains: c.domains.into_iter().collect(),
                    delivered: c.delivered,
                    deferred: c.deferred,
                    bounced: c.bounced,
                    reasons,
                }
            })
            .collect();
        let volume = |p: &ProviderSummary| p.delivered + p.deferred + p.bounced;
        providers.sort_by(|a, b| volume(b).cmp(&volume(a)).then(a.provider.cmp(&b.provider)));
        Summary {
            totals: self.totals,
            providers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(log: &str, since: Option<Stamp>) -> Summary {
        let now = Stamp::from_system(humantime::parse_rfc3339("2026-11-29T18:00:00Z").unwrap());
        let mut tally = Tally::new(since, now);
        log.lines().for_each(|l| tally.line(l.as_bytes()));
        tally.finish()
    }

    /// A deferred message retried twice, then delivered; a message to two recipients at two
    /// providers, one bounced; a NOQUEUE reject; an expiry logged twice (per message and per
    /// recipient); garbage in between.
    const LOG: &str = "\
Nov 29 16:00:00 mx postfix/smtp[1]: AAA: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[1.2.3.4]:25, delay=1, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[1.2.3.4] said: 421-4.7.28 unusual rate of unsolicited mail (in reply to end of DATA command))
Nov 29 16:05:00 mx postfix/smtp[1]: AAA: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[1.2.3.4]:25, delay=300, dsn=4.7.28, status=deferred (host said: 421-4.7.28 unusual rate of unsolicited mail)
not a log line at all
Nov 29 16:10:00 mx postfix/smtp[1]: AAA: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[1.2.3.4]:25, delay=600, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 29 16:10:00 mx postfix/qmgr[2]: AAA: removed
Nov 29 16:11:00 mx postfix/smtp[1]: BBB: to=<b@customer.example>, relay=customer-example.mail.protection.outlook.com[5.6.7.8]:25, delay=1, dsn=5.7.1, status=bounced (host said: 550 5.7.1 Service unavailable, Client host blocked using Spamhaus)
Nov 29 16:11:00 mx postfix/smtp[1]: BBB: to=<c@Example.ORG>, relay=mx.example.org[9.9.9.9]:25, delay=1, dsn=2.0.0, status=sent (250 ok)
Nov 29 16:11:01 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from x[1.1.1.1]: 554 5.7.1 Relay access denied; from=<a@b> to=<c@d> proto=ESMTP helo=<x>
Nov 29 16:12:00 mx postfix/error[1]: CCC: to=<d@yahoo.com>, relay=none, delay=9, dsn=4.7.0, status=deferred (delivery temporarily suspended: [TS03] try later)
Nov 29 16:13:00 mx postfix/qmgr[2]: CCC: from=<s@ours.test>, status=expired, returned to sender
Nov 29 16:13:00 mx postfix/error[1]: CCC: to=<d@yahoo.com>, relay=none, delay=9, dsn=4.7.0, status=expired, returned to sender
Nov 29 16:13:00 mx postfix/local[4]: DDD: to=<e@ours.test>, relay=local, delay=0, dsn=2.0.0, status=sent (forwarded as EEE)
";

    /// (provider, domains, delivered, deferred, bounced, (reason, count)s)
    type Row<'a> = (&'a str, Vec<&'a str>, u64, u64, u64, Vec<(&'a str, u64)>);

    #[test]
    fn counts_per_provider() {
        let s = summary_of(LOG, None);
        assert_eq!(
            s.totals,
            Totals {
                delivered: 2,
                deferred: 2,
                bounced: 1,
                rejected: 1,
                expired: 1
            }
        );
        let rows: Vec<Row> = s
            .providers
            .iter()
            .map(|p| {
                (
                    p.provider.as_str(),
                    p.domains.iter().map(String::as_str).collect(),
                    p.delivered,
                    p.deferred,
                    p.bounced,
                    p.reasons
                        .iter()
                        .map(|r| (r.reason.as_str(), r.count))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[0].0, "gmail");
        assert_eq!((rows[0].2, rows[0].3, rows[0].4), (1, 1, 0), "{rows:?}");
        assert_eq!(rows[0].5, [("ratelimited", 1)], "one deferral counted");
        let by_name = |n: &str| rows.iter().find(|r| r.0 == n).unwrap();
        assert_eq!(by_name("outlook").1, ["customer.example"]);
        assert_eq!(by_name("outlook").4, 1);
        assert_eq!(
            by_name("example.org").1,
            ["example.org"],
            "domains lower case"
        );
        assert_eq!(by_name("yahoo").3, 1);
        let example = &s.providers[0].reasons[0].example;
        assert!(example.contains("421-4.7.28"), "{example}");
    }

    #[test]
    fn since_cuts_and_fail_over() {
        let since = parse_since("2026-11-29T16:11", std::time::SystemTime::now()).unwrap();
        let s = summary_of(LOG, Some(since));
        assert_eq!((s.totals.delivered, s.totals.deferred), (1, 1));
        let over: Vec<&str> = s.over(50.0).iter().map(|p| p.provider.as_str()).collect();
        assert_eq!(over, ["outlook", "yahoo"]);
        assert!(s.over(100.0).is_empty());
    }

    #[test]
    fn queue_state_is_bounded() {
        let mut tally = Tally::new(None, Stamp::from_system(std::time::SystemTime::now()));
        for i in 0..(QUEUE_CAP * 2) {
            // Expiries: kept per queue id like deferrals, without a reason to classify.
            let line = format!(
                "Nov 29 16:00:00 mx postfix/qmgr[1]: Q{i:X}: from=<a@x.test>, status=expired, returned to sender"
            );
            tally.line(line.as_bytes());
            assert!(tally.queue_len() <= QUEUE_CAP);
        }
        assert_eq!(tally.finish().totals.expired, (QUEUE_CAP * 2) as u64);
    }
}
