//! Kafka and JMS brokers that fail in the middle of a batch, against the real binary, while
//! wallets are being created. Two faults for each broker: it goes away (a Kafka-protocol broker
//! killed with SIGKILL and restarted; the connection to ActiveMQ over STOMP and to RabbitMQ over
//! AMQP 1.0 cut and restored), and it stops answering with its connections open (the Kafka
//! broker stopped with SIGSTOP, the JMS connections stalled by a relay), then answers again.
//!
//! What a user expects: the API keeps acknowledging events during the outage (they wait in the
//! outbox); attempts during it end within the channel's time limit and are recorded as
//! retryable with the broker error; a broker that stops answering holds up no other channel
//! (a webhook channel on the same instance receives every event meanwhile); once the broker is
//! back every acknowledged event is on the topic or queue (0 lost), read back by a consumer; a
//! record or message appears twice only when an attempt that was not acknowledged reached the
//! broker anyway (so never more repeats than failed attempts), and then with the same
//! CloudEvents `id`. The server is not restarted.
//!
//! These scenarios run on PostgreSQL (a fresh database on `BUSINESS_WALLET_TEST_POSTGRES_URL`),
//! the database of deployments that run brokers; the receiver scenarios run on SQLite.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::broker_kit::{
    broker_address, consume_kafka, drain_amqp_queue, drain_stomp_queue, setup_env, ObjectStore, Relay, Tansu,
};
use crate::harness::{eventually, serial, Client, Memory};
use crate::misbehaving::{Behaviour, FaultReceiver};
use crate::scenario::{
    assert_alive, create_channel, create_wallet, create_webhook, deliveries, event_ids, start_on_postgres, states,
    tally, wait_all_in_state, Arrival, Fixture,
};

/// Wallets created while the broker fails.
const EVENTS: usize = 120;

/// Deliveries done before the fault starts: it strikes in the middle of the batch.
const BEFORE_FAULT: usize = 20;

/// One batch of wallets created while a broker fails, and what the deliveries log said.
struct Batch {
    client: Client,
    channel: String,
    producing: tokio::task::JoinHandle<Vec<String>>,
    fault_at: Instant,
    at_fault: BTreeMap<String, usize>,
    outage_error: String,
    memory_before: Memory,
}

