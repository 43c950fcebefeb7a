//! Pull delivery across a server restart: a receiver written with nothing but an HTTP client
//! fetches a platform PULL channel's events in batches and commits them. The server is
//! SIGKILLed while a fetched batch is not committed yet; after the restart the receiver, from its
//! last committed cursor, gets exactly that batch again once its lease ends, then the rest. Every
//! acknowledged wallet's event arrives, none twice once committed. On SQLite and on PostgreSQL
//! (a server of the test's own).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{self, Client, Instance, Postgres, Role, WALLET_CREATED};

/// Seconds a fetched batch stays leased.
const LEASE_SECONDS: u64 = 2;
const BATCH: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_receiver_loses_nothing_across_a_server_restart_on_sqlite() {
    let _serial = harness::serial();
    let work = harness::work_dir("pull-sqlite");
    let instance = Instance::builder(work.path(), "pull")
        .set("integration.channels.pull", "enabled", "true")
        .build();
    restart_between_fetch_and_commit(&instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_receiver_loses_nothing_across_a_server_restart_on_postgres() {
    if !harness::is_root() {
        eprintln!("SKIPPED: running a PostgreSQL server as the postgres user needs root");
        return;
    }
    let _serial = harness::serial();
    let work = harness::work_dir("pull-pg");
    let pg = Postgres::start(work.path()).await;
    pg.create_database("wallet").await;
    let instance = Instance::builder(work.path(), "pull")
        .database_url(pg.url("wallet"))
        .set("integration.channels.pull", "enabled", "true")
        .build();
    restart_between_fetch_and_commit(&instance).await;
}

/// One fetch: the batch's wallet keys (from the structured CloudEvents) and its cursor.
async fn fetch(receiver: &Client, events: &str, cursor: Option<&str>) -> (Vec<String>, Option<String>) {
    let path = match cursor {
        Some(cursor) => format!("{events}?limit={BATCH}&cursor={cursor}"),
        None => format!("{events}?limit={BATCH}"),
    };
    let answer = receiver
        .call(reqwest::Method::GET, &path, None)
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.describe());
    let body = answer.body.expect("JSON");
    let keys = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            assert_eq!(event["type"], WALLET_CREATED);
            event["walletexternalkey"].as_str().expect("the wallet").to_string()
        })
        .collect();
    (keys, body["cursor"].as_str().map(str::to_string))
}

async fn commit(receiver: &Client, events: &str, cursor: &str) -> u64 {
    let answer = receiver
        .call(
            reqwest::Method::POST,
            &format!("{events}/commit"),
            Some(&json!({ "cursor": cursor })),
        )
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.describe());
    answer.body.expect("JSON")["committed"].as_u64().expect("a count")
}

async fn create_wallets(client: &Client, count: usize, into: &mut Vec<String>) {
    for i in 0..count {
        let answer = client.create_wallet(&format!("Pulled {i}")).await.expect("an answer");
        assert_eq!(answer.status, 201, "{}", answer.describe());
        into.push(answer.field("walletExternalKey").expect("a key"));
    }
}

async fn restart_between_fetch_and_commit(instance: &Instance) {
    let mut server = instance.start(Role::Both).await;
    let admin = instance.client(&instance.admin_token());
    let created = admin
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&json!({
                "name": "warehouse", "type": "PULL", "eventTypeFilters": [WALLET_CREATED],
                "pull": {"leaseSeconds": LEASE_SECONDS}
            })),
        )
        .await
        .expect("an answer");
    assert_eq!(created.status, 201, "{}", created.describe());
    let key = created.field("channelExternalKey").expect("a key");
    let secret = created.field("hmacSecret").expect("the secret, once");
    let events = format!("/api/integration-channels/{key}/events");
    let receiver = Client::new(admin.base_url(), &secret);

    let mut wallets = Vec::new();
    create_wallets(&admin, 3 * BATCH, &mut wallets).await;
    let mut received: Vec<String> = Vec::new();

    // One batch committed.
    let (first, cursor) = fetch(&receiver, &events, None).await;
    assert_eq!(first.len(), BATCH);
    let committed = cursor.expect("a cursor");
    assert_eq!(commit(&receiver, &events, &committed).await, BATCH as u64);
    received.extend(first);

    // The next one fetched, and the server killed before the commit.
    let (uncommitted, _lost_cursor) = fetch(&receiver, &events, Some(&committed)).await;
    // The lease was granted before the answer came; it has ended once this much time passed.
    let fetched_at = Instant::now();
    assert_eq!(uncommitted.len(), BATCH);
    server.kill();
    let mut server = instance.start(Role::Both).await;
    // Published after the restart, too.
    create_wallets(&admin, BATCH, &mut wallets).await;

    let lease = Duration::from_secs(LEASE_SECONDS);
    let ended = || async { fetched_at.elapsed() > lease + Duration::from_millis(300) };
    assert!(harness::eventually(Duration::from_secs(30), ended).await);
    let (again, cursor) = fetch(&receiver, &events, Some(&committed)).await;
    assert_eq!(
        again, uncommitted,
        "from its last committed cursor the receiver gets exactly the uncommitted batch again"
    );
    let mut cursor = cursor.expect("a cursor");
    assert_eq!(commit(&receiver, &events, &cursor).await, BATCH as u64);
    received.extend(again);
    loop {
        let (keys, next) = fetch(&receiver, &events, Some(&cursor)).await;
        if keys.is_empty() {
            break;
        }
        let next = next.expect("a cursor");
        assert_eq!(commit(&receiver, &events, &next).await, keys.len() as u64);
        received.extend(keys);
        cursor = next;
    }
    let unique: BTreeSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "nothing twice once committed");
    assert_eq!(
        unique,
        wallets.iter().collect::<BTreeSet<_>>(),
        "every acknowledged wallet's event arrived"
    );
    println!(
        "pull: {} events, {} wallets; one batch fetched twice across the restart",
        received.len(),
        wallets.len()
    );
    assert!(server.terminate(Duration::from_secs(10)).await);
}
