//! Receivers that misbehave on purpose. They speak HTTP/1.1 on raw TCP (or TLS), so that each
//! byte of an answer, and when it is sent, is the test's choice: a receiver that hangs, resets
//! the connection, closes half-way, trickles, or answers with a huge body. The behaviour can be
//! changed while the server runs ("the receiver behaves again"), and every request that came
//! in is recorded with its `ce-id`, so a test can count what was lost and what arrived twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the receiver does with the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// `200` with an empty body.
    Accept,
    /// `200` with an OAuth2 token response.
    Token,
    /// Reads the request and never answers; the connection stays open until the sender drops it.
    Hang,
    /// Reads the request and resets the connection (RST, no FIN).
    Reset,
    /// Sends half a status line and headers, then closes.
    CloseMidHeaders,
    /// Sends a complete `200` head that announces a body, a few bytes of it, then closes.
    CloseMidBody,
    /// Sends a complete `200` answer one byte at a time, `interval` apart, from the first byte
    /// of the status line.
    Trickle(Duration),
    /// Sends a `200` head at once, then its 100-byte body one byte at a time, `interval` apart.
    TrickleBody(Duration),
    /// Answers `status` with a body of `bytes` bytes, delimited by `Content-Length` or, when
    /// `chunked`, by chunked transfer coding (so the size is not known up front).
    Huge {
        /// The status code.
        status: u16,
        /// Body size.
        bytes: usize,
        /// Chunked instead of a `Content-Length`.
        chunked: bool,
    },
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The `ce-id` header (empty for requests without one, such as a token request).
    pub ce_id: String,
    /// The `ce-walletexternalkey` header.
    pub wallet: String,
    /// The `authorization` header.
    pub authorization: String,
    /// Whether the receiver sent a complete `2xx` status line for it (it accepted the event);
    /// known once the answer is over.
    pub accepted: bool,
    /// What the receiver did with it.
    pub behaviour: Behaviour,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    seen: Mutex<Vec<Seen>>,
    /// TCP connections accepted (for a TLS receiver: handshakes tried).
    connections: Mutex<usize>,
    /// Bumped on every change of `seen` or `connections`, so waiters wake.
    changes: watch::Sender<u64>,
}

impl Shared {
    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// A receiver on 127.0.0.1 with a behaviour that can be switched at any time.
#[derive(Clone)]
pub struct FaultReceiver {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub base_url: String,
}

impl FaultReceiver {
    /// A plain-HTTP receiver behaving as `behaviour`.
    pub async fn start(behaviour: Behaviour) -> FaultReceiver {
        FaultReceiver::serve(behaviour, None).await
    }

    /// A receiver on HTTPS with a self-signed certificate for `localhost` and 127.0.0.1 (no
    /// sender that checks certificates against public roots can get through).
    pub async fn start_self_signed_tls(behaviour: Behaviour) -> FaultReceiver {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("a self-signed certificate");
        let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("TLS server configuration");
        FaultReceiver::serve(behaviour, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(behaviour: Behaviour, tls: Option<tokio_rustls::TlsAcceptor>) -> FaultReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a receiver port");
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            seen: Mutex::new(Vec::new()),
            connections: Mutex::new(0),
            changes: watch::channel(0).0,
        });
        let serving = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                *serving.connections.lock().unwrap() += 1;
                serving.changed();
                let shared = serving.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => connection(shared, stream).await,
                        Some(acceptor) => {
                            // A sender that refuses the certificate ends the handshake here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                connection(shared, stream).await;
                            }
                        }
                    }
                });
            }
        });
        FaultReceiver {
            shared,
            base_url: format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Switches the behaviour for the requests that come from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        *self.shared.connections.lock().unwrap()
    }

    /// Accepted requests by `ce-id`: how many times each event was accepted.
    pub fn accepted_by_id(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for seen in self.seen().into_iter().filter(|s| s.accepted) {
            *counts.entry(seen.ce_id).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until `done` holds for this receiver, or panics with `what` after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&FaultReceiver) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut changes = self.shared.changes.subscribe();
        loop {
            if done(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                let seen = self.seen();
                panic!(
                    "receiver {}: {what} not reached within {limit:?}; {} requests seen ({} accepted), {} connections",
                    self.base_url,
                    seen.len(),
                    seen.iter().filter(|s| s.accepted).count(),
                    self.connections()
                );
            }
        }
    }
}

/// A request head and body, read from the connection.
struct Request {
    headers: HashMap<String, String>,
}