impl Batch {
    /// Starts creating `EVENTS` wallets from two concurrent clients, and returns once
    /// `BEFORE_FAULT` of their events are delivered on `channel`: time for the fault.
    async fn start(fixture: &Fixture, channel: &str, prefix: &'static str) -> Batch {
        let client = &fixture.client;
        let memory_before = fixture.server.memory().expect("the server is running");
        let writer_client = client.clone();
        let producing = tokio::spawn(async move {
            let mut writers = Vec::new();
            for writer in 0..2 {
                let client = writer_client.clone();
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
        });
        let reached = eventually(Duration::from_secs(60), || async {
            states(client, channel).await.get("DELIVERED").copied().unwrap_or(0) >= BEFORE_FAULT
        })
        .await;
        assert!(
            reached,
            "{BEFORE_FAULT} delivered before the fault: {:?}",
            states(client, channel).await
        );
        Batch {
            client: client.clone(),
            channel: channel.to_string(),
            producing,
            fault_at: Instant::now(),
            at_fault: BTreeMap::new(),
            outage_error: String::new(),
            memory_before,
        }
    }

    /// Call right after the fault began: notes when, and waits until an attempt has failed
    /// because of it (recorded as retryable, with the broker error).
    async fn fault_began(&mut self) {
        self.fault_at = Instant::now();
        self.at_fault = states(&self.client, &self.channel).await;
        let retrying = |items: &[serde_json::Value]| {
            items
                .iter()
                .find(|i| i["state"] == "PENDING" && i["lastError"].is_string())
                .map(|i| i["lastError"].as_str().unwrap().to_string())
        };
        let found = eventually(Duration::from_secs(60), || async {
            retrying(&deliveries(&self.client, &self.channel).await).is_some()
        })
        .await;
        assert!(
            found,
            "no attempt failed during the outage: {:?}",
            states(&self.client, &self.channel).await
        );
        self.outage_error = retrying(&deliveries(&self.client, &self.channel).await).unwrap_or_default();
    }

    /// Call right after the fault ended: every acknowledged wallet has a delivery, all end
    /// DELIVERED, and `read` finds each event at least once, a repeat only with the same id and
    /// never more repeats than failed attempts. Returns the figures.
    async fn healed(self, fixture: &mut Fixture, read: impl std::future::Future<Output = Vec<Arrival>>) -> String {
        let healed_at = Instant::now();
        let outage = healed_at - self.fault_at;
        let wallets = self.producing.await.expect("the writers");
        assert_eq!(wallets.len(), EVENTS, "every create was acknowledged");
        wait_all_in_state(
            &self.client,
            &self.channel,
            EVENTS,
            "DELIVERED",
            Duration::from_secs(120),
        )
        .await;
        let recovery = healed_at.elapsed();
        let expected = event_ids(&self.client, &self.channel, &wallets).await;
        let attempts: i64 = deliveries(&self.client, &self.channel)
            .await
            .iter()
            .map(|i| i["attempts"].as_i64().unwrap())
            .sum();
        let failed_attempts = attempts as usize - EVENTS;
        let arrived = read.await;
        let result = tally(&expected, &arrived);
        assert_eq!(result.lost, 0, "{result:?}");
        assert!(
            result.duplicates <= failed_attempts,
            "{} repeats, but only {failed_attempts} attempts were not acknowledged",
            result.duplicates
        );
        assert_alive(fixture).await;
        let memory_after = fixture.server.memory().expect("the server is running");
        format!(
            "memory {} -> {memory_after}; fault with {:?} after {BEFORE_FAULT} delivered, lasting {outage:?}; error during it: {:?}; \
             {} events, {attempts} attempts ({failed_attempts} failed), {} read back, lost {}, \
             duplicates {} (same ce-id); all delivered {recovery:?} after the broker was back",
            self.memory_before,
            self.at_fault,
            self.outage_error,
            result.events,
            arrived.len(),
            result.lost,
            result.duplicates
        )
    }
}

/// A webhook channel on the same instance, to show that a stuck broker holds up no other
/// channel: it must have every event while the broker is still stuck.
async fn healthy_webhook(client: &Client) -> FaultReceiver {
    let receiver = FaultReceiver::start(Behaviour::Accept).await;
    create_webhook(client, "healthy webhook", &receiver.url("/hook"), 5000).await;
    receiver
}

/// Waits until `receiver` has accepted every event of the batch (the caller has not ended the
/// fault yet).
async fn wait_webhook_has_all(receiver: &FaultReceiver) {
    receiver
        .wait_for("every event while the broker is stuck", Duration::from_secs(60), |r| {
            r.accepted_by_id().len() == EVENTS
        })
        .await;
}

/// An instance with Kafka channels publishing to `broker`, and a channel on `topic`.
async fn kafka_instance(name: &str, broker: &Tansu, topic: &str) -> (Fixture, String) {
    let fixture = start_on_postgres(
        name,
        &[
            ("integration.channels.kafka", "enabled", "true"),
            (
                "integration.channels.kafka",
                "bootstrap_servers",
                &format!("\"{}\"", broker.bootstrap()),
            ),
            ("integration.channels.kafka", "message_timeout_ms", "3000"),
        ],
    )
    .await;
    let channel = create_channel(
        &fixture.client,
        json!({"name": "kafka", "type": "KAFKA", "kafka": {"topic": topic}}),
    )
    .await;
    (fixture, channel)
}

/// Reads the topic back: (ce-id, wallet) of every record, each keyed by its wallet.
async fn read_kafka(bootstrap: String, topic: &'static str, wallets: Vec<String>) -> Vec<Arrival> {
    tokio::task::spawn_blocking(move || consume_kafka(&bootstrap, topic, &wallets))
        .await
        .unwrap()
        .into_iter()
        .map(|record| {
            assert_eq!(record.key, record.wallet, "keyed by wallet");
            (record.ce_id, record.wallet)
        })
        .collect()
}

/// The wallets acknowledged so far on `channel` (for reading the topic back).
async fn wallets_of(client: &Client, channel: &str) -> Vec<String> {
    deliveries(client, channel)
        .await
        .iter()
        .map(|i| i["walletExternalKey"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_kafka_broker_killed_mid_batch_loses_no_acknowledged_event() {
    let _serial = serial();
    let store = ObjectStore::start("tansu").await;
    let mut broker = Tansu::start(&store);
    let topic = "fault-events";
    broker.create_topic(topic);
    let (mut fixture, channel) = kafka_instance("kafka-kill", &broker, topic).await;
    let client = fixture.client.clone();

    let mut batch = Batch::start(&fixture, &channel, "Kafka").await;
    broker.kill();
    batch.fault_began().await;
    broker.restart();
    let bootstrap = broker.bootstrap();
    let figures = batch
        .healed(&mut fixture, async {
            read_kafka(bootstrap, topic, wallets_of(&client, &channel).await).await
        })
        .await;
    eprintln!("kafka SIGKILL: {figures}");
}

#[tokio::test]
async fn a_kafka_broker_that_stops_answering_mid_batch_holds_up_nothing_and_loses_nothing() {
    let _serial = serial();
    let store = ObjectStore::start("tansu").await;
    let broker = Tansu::start(&store);
    let topic = "fault-events";
    broker.create_topic(topic);
    let (mut fixture, channel) = kafka_instance("kafka-stop", &broker, topic).await;
    let client = fixture.client.clone();
    let webhook = healthy_webhook(&client).await;

    let mut batch = Batch::start(&fixture, &channel, "Kafka").await;
    broker.pause();
    batch.fault_began().await;
    wait_webhook_has_all(&webhook).await;
    broker.resume();
    let bootstrap = broker.bootstrap();
    let figures = batch
        .healed(&mut fixture, async {
            read_kafka(bootstrap, topic, wallets_of(&client, &channel).await).await
        })
        .await;
    eprintln!("kafka SIGSTOP: {figures}; the webhook channel had all {EVENTS} events while the broker was stopped");
}

/// An instance with JMS channels over STOMP through `relay`, and a channel on a new queue.
async fn stomp_instance(name: &str, relay: &Relay) -> (Fixture, String, String) {
    let fixture = start_on_postgres(
        name,
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
    (fixture, channel, queue)
}

/// An instance with JMS channels over AMQP 1.0 (RabbitMQ) through `relay`, and a channel on a
/// new queue.
async fn amqp_instance(name: &str, relay: &Relay) -> (Fixture, String, String) {
    let fixture = start_on_postgres(
        name,
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
    (fixture, channel, queue)
}

const IDLE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_stomp_broker_cut_off_mid_batch_loses_nothing() {
    let _serial = serial();
    let broker = broker_address(&setup_env("BUSINESS_WALLET_TEST_STOMP_URL"), 61613);
    let relay = Relay::start(broker.clone()).await;
    let (mut fixture, channel, queue) = stomp_instance("stomp-cut", &relay).await;
    let mut batch = Batch::start(&fixture, &channel, "Stomp").await;
    relay.cut();
    batch.fault_began().await;
    relay.restore();
    let figures = batch
        .healed(&mut fixture, drain_stomp_queue(&broker, &queue, IDLE))
        .await;
    eprintln!("stomp cut: {figures}");
}

#[tokio::test]
async fn a_stomp_broker_that_stops_answering_mid_batch_holds_up_nothing_and_loses_nothing() {
    let _serial = serial();
    let broker = broker_address(&setup_env("BUSINESS_WALLET_TEST_STOMP_URL"), 61613);
    let relay = Relay::start(broker.clone()).await;
    let (mut fixture, channel, queue) = stomp_instance("stomp-stall", &relay).await;
    let webhook = healthy_webhook(&fixture.client).await;
    let mut batch = Batch::start(&fixture, &channel, "Stomp").await;
    relay.stall();
    batch.fault_began().await;
    wait_webhook_has_all(&webhook).await;
    relay.restore();
    let figures = batch
        .healed(&mut fixture, drain_stomp_queue(&broker, &queue, IDLE))
        .await;
    eprintln!("stomp stall: {figures}; the webhook channel had all {EVENTS} events during the stall");
}

#[tokio::test]
async fn an_amqp_broker_cut_off_mid_batch_loses_nothing() {
    let _serial = serial();
    let url = setup_env("BUSINESS_WALLET_TEST_AMQP_URL");
    let relay = Relay::start(broker_address(&url, 5672)).await;
    let (mut fixture, channel, queue) = amqp_instance("amqp-cut", &relay).await;
    let mut batch = Batch::start(&fixture, &channel, "Amqp").await;
    relay.cut();
    batch.fault_began().await;
    relay.restore();
    let figures = batch
        .healed(&mut fixture, drain_amqp_queue(&url, &format!("/queue/{queue}"), IDLE))
        .await;
    eprintln!("amqp cut: {figures}");
}

#[tokio::test]
async fn an_amqp_broker_that_stops_answering_mid_batch_holds_up_nothing_and_loses_nothing() {
    let _serial = serial();
    let url = setup_env("BUSINESS_WALLET_TEST_AMQP_URL");
    let relay = Relay::start(broker_address(&url, 5672)).await;
    let (mut fixture, channel, queue) = amqp_instance("amqp-stall", &relay).await;
    let webhook = healthy_webhook(&fixture.client).await;
    let mut batch = Batch::start(&fixture, &channel, "Amqp").await;
    relay.stall();
    batch.fault_began().await;
    wait_webhook_has_all(&webhook).await;
    relay.restore();
    let figures = batch
        .healed(&mut fixture, drain_amqp_queue(&url, &format!("/queue/{queue}"), IDLE))
        .await;
    eprintln!("amqp stall: {figures}; the webhook channel had all {EVENTS} events during the stall");
}
