//! The load driver: creates wallets through the API with `clients` concurrent clients, at a
//! fixed offered rate or as fast as possible, and records when each request started and when
//! its response (sent after the commit) came back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// One accepted wallet.
#[derive(Debug, Clone)]
pub struct Created {
    /// `walletExternalKey` from the 201 response.
    pub wallet: String,
    /// When the request was sent, on the bench clock.
    pub sent: Duration,
    /// When the response arrived, on the bench clock.
    pub answered: Duration,
}

/// What a load run did.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Accepted wallets.
    pub created: Vec<Created>,
    /// Requests that failed or were not 201.
    pub errors: u64,
    /// First error seen, for the report.
    pub first_error: Option<String>,
    /// Wall time from the first request to the last response.
    pub elapsed: Duration,
}

/// How to drive.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Concurrent clients (requests in flight at most).
    pub clients: usize,
    /// Offered rate per second; `None` is as fast as possible.
    pub rate: Option<u64>,
    /// How long to offer load.
    pub duration: Duration,
    /// Closed loop only: stop after this many requests (then `duration` is only a bound).
    pub total: Option<u64>,
}

/// The driver against one server.
#[derive(Debug, Clone)]
pub struct Driver {
    client: reqwest::Client,
    url: String,
    token: String,
    epoch: Instant,
}

impl Driver {
    /// A driver posting to `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: &str, epoch: Instant) -> anyhow::Result<Driver> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Driver {
            client,
            url: format!("{base}/api/v1/wallets"),
            token: token.to_string(),
            epoch,
        })
    }

    async fn create_one(&self, n: u64) -> Result<Created, String> {
        let body = serde_json::json!({
            "displayName": format!("Bench wallet {n}"),
            "email": "ops@bench.example",
            "website": "https://bench.example",
            "address": {"street": "Benchstraat 1", "postalCode": "1000 AA", "city": "Amsterdam", "country": "NL"},
        });
        let sent = self.epoch.elapsed();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let answered = self.epoch.elapsed();
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let wallet = value["walletExternalKey"].as_str().unwrap_or_default().to_string();
        Ok(Created { wallet, sent, answered })
    }

    /// Runs the plan and returns what was accepted.
    pub async fn run(&self, plan: LoadPlan) -> LoadResult {
        let result = Arc::new(Mutex::new(LoadResult::default()));
        let started = Instant::now();
        let stop_at = started + plan.duration;
        let record = {
            let result = result.clone();
            move |outcome: Result<Created, String>| {
                let mut r = result.lock().expect("not poisoned");
                match outcome {
                    Ok(created) => r.created.push(created),
                    Err(err) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(err);
                    }
                }
            }
        };
        match plan.rate {
            None => {
                let mut tasks = tokio::task::JoinSet::new();
                let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let total = plan.total.unwrap_or(u64::MAX);
                for _ in 0..plan.clients {
                    let driver = self.clone();
                    let record = record.clone();
                    let issued = issued.clone();
                    tasks.spawn(async move {
                        while Instant::now() < stop_at {
                            let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if n >= total {
                                break;
                            }
                            record(driver.create_one(n).await);
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
            }
            Some(rate) => {
                // Open loop: one request every 1/rate seconds, whatever the previous ones do,
                // with at most `clients` in flight (a request waits for a free client).
                let permits = Arc::new(Semaphore::new(plan.clients));
                let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut tasks = tokio::task::JoinSet::new();
                let mut n = 0u64;
                while Instant::now() < stop_at {
                    ticker.tick().await;
                    let permit = permits.clone().acquire_owned().await.expect("never closed");
                    let driver = self.clone();
                    let record = record.clone();
                    tasks.spawn(async move {
                        record(driver.create_one(n).await);
                        drop(permit);
                    });
                    n += 1;
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            }
        }
        let mut out = std::mem::take(&mut *result.lock().expect("not poisoned"));
        out.elapsed = started.elapsed();
        out
    }
}
