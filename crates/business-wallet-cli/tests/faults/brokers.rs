//! Kafka and JMS brokers that fail in the middle of a batch, against the real binary, while
//! wallets are being created: a Kafka-protocol broker killed with SIGKILL and restarted, and
//! the connection to ActiveMQ (STOMP) and to RabbitMQ (AMQP 1.0) cut and restored.
//!
//! What a user expects: the API keeps acknowledging events during the outage (they wait in the
//! outbox); attempts during it are recorded as retryable with the broker error; once the broker
//! is back every acknowledged event is on the topic or queue (0 lost), read back by a consumer;
//! a record or message may appear twice only when its send was in flight at the cut (the broker
//! took it, the acknowledgement was lost), and then with the same CloudEvents `id`. The server
//! is not restarted.
//!
//! These scenarios run on PostgreSQL (a fresh database on `BUSINESS_WALLET_TEST_POSTGRES_URL`),
//! the database of deployments that run brokers; the receiver scenarios run on SQLite.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::broker_kit::{broker_address, drain_amqp_queue, drain_stomp_queue, setup_env, ObjectStore, Relay, Tansu};
use crate::harness::{eventually, serial, Client};
use crate::scenario::{
    assert_alive, create_channel, create_wallet, deliveries, event_ids, start_on_postgres, states, tally,
    wait_all_in_state, Fixture,
};

/// Wallets created while the broker fails.
const EVENTS: usize = 120;

/// Creates `EVENTS` wallets from two concurrent clients, in the background; returns the keys
/// once all are acknowledged.
fn produce(client: &Client, prefix: &'static str) -> tokio::task::JoinHandle<Vec<String>> {
    let client = client.clone();
    tokio::spawn(async move {
        let mut writers = Vec::new();
        for writer in 0..2 {
            let client = client.clone();
            writers.push(tokio::spawn(async move {
                let mut keys = Vec::new();
                for n in 0..EVENTS / 2 {
                    keys.push(create_wallet(&client, &format!("{prefix} {writer}-{n}")).await);
                }
                keys
            }));
        }
        let mut keys = Vec::new();
        for writer in writers {
            keys.extend(writer.await.expect("a writer"));
        }
        keys
    })
}

/// Waits until `channel` has at least `count` DELIVERED deliveries.
async fn wait_delivered_at_least(client: &Client, channel: &str, count: usize) {
    let reached = eventually(Duration::from_secs(60), || async {
        states(client, channel).await.get("DELIVERED").copied().unwrap_or(0) >= count
    })
    .await;
    assert!(
        reached,
        "{count} delivered before the fault: {:?}",
        states(client, channel).await
    );
}

/// Waits until some delivery of `channel` has a retryable failure recorded; returns its error.
async fn wait_retrying(client: &Client, channel: &str) -> String {
    let retrying = |items: &[serde_json::Value]| {
        items
            .iter()
            .find(|i| i["state"] == "PENDING" && i["lastError"].is_string())
            .map(|i| i["lastError"].as_str().unwrap().to_string())
    };
    let found = eventually(Duration::from_secs(60), || async {
        retrying(&deliveries(client, channel).await).is_some()
    })
    .await;
    assert!(
        found,
        "no attempt failed during the outage: {:?}",
        states(client, channel).await
    );
    retrying(&deliveries(client, channel).await).unwrap_or_default()
}

/// After the outage: every acknowledged wallet has a delivery, all end DELIVERED, and `read`
/// returns each event at least once, a repeat only with the same id. Returns the figures line.
async fn check_nothing_lost(
    fixture: &mut Fixture,
    channel: &str,
    wallets: &[String],
    recovered_since: Instant,
    read: impl std::future::Future<Output = Vec<(String, String)>>,
) -> String {
    assert_eq!(wallets.len(), EVENTS, "every create was acknowledged");
    let drained = wait_all_in_state(&fixture.client, channel, EVENTS, "DELIVERED", Duration::from_secs(120)).await;
    let recovery = recovered_since.elapsed();
    let expected = event_ids(&fixture.client, channel, wallets).await;
    let attempts: i64 = deliveries(&fixture.client, channel)
        .await
        .iter()
        .map(|i| i["attempts"].as_i64().unwrap())
        .sum();
    let arrived = read.await;
    let result = tally(&expected, &arrived);
    assert_eq!(result.lost, 0, "{result:?}");
    assert_alive(fixture).await;
    format!(
        "{} events, {attempts} attempts, {} read back, lost {}, duplicates {} (same ce-id), all delivered \
         {recovery:?} after the broker came back ({drained:?} of waiting)",
        result.events,
        arrived.len(),
        result.lost,
        result.duplicates
    )
}

