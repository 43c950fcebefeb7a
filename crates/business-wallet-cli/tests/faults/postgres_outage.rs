//! PostgreSQL goes away under load: stopped for 10 s (`pg_ctl stop -m fast`, which also ends
//! every session), or its postmaster killed with `kill -9` and started again. The test runs its
//! own PostgreSQL server for this (see [`crate::harness::Postgres`]). While the database is
//! gone, writes answer 503 with `Retry-After` (never 500) and `/health/ready` answers 503
//! within a second; once it is back, the same server process recovers by itself, and every
//! acknowledged wallet exists and has its event delivered.

use std::time::{Duration, Instant};

use crate::harness::{self, Instance, Load, Postgres, Receiver, Role};

/// How the database goes away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// `pg_ctl stop -m fast`, 10 s, `pg_ctl start`.
    Stopped,
    /// `kill -9` of the postmaster, then `pg_ctl start` (after its backends have exited).
    PostmasterKilled,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_ten_seconds_answers_503_and_recovers_by_itself() {
    outage(Outage::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_postmaster_killed_answers_503_and_recovers_by_itself() {
    outage(Outage::PostmasterKilled).await;
}

async fn outage(kind: Outage) {
    if !harness::is_root() {
        eprintln!("SKIPPED: running a PostgreSQL server as the postgres user needs root");
        return;
    }
    let _serial = harness::serial();
    let started = Instant::now();
    let work = harness::work_dir("pg-outage");
    let pg = Postgres::start(work.path()).await;
    pg.create_database("wallet").await;
    let instance = Instance::builder(work.path(), "outage")
        .database_url(pg.url("wallet"))
        .build();
    let mut server = instance.start(Role::Both).await;
    let client = instance.client(&instance.admin_token());
    let receiver = Receiver::start().await;
    harness::subscribe(&client, &receiver, "outage").await;

    let load = Load::start(client.clone(), 3);
    assert!(
        load.wait_acknowledged(30, Duration::from_secs(30)).await,
        "no load before the fault"
    );

    let down_at = Instant::now();
    match kind {
        Outage::Stopped => pg.stop().await,
        Outage::PostmasterKilled => pg.kill_postmaster().await,
    }
    let acknowledged_at_outage = load.acknowledged();

    // While it is down: readiness says so within a second, every time it is asked.
    let mut ready_times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready_down = false;
    while !ready_down && Instant::now() < deadline {
        let answer = client.ready().await.expect("readiness answers");
        ready_times.push((answer.status, answer.elapsed));
        ready_down = answer.status == 503;
    }
    for _ in 0..3 {
        let answer = client.ready().await.expect("readiness answers");
        ready_times.push((answer.status, answer.elapsed));
    }
    assert!(
        ready_down,
        "readiness never said 503 while the database was down: {ready_times:?}"
    );
    let slowest_ready = ready_times.iter().map(|(_, t)| *t).max().unwrap_or_default();
    assert!(
        slowest_ready < Duration::from_secs(1),
        "readiness took {slowest_ready:?}: {ready_times:?}"
    );
    // ... and writes are refused with 503, for 10 s at least.
    let refusals_before = load.answered(503);
    let refused = load
        .wait_answered(503, refusals_before + 3, Duration::from_secs(60))
        .await;
    assert!(
        refused,
        "503 expected while the database is down; answers {:?}\n{}",
        load.by_status(),
        server.log_tail(20)
    );
    if let Some(rest) = Duration::from_secs(10).checked_sub(down_at.elapsed()) {
        // The outage lasts 10 s: this is the fault's length, not a wait for something.
        tokio::time::sleep(rest).await;
    }
    let down_for = down_at.elapsed();
    let acknowledged_while_down = load.acknowledged() - acknowledged_at_outage;

    pg.start_again().await;
    let up_at = Instant::now();
    let acknowledged_at_restart = load.acknowledged();
    let recovered = load
        .wait_acknowledged(acknowledged_at_restart + 30, Duration::from_secs(60))
        .await;
    let recovery = up_at.elapsed();
    let ready_again = harness::eventually(Duration::from_secs(30), || {
        let client = client.clone();
        async move { client.ready().await.is_ok_and(|a| a.status == 200) }
    })
    .await;
    let report = load.stop().await;
    assert!(
        recovered,
        "no writes within 60 s of the database's return: {}\n{}",
        report.summary(),
        server.log_tail(30)
    );
    assert!(ready_again, "readiness did not come back");
    harness::assert_answers_kept_the_contract(&mut server, &report);

    let missing = harness::missing_wallets(&client, &report.acknowledged).await;
    let undelivered = receiver
        .wait_for_wallets(&report.acknowledged, Duration::from_secs(60))
        .await;
    let memory = server.memory().expect("running");
    println!(
        "postgres {kind:?}: down for {down_for:?}, {acknowledged_while_down} acknowledged meanwhile (answers in \
         flight at the fault included); readiness while down {ready_times:?}; first 30 acknowledgements within \
         {recovery:?} of the restart; {}; {} acknowledged but missing; {} events delivered ({} duplicates), {} not \
         delivered; {memory}; total {:?}",
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
