//! When the next scheduled run starts: ticks on a fixed grid (`every` apart, from serve's
//! start), each run starting a random jitter after its tick. A run still going at a tick
//! delays that tick's run until it ends; ticks missed beyond that one collapse into it, so a
//! slow run never queues a burst of runs behind it.

use std::hash::BuildHasher as _;
use std::time::Duration;

use tokio::time::Instant;

/// The schedule's state: the grid tick of the next scheduled run and when that run starts.
#[derive(Debug, Clone)]
pub(super) struct Ticks {
    every: Duration,
    jitter: Duration,
    tick: Instant,
    start: Instant,
}

impl Ticks {
    /// The first tick is `now`: a freshly started serve runs at once (after its jitter), so
    /// its metrics are not empty for a whole interval.
    pub(super) fn new(every: Duration, jitter: Duration, now: Instant) -> Ticks {
        Ticks {
            every,
            jitter,
            tick: now,
            start: now + draw(jitter),
        }
    }

    /// When the next scheduled run starts (in the past when a run overlapped its tick: it is
    /// due at once).
    pub(super) fn start(&self) -> Instant {
        self.start
    }

    /// A scheduled run starts at `now`: the next tick is the first grid tick after it.
    pub(super) fn advance(&mut self, now: Instant) {
        self.advance_with(now, draw(self.jitter));
    }

    fn advance_with(&mut self, now: Instant, jitter: Duration) {
        let mut next = self.tick + self.every;
        while next <= now {
            next += self.every;
        }
        self.tick = next;
        self.start = next + jitter;
    }
}

/// A random delay from zero up to (not including) `max`. Not for secrets: only to spread
/// hosts, so std's randomly keyed hasher is enough and no RNG crate is needed.
fn draw(max: Duration) -> Duration {
    let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random =
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    Duration::from_nanos(random % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ticks_keep_their_grid_and_an_overlap_delays_one_run() {
        let t0 = Instant::now();
        let mut t = Ticks::new(10 * S, Duration::ZERO, t0);
        assert_eq!(t.start(), t0);
        // (run starts at, jitter drawn) -> next start
        for (now, jitter, next) in [
            (0, 0, 10),  // on time
            (10, 2, 22), // jitter after the tick, grid unchanged
            (22, 0, 30), // a late start does not move the grid
            (45, 0, 50), // a run that overlapped tick 40 started late at 45; 40 is not run twice
            (50, 0, 60),
            (95, 0, 100), // 60..90 missed by a long run: one delayed run, then the grid
        ] {
            t.advance_with(t0 + now * S, jitter * S);
            assert_eq!(t.start(), t0 + next * S, "run at {now}");
        }
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        assert_eq!(draw(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(draw(3 * S) < 3 * S);
        }
    }
}
