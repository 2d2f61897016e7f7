//! `--since`: where in the log to start, and the log's timestamps as comparable numbers.
//!
//! Times are compared as written, on the log's own clock: an RFC 3339 stamp's offset is not
//! applied, and a `--since` date or time means that wall-clock time in the log. A duration
//! (`7d`, `12h`, `1d 6h`) counts back from now in UTC, which is the log's clock on a server
//! that logs in UTC (as the lab does). Classic syslog stamps carry no year: a line's year is
//! this year, or last year when its month is later than this month (a log read on 2 January
//! holds last December's lines), as pflogsumm decides it.

use std::time::{Duration, SystemTime};

/// A point in time as `YYYYMMDDhhmmss`, so that comparing numbers compares times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Stamp {
    fn new(year: u64, month: u64, day: u64, h: u64, m: u64, s: u64) -> Stamp {
        Stamp(((((year * 100 + month) * 100 + day) * 100 + h) * 100 + m) * 100 + s)
    }

    fn month(self) -> u64 {
        self.0 / 100_000_000 % 100
    }

    fn year(self) -> u64 {
        self.0 / 10_000_000_000
    }

    /// A log line's stamp (`Nov 29 16:09:49`, `Nov  9 ...`, `2026-11-29T16:09:49.5+01:00`);
    /// `now` gives a classic stamp its year. `None` when it is neither shape.
    pub fn parse(stamp: &[u8], now: Stamp) -> Option<Stamp> {
        let num = |b: &[u8]| -> Option<u64> {
            (!b.is_empty() && b.iter().all(u8::is_ascii_digit))
                .then(|| b.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
        };
        if stamp.first()?.is_ascii_digit() {
            // YYYY-MM-DDThh:mm:ss, anything after the seconds ignored.
            if stamp.len() < 19 || stamp[4] != b'-' || stamp[7] != b'-' || stamp[13] != b':' {
                return None;
            }
            return Some(Stamp::new(
                num(&stamp[0..4])?,
                num(&stamp[5..7])?,
                num(&stamp[8..10])?,
                num(&stamp[11..13])?,
                num(&stamp[14..16])?,
                num(&stamp[17..19])?,
            ));
        }
        let month = MONTHS.iter().position(|m| stamp.get(..3) == Some(&m[..]))? as u64 + 1;
        let rest = stamp.get(4..)?.trim_ascii_start();
        let sp = rest.iter().position(|&b| b == b' ')?;
        let day = num(&rest[..sp])?;
        let time = &rest[sp + 1..];
        if time.len() < 8 || time[2] != b':' || time[5] != b':' {
            return None;
        }
        let year = if month > now.month() {
            now.year() - 1
        } else {
            now.year()
        };
        Some(Stamp::new(
            year,
            month,
            day,
            num(&time[0..2])?,
            num(&time[3..5])?,
            num(&time[6..8])?,
        ))
    }

    /// A system time, in UTC.
    pub fn from_system(t: SystemTime) -> Stamp {
        // "2026-11-29T16:09:49Z": the digits are all that is needed.
        let text = humantime::format_rfc3339_seconds(t).to_string();
        Stamp::parse(text.as_bytes(), Stamp(0)).unwrap_or(Stamp(0))
    }
}

/// `--since` could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "--since {0:?}: expected a date (2026-11-29), a date and time (2026-11-29T16:00, \
     2026-11-29 16:00:00) or a duration back from now (7d, 12h, 1d 6h)"
)]
pub struct SinceError(pub String);

/// Reads `--since`: a date, a date and time, or a duration back from `now`.
pub fn parse_since(text: &str, now: SystemTime) -> Result<Stamp, SinceError> {
    let err = || SinceError(text.to_owned());
    let t = text.trim();
    if t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.contains('-') {
        let full = match t.len() {
            10 => format!("{t} 00:00:00"),
            16 => format!("{t}:00"),
            _ => t.to_owned(),
        };
        let when = humantime::parse_rfc3339_weak(&full).map_err(|_| err())?;
        return Ok(Stamp::from_system(when));
    }
    let back: Duration = humantime::parse_duration(t).map_err(|_| err())?;
    let when = now.checked_sub(back).ok_or_else(err)?;
    Ok(Stamp::from_system(when))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn log_stamps() {
        let now = Stamp::from_system(at("2026-11-29T18:00:00Z"));
        let january = Stamp::from_system(at("2027-01-02T00:00:00Z"));
        let rows: &[(&str, Stamp, Option<u64>)] = &[
            ("Nov 29 16:09:49", now, Some(20261129160949)),
            ("Nov  9 06:09:49", now, Some(20261109060949)),
            ("Nov 29 16:09:49.123456", now, Some(20261129160949)),
            ("Dec 31 23:59:59", january, Some(20261231235959)),
            ("Jan  1 00:00:01", january, Some(20270101000001)),
            ("2026-11-29T16:09:49.5+01:00", now, Some(20261129160949)),
            ("2025-01-02T03:04:05Z", now, Some(20250102030405)),
            ("Foo 29 16:09:49", now, None),
            ("Nov 29 16-09-49", now, None),
            ("2026-11-29", now, None),
            ("", now, None),
        ];
        for (text, now, want) in rows {
            assert_eq!(
                Stamp::parse(text.as_bytes(), *now).map(|s| s.0),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn since_forms() {
        let now = at("2026-11-29T18:00:00Z");
        let rows: &[(&str, Option<u64>)] = &[
            ("2026-11-29", Some(20261129000000)),
            ("2026-11-29T16:00", Some(20261129160000)),
            ("2026-11-29 16:00:30", Some(20261129160030)),
            ("2026-11-29T16:00:30Z", Some(20261129160030)),
            ("7d", Some(20261122180000)),
            ("1d 6h", Some(20261128120000)),
            ("90m", Some(20261129163000)),
            ("yesterday", None),
            ("2026-13-01", None),
            ("", None),
        ];
        for (text, want) in rows {
            let got = parse_since(text, now).ok().map(|s| s.0);
            assert_eq!(got, *want, "{text}");
        }
        let err = parse_since("soon", now).unwrap_err().to_string();
        assert!(
            err.starts_with("--since \"soon\": expected a date"),
            "{err}"
        );
    }
}
