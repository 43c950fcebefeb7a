//! What the receiver and broker fault scenarios do through the API of the real binary: start an
//! instance with quick retries, create channels and wallets, read the deliveries log, and check
//! the two promises of at-least-once delivery (nothing acknowledged is lost; a duplicate is the
//! same event, with the same `ce-id`). Every API answer is checked to be JSON on the way.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{eventually, work_dir, Answer, Client, Instance, Memory, Role, Server, WALLET_CREATED};

/// One running instance with an admin client, and the directory its files live in.
pub struct Fixture {
    /// The server process.
    pub server: Server,
    /// A GLOBAL_WALLET_CRUD client.
    pub client: Client,
    _work: tempfile::TempDir,
}

/// Starts `serve` over SQLite with retries that come back within a second (100 attempts, so
/// that a slow machine does not run out of them while a scenario waits) and a dispatcher that
/// polls every 100 ms, plus `settings` (section, key, TOML value).
pub async fn start(name: &str, settings: &[(&str, &str, &str)]) -> Fixture {
    start_on(name, None, settings).await
}

/// Like [`start`], over a fresh database on the PostgreSQL server named by
/// `BUSINESS_WALLET_TEST_POSTGRES_URL` (the README's test command sets it).
pub async fn start_on_postgres(name: &str, settings: &[(&str, &str, &str)]) -> Fixture {
    start_on(
        name,
        Some(crate::postgres::fresh_postgres_database("bwfaults").await),
        settings,
    )
    .await
}

async fn start_on(name: &str, database_url: Option<String>, settings: &[(&str, &str, &str)]) -> Fixture {
    let work = work_dir(name);
    let mut builder = Instance::builder(work.path(), name)
        .set("integration", "max_attempts", "100")
        .set("integration.retry", "base_delay_ms", "200")
        .set("integration.retry", "max_delay_ms", "1000")
        .set("integration.retry", "jitter", "0.0")
        .set("integration.dispatch", "poll_interval_ms", "100");
    if let Some(url) = database_url {
        builder = builder.database_url(url);
    }
    for (section, key, value) in settings {
        builder = builder.set(section, key, value);
    }
    let instance = builder.build();
    let server = instance.start(Role::Both).await;
    let client = instance.client(&instance.admin_token());
    Fixture {
        server,
        client,
        _work: work,
    }
}

