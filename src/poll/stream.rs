//! The IMAP connection: TCP, implicit TLS or STARTTLS, each step under a timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::PollError;
use crate::config::{Imap, ImapTls};

/// A plain or TLS connection, so one `async_imap::Client` type serves all three modes.
#[derive(Debug)]
pub enum ImapStream {
    /// No TLS (loopback or explicitly allowed).
    Plain(TcpStream),
    /// Implicit TLS or after STARTTLS.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connects and negotiates TLS as configured. For `implicit` and `none` the server greeting is
/// still unread; for `starttls` it has been consumed before the upgrade.
pub async fn connect(
    imap: &Imap,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<ImapStream, PollError> {
    let server = format!("{}:{}", imap.host, imap.port);
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((imap.host.as_str(), imap.port)))
        .await
        .map_err(|_| PollError::Timeout {
            server: server.clone(),
            step: "connect",
            after_login: false,
        })?
        .map_err(|source| PollError::Connect {
            server: server.clone(),
            source,
        })?;
    match imap.tls {
        ImapTls::None => Ok(ImapStream::Plain(tcp)),
        ImapTls::Implicit => upgrade(tcp, imap, tls, timeout).await,
        ImapTls::Starttls => {
            let tcp = starttls(tcp, &server, timeout).await?;
            upgrade(tcp, imap, tls, timeout).await
        }
    }
}

async fn upgrade(
    tcp: TcpStream,
    imap: &Imap,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<ImapStream, PollError> {
    let server = format!("{}:{}", imap.host, imap.port);
    let config = tls.ok_or_else(|| PollError::Tls {
        server: server.clone(),
        reason: "no TLS configuration".into(),
    })?;
    let name = ServerName::try_from(imap.host.clone()).map_err(|e| PollError::Tls {
        server: server.clone(),
        reason: format!("invalid server name: {e}"),
    })?;
    let stream = tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| PollError::Timeout {
            server: server.clone(),
            step: "TLS handshake",
            after_login: false,
        })?
        .map_err(|e| match super::reply::io_failure(&e) {
            // A connection reset or closed during the handshake is the network's doing, not
            // a certificate's: worth another try. Everything else is the TLS verdict.
            super::reply::Failure::Connection(reason)
                if e.get_ref().is_none_or(|inner| !inner.is::<rustls::Error>()) =>
            {
                PollError::Lost {
                    server: server.clone(),
                    step: "TLS handshake",
                    reason,
                }
            }
            _ => PollError::Tls {
                server,
                reason: e.to_string(),
            },
        })?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

/// RFC 3501 §6.2.1 by hand: async-imap has no STARTTLS. Reads the greeting, asks for TLS and
/// hands back the bare TCP stream, making sure nothing the server sent is left in a buffer.
async fn starttls(tcp: TcpStream, server: &str, timeout: Duration) -> Result<TcpStream, PollError> {
    let step = async {
        let mut reader = BufReader::new(tcp);
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        if !line.starts_with("* OK") {
            return Ok(Err(format!(
                "unexpected greeting: {}",
                super::reply::printable(line.as_bytes())
            )));
        }
        reader.get_mut().write_all(b"s1 STARTTLS\r\n").await?;
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            if line.starts_with("s1 OK") {
                break;
            }
            if line.starts_with("s1 ") {
                return Ok(Err(format!(
                    "STARTTLS refused: {}",
                    super::reply::printable(line.as_bytes())
                )));
            }
        }
        if !reader.buffer().is_empty() {
            return Ok(Err("server sent data before the TLS handshake".into()));
        }
        Ok(Ok(reader.into_inner()))
    };
    match tokio::time::timeout(timeout, step).await {
        Err(_) => Err(PollError::Timeout {
            server: server.to_owned(),
            step: "STARTTLS",
            after_login: false,
        }),
        // The connection is up: what broke it happened at the greeting or STARTTLS.
        Ok(Err(source)) => Err(PollError::Lost {
            server: server.to_owned(),
            step: "STARTTLS",
            reason: super::reply::io_failure(&source).text().to_owned(),
        }),
        Ok(Ok(Err(reason))) => Err(PollError::Tls {
            server: server.to_owned(),
            reason,
        }),
        Ok(Ok(Ok(tcp))) => Ok(tcp),
    }
}
