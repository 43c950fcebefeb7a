//! The harness of the fault tests: the real `business-wallet` binary as a child process, the
//! clients that call it, the webhook receiver it delivers to, and a PostgreSQL server of the
//! test's own.
//!
//! - [`server`]: an [`Instance`] (configuration file, data directory, port) and its running
//!   [`Server`] process: start and wait for `/health/ready`, mint tokens with the binary's
//!   `token` subcommand, SIGKILL, SIGTERM, memory from `/proc/<pid>/status`.
//! - [`client`]: a [`Client`] for the API whose every call returns an [`Answer`] (status,
//!   `Retry-After`, JSON body) or a transport error, never a panic.
//! - [`load`]: [`Load`], concurrent clients creating wallets until stopped, recording every
//!   acknowledged (201) wallet key and every answer that breaks the JSON error contract.
//! - [`receiver`]: a [`Receiver`] on 127.0.0.1 that records each request's `ce-id`, answers
//!   after a configurable delay with a configurable status, and knows which requests were cut
//!   off by the sender.
//! - [`disk`]: [`Tmpfs`], a small file system to fill up (root only).
//! - [`postgres`]: [`Postgres`], a PostgreSQL server started for one test with `initdb` and
//!   `pg_ctl` on a free port (never the shared server on 5432), which the test may stop or kill.
//!
//! Scenarios synchronise by waiting on conditions ([`eventually`]), never by sleeping a fixed
//! time, and run one at a time ([`serial`]) so that their timings do not depend on each other.

// Each scenario uses a part of the harness, and not every part is used by the scenarios of
// every test run.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod disk;
pub mod load;
pub mod postgres;
pub mod receiver;
pub mod server;

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use client::{Answer, Client};
pub use disk::Tmpfs;
pub use load::{Load, LoadReport};
pub use postgres::Postgres;
pub use receiver::Receiver;
pub use server::{Instance, Memory, Role, Server};

/// The event type every scenario subscribes its channel to.
pub const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";

static SERIAL: Mutex<()> = Mutex::new(());

/// The turn of one scenario (see [`serial`]); the next one starts when it is dropped.
#[must_use = "the scenario runs alone only while this is held"]
pub struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

/// Runs scenarios one at a time: each starts servers, databases and load of its own, and two at
/// once on a small machine would measure each other. Hold the guard for the whole test. A test
/// that failed while holding it does not block the others.
///
/// The lock is a blocking one, held across `.await`s on purpose: each test has a runtime of
/// its own and waits for its turn on its own thread, before it starts anything, so no task of
/// any runtime waits behind it.
pub fn serial() -> Serial {
    Serial(SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Checks `condition` every 20 ms until it holds or `timeout` has passed; returns whether it
/// held. This is how scenarios wait: on the state they need, with a deadline.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh scratch directory for one scenario, readable by every user so that a PostgreSQL
/// server run as `postgres` may keep its files below it. It is removed when dropped, unless
/// `FAULTS_KEEP` is set in the environment (to read the servers' logs after a failure).
pub fn work_dir(name: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("bw-faults-{name}-"))
        .tempdir()
        .expect("a temporary directory");
    if std::env::var_os("FAULTS_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("{name}: work directory kept at {}", dir.path().display());
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod the work directory");
    dir
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Whether the tests run as root (needed to mount a tmpfs and to run PostgreSQL as `postgres`).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Creates the platform webhook channel `name`, subscribed to `wallet.created.v1`, that
/// delivers to `receiver` (5 s request timeout).
///
/// # Panics
/// The channel is not created.
pub async fn subscribe(client: &Client, receiver: &Receiver, name: &str) {
    let answer = client
        .create_platform_webhook(name, &receiver.url(name), &[WALLET_CREATED], 5000)
        .await
        .expect("an answer to the channel creation");
    assert_eq!(answer.status, 201, "creating the channel: {}", answer.describe());
}

/// The wallets of `keys` that `GET /api/v1/wallets/{key}` does not find, each described with
/// the last answer: every acknowledged wallet must exist. A 503 or a missing answer is asked
/// again (for 30 s at most per wallet); a 404 or any other answer counts as missing at once.
pub async fn missing_wallets(client: &Client, keys: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for key in keys {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match client.get_wallet(key).await {
                Ok(answer) if answer.status == 200 => break,
                Ok(answer) if answer.status != 503 => {
                    missing.push(format!("{key}: {}", answer.describe()));
                    break;
                }
                Ok(answer) => answer.describe(),
                Err(err) => err.to_string(),
            };
            if Instant::now() >= deadline {
                missing.push(format!("{key}: {last}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    missing
}

/// For failure messages: the states of the (newest 200) active platform deliveries, e.g.
/// `{"DELIVERING": 3}`: rows left DELIVERING by a dead process wait for their lease.
pub async fn active_delivery_states(client: &Client) -> String {
    match client.active_platform_deliveries().await {
        Ok(answer) if answer.status == 200 => {
            let mut states = std::collections::BTreeMap::<String, usize>::new();
            for item in answer
                .body
                .as_ref()
                .and_then(|b| b["items"].as_array())
                .into_iter()
                .flatten()
            {
                *states
                    .entry(item["state"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            format!("active deliveries by state: {states:?}")
        }
        Ok(answer) => format!("active deliveries: {}", answer.describe()),
        Err(err) => format!("active deliveries: no answer ({err})"),
    }
}

/// After a fault: the server is still running, every answer kept the API's contract (a JSON
/// error body of the documented shape, no cut-off answers), and every 5xx was a 503.
///
/// # Panics
/// One of the three does not hold.
pub fn assert_answers_kept_the_contract(server: &mut Server, report: &LoadReport) {
    assert!(server.is_running(), "the server died:\n{}", server.log_tail(20));
    assert_eq!(
        report.broken_total, 0,
        "answers that break the contract: {:?}",
        report.broken
    );
    assert_eq!(
        report.server_errors(),
        report.count(503),
        "every 5xx is a 503: {:?}\n{}",
        report.by_status,
        server.log_tail(30)
    );
}

/// Nothing acknowledged was lost: every acknowledged wallet exists (`missing`, from
/// [`missing_wallets`]), its event reached the receiver (`undelivered`, from
/// [`Receiver::wait_for_wallets`]), and always with the same `ce-id`.
///
/// # Panics
/// A wallet is missing or undelivered, or its event came with several ids.
pub fn assert_nothing_lost(server: &Server, receiver: &Receiver, missing: &[String], undelivered: &[String]) {
    assert!(
        missing.is_empty(),
        "{} acknowledged wallets are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        undelivered.is_empty(),
        "{} acknowledged wallets not delivered\n{}",
        undelivered.len(),
        server.log_tail(30)
    );
    let several_ids = receiver.wallets_with_several_ids();
    assert!(
        several_ids.is_empty(),
        "a wallet's event came with several ce-ids: {several_ids:?}"
    );
}
