//! Fake SMTP servers, for what a real server will not do on demand: a scripted one (one script
//! per connection, for faults and exact wire checks) and a holding one (accepts everything and
//! hands each message to the test, which decides when the lab gets it).

use std::io::{BufRead, BufReader as StdBufReader, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One thing the fake server does, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes verbatim.
    Send(&'static str),
    /// Read one line; it must start with this (ASCII case-insensitively).
    Expect(&'static str),
    /// Read one line; it must be exactly this.
    ExpectExact(&'static str),
    /// Read one line per entry, each starting with its entry; all but the
    /// first must already be buffered when the first arrives, i.e. the client
    /// wrote the group before waiting for any reply (RFC 2920 PIPELINING).
    ExpectGroup(&'static [&'static str]),
    /// The client must hang up without sending anything more.
    ExpectEof,
    /// Read message content up to and including the lone ".".
    ReadMessage,
    /// Read one line of message content, then drop the connection.
    DropMidData,
    /// Never answer again; read and discard until the client hangs up.
    StallUntilClosed,
    /// Act as the TLS server on this connection from now on.
    StartTls,
    /// Start TLS as the server; the client must abort the handshake.
    TlsRefusedByClient,
}

/// What the fake server saw on one connection.
#[derive(Debug)]
pub struct ServerLog {
    /// The client's address.
    pub peer: SocketAddr,
    /// Command lines received, without CRLF.
    pub commands: Vec<String>,
    /// Message content lines received, raw (with their line endings).
    pub data: Vec<Vec<u8>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Serves one script per accepted connection, in order.
pub async fn fake_server(
    scripts: Vec<Vec<Step>>,
    acceptor: Option<TlsAcceptor>,
) -> (u16, tokio::task::JoinHandle<Vec<ServerLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut logs = Vec::new();
        for script in scripts {
            let (socket, peer) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(Box::new(socket) as Box<dyn Io>);
            let mut log = ServerLog {
                peer,
                commands: Vec::new(),
                data: Vec::new(),
            };
            for step in script {
                match step {
                    Step::Send(text) => {
                        conn.get_mut().write_all(text.as_bytes()).await.unwrap();
                        conn.get_mut().flush().await.unwrap();
                    }
                    Step::Expect(prefix) => {
                        let line = read_command(&mut conn).await;
                        assert!(
                            line.to_ascii_uppercase()
                                .starts_with(&prefix.to_ascii_uppercase()),
                            "server expected {prefix:?}, got {line:?}"
                        );
                        log.commands.push(line);
                    }
                    Step::ExpectExact(want) => {
                        let line = read_command(&mut conn).await;
                        assert_eq!(line, want, "server got a different command");
                        log.commands.push(line);
                    }
                    Step::ExpectGroup(prefixes) => {
                        let first = read_command(&mut conn).await;
                        let buffered = conn.buffer().iter().filter(|&&b| b == b'\n').count();
                        assert!(
                            buffered + 1 >= prefixes.len(),
                            "after {first:?} only {buffered} more line(s) had arrived: \
                             the client waited for a reply inside a pipelined group"
                        );
                        let mut lines = vec![first];
                        for _ in 1..prefixes.len() {
                            lines.push(read_command(&mut conn).await);
                        }
                        for (line, prefix) in lines.iter().zip(prefixes) {
                            assert!(
                                line.to_ascii_uppercase()
                                    .starts_with(&prefix.to_ascii_uppercase()),
                                "server expected {prefix:?}, got {line:?}"
                            );
                        }
                        log.commands.extend(lines);
                    }
                    Step::ExpectEof => {
                        let mut rest = Vec::new();
                        let _ = conn.read_to_end(&mut rest).await;
                        assert!(
                            rest.is_empty(),
                            "client sent {:?} instead of hanging up",
                            String::from_utf8_lossy(&rest)
                        );
                        break;
                    }
                    Step::ReadMessage => loop {
                        let mut raw = Vec::new();
                        let n = conn.read_until(b'\n', &mut raw).await.unwrap();
                        assert!(n > 0, "client closed during message content");
                        if raw == b".\r\n" {
                            break;
                        }
                        log.data.push(raw);
                    },
                    Step::DropMidData => {
                        let mut raw = Vec::new();
                        conn.read_until(b'\n', &mut raw).await.unwrap();
                        log.data.push(raw);
                        break;
                    }
                    Step::StallUntilClosed => {
                        let mut sink = [0u8; 1024];
                        while conn.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                        break;
                    }
                    Step::TlsRefusedByClient => {
                        let acceptor = acceptor.clone().expect("script needs a TLS acceptor");
                        let result = acceptor.accept(conn.into_inner()).await;
                        assert!(result.is_err(), "the client accepted the handshake");
                        break;
                    }
                    Step::StartTls => {
                        let acceptor = acceptor.clone().expect("script needs a TLS acceptor");
                        let plain = conn.into_inner();
                        let tls = acceptor.accept(plain).await.unwrap();
                        conn = BufReader::new(Box::new(tls) as Box<dyn Io>);
                    }
                }
            }
            logs.push(log);
        }
        logs
    });
    (port, task)
}

async fn read_command(conn: &mut BufReader<Box<dyn Io>>) -> String {
    let mut raw = Vec::new();
    conn.read_until(b'\n', &mut raw).await.unwrap();
    String::from_utf8_lossy(&raw).trim_end().to_owned()
}

/// Waits for the fake server, failing (not hanging) if the client never
/// made the connections its script expects.
pub async fn server_logs(task: tokio::task::JoinHandle<Vec<ServerLog>>) -> Vec<ServerLog> {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("fake server did not finish its scripts")
        .expect("fake server failed")
}

/// A message the holding server accepted, as it came (dot-stuffed, without the final dot).
pub struct Held {
    pub rcpt: String,
    pub data: Vec<u8>,
}

/// An SMTP server on a free loopback port that accepts every message (250) and hands it to
/// the test instead of delivering it. No STARTTLS: probe sends in clear to it. Any number of
/// connections, each answered alike; every command line is kept ([`Holder::commands`]), so it
/// is also the plain "accepting server" for a test that only needs a dialogue to happen or
/// wants to see what the client said. Dropping it stops it.
#[must_use = "dropping a Holder stops it"]
pub struct Holder {
    port: u16,
    held: mpsc::Receiver<Held>,
    commands: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Holder {
    pub fn start() -> Holder {
        Holder::answering_ehlo(b"250 holder\r\n".to_vec())
    }

    /// A holder that answers EHLO with `reply`, verbatim: any bytes, e.g. a damaged or
    /// hostile capability list (HELO and everything else are answered as usual).
    pub fn answering_ehlo(reply: impl Into<Vec<u8>>) -> Holder {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, held) = mpsc::channel();
        let commands: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let ehlo: Arc<[u8]> = reply.into().into();
        let (log, stopped) = (commands.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                // Woken by Drop's own connection: the listener goes with this thread.
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { return };
                let (tx, log, ehlo) = (tx.clone(), log.clone(), ehlo.clone());
                std::thread::spawn(move || hold(conn, &ehlo, &log, tx));
            }
        });
        Holder {
            port,
            held,
            commands,
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `mx` value for a seed that sends here (also a `--server` value).
    pub fn mx(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The next message probe sent, waiting at most 30 s.
    #[track_caller]
    pub fn next(&self) -> Held {
        self.held
            .recv_timeout(Duration::from_secs(30))
            .expect("probe sent nothing to the holding server within 30 s")
    }

    /// Every command line received so far (without CRLF, message content left out), all
    /// connections together in arrival order. A line is kept before it is answered, so once
    /// the client has its reply (or has exited) the line is here.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks; a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn hold(conn: TcpStream, ehlo: &[u8], log: &Mutex<Vec<String>>, tx: mpsc::Sender<Held>) {
    let mut reader = StdBufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let mut rcpt = String::new();
    let _ = w.write_all(b"220 holder ESMTP\r\n");
    let mut raw = Vec::new();
    loop {
        raw.clear();
        // Bytes, not a String: a client's invalid UTF-8 is kept (lossily), not a hang-up.
        if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
            return;
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
        log.lock().unwrap().push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            ehlo
        } else if upper.starts_with("HELO") {
            b"250 holder\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
            b"250 2.1.5 Ok\r\n"
        } else if upper.starts_with("DATA") {
            let _ = w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n");
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if reader.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == b".\r\n" {
                    break;
                }
                data.extend_from_slice(&l);
            }
            let _ = tx.send(Held {
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            b"250 2.0.0 Ok: held\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 2.0.0 Bye\r\n");
            return;
        } else {
            b"250 2.0.0 Ok\r\n"
        };
        let _ = w.write_all(reply);
    }
}

/// Hands a held message on to a real server at `addr`: SMTP (`EHLO`) to the lab's Postfix, or
/// LMTP (`LHLO`, one reply per recipient) to a delivery agent, from `mail_from` to `rcpt`. It
/// puts the message where a test wants it, when the test wants it; any unexpected reply fails
/// the test with the server's words.
pub fn hand_over(addr: &str, hello: &str, mail_from: &str, rcpt: &str, held: &Held) {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = StdBufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let mut expect = |send: Option<&[u8]>, code: &str| {
        if let Some(bytes) = send {
            w.write_all(bytes).unwrap();
        }
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert!(
                line.starts_with(code),
                "{addr} said {line:?}, expected {code}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect(None, "220");
    expect(
        Some(format!("{hello} holder.lab.test\r\n").as_bytes()),
        "250",
    );
    expect(
        Some(format!("MAIL FROM:<{mail_from}>\r\n").as_bytes()),
        "250",
    );
    expect(Some(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()), "250");
    expect(Some(b"DATA\r\n"), "354");
    let mut body = held.data.clone();
    body.extend_from_slice(b".\r\n");
    expect(Some(&body), "250");
    expect(Some(b"QUIT\r\n"), "221");
}
