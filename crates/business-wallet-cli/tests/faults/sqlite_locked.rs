//! SQLite locked by another process: a connection of this test process holds `BEGIN
//! EXCLUSIVE` on the server's database file past the server's busy timeout. Writes answer 503
//! with `Retry-After` (never 500) while it is held; once it is released, the same server
//! process accepts writes again, and every acknowledged wallet exists and is delivered.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

use crate::harness::{self, Instance, Load, Receiver, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_answers_503_then_recovers() {
    let _serial = harness::serial();
    let started = Instant::now();
    let work = harness::work_dir("locked");
    let busy_timeout = Duration::from_millis(1000);
    let instance = Instance::builder(work.path(), "locked")
        .set("database", "busy_timeout_ms", &busy_timeout.as_millis().to_string())
        .build();
    let mut server = instance.start(Role::Both).await;
    let client = instance.client(&instance.admin_token());
    let receiver = Receiver::start().await;
    harness::subscribe(&client, &receiver, "locked").await;

    let load = Load::start(client.clone(), 3);
    assert!(
        load.wait_acknowledged(30, Duration::from_secs(30)).await,
        "no load before the fault"
    );

    // Another process takes the write lock and keeps it.
    let mut locker = SqliteConnectOptions::from_str(&instance.database_url)
        .expect("the database URL")
        .busy_timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("open the database from the test process");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .expect("take the write lock");
    let locked_at = Instant::now();
    let acknowledged_at_lock = load.acknowledged();
    let refusals_before = load.answered(503);
    let refused = load
        .wait_answered(503, refusals_before + 6, Duration::from_secs(60))
        .await;
    let mut ready_while_locked = Vec::new();
    for _ in 0..3 {
        let answer = client.ready().await.expect("readiness answers");
        ready_while_locked.push((answer.status, answer.elapsed));
    }
    let acknowledged_while_locked = load.acknowledged() - acknowledged_at_lock;
    let locked_for = locked_at.elapsed();
    sqlx::query("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("release the lock");
    locker.close().await.expect("close the locking connection");
    let released_at = Instant::now();
    assert!(
        refused,
        "503 expected while the database is locked; answers {:?}\n{}",
        load.by_status(),
        server.log_tail(20)
    );

    let acknowledged_at_release = load.acknowledged();
    let recovered = load
        .wait_acknowledged(acknowledged_at_release + 30, Duration::from_secs(60))
        .await;
    let recovery = released_at.elapsed();
    let report = load.stop().await;
    assert!(
        recovered,
        "no writes within 60 s of the release: {}\n{}",
        report.summary(),
        server.log_tail(20)
    );
    harness::assert_answers_kept_the_contract(&mut server, &report);

    let missing = harness::missing_wallets(&client, &report.acknowledged).await;
    let undelivered = receiver
        .wait_for_wallets(&report.acknowledged, Duration::from_secs(60))
        .await;
    let memory = server.memory().expect("running");
    println!(
        "sqlite locked: busy timeout {busy_timeout:?}; locked for {locked_for:?}, {acknowledged_while_locked} acknowledged \
         meanwhile (answers before the lock included); readiness while locked {ready_while_locked:?}; first 30 \
         acknowledgements after the release within {recovery:?}; {}; {} acknowledged but missing; {} events delivered \
         ({} duplicates), {} not delivered; {memory}; total {:?}",
        report.summary(),
        missing.len(),
        receiver.delivered().len(),
        receiver.duplicates(),
        undelivered.len(),
        started.elapsed()
    );
    harness::assert_nothing_lost(&server, &receiver, &missing, &undelivered);
    assert!(memory.peak_mib() < 256.0, "memory not bounded: {memory}");
}
