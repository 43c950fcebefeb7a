//! A real webhook receiver on 127.0.0.1 for the fault tests. It records every request's
//! `ce-id`, `ce-walletexternalkey` and the sender's address; answers after a configurable delay
//! with a configurable status; and notices requests that the sender gave up on (its process
//! died or it closed the connection) before the answer was ready.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use super::eventually;

/// One request that reached the receiver.
#[derive(Debug, Clone)]
pub struct Request {
    /// `ce-id`: the event id, the receivers' dedupe key.
    pub ce_id: String,
    /// `ce-type`.
    pub ce_type: String,
    /// `ce-walletexternalkey`.
    pub wallet: String,
    /// The sender's address (its port tells which instance sent it, see
    /// [`super::Server::local_tcp_ports`]).
    pub peer: SocketAddr,
    /// When the request arrived.
    pub arrived: Instant,
    /// When it was answered (None: in flight, or cut off).
    pub answered: Option<Instant>,
    /// The status answered.
    pub status: u16,
}

/// The receiver; cheap to clone (all clones share what was seen).
#[derive(Debug, Clone)]
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Mutex<Seen>>,
}

#[derive(Debug)]
struct Seen {
    delay: Duration,
    status: u16,
    next: u64,
    /// Requests in flight, by request number.
    in_flight: HashMap<u64, Request>,
    /// Answered requests.
    answered: Vec<Request>,
    /// Requests whose sender went away before the answer.
    cut_off: Vec<Request>,
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1 that answers 200 at once. Every path takes
    /// `POST`.
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Seen {
            delay: Duration::ZERO,
            status: 200,
            next: 0,
            in_flight: HashMap::new(),
            answered: Vec::new(),
            cut_off: Vec::new(),
        }));
        let app = Router::new()
            .route("/", post(hook))
            .route("/{*path}", post(hook))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        Receiver { addr, inner }
    }

    /// `http://127.0.0.1:port/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Answers each later request after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Answers each later request with `status`.
    pub fn set_status(&self, status: u16) {
        self.lock().status = status;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.lock().expect("not poisoned")
    }

    /// Requests answered so far (any status).
    pub fn answered(&self) -> Vec<Request> {
        self.lock().answered.clone()
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> Vec<Request> {
        self.lock().in_flight.values().cloned().collect()
    }

    /// Requests whose sender went away before the answer.
    pub fn cut_off(&self) -> Vec<Request> {
        self.lock().cut_off.clone()
    }

    /// Every request so far (answered, in flight and cut off) whose sender used one of `ports`
    /// as its local port: with [`super::Server::local_tcp_ports`], the requests of one instance.
    pub fn requests_from(&self, ports: &HashSet<u16>) -> Vec<Request> {
        let seen = self.lock();
        seen.answered
            .iter()
            .chain(seen.in_flight.values())
            .chain(seen.cut_off.iter())
            .filter(|r| ports.contains(&r.peer.port()))
            .cloned()
            .collect()
    }

    /// Events delivered: `ce-id` -> how many times it was answered with 2xx.
    pub fn delivered(&self) -> HashMap<String, u32> {
        let mut counts = HashMap::new();
        for request in self.lock().answered.iter().filter(|r| (200..300).contains(&r.status)) {
            *counts.entry(request.ce_id.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Wallets whose events were delivered: `ce-walletexternalkey` -> the distinct `ce-id`s.
    pub fn delivered_by_wallet(&self) -> HashMap<String, HashSet<String>> {
        let mut wallets: HashMap<String, HashSet<String>> = HashMap::new();
        for request in self.lock().answered.iter().filter(|r| (200..300).contains(&r.status)) {
            wallets
                .entry(request.wallet.clone())
                .or_default()
                .insert(request.ce_id.clone());
        }
        wallets
    }

    /// The wallets of `wallets` with no delivered event yet.
    pub fn missing_wallets(&self, wallets: &[String]) -> Vec<String> {
        let delivered = self.delivered_by_wallet();
        wallets
            .iter()
            .filter(|w| !delivered.contains_key(*w))
            .cloned()
            .collect()
    }

    /// Waits until an event of each wallet in `wallets` was delivered; returns the wallets
    /// still missing after `timeout` (empty: all delivered).
    pub async fn wait_for_wallets(&self, wallets: &[String], timeout: Duration) -> Vec<String> {
        eventually(timeout, || {
            let done = self.missing_wallets(wallets).is_empty();
            async move { done }
        })
        .await;
        self.missing_wallets(wallets)
    }

    /// Waits until each `ce-id` in `ids` was delivered by a request that arrived after `after`;
    /// returns those still missing after `timeout`.
    pub async fn wait_for_redelivery(&self, ids: &[String], after: Instant, timeout: Duration) -> Vec<String> {
        let missing = || {
            let seen = self.lock();
            let again: HashSet<&str> = seen
                .answered
                .iter()
                .filter(|r| r.arrived > after && (200..300).contains(&r.status))
                .map(|r| r.ce_id.as_str())
                .collect();
            ids.iter()
                .filter(|id| !again.contains(id.as_str()))
                .cloned()
                .collect::<Vec<_>>()
        };
        eventually(timeout, || {
            let done = missing().is_empty();
            async move { done }
        })
        .await;
        missing()
    }

    /// Wallets whose events came with more than one `ce-id` (a redelivery must reuse the id;
    /// each scenario creates one event per wallet).
    pub fn wallets_with_several_ids(&self) -> Vec<(String, HashSet<String>)> {
        self.delivered_by_wallet()
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .collect()
    }

    /// Duplicates: deliveries (2xx answers) beyond the first of each `ce-id`.
    pub fn duplicates(&self) -> u64 {
        self.delivered().values().map(|n| u64::from(n.saturating_sub(1))).sum()
    }
}

/// Moves a request from in flight to cut off when its handler is dropped before answering.
struct InFlightGuard {
    seen: Arc<Mutex<Seen>>,
    number: u64,
    answered: bool,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if !self.answered {
            let mut seen = self.seen.lock().expect("not poisoned");
            if let Some(request) = seen.in_flight.remove(&self.number) {
                seen.cut_off.push(request);
            }
        }
    }
}

async fn hook(
    State(seen): State<Arc<Mutex<Seen>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (number, delay, status) = {
        let mut state = seen.lock().expect("not poisoned");
        state.next += 1;
        let number = state.next;
        let request = Request {
            ce_id: header("ce-id"),
            ce_type: header("ce-type"),
            wallet: header("ce-walletexternalkey"),
            peer,
            arrived: Instant::now(),
            answered: None,
            status: state.status,
        };
        state.in_flight.insert(number, request);
        (number, state.delay, state.status)
    };
    let mut guard = InFlightGuard {
        seen: Arc::clone(&seen),
        number,
        answered: false,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    {
        let mut state = seen.lock().expect("not poisoned");
        if let Some(mut request) = state.in_flight.remove(&number) {
            request.answered = Some(Instant::now());
            state.answered.push(request);
        }
    }
    guard.answered = true;
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