#[tokio::test]
async fn a_kafka_broker_killed_mid_batch_loses_no_acknowledged_event() {
    let _serial = serial();
    let store = ObjectStore::start("tansu").await;
    let mut broker = Tansu::start(&store);
    let topic = "fault-events";
    broker.create_topic(topic);
    let bootstrap = broker.bootstrap();
    let mut fixture = start_on_postgres(
        "kafka",
        &[
            ("integration.channels.kafka", "enabled", "true"),
            (
                "integration.channels.kafka",
                "bootstrap_servers",
                &format!("\"{bootstrap}\""),
            ),
            ("integration.channels.kafka", "message_timeout_ms", "3000"),
        ],
    )
    .await;
    let client = fixture.client.clone();
    let channel = create_channel(
        &client,
        json!({"name": "kafka", "type": "KAFKA", "kafka": {"topic": topic}}),
    )
    .await;

    let producing = produce(&client, "Kafka");
    wait_delivered_at_least(&client, &channel, 20).await;
    broker.kill();
    let killed = Instant::now();
    let at_kill = states(&client, &channel).await;
    let error = wait_retrying(&client, &channel).await;
    broker.restart();
    let restarted = Instant::now();
    let wallets = producing.await.expect("the writers");

    let figures = check_nothing_lost(&mut fixture, &channel, &wallets, restarted, async {
        let wallets = wallets.clone();
        tokio::task::spawn_blocking(move || crate::broker_kit::consume_kafka(&bootstrap, topic, &wallets))
            .await
            .unwrap()
            .into_iter()
            .map(|record| {
                assert_eq!(record.key, record.wallet, "keyed by wallet");
                (record.ce_id, record.wallet)
            })
            .collect()
    })
    .await;
    eprintln!(
        "kafka: SIGKILL with {at_kill:?}, {:?} down; error during the outage: {error:?}; {figures}",
        restarted - killed
    );
}

/// Cuts `relay` once `channel` has delivered some events of the batch being produced, waits
/// for retried attempts, restores it, and checks that nothing was lost.
async fn cut_mid_batch(
    mut fixture: Fixture,
    relay: Relay,
    channel: String,
    prefix: &'static str,
    read: impl std::future::Future<Output = Vec<(String, String)>>,
) -> String {
    let client = fixture.client.clone();
    let producing = produce(&client, prefix);
    wait_delivered_at_least(&client, &channel, 20).await;
    relay.cut();
    let cut = Instant::now();
    let at_cut = states(&client, &channel).await;
    let error = wait_retrying(&client, &channel).await;
    relay.restore();
    let restored = Instant::now();
    let wallets = producing.await.expect("the writers");
    let figures = check_nothing_lost(&mut fixture, &channel, &wallets, restored, read).await;
    format!(
        "cut with {at_cut:?}, {:?} cut off; error during the outage: {error:?}; {figures}",
        restored - cut
    )
}

#[tokio::test]
async fn a_stomp_broker_cut_off_mid_batch_loses_nothing() {
    let _serial = serial();
    let broker = broker_address(&setup_env("BUSINESS_WALLET_TEST_STOMP_URL"), 61613);
    let relay = Relay::start(broker.clone()).await;
    let fixture = start_on_postgres(
        "stomp",
        &[
            ("integration.channels.jms", "enabled", "true"),
            (
                "integration.channels.jms",
                "url",
                &format!("\"stomp://127.0.0.1:{}\"", relay.port),
            ),
            ("integration.channels.jms", "timeout_ms", "2000"),
        ],
    )
    .await;
    let queue = format!("bw.faults.{}", uuid::Uuid::new_v4().simple());
    let channel = create_channel(
        &fixture.client,
        json!({"name": "stomp", "type": "JMS", "jms": {"destination": format!("queue://{queue}")}}),
    )
    .await;
    let figures = cut_mid_batch(fixture, relay, channel, "Stomp", async {
        drain_stomp_queue(&broker, &queue, Duration::from_secs(2)).await
    })
    .await;
    eprintln!("stomp: {figures}");
}

#[tokio::test]
async fn an_amqp_broker_cut_off_mid_batch_loses_nothing() {
    let _serial = serial();
    let url = setup_env("BUSINESS_WALLET_TEST_AMQP_URL");
    let relay = Relay::start(broker_address(&url, 5672)).await;
    let fixture = start_on_postgres(
        "amqp",
        &[
            ("integration.channels.jms", "enabled", "true"),
            ("integration.channels.jms", "protocol", "\"amqp\""),
            (
                "integration.channels.jms",
                "url",
                &format!("\"amqp://127.0.0.1:{}\"", relay.port),
            ),
            ("integration.channels.jms", "username", "\"guest\""),
            ("integration.channels.jms", "password", "\"guest\""),
            ("integration.channels.jms", "amqp_queue_prefix", "\"/queue/\""),
            ("integration.channels.jms", "timeout_ms", "3000"),
        ],
    )
    .await;
    let queue = format!("bw.faults.{}", uuid::Uuid::new_v4().simple());
    let channel = create_channel(
        &fixture.client,
        json!({"name": "amqp", "type": "JMS", "jms": {"destination": format!("queue://{queue}")}}),
    )
    .await;
    let figures = cut_mid_batch(fixture, relay, channel, "Amqp", async {
        drain_amqp_queue(&url, &format!("/queue/{queue}"), Duration::from_secs(2)).await
    })
    .await;
    eprintln!("amqp: {figures}");
}
