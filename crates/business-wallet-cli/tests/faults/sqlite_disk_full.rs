//! SQLite out of disk space: the data directory is a 16 MiB tmpfs, filled up while clients
//! create wallets, then freed. While it is full the server answers 503 with `Retry-After` (a
//! JSON error), never a 201 for a write that did not commit; once space is back it accepts
//! writes again without a restart, and every wallet it acknowledged exists and has its event
//! delivered.

use std::time::{Duration, Instant};

use crate::harness::{self, Instance, Load, Receiver, Role, Tmpfs, WALLET_CREATED};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_recovers_without_a_restart() {
    if !harness::is_root() {
        eprintln!("SKIPPED: mounting a tmpfs to fill up needs root; run the fault tests as root");
        return;
    }
    let _serial = harness::serial();
    let started = Instant::now();
    let work = harness::work_dir("disk-full");
    let tmpfs = Tmpfs::mount(&work.path().join("data"), 16);
    let instance = Instance::builder(work.path(), "full").data_dir(tmpfs.path()).build();
    let mut server = instance.start(Role::Both).await;
    let client = instance.client(&instance.admin_token());
    let receiver = Receiver::start().await;
    let channel = client
        .create_platform_webhook("disk-full", &receiver.url("hook"), &[WALLET_CREATED], 5000)
        .await
        .expect("an answer");
    assert_eq!(channel.status, 201, "{}", channel.describe());

    let load = Load::start(client.clone(), 3);
    assert!(
        load.wait_acknowledged(30, Duration::from_secs(30)).await,
        "no load before the fault"
    );

    // Fill the disk, and keep creating until the server has said "full" often enough.
    let filled = tmpfs.fill("filler");
    let full_at = Instant::now();
    let acknowledged_before = load.acknowledged();
    let full_seen = load.wait_answered(503, 30, Duration::from_secs(60)).await;
    let acknowledged_while_full = load.acknowledged() - acknowledged_before;
    assert!(
        full_seen,
        "30 answers of 503 expected while the disk is full; {} acknowledged since it was filled, answers {:?}, log:\n{}",
        acknowledged_while_full,
        load.by_status(),
        server.log_tail(20)
    );
    let full_for = full_at.elapsed();

    // Free the space: the next writes succeed, on the same process.
    tmpfs.free("filler");
    let freed_at = Instant::now();
    let acknowledged_at_free = load.acknowledged();
    let recovered = load
        .wait_acknowledged(acknowledged_at_free + 30, Duration::from_secs(60))
        .await;
    let recovery = freed_at.elapsed();
    let report = load.stop().await;
    assert!(
        recovered,
        "no recovery within 60 s of freeing the disk: {}\n{}",
        report.summary(),
        server.log_tail(20)
    );
    harness::assert_answers_kept_the_contract(&mut server, &report);

    // Every acknowledged wallet exists, and its event was delivered.
    let mut missing_wallets = Vec::new();
    for key in &report.acknowledged {
        let answer = client.get_wallet(key).await.expect("an answer");
        if answer.status != 200 {
            missing_wallets.push(format!("{key}: {}", answer.describe()));
        }
    }
    let undelivered = receiver
        .wait_for_wallets(&report.acknowledged, Duration::from_secs(60))
        .await;
    let memory = server.memory().expect("running");
    println!(
        "sqlite disk full: filled {} KiB; {} wallets acknowledged before, {} while full ({:?} until 30 answers of 503), \
         {} after freeing; first 30 acknowledgements after freeing within {:?}; answers {:?}; {} acknowledged but \
         missing; {} events delivered ({} duplicates), {} acknowledged not delivered; {memory}; total {:?}",
        filled / 1024,
        acknowledged_before,
        acknowledged_while_full,
        full_for,
        report.acknowledged.len() - acknowledged_at_free,
        recovery,
        report.by_status,
        missing_wallets.len(),
        receiver.delivered().len(),
        receiver.duplicates(),
        undelivered.len(),
        started.elapsed()
    );
    harness::assert_nothing_lost(&server, &receiver, &missing_wallets, &undelivered);
    assert!(memory.peak_mib() < 256.0, "memory not bounded: {memory}");
    drop(server);
    drop(tmpfs);
}
