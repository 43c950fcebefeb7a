//! Three instances (API and dispatcher each) on one PostgreSQL database; the one holding the
//! most deliveries in flight to a slow receiver is killed with SIGKILL. With the default lease
//! settings, the two others deliver its in-flight deliveries within 15 s of its death; every
//! acknowledged event is delivered, and only the dead instance's in-flight events arrive twice.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::harness::{self, Instance, Load, Postgres, Receiver, Role, Server};

/// How long the receiver takes to answer while the instances fill their slots.
const SLOW: Duration = Duration::from_secs(3);
/// The longest a dead instance's in-flight delivery may wait for another instance.
const TAKEOVER: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dispatchers_in_flight_deliveries_are_delivered_by_the_others_within_15_s() {
    if !harness::is_root() {
        eprintln!("SKIPPED: running a PostgreSQL server as the postgres user needs root");
        return;
    }
    let _serial = harness::serial();
    let started = Instant::now();
    let work = harness::work_dir("dispatchers");
    let pg = Postgres::start(work.path()).await;
    pg.create_database("wallet").await;
    let instances: Vec<Instance> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            Instance::builder(work.path(), name)
                .database_url(pg.url("wallet"))
                .build()
        })
        .collect();
    let mut servers: Vec<Server> = Vec::new();
    for instance in &instances {
        servers.push(instance.start(Role::Both).await);
    }
    let token = instances[0].admin_token();
    let clients: Vec<_> = instances.iter().map(|i| i.client(&token)).collect();
    let receiver = Receiver::start().await;
    receiver.set_delay(SLOW);
    harness::subscribe(&clients[0], &receiver, "dispatchers").await;

    // Enough events for every instance to fill its slots for the channel (8 by default).
    let load = Load::start_on(clients.clone(), 3);
    assert!(load.wait_acknowledged(40, Duration::from_secs(30)).await, "no load");
    let report = load.stop().await;
    assert_eq!(
        report.broken_total, 0,
        "answers that break the contract: {:?}",
        report.broken
    );

    // Wait until an instance holds several deliveries in flight, and pick the busiest.
    let mut victim = None;
    let busy = harness::eventually(Duration::from_secs(30), || {
        let in_flight = receiver.in_flight();
        let counts: Vec<usize> = servers
            .iter()
            .map(|s| {
                let ports = s.local_tcp_ports();
                in_flight.iter().filter(|r| ports.contains(&r.peer.port())).count()
            })
            .collect();
        let (index, most) = counts
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .map(|(i, n)| (i, *n))
            .unwrap_or((0, 0));
        victim = (most >= 4).then_some(index);
        async move { most >= 4 }
    })
    .await;
    assert!(
        busy,
        "no instance got 4 deliveries in flight: {} in flight",
        receiver.in_flight().len()
    );
    let victim = victim.expect("chosen above");
    let ports: HashSet<u16> = servers[victim].local_tcp_ports();
    let memory = servers[victim].kill().expect("running until killed");
    let killed_at = Instant::now();
    receiver.set_delay(Duration::ZERO);
    // Its deliveries that had reached the receiver and were not answered before its death.
    let orphaned: Vec<String> = receiver
        .requests_from(&ports)
        .into_iter()
        .filter(|r| r.arrived < killed_at && r.answered.is_none_or(|at| at > killed_at))
        .map(|r| r.ce_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    assert!(!orphaned.is_empty(), "the killed instance had nothing in flight");

    let late = receiver.wait_for_redelivery(&orphaned, killed_at, TAKEOVER).await;
    let takeover = killed_at.elapsed();
    let survivors: Vec<usize> = (0..servers.len()).filter(|i| *i != victim).collect();
    let undelivered = receiver
        .wait_for_wallets(&report.acknowledged, Duration::from_secs(30))
        .await;
    let delivered = receiver.delivered();
    let repeated: Vec<&String> = delivered.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    let survivor_memory: Vec<String> = survivors
        .iter()
        .filter_map(|i| servers[*i].memory())
        .map(|m| m.to_string())
        .collect();
    println!(
        "three dispatchers: {} events acknowledged; instance {} killed with {} deliveries in flight at the receiver \
         ({memory}); {} of them delivered again by the others, the last {:?} after the kill (limit {TAKEOVER:?}); {} \
         events delivered, {} duplicates, {} acknowledged not delivered; survivors {survivor_memory:?}; total {:?}",
        report.acknowledged.len(),
        instances[victim].name,
        orphaned.len(),
        orphaned.len() - late.len(),
        takeover,
        delivered.len(),
        receiver.duplicates(),
        undelivered.len(),
        started.elapsed()
    );
    assert!(
        late.is_empty(),
        "{} of the {} deliveries in flight on the killed instance were not delivered by the others within \
         {TAKEOVER:?} of its death; {}",
        late.len(),
        orphaned.len(),
        harness::active_delivery_states(&clients[survivors[0]]).await
    );
    assert!(
        undelivered.is_empty(),
        "{} acknowledged events not delivered",
        undelivered.len()
    );
    assert!(
        receiver.wallets_with_several_ids().is_empty(),
        "a wallet's event came with several ce-ids"
    );
    let orphaned: HashSet<&String> = orphaned.iter().collect();
    assert!(
        repeated.iter().all(|id| orphaned.contains(id)),
        "events arrived twice that were not in flight on the killed instance: {:?}",
        repeated.iter().filter(|id| !orphaned.contains(*id)).collect::<Vec<_>>()
    );
    for i in survivors {
        assert!(servers[i].is_running(), "instance {} died", instances[i].name);
    }
}
