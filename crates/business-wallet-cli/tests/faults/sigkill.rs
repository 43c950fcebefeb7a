//! SIGKILL of the server, five times, while concurrent clients keep creating wallets. After
//! each restart every event acknowledged before the kill is delivered; at the end every
//! acknowledged wallet exists, its event was delivered with one `ce-id`, and duplicates stay
//! within what the killed processes had claimed. On SQLite and on PostgreSQL (a server of the
//! test's own).

use std::time::{Duration, Instant};

use crate::harness::{self, Instance, Load, Memory, Postgres, Receiver, Role};

/// Kills per backend.
const KILLS: usize = 5;
/// Most deliveries one dispatcher claims at once (`integration.dispatch.batch_size`, default):
/// only what a killed process had claimed can arrive twice.
const BATCH_SIZE: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_sigkills_under_load_lose_nothing_on_sqlite() {
    let _serial = harness::serial();
    let work = harness::work_dir("sigkill-sqlite");
    let instance = Instance::builder(work.path(), "sigkill").build();
    kill_five_times(&instance, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_sigkills_under_load_lose_nothing_on_postgres() {
    if !harness::is_root() {
        eprintln!("SKIPPED: running a PostgreSQL server as the postgres user needs root");
        return;
    }
    let _serial = harness::serial();
    let work = harness::work_dir("sigkill-pg");
    let pg = Postgres::start(work.path()).await;
    pg.create_database("wallet").await;
    let instance = Instance::builder(work.path(), "sigkill")
        .database_url(pg.url("wallet"))
        .build();
    kill_five_times(&instance, "PostgreSQL").await;
}

async fn kill_five_times(instance: &Instance, backend: &str) {
    let started = Instant::now();
    let mut server = instance.start(Role::Both).await;
    let client = instance.client(&instance.admin_token());
    let receiver = Receiver::start().await;
    harness::subscribe(&client, &receiver, "sigkill").await;

    let load = Load::start(client.clone(), 4);
    let mut memories: Vec<Memory> = Vec::new();
    let mut restarts = Vec::new();
    let mut catch_ups = Vec::new();
    for kill in 1..=KILLS {
        let target = load.acknowledged() + 40;
        assert!(
            load.wait_acknowledged(target, Duration::from_secs(60)).await,
            "no load before kill {kill}:\n{}",
            server.log_tail(20)
        );
        // Everything acknowledged so far was answered before the kill.
        let acknowledged_before = load.acknowledged();
        memories.push(server.kill().expect("running until killed"));
        let killed_at = Instant::now();
        server = instance.spawn(Role::Both);
        server.wait_ready(Duration::from_secs(60)).await;
        restarts.push(killed_at.elapsed());
        let mut before = load.acknowledged_keys();
        before.truncate(acknowledged_before);
        let undelivered = receiver.wait_for_wallets(&before, Duration::from_secs(45)).await;
        catch_ups.push(killed_at.elapsed());
        assert!(
            undelivered.is_empty(),
            "after kill {kill}: {} of {} wallets acknowledged before it were not delivered within 45 s; {}\n{}",
            undelivered.len(),
            before.len(),
            harness::active_delivery_states(&client).await,
            server.log_tail(20)
        );
    }
    let report = load.stop().await;
    harness::assert_answers_kept_the_contract(&mut server, &report);

    let missing = harness::missing_wallets(&client, &report.acknowledged).await;
    let undelivered = receiver
        .wait_for_wallets(&report.acknowledged, Duration::from_secs(60))
        .await;
    memories.push(server.memory().expect("running"));
    let peak = memories.iter().map(|m| m.peak_kib).max().unwrap_or(0);
    let duplicates = receiver.duplicates();
    let delivered = receiver.delivered().len();
    println!(
        "sigkill {backend}: {KILLS} kills; {}; {} acknowledged but missing; {delivered} events delivered ({} more than \
         acknowledged: committed but cut off before the answer), {duplicates} duplicates, {} acknowledged not \
         delivered; restart to ready {restarts:?}; kill to every earlier acknowledgement delivered {catch_ups:?}; \
         peak RSS per process {:?} MiB; total {:?}",
        report.summary(),
        missing.len(),
        delivered.saturating_sub(report.acknowledged.len()),
        undelivered.len(),
        memories.iter().map(|m| m.peak_kib / 1024).collect::<Vec<_>>(),
        started.elapsed()
    );
    harness::assert_nothing_lost(&server, &receiver, &missing, &undelivered);
    assert!(
        duplicates <= KILLS as u64 * BATCH_SIZE,
        "{duplicates} duplicates: more than the {KILLS} killed processes can have had claimed"
    );
    assert!(peak < 256 * 1024, "memory not bounded: peak {} MiB", peak / 1024);
}
