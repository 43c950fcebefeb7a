//! A real HTTP receiver on 127.0.0.1 whose answers a test scripts in advance: a status with
//! headers, or no answer at all. It records every request it gets, and counts the hits on a
//! second path that redirects point at. It can also serve HTTPS with a given rustls server
//! configuration (a private CA's certificate, client certificates required), recording why
//! each refused TLS handshake failed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status and these headers.
    Status(u16, Vec<(&'static str, String)>),
    /// Never answer.
    Hang,
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing"))
            .to_str()
            .unwrap()
    }
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
    redirect_target_hits: AtomicUsize,
    token_requests: Mutex<Vec<String>>,
    /// Bodies containing this text are answered with this status, before any script.
    refuse: Mutex<Option<(String, u16)>>,
    /// Why TLS handshakes failed, in order.
    handshake_errors: Mutex<Vec<String>>,
}

/// The running receiver; answers 200 when the script is empty.
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    inner: Arc<Inner>,
    tls: bool,
}

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/hook", post(hook))
        .route("/target", any(target))
        .route("/token", post(token))
        .with_state(inner)
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = router(inner.clone());
        let port = serve(app).await;
        Receiver {
            port,
            inner,
            tls: false,
        }
    }

    /// The same receiver over HTTPS with `config` (HTTP/1.1 only).
    pub async fn start_tls(config: rustls::ServerConfig) -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = router(inner.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let errors = inner.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, app, errors) = (acceptor.clone(), app.clone(), errors.clone());
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        }
                        Err(err) => errors.handshake_errors.lock().unwrap().push(err.to_string()),
                    }
                });
            }
        });
        Receiver { port, inner, tls: true }
    }

    /// `http://127.0.0.1:{port}/hook` (`https` for a TLS receiver).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/hook", self.port)
    }

    /// Why the TLS handshakes that failed did, in order.
    pub fn handshake_errors(&self) -> Vec<String> {
        self.inner.handshake_errors.lock().unwrap().clone()
    }

    /// Queues answers, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// Answers `code` to every request whose body contains `text` (`None`: stop).
    pub fn refuse_containing(&self, rule: Option<(&str, u16)>) {
        *self.inner.refuse.lock().unwrap() = rule.map(|(text, code)| (text.to_string(), code));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The form bodies of the requests to the OAuth2 token endpoint `/token`.
    pub fn token_requests(&self) -> Vec<String> {
        self.inner.token_requests.lock().unwrap().clone()
    }

    pub fn redirect_target_hits(&self) -> usize {
        self.inner.redirect_target_hits.load(Ordering::SeqCst)
    }
}

/// Serves `app` on a free port of 127.0.0.1 until the test ends; the port.
pub async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A scripted status, shorthand.
pub fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new())
}

async fn hook(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let refused = inner
        .refuse
        .lock()
        .unwrap()
        .as_ref()
        .filter(|(text, _)| String::from_utf8_lossy(&body).contains(text.as_str()))
        .map(|(_, code)| status(*code));
    inner.received.lock().unwrap().push(Received { headers, body });
    let reply = refused.or_else(|| inner.script.lock().unwrap().pop_front());
    match reply.unwrap_or(Reply::Status(200, Vec::new())) {
        Reply::Status(code, headers) => {
            let mut response = (StatusCode::from_u16(code).unwrap(), "scripted answer").into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}

async fn target(State(inner): State<Arc<Inner>>) -> StatusCode {
    inner.redirect_target_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

/// An OAuth2 token endpoint issuing `token-1`, `token-2`, ... valid for an hour.
async fn token(State(inner): State<Arc<Inner>>, body: String) -> axum::Json<serde_json::Value> {
    let mut requests = inner.token_requests.lock().unwrap();
    requests.push(body);
    axum::Json(serde_json::json!({
        "access_token": format!("token-{}", requests.len()),
        "token_type": "Bearer",
        "expires_in": 3600
    }))
}
