//! The connections under the HTTP server: how they are served, the JSON body of the answers
//! hyper gives itself, and how a refused request's connection is closed so that its client
//! reads the answer.
//!
//! hyper answers a request it cannot parse before any of our code sees it: a malformed request
//! line, a malformed header or one holding a NUL, a bad `Content-Length` or `Transfer-Encoding`
//! (400), a request head over [`MAX_HEAD_BYTES`] or with more than 100 headers (431), a URI over
//! 65,534 bytes (414). It writes the status with an empty body and closes the connection; hyper
//! has no setting to change that answer. [`JsonErrorListener`] wraps each accepted connection
//! in a [`JsonErrorIo`], which recognises that answer as it is written and sends it with the
//! JSON error body (`{status, error, message}`) that every other error of the API has.
//!
//! How it is recognised: an answer hyper makes itself is written alone, as one complete
//! response head with no body, and it lacks the `x-correlation-id` header that the request
//! middleware puts on every response of ours. A write that is anything else (a head of ours, a
//! body, part of either) passes through untouched.
//!
//! Closing after such an answer: the client may still be sending (the rest of an oversized
//! head). Closing a socket with unread input makes the kernel reset the connection, and a reset
//! can destroy the answer before the client has read it; a client that sends everything before
//! it reads (Python's `urllib`, `requests`) sees only a broken pipe. So the connection first
//! ends its sending side, then reads and discards what still comes, within [`DRAIN_BYTES`] and
//! [`DRAIN_TIME`], and only then closes. The request middleware does the same for a body it
//! refuses with 413 (`api::limit_body`).

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::serve::Listener as _;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::extract::CorrelationId;
use crate::error::ErrorBody;

/// The most a request head (request line and headers) may take; a longer one is answered 431.
/// hyper's own bound, its read buffer, is about 400 KiB; a bearer token and the headers of any
/// ordinary client take a few KiB. It leaves room for the longest URI hyper takes (65,534
/// bytes) with 16 KiB of headers, so that a URI over that still gets its own 414.
pub const MAX_HEAD_BYTES: usize = 80 * 1024;

/// How much of a refused request is still read and thrown away before its connection is closed
/// (see the module documentation). A client that sends more is cut off: reading on would cost
/// more than its answer is worth.
pub const DRAIN_BYTES: u64 = 16 * 1024 * 1024;

/// How long a refused request's connection is read from at most before it is closed.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` over HTTP/1 (what `axum::serve` offers in this build), with
/// request heads bounded by [`MAX_HEAD_BYTES`], until `stop` is cancelled; then stops
/// accepting, lets each open connection finish the request it is serving, and returns once all
/// are closed (the caller bounds how long it waits).
pub async fn serve(mut listener: JsonErrorListener, router: Router, stop: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder.max_header_size(MAX_HEAD_BYTES);
    // Each connection holds a receiver; `closed` resolves once every one is dropped.
    let (all_closed, open) = watch::channel(());
    loop {
        let io = tokio::select! {
            (io, _address) = listener.accept() => io,
            () = stop.cancelled() => break,
        };
        let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router.clone()));
        let stop = stop.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            // A connection that failed (reset, cut off, a request hyper refused) concerns only
            // its client.
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open);
    all_closed.closed().await;
}

/// A TCP listener whose connections give hyper's own error answers a JSON body.
#[derive(Debug)]
pub struct JsonErrorListener(TcpListener);

impl JsonErrorListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener) -> JsonErrorListener {
        JsonErrorListener(listener)
    }
}

