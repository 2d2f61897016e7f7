//! At most so many IMAP connections at a time, across all accounts of a poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::futures::Notified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// A connection limit shared by the accounts of one poll. An account holds a permit for as
/// long as its connection is open; between rounds it hands it over when another account waits,
/// and an account waiting in IDLE is woken for that, so that IDLE cannot starve the accounts
/// beyond the limit.
#[derive(Debug)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    wanted: Notify,
}

impl ConnectionLimit {
    /// A limit of `max` connections (at least one).
    pub fn new(max: usize) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            permits: Arc::new(Semaphore::new(max.max(1))),
            waiting: AtomicUsize::new(0),
            wanted: Notify::new(),
        })
    }

    /// Waits for a free connection slot. The semaphore is never closed, so this always ends
    /// with a permit; `None` would only mean "no limit".
    pub(crate) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        // Counted while waiting, also when the wait is cancelled (an aborted poll).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if self.permits.available_permits() == 0 {
            self.wanted.notify_waiters();
        }
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Completes when an account starts waiting for a slot while all are taken. Enable it,
    /// then check [`ConnectionLimit::contended`], then wait: no call is missed in between.
    pub(crate) fn wanted(&self) -> Notified<'_> {
        self.wanted.notified()
    }

    /// True when every slot is taken and some account waits for one.
    pub(crate) fn contended(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0 && self.permits.available_permits() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_account_makes_the_limit_contended() {
        let limit = ConnectionLimit::new(1);
        let first = limit.acquire().await;
        assert!(first.is_some());
        assert!(!limit.contended(), "nobody waits yet");
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire().await.is_some() })
        };
        // The waiter registers before it blocks; yield until it has.
        while !limit.contended() {
            tokio::task::yield_now().await;
        }
        drop(first);
        assert!(waiter.await.unwrap());
        assert!(!limit.contended());
    }

    #[tokio::test]
    async fn an_idle_holder_is_told_when_someone_waits() {
        let limit = ConnectionLimit::new(1);
        let held = limit.acquire().await;
        let wanted = limit.wanted();
        tokio::pin!(wanted);
        wanted.as_mut().enable();
        assert!(!limit.contended());
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire().await.is_some() })
        };
        // Completes only because the waiter asked; a missed notification would hang here.
        wanted.await;
        assert!(limit.contended());
        drop(held);
        assert!(waiter.await.unwrap());
        assert!(!limit.contended());
    }
}
