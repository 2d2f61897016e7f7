//! Loopback plumbing: a port that proves nobody connected, a port nobody listens on, and a
//! bounded wait on a condition (instead of sleeping for a guessed time).

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback port that records whether anyone connected: proof that nothing was contacted.
/// It never answers, so it is also a server that stalls from the first byte (the kernel
/// completes the handshake from the listen queue).
pub struct Sentinel {
    listener: TcpListener,
}

impl Sentinel {
    pub fn new() -> Sentinel {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Sentinel { listener }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// `127.0.0.1:PORT`, for a seed's `mx`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// True if a connection is waiting (the process under test has exited by now, so any
    /// attempt it made is already in the accept queue).
    pub fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }

    /// The next connection, once one comes; kept open by the caller, silent.
    pub fn accept(&self) -> Option<TcpStream> {
        self.listener.accept().ok().map(|(conn, _)| conn)
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Re-checks `f` every 20 ms until it has an answer; panics naming `what` after `limit`.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