/// Serves requests on one connection (keep-alive) until the sender closes it or the behaviour
/// ends it.
async fn connection<S: AsyncRead + AsyncWrite + Unpin + 'static>(shared: Arc<Shared>, stream: S) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let behaviour = shared.behaviour.lock().unwrap().clone();
        let mut seen = Seen {
            ce_id: request.headers.get("ce-id").cloned().unwrap_or_default(),
            wallet: request.headers.get("ce-walletexternalkey").cloned().unwrap_or_default(),
            authorization: request.headers.get("authorization").cloned().unwrap_or_default(),
            accepted: false,
            behaviour: behaviour.clone(),
        };
        // Recorded on arrival (a hanging answer may never end), completed after the answer.
        let index = {
            let mut all = shared.seen.lock().unwrap();
            all.push(seen.clone());
            all.len() - 1
        };
        shared.changed();
        let keep_alive = answer(&mut stream, &behaviour, &mut seen).await;
        shared.seen.lock().unwrap()[index].accepted = seen.accepted;
        shared.changed();
        if !keep_alive {
            return;
        }
    }
}

/// Acts out `behaviour` for one request; whether the connection can serve another.
async fn answer<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    stream: &mut BufReader<S>,
    behaviour: &Behaviour,
    seen: &mut Seen,
) -> bool {
    match behaviour {
        Behaviour::Accept => {
            seen.accepted = true;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .is_ok()
        }
        Behaviour::Token => {
            let body = br#"{"access_token":"fault-test-token","token_type":"Bearer","expires_in":3600}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            seen.accepted = true;
            stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
        }
        Behaviour::Hang => {
            // Hold the connection without a byte of answer until the sender gives up on it.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            false
        }
        Behaviour::Reset => {
            // SO_LINGER 0: closing sends RST instead of FIN (and never blocks, the time being 0).
            #[allow(deprecated)]
            let _ = stream.get_ref_tcp().map(|tcp| tcp.set_linger(Some(Duration::ZERO)));
            false
        }
        Behaviour::CloseMidHeaders => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-ty").await;
            let _ = stream.shutdown().await;
            false
        }
        Behaviour::CloseMidBody => {
            seen.accepted = true;
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"received\":",
                )
                .await;
            let _ = stream.shutdown().await;
            false
        }
        Behaviour::Trickle(interval) => {
            let whole = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
            for (sent, byte) in whole.iter().enumerate() {
                if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
                // The status line is complete after its CRLF: from then on the sender has a 200.
                if sent + 1 == "HTTP/1.1 200 OK\r\n".len() {
                    seen.accepted = true;
                }
                tokio::time::sleep(*interval).await;
            }
            true
        }
        Behaviour::TrickleBody(interval) => {
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n")
                .await
                .is_err()
            {
                return false;
            }
            seen.accepted = true;
            for _ in 0..100 {
                if stream.write_all(b".").await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
                tokio::time::sleep(*interval).await;
            }
            true
        }
        Behaviour::Huge { status, bytes, chunked } => {
            seen.accepted = (200..300).contains(status);
            huge(stream, *status, *bytes, *chunked).await;
            false
        }
    }
}

/// Streams a body of `bytes` bytes; stops early when the sender hangs up (it is expected to,
/// once it has read what it keeps).
async fn huge<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, bytes: usize, chunked: bool) {
    let framing = if chunked {
        "transfer-encoding: chunked".to_string()
    } else {
        format!("content-length: {bytes}")
    };
    let head = format!("HTTP/1.1 {status} Big\r\ncontent-type: application/json\r\n{framing}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // A JSON document that starts like a token response and never ends within the limit.
    let mut body = br#"{"access_token":""#.to_vec();
    body.resize(64 * 1024, b'a');
    let mut left = bytes;
    let mut piece: &[u8] = &body;
    while left > 0 {
        let take = piece.len().min(left);
        let written = if chunked {
            let mut framed = format!("{take:x}\r\n").into_bytes();
            framed.extend_from_slice(&piece[..take]);
            framed.extend_from_slice(b"\r\n");
            stream.write_all(&framed).await
        } else {
            stream.write_all(&piece[..take]).await
        };
        if written.is_err() {
            return;
        }
        left -= take;
        // After the opening, the rest is the token's letters.
        piece = &body[body.len() - 60 * 1024..];
    }
    if chunked {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let _ = stream.flush().await;
}

/// Reads one request (head and `Content-Length` body); `None` when the connection closed.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Option<Request> {
    let mut line = String::new();
    // The request line (blank lines before it are allowed by RFC 9112).
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if !line.trim_end().is_empty() {
            break;
        }
    }
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request { headers })
}

/// The TCP socket under a plain or TLS stream, for socket options.
trait TcpUnder {
    fn get_ref_tcp(&self) -> Option<&TcpStream>;
}

impl<S: AsyncRead + 'static> TcpUnder for BufReader<S> {
    fn get_ref_tcp(&self) -> Option<&TcpStream> {
        let inner: &dyn std::any::Any = self.get_ref();
        if let Some(tcp) = inner.downcast_ref::<TcpStream>() {
            return Some(tcp);
        }
        inner
            .downcast_ref::<tokio_rustls::server::TlsStream<TcpStream>>()
            .map(|tls| tls.get_ref().0)
    }
}