impl axum::serve::Listener for JsonErrorListener {
    type Io = JsonErrorIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, address)) => {
                    // Answers go out as soon as they are written, not after the client's
                    // delayed acknowledgement of the previous segment.
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(error = %err, "cannot set TCP_NODELAY");
                    }
                    return (JsonErrorIo::new(stream), address);
                }
                // A connection that failed before it was accepted concerns only its client.
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                // Out of file descriptors, most likely: accepting again at once would spin.
                Err(err) => {
                    tracing::error!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that passes everything through, except that an error answer hyper wrote by
/// itself is replaced with the same status and headers plus a JSON body, and that the
/// connection is then drained before it closes.
#[derive(Debug)]
pub struct JsonErrorIo<T> {
    inner: T,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
    /// Set once a replacement was written: closing then drains what the client still sends.
    drain: Option<Drain>,
}

/// The state of draining a connection before it closes.
#[derive(Debug)]
struct Drain {
    /// Whether the sending side is shut down (the answer is complete on the wire).
    sent_fin: bool,
    /// Bytes read and discarded so far.
    discarded: u64,
    /// When reading stops at the latest (started with the first close attempt).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> JsonErrorIo<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> JsonErrorIo<T> {
        JsonErrorIo {
            inner,
            pending: None,
            drain: None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> JsonErrorIo<T> {
    /// Ends the sending side, then reads and discards until the client closes, an error, or the
    /// bounds of [`DRAIN_BYTES`] and [`DRAIN_TIME`]. Ready when the connection may be closed.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(drain) = self.drain.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if !drain.sent_fin {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            drain.sent_fin = true;
        }
        let deadline = drain
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(DRAIN_TIME)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        let mut scratch = [0u8; 8192];
        while drain.discarded < DRAIN_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => drain.discarded += buf.filled().len() as u64,
                // Reset by the client: nothing is left to protect.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> JsonErrorIo<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for JsonErrorIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(replacement) = with_json_body(buf) {
            self.pending = Some((replacement, 0));
            // hyper closes the connection after such an answer.
            self.drain = Some(Drain {
                sent_fin: false,
                discarded: 0,
                deadline: None,
            });
            // Written as far as the socket takes it now; flush and shutdown write the rest.
            if let Poll::Ready(Err(err)) = self.poll_pending(cx) {
                return Poll::Ready(Err(err));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        if self.drain.is_some() {
            return self.poll_drain(cx);
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// No vectored writes: hyper then hands over each response head in one buffer of its own,
    /// which is what [`with_json_body`] looks at.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// When `written` is exactly one response head that hyper made itself (an error status, no
/// body, no correlation id), the same answer with a JSON error body; otherwise `None`.
fn with_json_body(written: &[u8]) -> Option<Vec<u8>> {
    if !written.starts_with(b"HTTP/1.") {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(length)) = response.parse(written) else {
        return None;
    };
    let status = StatusCode::from_u16(response.code?).ok()?;
    let ours = response
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case(CorrelationId::HEADER));
    let has_body = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
    });
    if length != written.len() || ours || has_body || !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    let message = match status {
        StatusCode::BAD_REQUEST => {
            "the request is not valid HTTP/1.1: its request line, a header (a NUL or line break in \
             it, say) or its framing (Content-Length, Transfer-Encoding) is malformed"
        }
        StatusCode::URI_TOO_LONG => "the request URI is longer than the server accepts (65534 bytes)",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request head is larger than the server accepts (100 headers, 80 KiB in all)"
        }
        _ => reason,
    };
    let body = serde_json::to_vec(&ErrorBody {
        status: status.as_u16(),
        error: reason.to_string(),
        message: message.to_string(),
        details: None,
    })
    .ok()?;
    let version = if response.version == Some(0) { "1.0" } else { "1.1" };
    let mut out = format!("HTTP/{version} {} {reason}\r\n", status.as_u16()).into_bytes();
    for header in response.headers.iter() {
        // hyper's own framing headers are replaced by ours.
        let framing = ["content-length", "content-type", "connection"]
            .iter()
            .any(|n| header.name.eq_ignore_ascii_case(n));
        if !framing {
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(header.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(
        format!(
            "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_error_answers_get_a_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 02 Dec 2025 06:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(with_json_body(head).expect("rewritten")).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains("date: Tue, 02 Dec 2025 06:00:00 GMT"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 431);
        assert_eq!(body["error"], "Request Header Fields Too Large");
        assert!(body["message"].as_str().unwrap().contains("headers"));
    }

    #[test]
    fn everything_else_passes_untouched() {
        let cases: [&[u8]; 7] = [
            // A response of ours: it carries the correlation id.
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-correlation-id: c\r\ncontent-length: 0\r\n\r\n",
            // A head followed by (part of) its body.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n",
            // Success and informational answers.
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            // Body bytes, and an incomplete head.
            b"{\"status\":400}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ];
        for case in cases {
            assert!(with_json_body(case).is_none(), "{}", String::from_utf8_lossy(case));
        }
    }
}
