//! The fake HTTPS endpoint: OAuth 2.0 token and introspection endpoints answer JSON from a
//! handler, and every request is kept for assertions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::tls::{Cert, server_config};

/// One request: its path and (form-encoded) body.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub body: String,
}

impl Request {
    /// The body has this `name=value` pair, exactly.
    pub fn has(&self, pair: &str) -> bool {
        self.body.split('&').any(|p| p == pair)
    }
}

/// A status line (`"200 OK"`) and a JSON body.
pub type Response = (&'static str, String);

pub struct FakeHttps {
    pub port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl FakeHttps {
    /// On a free loopback port.
    pub fn start(
        cert: Cert,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> FakeHttps {
        FakeHttps::serve(TcpListener::bind("127.0.0.1:0").unwrap(), cert, handler)
    }

    /// On a fixed port (one a server under test was configured with); panics if it is taken.
    pub fn start_on(
        port: u16,
        cert: Cert,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> FakeHttps {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("127.0.0.1:{port} is taken: {e}"));
        FakeHttps::serve(listener, cert, handler)
    }

    fn serve(
        listener: TcpListener,
        cert: Cert,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> FakeHttps {
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let config = server_config(cert);
        let handler = Arc::new(handler);
        let log = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let (config, handler, log) = (config.clone(), handler.clone(), log.clone());
                std::thread::spawn(move || {
                    // A stuck client must not keep a thread forever.
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut stream = rustls::StreamOwned::new(conn, tcp);
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    log.lock().unwrap().push(request.clone());
                    let (status, json) = handler(&request);
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                        json.len()
                    );
                    let _ = stream.write_all(reply.as_bytes());
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                });
            }
        });
        FakeHttps { port, seen }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one HTTP/1.1 request (head, then Content-Length bytes of body); `None` when the TLS
/// handshake or the connection failed before a request came.
fn read_request(
    stream: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
) -> Option<Request> {
    let mut buf = [0u8; 8192];
    let mut got = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) if got.is_empty() => return None,
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(split) = text.find("\r\n\r\n") {
            let len: usize = text[..split]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if got.len() >= split + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    Some(Request {
        path,
        body: body.to_owned(),
    })
}
