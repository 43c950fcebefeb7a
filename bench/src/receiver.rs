//! The fast receiver: answers every webhook with 200 at once, records when each `ce-id`
//! arrived (and for which wallet), and verifies the signature of a sample of requests.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::sync::Notify;

/// One request that arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The `ce-walletexternalkey` header (empty when absent).
    pub wallet: String,
    /// When it arrived, on the shared bench clock.
    pub at: Duration,
}

/// What the receiver has seen; shared with the driver.
#[derive(Debug)]
pub struct Receiver {
    epoch: Instant,
    /// Secret to verify signatures with (set once the channel exists).
    secret: Mutex<Option<String>>,
    /// Verify every `sample_every`-th request.
    sample_every: u64,
    seen_ids: Mutex<HashSet<String>>,
    arrivals: Mutex<Vec<Arrival>>,
    /// Requests, duplicates included.
    pub requests: AtomicU64,
    /// Distinct `ce-id`s.
    pub unique: AtomicU64,
    /// Signatures checked and found valid / invalid.
    pub verified: AtomicU64,
    /// Signatures that did not verify (or were missing).
    pub bad_signatures: AtomicU64,
    changed: Notify,
}

impl Receiver {
    /// A receiver whose times are measured from `epoch`.
    pub fn new(epoch: Instant, sample_every: u64) -> Arc<Receiver> {
        Arc::new(Receiver {
            epoch,
            secret: Mutex::new(None),
            sample_every: sample_every.max(1),
            seen_ids: Mutex::new(HashSet::new()),
            arrivals: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            changed: Notify::new(),
        })
    }

    /// Sets the channel's signing secret.
    pub fn set_secret(&self, secret: Option<String>) {
        *self.secret.lock().expect("not poisoned") = secret;
    }

    /// Forgets everything seen (between scenarios).
    pub fn reset(&self) {
        self.seen_ids.lock().expect("not poisoned").clear();
        self.arrivals.lock().expect("not poisoned").clear();
        self.requests.store(0, Ordering::SeqCst);
        self.unique.store(0, Ordering::SeqCst);
        self.verified.store(0, Ordering::SeqCst);
        self.bad_signatures.store(0, Ordering::SeqCst);
    }

    /// The arrivals so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("not poisoned").clone()
    }

    /// Distinct events received so far.
    pub fn unique_count(&self) -> u64 {
        self.unique.load(Ordering::SeqCst)
    }

    /// Waits until `count` distinct events arrived or `timeout` passed; returns the count.
    pub async fn wait_for(&self, count: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let now = self.unique_count();
            if now >= count {
                return now;
            }
            if tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    _ = notified => {},
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {},
                }
            })
            .await
            .is_err()
            {
                return self.unique_count();
            }
        }
    }

    fn record(&self, headers: &HeaderMap, body: &[u8]) {
        let at = self.epoch.elapsed();
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        if n % self.sample_every == 0 {
            let secret = self.secret.lock().expect("not poisoned").clone();
            if let Some(secret) = secret {
                let ok = webhook_verify::verify_now(
                    header("x-credenco-signature"),
                    body,
                    &[secret.as_bytes()],
                    webhook_verify::DEFAULT_TOLERANCE,
                )
                .is_ok();
                let counter = if ok { &self.verified } else { &self.bad_signatures };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = header("ce-id");
        let fresh = self.seen_ids.lock().expect("not poisoned").insert(id.to_string());
        if fresh {
            self.arrivals.lock().expect("not poisoned").push(Arrival {
                wallet: header("ce-walletexternalkey").to_string(),
                at,
            });
            self.unique.fetch_add(1, Ordering::SeqCst);
            self.changed.notify_waiters();
        }
    }
}

async fn hook(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.record(&headers, &body);
    StatusCode::OK
}

/// Serves the receiver on `addr` (port 0 picks one) until the process ends; returns the bound
/// address. Every path accepts `POST`.
pub async fn serve(receiver: Arc<Receiver>, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/{*path}", post(hook))
        .route("/", post(hook))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("receiver stopped: {err}");
        }
    });
    Ok(bound)
}