/// Calls the API and checks that the answer is JSON with a JSON content type (success or
/// error alike) and has `status`.
pub async fn call(client: &Client, method: Method, path: &str, body: Option<&Value>, status: u16) -> Value {
    let answer = client
        .call(method.clone(), path, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
    check_json(&answer, &format!("{method} {path}"));
    assert_eq!(answer.status, status, "{method} {path}: {}", answer.describe());
    answer.body.unwrap()
}

/// Panics unless `answer` is JSON (and, for an error, has the error shape).
pub fn check_json(answer: &Answer, what: &str) {
    assert!(
        answer.is_json(),
        "{what}: the answer is not JSON: {}",
        answer.describe()
    );
    if answer.status >= 400 {
        assert!(
            answer.has_error_shape(),
            "{what}: not the error shape: {}",
            answer.describe()
        );
    }
}

/// Creates a platform channel from `body` (name, type and type block; subscribed to
/// `wallet.created.v1`); returns its external key.
pub async fn create_channel(client: &Client, mut body: Value) -> String {
    body["eventTypeFilters"] = json!([WALLET_CREATED]);
    let created = call(client, Method::POST, "/api/integration-channels", Some(&body), 201).await;
    created["channelExternalKey"]
        .as_str()
        .expect("channelExternalKey")
        .to_string()
}

/// A platform webhook channel to `url` with `timeout_ms`.
pub async fn create_webhook(client: &Client, name: &str, url: &str, timeout_ms: u64) -> String {
    create_channel(
        client,
        json!({"name": name, "type": "WEBHOOK", "webhook": {"url": url, "timeoutMs": timeout_ms}}),
    )
    .await
}

/// Creates `count` wallets one after the other; returns their keys (each acknowledged: 201).
pub async fn create_wallets(client: &Client, prefix: &str, count: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(count);
    for n in 0..count {
        keys.push(create_wallet(client, &format!("{prefix} {n}")).await);
    }
    keys
}

/// Creates one wallet; returns its key.
pub async fn create_wallet(client: &Client, name: &str) -> String {
    let answer = client
        .create_wallet(name)
        .await
        .unwrap_or_else(|e| panic!("create wallet: no answer: {e}"));
    check_json(&answer, "POST /api/v1/wallets");
    assert_eq!(answer.status, 201, "create wallet: {}", answer.describe());
    answer.field("walletExternalKey").expect("walletExternalKey")
}

/// Every delivery of the platform channel `channel`, in any state (all pages).
pub async fn deliveries(client: &Client, channel: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/integration-deliveries?state=all&channel={channel}&limit=200");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = call(client, Method::GET, &path, None, 200).await;
        all.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
}

/// One delivery with its attempts.
pub async fn delivery(client: &Client, key: &str) -> Value {
    call(
        client,
        Method::GET,
        &format!("/api/integration-deliveries/{key}"),
        None,
        200,
    )
    .await
}

/// The deliveries of `channel` by state.
pub async fn states(client: &Client, channel: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in deliveries(client, channel).await {
        *counts
            .entry(item["state"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Waits until `channel` has `count` deliveries, all in `state`; panics with the log's
/// states after `limit`. Returns how long it took.
pub async fn wait_all_in_state(client: &Client, channel: &str, count: usize, state: &str, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    let reached = eventually(limit, || async {
        let now = states(client, channel).await;
        now.get(state) == Some(&count) && now.len() == 1
    })
    .await;
    if !reached {
        let items = deliveries(client, channel).await;
        let summary: Vec<String> = items
            .iter()
            .map(|i| format!("{} after {} attempts: {}", i["state"], i["attempts"], i["lastError"]))
            .collect();
        panic!("{channel}: not all {count} deliveries {state} within {limit:?}: {summary:#?}");
    }
    started.elapsed()
}

/// The event id of each wallet's `wallet.created.v1`, from the channel's deliveries log; checks
/// that every acknowledged wallet has exactly one delivery on the channel.
pub async fn event_ids(client: &Client, channel: &str, wallets: &[String]) -> HashMap<String, String> {
    let mut by_wallet = HashMap::new();
    for item in deliveries(client, channel).await {
        let wallet = item["walletExternalKey"].as_str().unwrap().to_string();
        let id = item["eventId"].as_str().unwrap().to_string();
        assert!(
            by_wallet.insert(wallet.clone(), id).is_none(),
            "two deliveries of one event on one channel for wallet {wallet}"
        );
    }
    for wallet in wallets {
        assert!(
            by_wallet.contains_key(wallet),
            "wallet {wallet} was acknowledged but has no delivery"
        );
    }
    by_wallet
}

/// What arrived compared with what was acknowledged.
#[derive(Debug, Default)]
pub struct Tally {
    /// Acknowledged events.
    pub events: usize,
    /// Acknowledged events that never arrived.
    pub lost: usize,
    /// Arrivals beyond the first of an event.
    pub duplicates: usize,
}

/// One arrival of an event at a receiver or on a queue: its `ce-id` and the wallet it names.
pub type Arrival = (String, String);

/// Compares `arrived` (every accepted arrival, duplicates included) with `expected` (wallet ->
/// event id): panics on an arrival of an unknown id or of a known id naming another wallet;
/// returns the tally.
pub fn tally(expected: &HashMap<String, String>, arrived: &[Arrival]) -> Tally {
    let wallet_of: HashMap<&String, &String> = expected.iter().map(|(wallet, id)| (id, wallet)).collect();
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for (id, wallet) in arrived {
        let Some(published_for) = wallet_of.get(id) else {
            panic!("an event arrived that nobody published: ce-id {id:?}");
        };
        assert_eq!(*published_for, wallet, "ce-id {id} arrived naming another wallet");
        *counts.entry(id).or_insert(0) += 1;
    }
    Tally {
        events: expected.len(),
        lost: wallet_of.keys().filter(|id| !counts.contains_key(*id)).count(),
        duplicates: counts.values().map(|n| n - 1).sum(),
    }
}

/// Resets the process's peak resident size (`VmHWM`) to its current size, so that a peak read
/// later belongs to what happened in between (`/proc/<pid>/clear_refs`, Linux 4.0 and later).
pub fn reset_peak(server: &Server) -> Memory {
    std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5").expect("reset VmHWM through clear_refs");
    server.memory().expect("the server is running")
}

/// Growth of the peak resident size since `before`, in MiB.
pub fn peak_growth_mib(before: Memory, after: Memory) -> f64 {
    (after.peak_kib as f64 - before.rss_kib as f64) / 1024.0
}

/// Checks that the server is still the same running process and answers `/health/ready`.
pub async fn assert_alive(fixture: &mut Fixture) {
    assert!(
        fixture.server.is_running(),
        "the server died:\n{}",
        fixture.server.log_tail(30)
    );
    let ready = fixture.client.ready().await.expect("/health/ready answers");
    check_json(&ready, "GET /health/ready");
    assert_eq!(ready.status, 200, "{}", ready.describe());
}
