//! Concurrent clients creating wallets until stopped: the load that every fault scenario runs
//! its fault under. Each 201 is an acknowledged wallet (and an acknowledged
//! `wallet.created.v1` event); every other answer is counted by status, and each one that
//! breaks the error contract (not JSON, no error shape, a 503 without `Retry-After`) is kept.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use super::client::{Answer, Client};
use super::eventually;

/// A running load.
#[derive(Debug)]
pub struct Load {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    state: Mutex<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    acknowledged: Vec<String>,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
    broken: Vec<String>,
    broken_total: u64,
    slowest: Duration,
}

/// What a load saw from start to stop.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// `walletExternalKey` of every 201, in the order they came.
    pub acknowledged: Vec<String>,
    /// Count of answers by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection refused or cut).
    pub transport_errors: u64,
    /// Answers that break the contract: a 201 without a key, an error without the JSON error
    /// shape, a 503 without `Retry-After` (the first 20, described).
    pub broken: Vec<String>,
    /// How many answers broke the contract.
    pub broken_total: u64,
    /// The slowest answer.
    pub slowest: Duration,
}

impl LoadReport {
    /// Answers with this status.
    pub fn count(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Answers with a 5xx status.
    pub fn server_errors(&self) -> u64 {
        self.by_status.range(500..600).map(|(_, n)| n).sum()
    }

    /// One line for the test output.
    pub fn summary(&self) -> String {
        format!(
            "{} acknowledged, answers by status {:?}, {} without an answer, slowest {:?}",
            self.acknowledged.len(),
            self.by_status,
            self.transport_errors,
            self.slowest
        )
    }
}

impl Load {
    /// Starts `concurrency` clients, each creating wallets one after the other through
    /// `client` until [`Load::stop`]. A client whose request got no answer pauses 20 ms before
    /// the next (the server may be down), so a dead server is not spun on.
    pub fn start(client: Client, concurrency: usize) -> Load {
        Load::start_on(vec![client], concurrency)
    }

    /// Like [`Load::start`], with the clients spread over several instances' APIs (client `i`
    /// uses `clients[i % len]`).
    pub fn start_on(clients: Vec<Client>, concurrency: usize) -> Load {
        assert!(!clients.is_empty(), "at least one client");
        let shared = Arc::new(Shared::default());
        let mut tasks = JoinSet::new();
        for i in 0..concurrency {
            let client = clients[i % clients.len()].clone();
            let shared = Arc::clone(&shared);
            tasks.spawn(async move {
                let mut n = 0u64;
                while !shared.stop.load(Ordering::SeqCst) {
                    n += 1;
                    let reply = client.create_wallet(&format!("load {i}-{n}")).await;
                    let no_answer = reply.is_err();
                    shared.record(reply);
                    if no_answer {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            });
        }
        Load { shared, tasks }
    }

    /// Wallets acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.shared.state.lock().expect("not poisoned").acknowledged.len()
    }

    /// Answers with `status` so far.
    pub fn answered(&self, status: u16) -> u64 {
        self.shared
            .state
            .lock()
            .expect("not poisoned")
            .by_status
            .get(&status)
            .copied()
            .unwrap_or(0)
    }

    /// The wallets acknowledged so far, in the order the answers came.
    pub fn acknowledged_keys(&self) -> Vec<String> {
        self.shared.state.lock().expect("not poisoned").acknowledged.clone()
    }

    /// Answers so far, by status.
    pub fn by_status(&self) -> BTreeMap<u16, u64> {
        self.shared.state.lock().expect("not poisoned").by_status.clone()
    }

    /// Waits until at least `count` wallets are acknowledged; returns whether they were within
    /// `timeout`.
    pub async fn wait_acknowledged(&self, count: usize, timeout: Duration) -> bool {
        eventually(timeout, || {
            let done = self.acknowledged() >= count;
            async move { done }
        })
        .await
    }

    /// Waits until at least `count` answers with `status` came; returns whether they did within
    /// `timeout`.
    pub async fn wait_answered(&self, status: u16, count: u64, timeout: Duration) -> bool {
        eventually(timeout, || {
            let done = self.answered(status) >= count;
            async move { done }
        })
        .await
    }

    /// Stops the clients, lets each finish its request in flight, and reports.
    pub async fn stop(mut self) -> LoadReport {
        self.shared.stop.store(true, Ordering::SeqCst);
        while self.tasks.join_next().await.is_some() {}
        let tally = std::mem::take(&mut *self.shared.state.lock().expect("not poisoned"));
        LoadReport {
            acknowledged: tally.acknowledged,
            by_status: tally.by_status,
            transport_errors: tally.transport_errors,
            broken: tally.broken,
            broken_total: tally.broken_total,
            slowest: tally.slowest,
        }
    }
}

impl Shared {
    fn record(&self, reply: Result<Answer, reqwest::Error>) {
        let mut tally = self.state.lock().expect("not poisoned");
        let answer = match reply {
            Ok(answer) => answer,
            Err(_) => {
                tally.transport_errors += 1;
                return;
            }
        };
        *tally.by_status.entry(answer.status).or_default() += 1;
        tally.slowest = tally.slowest.max(answer.elapsed);
        let problem = match answer.status {
            201 => match answer.field("walletExternalKey") {
                Some(key) => {
                    tally.acknowledged.push(key);
                    None
                }
                None => Some(format!("201 without walletExternalKey: {}", answer.describe())),
            },
            _ if !answer.has_error_shape() => Some(format!("not the JSON error shape: {}", answer.describe())),
            503 if !answer.is_retry_later() => Some(format!("503 without Retry-After: {}", answer.describe())),
            _ => None,
        };
        if let Some(problem) = problem {
            tally.broken_total += 1;
            if tally.broken.len() < 20 {
                tally.broken.push(problem);
            }
        }
    }
}
